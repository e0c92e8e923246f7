#!/bin/bash
# Build, once, the Linux dependencies of keyward's post-quantum tests from
# Debian's own source packages, into prefixes under the cache:
#
#   scripts/pq-deps.sh openssl   OpenSSL 3.5 (Debian 13's source package):
#       static libcrypto and its headers, for the second Linux build of
#       keyward (ML-DSA needs OpenSSL >= 3.5; Debian 12 has 3.0), in
#       ${KEYWARD_CACHE:-/var/cache/keyward}/pq-deps/openssl-<ver>/
#   scripts/pq-deps.sh openssh   that, then OpenSSH from Debian unstable's
#       source package linked against it: ssh, ssh-add, ssh-keygen,
#       ssh-agent, sshd (with sshd-session and sshd-auth where the version
#       has them), in .../pq-deps/openssh-<ver>_openssl-<ver>/
#
# The last line on stdout is the prefix asked for; everything else goes to
# stderr, and build output to a log in the cache (its tail is printed on
# failure). As scripts/win-deps.sh: prefix names carry the Debian versions,
# a prefix counts as built only once its stamp file is written, last, and an
# interrupted build is thrown away and redone. Source packages come through a
# private apt state in the cache, shared with win-deps.sh
# (scripts/lib/deb-source.sh): the machine's apt configuration is not
# changed. Run as root on Debian 12; a second run with everything built does
# no network work but a daily apt-get update of those private lists.

set -euo pipefail

what=${1:-}
case $what in
    openssl | openssh) ;;
    *)
        echo "usage: $0 openssl|openssh" >&2
        exit 2
        ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${KEYWARD_CACHE:-/var/cache/keyward}
top="$cache/pq-deps"

# shellcheck source=scripts/lib/build-log.sh
build_log_tag=pq-deps
. "$repo/scripts/lib/build-log.sh"
log="$top/apt.log"
# shellcheck source=scripts/lib/deb-source.sh
. "$repo/scripts/lib/deb-source.sh"
build_env_clean

mkdir -p "$top"
exec 9>"$top/.lock"
flock 9
: >"$log"

if [ "$(id -u)" != 0 ]; then
    # apt-get source as another user is fine, but the cache is root's.
    [ -w "$top" ] || fail "cannot write $top (run as root, or set KEYWARD_CACHE)"
fi
for p in dpkg-dev gcc make perl autoconf automake; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        fail "package $p is missing (scripts/setup.sh installs it)"
done


# ---------------------------------------------------------------- OpenSSL 3.5

# Debian 13 (trixie, with its -updates and -security) is where OpenSSL 3.5,
# a long-term-support release, lives; unstable has moved on to 3.6.
debsrc_init trixie
openssl_ver=$(debsrc_pick openssl 3.5.) ||
    fail "cannot download any OpenSSL 3.5 source package from trixie"
ossl_name="openssl-$(debsrc_sanitize "$openssl_ver")"
ossl="$top/$ossl_name"

