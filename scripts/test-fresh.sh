#!/usr/bin/env bash
# make test-fresh: the README's `make test` on a brand-new Debian 12 root,
# the way a newcomer runs it, so that a package installed by hand on this
# machine cannot hide a missing install step.
#
#   1. A fresh copy of the cached pristine minbase root, with the machine's
#      bookworm apt entries, /proc, /sys and /dev mounted, and cleaned up
#      whatever happens: scripts/lib/fresh-root.sh, which make test-deb
#      shares.
#   2. The root gets only `git` and `make`.
#   3. The committed HEAD is cloned into /work/keyward inside, with the
#      shared corpus beside it at /work/shared as CI lays it out, and
#      `make test` runs there under chroot with a clean environment.
#
# Exits with make test's status. KEYWARD_FRESH_KEEP=1 keeps a failed root
# (unmounted) for a look. Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/fresh-root.sh
. "$repo/scripts/lib/fresh-root.sh"
FRESH_NAME=test-fresh

say() { fresh_say "$@"; }
die() { fresh_die "$@"; }

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

fresh_root_begin
root=$FRESH_ROOT

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
