#!/usr/bin/env bash
# make deb: keyward's Debian package, built with `dpkg-buildpackage -us -uc -b`
# on a copy of this tree, then checked with lintian.
#
#   scripts/build-deb.sh [OUT]        (OUT: build-deb, the default)
#
# dpkg-buildpackage writes its results beside the source directory and dh
# its work files into debian/, so the build runs in a copy,
# OUT/keyward-VERSION/: the files git knows, as they are in the working tree
# (uncommitted changes included), plus new files git does not ignore. The
# results land in OUT/: keyward_VERSION_ARCH.deb, and the .changes and
# .buildinfo files. The checkout itself is not written to.
#
# Then lintian checks the .changes file (and with it the .deb and the
# .buildinfo): any error or warning fails. Overrides, each with its reason,
# are in debian/*lintian-overrides.
#
# The last line printed is the .deb's path. Exit status: 0 built and
# lintian-clean, non-zero otherwise.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

say() { echo "deb: $*" >&2; }
die() {
    say "$*"
    exit 1
}

for c in dpkg-buildpackage dpkg-parsechangelog dh lintian; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found: scripts/setup.sh installs it (make setup)"
done

version=$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)
arch=$(dpkg-architecture -q DEB_HOST_ARCH)
src=$out/keyward-$version

# A fresh copy every time; earlier results go with it.
rm -rf --one-file-system "$src"
rm -f "$out"/keyward_*.deb "$out"/keyward_*.changes "$out"/keyward_*.buildinfo \
    "$out"/keyward-dbgsym_*.deb "$out"/keyward_*.ddeb
mkdir -p "$src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Deleted but not yet committed files are listed too: copy what exists.
    git -C "$repo" ls-files -z --cached --others --exclude-standard |
        (cd "$repo" && while IFS= read -r -d '' f; do
            [ -e "$f" ] && printf '%s\0' "$f"
        done) |
        tar -C "$repo" --null -T - -cf - | tar -C "$src" -xf -
else
    tar -C "$repo" --exclude=./.git --exclude=./build --exclude='./build-*' -cf - . | tar -C "$src" -xf -
fi

say "dpkg-buildpackage -us -uc -b in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
    tail -n 40 "$out/build.log" >&2
    die "dpkg-buildpackage failed (log: $out/build.log)"
}

deb=$out/keyward_${version}_${arch}.deb
changes=$out/keyward_${version}_${arch}.changes
for f in "$deb" "$changes"; do
    [ -f "$f" ] || die "dpkg-buildpackage made no $f"
done

say "lintian $changes"
# --fail-on error,warning: lintian's exit status says whether anything of
# either kind was found (overridden tags are not); info tags are shown only.
if ! lintian --display-info --fail-on error,warning "$changes" >"$out/lintian.log" 2>&1; then
    cat "$out/lintian.log" >&2
    die "lintian found errors or warnings (log: $out/lintian.log)"
fi
sed 's/^/deb: lintian: /' "$out/lintian.log" >&2
say "built: $(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ')(log: $out/build.log)"
echo "$deb"
