# shellcheck shell=bash
# keyward: a brand-new Debian 12 root for the tests that must not see what is
# installed on this machine: make test-fresh (scripts/test-fresh.sh) and
# make test-deb (scripts/test-deb.sh). Sourced, not run; needs root.
#
#   1. A pristine `debootstrap --variant=minbase bookworm` root, from the
#      machine's own apt sources (scripts/lib/apt-sources.sh), is made once
#      and cached as a tarball (${KEYWARD_CACHE:-/var/cache/keyward}/
#      fresh-root/); it holds nothing of keyward. Every run unpacks a fresh
#      copy of it.
#   2. The root gets the machine's bookworm apt entries, its resolv.conf and
#      a policy-rc.d that keeps package scripts from starting daemons; /proc,
#      /sys and /dev are mounted, and the download cache (below) as its
#      /var/cache/apt/archives.
#   3. Whatever happens, at exit: processes left in the root are killed,
#      everything mounted under it is unmounted, and it is removed with
#      `rm --one-file-system`, never while /proc/mounts still lists a mount
#      below it.
#
# Downloaded .deb files are kept between runs in the cache (apt-archives/):
# a download cache, not an installation; apt still installs every package in
# the fresh root. One fresh root at a time: runs share that cache, and apt in
# two roots at once would fight over its lock, so a run waits for the other.
#
#   FRESH_NAME=NAME         set by the caller after sourcing: the messages'
#       prefix and the work directory's (keyward-NAME.XXXXXX in
#       ${KEYWARD_FRESH_DIR:-/var/tmp})
#   fresh_root_begin        makes the root and sets FRESH_ROOT to its path;
#       installs an EXIT trap that cleans up and exits with the script's
#       status
#   fresh_root_end [STATUS] cleans up the root now, so that the script can
#       begin another (one at a time)
#   in_root CMD...          runs CMD in the root as root, with a clean
#       environment
#   fresh_say / fresh_die MESSAGE   "NAME: MESSAGE" on stderr (die exits 1)
#
# KEYWARD_FRESH_KEEP=1 keeps a failed root (unmounted) for a look.

# shellcheck source=scripts/lib/apt-sources.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-sources.sh"

FRESH_NAME=fresh-root
FRESH_ROOT=
FRESH_WORK=
FRESH_CACHE=${KEYWARD_CACHE:-/var/cache/keyward}/fresh-root

fresh_say() { echo "$FRESH_NAME: $*" >&2; }
fresh_die() {
    fresh_say "$*"
    exit 1
}

# Mount points below the root, deepest first.
_fresh_mounts_below_root() {
    awk -v r="$FRESH_ROOT/" 'index($2 "/", r) == 1 { print $2 }' /proc/mounts | sort -r
}

# fresh_root_end [STATUS]: cleans up the root (STATUS: how the work in it
# went, 0 when not given; a failed root is kept if KEYWARD_FRESH_KEEP=1).
# Returns 1 if something is still mounted below it, else 0.
fresh_root_end() {
    local rc=${1:-0} pid left
    [ -n "$FRESH_WORK" ] && [ -d "$FRESH_WORK" ] || return 0
    # Processes still running inside (a lingering wineserver, a daemon a
    # test left) would keep the mounts busy.
    for pid in /proc/[0-9]*; do
        [ "$(readlink "$pid/root" 2>/dev/null)" = "$FRESH_ROOT" ] && kill -KILL "${pid#/proc/}" 2>/dev/null
    done
    sleep 0.5
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(_fresh_mounts_below_root)
    left=$(_fresh_mounts_below_root)
    if [ -n "$left" ]; then
        fresh_say "NOT removing $FRESH_WORK: still mounted below it:"
        echo "$left" >&2
        return 1
    elif [ "${KEYWARD_FRESH_KEEP:-0}" = 1 ] && [ "$rc" != 0 ]; then
        fresh_say "kept the failed root for a look: $FRESH_ROOT"
    else
        rm -rf --one-file-system "$FRESH_WORK"
    fi
    FRESH_WORK='' FRESH_ROOT=''
    return 0
}

