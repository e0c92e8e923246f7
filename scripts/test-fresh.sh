#!/usr/bin/env bash
# make test-fresh: the README's `make test` on a brand-new Debian 12 root,
# the way a newcomer runs it, so that a package installed by hand on this
# machine cannot hide a missing install step.
#
#   1. A pristine `debootstrap --variant=minbase bookworm` root, from the
#      machine's own apt sources, is made once and cached as a tarball
#      (${KEYWARD_CACHE:-/var/cache/keyward}/fresh-root/); it holds nothing of
#      keyward. Every run unpacks a fresh copy of it.
#   2. The root gets the machine's bookworm apt entries, its resolv.conf,
#      a policy-rc.d that keeps package scripts from starting daemons, and
#      then only `git` and `make`.
#   3. The committed HEAD is cloned into /work/keyward inside, with the
#      shared corpus beside it at /work/shared as CI lays it out, and
#      `make test` runs there under chroot with /proc, /sys and /dev mounted
#      and a clean environment.
#   4. Whatever happened, processes left in the root are killed, everything
#      mounted under it is unmounted, and it is removed with
#      `rm --one-file-system`, never while /proc/mounts still lists a mount
#      below it.
#
# Downloaded .deb files are kept between runs in the cache (apt-archives/,
# bind-mounted as the root's /var/cache/apt/archives): a download cache, not
# an installation; apt still installs every package in the fresh root.
#
# Exits with make test's status. KEYWARD_FRESH_KEEP=1 keeps a failed root
# (unmounted) for a look. Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/apt-sources.sh
. "$repo/scripts/lib/apt-sources.sh"

cache=${KEYWARD_CACHE:-/var/cache/keyward}/fresh-root
pristine=$cache/bookworm-minbase.tar
archives=$cache/apt-archives

say() { echo "test-fresh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts)"

# The shared corpus the tests replay: beside the checkout as CI lays it out,
# or where KEYWARD_CORPUS_DIR says.
shared=$repo/../shared
if [ ! -d "$shared/corpus" ]; then
    if [ -n "${KEYWARD_CORPUS_DIR:-}" ] && [ -d "$KEYWARD_CORPUS_DIR" ]; then
        shared=""
    else
        die "no shared corpus at $(cd "$repo/.." && pwd)/shared/corpus (or KEYWARD_CORPUS_DIR): make test needs it"
    fi
fi

head_commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
    say "note: uncommitted changes are not tested; testing the committed HEAD ${head_commit:0:12}"
fi

# ---------------------------------------------------------------- the pristine root

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 ||
        { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends debootstrap >&2; } ||
        die "could not install debootstrap"
fi

mkdir -p "$cache" "$archives"
# One fresh root at a time: runs share the download cache, and apt in two
# roots at once would fight over its lock.
exec 9>"$cache/.lock"
if ! flock -n 9; then
    say "another test-fresh is running; waiting for it"
    flock 9
fi
if [ ! -f "$pristine" ]; then
    mirror=$(apt_bookworm_mirror)
    [ -n "$mirror" ] || die "no apt entry for bookworm in /etc/apt to take a mirror from"
    say "making the pristine minbase root from $mirror (once; cached as $pristine)"
    boot=$(mktemp -d "$cache/debootstrap.XXXXXX")
    if ! debootstrap --variant=minbase bookworm "$boot/root" "$mirror" >"$boot.log" 2>&1; then
        tail -n 30 "$boot.log" >&2
        rm -rf --one-file-system "$boot"
        die "debootstrap failed (log: $boot.log)"
    fi
    tar -C "$boot/root" --numeric-owner -cf "$pristine.tmp" .
    mv "$pristine.tmp" "$pristine"
    rm -rf --one-file-system "$boot"
fi

# ---------------------------------------------------------------- this run's root

work=$(mktemp -d "${KEYWARD_FRESH_DIR:-/var/tmp}/keyward-fresh.XXXXXX")
root=$work/root
mkdir "$root"

# Mount points below the root, deepest first.
mounts_below_root() {
    awk -v r="$root/" 'index($2 "/", r) == 1 { print $2 }' /proc/mounts | sort -r
}

cleanup() {
    local rc=$? pid left
    trap - EXIT INT TERM HUP
    set +e
    # Processes still running inside (a lingering wineserver, a daemon a
    # test left) would keep the mounts busy.
    for pid in /proc/[0-9]*; do
        [ "$(readlink "$pid/root" 2>/dev/null)" = "$root" ] && kill -KILL "${pid#/proc/}" 2>/dev/null
    done
    sleep 0.5
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(mounts_below_root)
    left=$(mounts_below_root)
    if [ -n "$left" ]; then
        say "NOT removing $work: still mounted below it:"
        echo "$left" >&2
        [ "$rc" != 0 ] || rc=1
    elif [ "${KEYWARD_FRESH_KEEP:-0}" = 1 ] && [ "$rc" != 0 ]; then
        say "kept the failed root for a look: $root"
    else
        rm -rf --one-file-system "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say "unpacking a fresh copy of the pristine root into $root"
tar -C "$root" --numeric-owner -xpf "$pristine"

# apt: the machine's bookworm entries only (what debootstrap wrote is
# replaced), the machine's name server, no daemons started by packages.
rm -f "$root/etc/apt/sources.list"
apt_bookworm_entries deb "$root/etc/apt/sources.list.d" debian ||
    die "no bookworm \"deb\" entry in /etc/apt to give the fresh root"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\n# keyward test-fresh: no daemons from package scripts in this chroot.\nexit 101\n' \
    >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount --bind "$archives" "$root/var/cache/apt/archives"

in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

say "installing git and make in the fresh root"
in_root apt-get update -qq >&2 || die "apt-get update failed in the fresh root"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git make >&2 ||
    die "could not install git and make in the fresh root"

say "cloning ${head_commit:0:12} into /work/keyward"
mkdir -p "$root/work"
git clone -q --no-hardlinks "$repo" "$root/work/keyward"
git -C "$root/work/keyward" checkout -q --detach "$head_commit"
if [ -n "$shared" ]; then
    cp -a "$shared" "$root/work/shared"
else
    mkdir -p "$root/work/shared"
    cp -a "$KEYWARD_CORPUS_DIR" "$root/work/shared/corpus"
fi

say "make test in the fresh root"
start=$SECONDS
set +e
in_root bash -c 'cd /work/keyward && make test'
rc=$?
set -e
say "make test in the fresh root: exit $rc after $((SECONDS - start)) s"
exit "$rc"
