#!/usr/bin/env bash
# Installs what keyward needs to build and test on Debian 12, and nothing
# more: each package only if it is missing, so a prepared machine does no
# network work at all. Run as root (CI and `make` do this for you).
#
# After installing, the commands themselves are checked, not only the package
# names: a package can be installed and still not carry the command a test
# runs (Debian's wine64 has the loader only; wine, wineboot and wineserver
# come from the package wine). A command still missing stops the set-up with
# its name and the package that brings it.
#
#   scripts/setup.sh        what make, make run and make test need (also
#                           "scripts/setup.sh test")
#   scripts/setup.sh deb    what make deb needs: the build's packages and the
#                           packaging tools, without the test tools (Wine...)
set -euo pipefail

# One line per need: "package command..." (the commands that package must
# provide for the build, make run or make test; none for libraries and
# headers, which CMake checks itself).
build_needs=(
    # build: compiler, C library headers and start files (gcc installed
    # without recommends comes without them: "cannot find Scrt1.o")
    "gcc gcc"
    "libc6-dev"
    "make make"
    "cmake cmake ctest"
    "pkg-config pkg-config"
    "libssl-dev"
    "libuv1-dev"
    # PKCS#11's header (pkcs11.h) for keyward-pkcs11-helper: nothing links libp11-kit
    "libp11-kit-dev"
    # libfido2 for keyward-sk-helper's built-in FIDO provider ("internal")
    "libfido2-dev"
)
needs=(
    "${build_needs[@]}"
    # the real OpenSSH tools the end-to-end tests drive
    "openssh-client ssh ssh-add ssh-keygen ssh-agent"
    "openssh-server"
    # Windows build and tests: the cross compiler, Wine (wine64 is the
    # 64-bit loader, wine the wine/wineboot/wineserver commands), socat runs
    # keyward-relay.exe as README's WSL2 recipe does (tests/win/relay_stdio.sh)
    "gcc-mingw-w64-x86-64 x86_64-w64-mingw32-gcc-win32"
    "wine64"
    "wine wine wineboot wineserver"
    "socat socat"
    # the Windows installer: wixl builds it (make msi), msitools' msiinfo
    # reads it back (tests/win/msi.sh)
    "wixl wixl"
    "msitools msiinfo"
    # process tools used by tests
    "procps pkill ps"
    "util-linux prlimit setpriv setsid flock"
    "bsdutils script"
    "coreutils timeout base64 od sha256sum truncate"
    # a read-only key store for root, who ignores mode bits (tests/win/key_store.sh)
    "e2fsprogs chattr"
    "perl-base perl"
    "strace strace"
    "gdb gdb"
    "systemd systemd-socket-activate systemd-analyze"
    # manual page lint
    "mandoc mandoc"
    "man-db man"
    # audit log tests: every line whole JSON (tests/hostile/lib.sh whole_json)
    "jq jq"
    # a real PKCS#11 module and its token tool (tests/pkcs11/softhsm_token.sh)
    "softhsm2 softhsm2-util"
    # an Ed25519 key in PKCS#8 for the token (ssh-keygen writes none)
    "openssl openssl"
    # make soak's plot of RSS, fds and requests/s (bench/soak.gp)
    "gnuplot-nox gnuplot"
    # the unit suite under memcheck (valgrind_unit_* tests)
    "valgrind valgrind"
    # symbol checks of the built programs (tests/relay/links_no_crypto.sh)
    "binutils nm readelf"
    "binutils-mingw-w64-x86-64 x86_64-w64-mingw32-nm"
    # scripts/pq-deps.sh (make build-pq): OpenSSL 3.5 and OpenSSH from
    # Debian's source packages; OpenSSH's configure is remade after Debian's
    # patches
    "dpkg-dev dpkg-source"
    "perl perl"
    "autoconf autoreconf"
    "automake aclocal"
)
# The Debian package (make deb), beside build_needs: build-essential,
# dpkg-buildpackage and its helpers, dh and its cmake build system, lintian (no fakeroot:
# debian/control says Rules-Requires-Root: no). debian/control's
# Build-Depends must stay within build_needs and these. The fresh roots of
# make test-fresh and make test-deb install debootstrap themselves
# (scripts/lib/fresh-root.sh).
deb_needs=(
    "${build_needs[@]}"
    # dpkg-buildpackage checks for it, whatever the package needs
    "build-essential"
    "dpkg-dev dpkg-buildpackage dpkg-parsechangelog dpkg-architecture"
    "debhelper dh"
    "lintian lintian"
)
mode=${1:-test}
case $mode in
    test) ;;
    deb) needs=("${deb_needs[@]}") ;;
    *)
        echo "usage: $0 [deb]" >&2
        exit 1
        ;;
esac

package_of() { echo "${1%% *}"; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# sshd lives in /usr/sbin, which a non-login root shell may not have on PATH.
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
for need in "${needs[@]}"; do
    p=$(package_of "$need")
    is_installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing packages: ${missing[*]}" >&2
        echo "setup: run as root, or install them with: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The commands, whatever dpkg says.
absent=()
for need in "${needs[@]}"; do
    read -r p cmds <<<"$need"
    for c in $cmds; do
        command -v "$c" >/dev/null 2>&1 || absent+=("$c (package $p)")
    done
done
if [ "$mode" = test ]; then
    command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || absent+=("sshd (package openssh-server)")
fi

if [ ${#absent[@]} -gt 0 ]; then
    echo "setup: these commands are still missing after installing:" >&2
    for a in "${absent[@]}"; do
        echo "setup:   $a" >&2
    done
    echo "setup: install the packages named above (apt-get install ...), then run make again" >&2
    exit 1
fi
