#!/bin/bash
# Cross-build the static Windows (x86_64-w64-mingw32) dependencies of keyward,
# OpenSSL 3.5 LTS (libcrypto; Debian 13's source package, for ML-DSA) and
# libuv (Debian 12's), from Debian's own source packages, into one prefix
# under the cache:
#
#   ${KEYWARD_CACHE:-/var/cache/keyward}/win-deps/openssl-<ver>_libuv-<ver>/
#
# The last line on stdout is that prefix, so a Makefile can say
#   WIN_DEPS := $(shell scripts/win-deps.sh)
# Everything else goes to stderr, and build output goes to a log file in the
# cache; on failure the tail of that log is printed and the exit status is not 0.
#
# The prefix name carries the Debian versions, so a new security release
# builds a new prefix. A prefix counts as built only once its stamp file is
# written, at the very end; an interrupted build is thrown away and redone.
#
# Meant to run as root on a Debian 12 (bookworm) machine, as often as you like:
# it installs only missing packages, adds a deb-src entry only if there is none,
# and does nothing but print the prefix when the build is already there.

set -euo pipefail

# The CMake toolchain file lives in the same checkout as this script.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
toolchain="$repo/cmake/mingw-w64-x86_64.cmake"
# shellcheck source=scripts/lib/apt-sources.sh
. "$repo/scripts/lib/apt-sources.sh"
# shellcheck source=scripts/lib/build-log.sh
build_log_tag=win-deps
. "$repo/scripts/lib/build-log.sh"
# shellcheck source=scripts/lib/deb-source.sh
. "$repo/scripts/lib/deb-source.sh"

cache=${KEYWARD_CACHE:-/var/cache/keyward}
top="$cache/win-deps"

# Same compiler as the toolchain file (win32 thread flavour; see the comment
# there). OpenSSL's Makefile builds its compiler name as
# $(CROSS_COMPILE)$(CC), so CC=gcc-win32 gives x86_64-w64-mingw32-gcc-win32.
triplet=x86_64-w64-mingw32
openssl_cc=gcc-win32

# Until the versions are known, command output goes to apt.log; the build
# switches to a log named after the prefix.
log="$top/apt.log"
build_env_clean

if [ ! -f "$toolchain" ]; then
    echo "win-deps: missing $toolchain" >&2
    exit 1
fi
mkdir -p "$top"

# Two runs at once (a parallel make, two terminals) would build into the same
# directory; take turns instead.
exec 9>"$top/.lock"
flock 9
# apt.log only ever describes the latest run.
: >"$log"

# ---------------------------------------------------------------- apt setup

apt_updated=no
apt_update() {
    if [ "$apt_updated" = no ]; then
        say "apt-get update"
        run apt-get update
        apt_updated=yes
    fi
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

need_root() {
    if [ "$(id -u)" != 0 ]; then
        fail "need root to $1 (or do it by hand once, then run this again)"
    fi
}

# Is any deb-src entry configured? One-line format (*.list, sources.list) or
# deb822 format (*.sources, a "Types:" field that lists deb-src).
have_deb_src() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -Eq '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        grep -Eiq '^Types:.*[[:space:]]deb-src([[:space:]]|$)' "$f" && return 0
    done
    return 1
}

# Add source entries for the bookworm suites: the machine's own "deb"
# entries for them, as "deb-src" (scripts/lib/apt-sources.sh).
add_deb_src() {
    need_root "add a deb-src entry to apt's sources"
    say "adding deb-src entries to /etc/apt/sources.list.d/ (from the machine's own bookworm entries)"
    apt_bookworm_entries deb-src /etc/apt/sources.list.d keyward-deb-src ||
        fail "no bookworm \"deb\" entry in /etc/apt/sources.list or /etc/apt/sources.list.d/ to take the deb-src URIs from"
}

if ! have_deb_src; then
    add_deb_src
    apt_update
fi

