#!/usr/bin/env bash
# make msi: keyward's Windows installer, built with wixl (Debian's msitools)
# from packaging/windows/keyward.wxs and the programs of the cross build.
#
#   scripts/build-msi.sh WIN_BUILD OUT.msi [VERSION]
#
# WIN_BUILD is the cross build (make win: build-win/). VERSION is the
# project's (project() in CMakeLists.txt), which must also be the one
# WIN_BUILD was configured with; a VERSION given here overrides it, for the
# test that needs a newer .msi to upgrade to (tests/win/msi.sh).
#
# What goes in is staged in OUT.msi.d/ beside the .msi (wixl takes sources
# relative to the .wxs): the four programs, README.txt (packaging/windows/,
# with the version filled in) and LICENSE.txt, which says what
# debian/copyright says of the licence, taken from there so that the two
# never differ. Both text files get CRLF line ends, for Notepad.
#
# The last line printed is the .msi's path.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
win=${1:?usage: build-msi.sh WIN_BUILD OUT.msi [VERSION]}
out=${2:?usage: build-msi.sh WIN_BUILD OUT.msi [VERSION]}

say() { echo "msi: $*" >&2; }
die() {
    say "$*"
    exit 1
}

command -v wixl >/dev/null 2>&1 || die "wixl not found: scripts/setup.sh installs it (package wixl)"
[ -d "$win" ] || die "no cross build at $win (make win)"
win=$(cd "$win" && pwd)

project=$(sed -n 's/^project(keyward VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
[ -n "$project" ] || die "no project(keyward VERSION ...) in CMakeLists.txt"
built=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$win/CMakeCache.txt" 2>/dev/null || true)
[ "$built" = "$project" ] ||
    die "$win was configured as version '${built}', CMakeLists.txt says $project: run make win again"
version=${3:-$project}
# Windows Installer compares only the first three fields; each is at most 255, 255, 65535.
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "version $version is not MAJOR.MINOR.PATCH"

stage=$out.d
rm -rf "$stage"
mkdir -p "$stage"
for exe in keyward-agent keyward-pkcs11-helper keyward-sk-helper keyward-probe keyward-relay; do
    [ -f "$win/$exe.exe" ] || die "$win/$exe.exe is not built (make win)"
    cp "$win/$exe.exe" "$stage/"
done
crlf() { sed 's/\r*$/\r/'; }
sed "s/@VERSION@/$version/g" "$repo/packaging/windows/README.txt" | crlf >"$stage/README.txt"
# debian/copyright's stand-alone licence paragraph: "License: NAME" at the
# start of a line with no Files: before it, and its indented text (" ." is
# an empty line in that format).
awk '
    /^Files:/ { files = 1 }
    /^$/ { if (inlic) exit; files = 0 }
    /^License:/ && !files { inlic = 1; print; print ""; next }
    inlic && /^ / { sub(/^ /, ""); if ($0 == ".") $0 = ""; print }
' "$repo/debian/copyright" >"$stage/licence"
[ "$(wc -l <"$stage/licence")" -ge 3 ] || die "no licence paragraph found in debian/copyright"
{
    echo "keyward $version"
    echo
    echo "What debian/copyright in keyward's source states:"
    echo
    cat "$stage/licence"
} | crlf >"$stage/LICENSE.txt"
rm "$stage/licence"
cp "$repo/packaging/windows/keyward.wxs" "$stage/"

# wixl prints GLib warnings for attributes it ignores; keep them in a log,
# and fail on any (an ignored attribute is a package that does not do what
# keyward.wxs says).
rm -f "$out"
(cd "$stage" && wixl -a x64 -D Version="$version" -o "$(basename "$out").tmp" keyward.wxs) \
    >"$stage/wixl.log" 2>&1 || {
    cat "$stage/wixl.log" >&2
    die "wixl failed"
}
if grep -q -i -E "warning|critical" "$stage/wixl.log"; then
    cat "$stage/wixl.log" >&2
    die "wixl warned (log: $stage/wixl.log)"
fi
mv "$stage/$(basename "$out").tmp" "$out"
say "built $out (version $version)"
echo "$out"