build_openssl() {
    log="$top/$ossl_name.log"
    : >"$log"
    local scratch="$top/$ossl_name.build" t=$SECONDS
    say "building OpenSSL $openssl_ver (libcrypto only; log: $log)"
    rm -rf "$ossl" "$scratch"
    mkdir -p "$scratch"
    run dpkg-source -x "$debsrc_dir/openssl_$(debsrc_noepoch "$openssl_ver").dsc" "$scratch/src"
    # Static libcrypto with the default provider built in (no-module): the
    # programs linking it need nothing from this prefix at run time.
    # OPENSSLDIR stays inside the prefix, where no openssl.cnf is installed.
    # -fPIC: keyward's sanitizer build links it into position-independent
    # executables.
    (
        cd "$scratch/src"
        run ./Configure linux-x86_64 no-shared no-tests no-docs no-engine no-module \
            no-legacy no-apps -fPIC --prefix="$ossl" --libdir=lib
        # The generated headers first: the library target alone does not
        # depend on them.
        run make -j2 build_generated
        run make -j2 libcrypto.a
    )
    mkdir -p "$ossl/lib/pkgconfig" "$ossl/include"
    cp "$scratch/src/libcrypto.a" "$ossl/lib/"
    cp -r "$scratch/src/include/openssl" "$ossl/include/"
    # Headers only: the generated ones are in include/openssl already.
    find "$ossl/include/openssl" -type f ! -name '*.h' -delete
    # pkg-config is how keyward's CMake finds libcrypto on Linux.
    cat >"$ossl/lib/pkgconfig/libcrypto.pc" <<PC
prefix=$ossl
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: OpenSSL-libcrypto
Description: OpenSSL cryptography library (static, Debian source $openssl_ver)
Version: ${openssl_ver%%-*}
Libs: -L\${libdir} -lcrypto -pthread -ldl
Cflags: -I\${includedir}
PC
    rm -rf "$scratch"
    printf 'openssl %s\nbuilt %s in %s s\n' "$openssl_ver" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        "$((SECONDS - t))" >"$ossl/.keyward-pq-deps-stamp"
    say "OpenSSL done in $((SECONDS - t)) s"
}

if [ ! -f "$ossl/.keyward-pq-deps-stamp" ]; then
    build_openssl
fi
if [ "$what" = openssl ]; then
    echo "$ossl"
    exit 0
fi

# ---------------------------------------------------------------- OpenSSH

log="$top/apt.log"
debsrc_init unstable
openssh_ver=$(debsrc_pick openssh) ||
    fail "cannot download any OpenSSH source package from unstable"
ossh_name="openssh-$(debsrc_sanitize "$openssh_ver")_$ossl_name"
ossh="$top/$ossh_name"

build_openssh() {
    log="$top/$ossh_name.log"
    : >"$log"
    local scratch="$top/$ossh_name.build" t=$SECONDS
    say "building OpenSSH $openssh_ver against OpenSSL $openssl_ver (log: $log)"
    rm -rf "$ossh" "$scratch"
    mkdir -p "$scratch"
    run dpkg-source -x "$debsrc_dir/openssh_$(debsrc_noepoch "$openssh_ver").dsc" "$scratch/src"
    # Minimal: no PAM, Kerberos, SELinux, libedit, ldns, zlib or FIDO; its own
    # directories under the prefix, so nothing of the machine's OpenSSH
    # (configuration, host keys, /usr/lib/openssh) is read or written. The
    # privilege-separation directory must be root's and not writable by
    # others; the prefix's own var/empty is.
    # Debian's patches change configure.ac, so configure is made anew (as
    # the package's own build does, with dh_autoreconf; autoreconf runs
    # automake's aclocal too).
    (
        cd "$scratch/src"
        run autoreconf
        run ./configure --prefix="$ossh" --with-ssl-dir="$ossl" \
            --with-privsep-path="$ossh/var/empty" --with-pid-dir="$ossh/var/run" \
            --without-pam --without-selinux --without-kerberos5 --without-libedit \
            --without-ldns --without-zlib --disable-security-key --with-libs="-pthread -ldl"
        run make -j2
        run make install-nokeys
    )
    mkdir -p "$ossh/var/empty" "$ossh/var/run"
    chmod 755 "$ossh/var/empty"
    rm -rf "$ossh/share/man" "$scratch"
    "$ossh/bin/ssh" -V >>"$log" 2>&1 || fail "the built ssh does not run"
    printf 'openssh %s\nopenssl %s\nbuilt %s in %s s\n' "$openssh_ver" "$openssl_ver" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - t))" >"$ossh/.keyward-pq-deps-stamp"
    say "OpenSSH done in $((SECONDS - t)) s"
}

if [ ! -f "$ossh/.keyward-pq-deps-stamp" ]; then
    build_openssh
fi
echo "$ossh"