_fresh_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    fresh_root_end "$rc" || { [ "$rc" != 0 ] || rc=1; }
    exit "$rc"
}

_fresh_pristine() {
    local pristine=$FRESH_CACHE/bookworm-minbase.tar mirror boot
    if ! command -v debootstrap >/dev/null 2>&1; then
        fresh_say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 ||
            { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends debootstrap >&2; } ||
            fresh_die "could not install debootstrap"
    fi
    [ -f "$pristine" ] && return 0
    mirror=$(apt_bookworm_mirror)
    [ -n "$mirror" ] || fresh_die "no apt entry for bookworm in /etc/apt to take a mirror from"
    fresh_say "making the pristine minbase root from $mirror (once; cached as $pristine)"
    boot=$(mktemp -d "$FRESH_CACHE/debootstrap.XXXXXX")
    if ! debootstrap --variant=minbase bookworm "$boot/root" "$mirror" >"$boot.log" 2>&1; then
        tail -n 30 "$boot.log" >&2
        rm -rf --one-file-system "$boot"
        fresh_die "debootstrap failed (log: $boot.log)"
    fi
    tar -C "$boot/root" --numeric-owner -cf "$pristine.tmp" .
    mv "$pristine.tmp" "$pristine"
    rm -rf --one-file-system "$boot"
}

fresh_root_begin() {
    [ "$(id -u)" = 0 ] || fresh_die "needs root (debootstrap, chroot and mounts)"
    local archives=$FRESH_CACHE/apt-archives
    mkdir -p "$FRESH_CACHE" "$archives"
    # Held until the script exits (fd 9 stays open), across its roots.
    if [ -z "${_FRESH_LOCKED:-}" ]; then
        exec 9>"$FRESH_CACHE/.lock"
        if ! flock -n 9; then
            fresh_say "another fresh root is in use; waiting for it"
            flock 9
        fi
        _FRESH_LOCKED=1
    fi
    _fresh_pristine

    FRESH_WORK=$(mktemp -d "${KEYWARD_FRESH_DIR:-/var/tmp}/keyward-$FRESH_NAME.XXXXXX")
    FRESH_ROOT=$FRESH_WORK/root
    mkdir "$FRESH_ROOT"
    trap _fresh_exit EXIT
    trap 'exit 130' INT TERM HUP

    fresh_say "unpacking a fresh copy of the pristine root into $FRESH_ROOT"
    tar -C "$FRESH_ROOT" --numeric-owner -xpf "$FRESH_CACHE/bookworm-minbase.tar"

    # apt: the machine's bookworm entries only (what debootstrap wrote is
    # replaced), the machine's name server, no daemons started by packages.
    rm -f "$FRESH_ROOT/etc/apt/sources.list"
    apt_bookworm_entries deb "$FRESH_ROOT/etc/apt/sources.list.d" debian ||
        fresh_die "no bookworm \"deb\" entry in /etc/apt to give the fresh root"
    cp -L /etc/resolv.conf "$FRESH_ROOT/etc/resolv.conf"
    printf '#!/bin/sh\n# keyward %s: no daemons from package scripts in this chroot.\nexit 101\n' \
        "$FRESH_NAME" >"$FRESH_ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$FRESH_ROOT/usr/sbin/policy-rc.d"

    mount -t proc proc "$FRESH_ROOT/proc"
    mount -t sysfs sysfs "$FRESH_ROOT/sys"
    mount --rbind /dev "$FRESH_ROOT/dev"
    mount --make-rslave "$FRESH_ROOT/dev"
    mount --bind "$archives" "$FRESH_ROOT/var/cache/apt/archives"
}

in_root() {
    chroot "$FRESH_ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