# dpkg-dev provides dpkg-source, which "apt-get source" uses to unpack.
# (wine64 is only needed to run the results, not to build them.)
packages="gcc-mingw-w64-x86-64 dpkg-dev cmake make perl"
missing=""
for p in $packages; do
    is_installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    need_root "install$missing"
    # A fresh machine may have no package lists at all.
    apt_update
    say "installing$missing"
    # shellcheck disable=SC2086  # word splitting of the list is intended
    run env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends $missing
fi

# Versions of a source package that apt knows (bookworm, -updates and
# -security), newest first, one per line. Prints nothing if apt knows none.
src_versions() {
    apt-cache showsrc --only-source "$1" 2>/dev/null | sed -n 's/^Version: //p' |
        sort -u | sort_debian_versions
}

# Sort Debian version strings, newest first, with dpkg's own comparison
# (sort -V gets Debian's '~' wrong). An insertion sort: the lists are a
# handful of entries long.
sort_debian_versions() {
    local sorted=() v i j
    while read -r v; do
        i=${#sorted[@]}
        sorted+=("$v")
        while [ "$i" -gt 0 ] && dpkg --compare-versions "${sorted[i]}" gt "${sorted[i-1]}"; do
            j=${sorted[i-1]}
            sorted[i-1]=${sorted[i]}
            sorted[i]=$j
            i=$((i - 1))
        done
    done
    [ ${#sorted[@]} -eq 0 ] || printf '%s\n' "${sorted[@]}"
}

if [ -z "$(src_versions libuv1)" ]; then
    # A deb-src entry is there but its lists were never downloaded.
    need_root "run apt-get update"
    apt_update
fi
[ -n "$(src_versions libuv1)" ] || fail "apt knows no source package libuv1 (deb-src entry?)"

# Downloaded source packages stay here, so a redone build (or a later run
# that falls back to an older version, below) needs no network.
sources="$top/sources"
mkdir -p "$sources"

# Debian version without its epoch, as in file names (openssl_3.0.20-1~deb12u2.dsc).
noepoch() { echo "${1#*:}"; }

# Download one source package version into $sources, unless done before.
# The .ok marker is written only after apt-get succeeded (and so after it
# checked every file against the signed Sources index).
fetch_source() {
    local ok
    ok="$sources/$1_$(noepoch "$2").ok"
    [ -f "$ok" ] && return 0
    echo "+ apt-get source --download-only --only-source $1=$2" >>"$log"
    if (cd "$sources" && apt-get source --download-only --only-source "$1=$2") >>"$log" 2>&1; then
        touch "$ok"
        return 0
    fi
    return 1
}

# The newest version of a source package whose files can be downloaded.
# Normally that is simply the newest; but a mirror can list a version (a fresh
# security update, say) before it serves its files, and then the next older
# shipped version is built rather than nothing.
pick_version() {
    local v
    for v in $(src_versions "$1"); do
        if fetch_source "$1" "$v"; then
            echo "$v"
            return 0
        fi
        say "warning: cannot download source $1 $v (see $log); falling back to an older version"
    done
    return 1
}

# OpenSSL from Debian 13 (trixie), through a private apt state in the cache
# (scripts/lib/deb-source.sh): 3.5 is the first with ML-DSA, and an LTS.
debsrc_init trixie
openssl_ver=$(debsrc_pick openssl 3.5.) ||
    fail "cannot download any OpenSSL 3.5 source package from trixie"
libuv_ver=$(pick_version libuv1) || fail "cannot download any version of source libuv1"

# Debian versions may hold ':' (epoch) and '~', which are awkward in paths
# and in make; keep letters, digits, '.', '+' and '-', turn the rest into '_'.
sanitize() { echo "${1//[^A-Za-z0-9.+-]/_}"; }

name="openssl-$(sanitize "$openssl_ver")_libuv-$(sanitize "$libuv_ver")"
prefix="$top/$name"
stamp="$prefix/.keyward-win-deps-stamp"

if [ -f "$stamp" ]; then
    say "up to date: $prefix"
    echo "$prefix"
    exit 0
fi

# ---------------------------------------------------------------- build

log="$top/$name.log"
: >"$log"
scratch="$top/$name.build"
say "building $name (log: $log)"
start=$SECONDS

# Whatever is there is a leftover of an interrupted run.
rm -rf "$prefix" "$scratch"
mkdir -p "$scratch" "$prefix"

# Unpack (with the Debian patches applied) into fixed directory names.
say "unpacking openssl $openssl_ver and libuv1 $libuv_ver"
openssl_src="$scratch/openssl"
libuv_src="$scratch/libuv"
run dpkg-source -x "$debsrc_dir/openssl_$(noepoch "$openssl_ver").dsc" "$openssl_src"
run dpkg-source -x "$sources/libuv1_$(noepoch "$libuv_ver").dsc" "$libuv_src"

# OpenSSL: static libcrypto/libssl only. --libdir=lib because the mingw64
# target would otherwise install into lib64 (its multilib setting); one
# lib/ for both libraries is simpler for everyone linking against them.
# Beware: OPENSSLDIR is compiled in as "$prefix/ssl", a path of this Linux
# machine, and libcrypto loads openssl.cnf from there by default (on Windows:
# \var\cache\... on the current drive, which any user may create). Programs
# should call OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) first.
# (--openssldir cannot name a C:/ path here: the Makefile treats anything
# not starting with "/" as relative to the prefix.)
say "building OpenSSL (a few minutes)"
t=$SECONDS
(
    cd "$openssl_src"
    run ./Configure mingw64 --cross-compile-prefix=$triplet- CC=$openssl_cc \
        no-shared no-tests no-engine no-module no-legacy no-dso no-ui-console \
        --prefix="$prefix" --libdir=lib
    run make -j2 build_libs
    run make install_dev
)
say "OpenSSL done in $((SECONDS - t)) s"

# libuv: static only. LIBUV_BUILD_SHARED appeared after 1.44; use it where the
# source knows it, else the DLL is built too and removed below. The static
# library is named libuv_a.a (CMake target uv_a), not libuv.a.
say "building libuv"
t=$SECONDS
libuv_opts=(-DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF)
if grep -q LIBUV_BUILD_SHARED "$libuv_src/CMakeLists.txt"; then
    libuv_opts+=(-DLIBUV_BUILD_SHARED=OFF)
fi
run cmake -S "$libuv_src" -B "$scratch/libuv-build" \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DKEYWARD_WIN_DEPS="$prefix" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_INSTALL_LIBDIR=lib "${libuv_opts[@]}"
run cmake --build "$scratch/libuv-build" -j2
run cmake --install "$scratch/libuv-build"
# Without LIBUV_BUILD_SHARED, 1.44 also installs libuv.dll, its import library
# libuv.dll.a and files that point at them: libuv.pc (-luv) and the CMake
# package in lib/cmake/libuv, whose import check fails once the DLL is gone.
# Remove them all so nothing can link the DLL by accident; what is left is
# lib/libuv_a.a and lib/pkgconfig/libuv-static.pc.
rm -rf "$prefix/bin/libuv.dll" "$prefix/lib/libuv.dll.a" \
    "$prefix/lib/pkgconfig/libuv.pc" "$prefix/lib/cmake/libuv"
# Drop the directories too if that left them empty.
rmdir "$prefix/bin" "$prefix/lib/cmake" 2>/dev/null || true
say "libuv done in $((SECONDS - t)) s"

# The sources and object files are no longer needed (a few hundred MB).
rm -rf "$scratch"

# Written last: its presence means everything above succeeded.
cat >"$stamp" <<EOF
openssl $openssl_ver
libuv1 $libuv_ver
built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s
EOF
say "built $prefix in $((SECONDS - start)) s"
echo "$prefix"
