#!/usr/bin/env bash
# `make install` and `make uninstall`, into a temporary DESTDIR with a prefix
# other than the configured one:
#   - the Makefile's install and uninstall recipes pass PREFIX and DESTDIR on;
#   - cmake --install puts the programs in bin/ (the agent's PKCS#11 helper
#     in libexec/keyward/), the manual pages in
#     share/man/man1/ and the systemd user units in lib/systemd/user/, with
#     ExecStart naming the installed agent; nothing from tests/ is installed;
#   - the installed programs run, man finds the installed page, and
#     systemd-analyze accepts the units;
#   - scripts/uninstall.sh then removes every file install_manifest.txt lists.
# The build's own install_manifest.txt (from a real `make install`) is saved
# and put back, so that running the tests never changes what uninstall removes.
#
#     tests/install/install_layout.sh SOURCE_DIR BUILD_DIR HAVE_RELAY
#
# HAVE_RELAY is 1 when the build has a keyward-relay target (then the relay
# and its page must be installed), else 0 (then they must not be).
# Exit status: 0 pass, 1 fail.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 SOURCE_DIR BUILD_DIR HAVE_RELAY" >&2
    exit 1
fi
src=$(cd "$1" && pwd) || exit 1
build=$(cd "$2" && pwd) || exit 1
have_relay=$3

n=0 failed=0
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
notok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
}
# check DESC CMD...: passes when CMD exits 0.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else notok "$desc"; fi
}
# fails CMD...: CMD exits non-zero (for check).
# shellcheck disable=SC2317  # (called through check)
fails() { ! "$@" >/dev/null 2>&1; }
# quiet CMD...: CMD with its output discarded (for check).
# shellcheck disable=SC2317  # (called through check)
quiet() { "$@" >/dev/null 2>&1; }
# check_out DESC WANT CMD...: passes when CMD prints exactly WANT.
check_out() {
    local desc=$1 want=$2 got
    shift 2
    got=$("$@" 2>&1)
    if [ "$got" = "$want" ]; then
        ok "$desc"
    else
        notok "$desc"
        printf '#   expected: %s\n' "$want"
        printf '%s\n' "$got" | head -n 20 | sed 's/^/#   got: /'
    fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kw-install.XXXXXX") || exit 1
manifest=$build/install_manifest.txt
saved=
if [ -e "$manifest" ]; then
    saved=$tmp/install_manifest.txt.saved
    cp -p "$manifest" "$saved" || exit 1
fi
# shellcheck disable=SC2317  # (run by the EXIT trap)
cleanup() {
    if [ -n "$saved" ]; then
        cp -p "$saved" "$manifest"
    else
        rm -f "$manifest"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

prefix=/opt/keyward-install-test
dest=$tmp/dest
root=$dest$prefix

# --- the Makefile recipes -----------------------------------------------------
recipes=$(make -s -n -C "$src" install uninstall BUILD="$build" PREFIX="$prefix" DESTDIR="$dest" 2>&1)
check_out "make install runs cmake --install with PREFIX and DESTDIR" \
    "DESTDIR=\"$dest\" cmake --install $build --prefix \"$prefix\"" \
    grep -F -- "cmake --install" <<<"$recipes"
check_out "make uninstall runs scripts/uninstall.sh on the manifest with DESTDIR" \
    "DESTDIR=\"$dest\" scripts/uninstall.sh $build/install_manifest.txt" \
    grep -F -- "uninstall.sh" <<<"$recipes"

# --- install --------------------------------------------------------------------
if DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    ok "cmake --install into DESTDIR $dest, prefix $prefix"
else
    notok "cmake --install into DESTDIR $dest, prefix $prefix"
    sed 's/^/#   /' "$tmp/install.log"
fi

expected=(
    bin/keyward-agent
    bin/keyward-probe
    libexec/keyward/keyward-pkcs11-helper
    share/man/man1/keyward-agent.1
    share/man/man1/keyward-probe.1
    lib/systemd/user/keyward-agent.socket
    lib/systemd/user/keyward-agent.service
)
if [ "$have_relay" = 1 ]; then
    expected+=(bin/keyward-relay share/man/man1/keyward-relay.1)
else
    check "no keyward-relay without its target" test ! -e "$root/bin/keyward-relay"
    check "no keyward-relay.1 without its target" test ! -e "$root/share/man/man1/keyward-relay.1"
fi
for f in "${expected[@]}"; do
    case $f in
        bin/* | libexec/*) check "$f is installed and executable" test -f "$root/$f" -a -x "$root/$f" ;;
        *) check "$f is installed" test -f "$root/$f" ;;
    esac
done
for page in keyward-agent.1 keyward-probe.1; do
    check "$page is the page from doc/man" cmp -s "$src/doc/man/$page" "$root/share/man/man1/$page"
done
check "keyward-agent.socket is contrib/systemd's" \
    cmp -s "$src/contrib/systemd/keyward-agent.socket" "$root/lib/systemd/user/keyward-agent.socket"
check_out "keyward-agent.socket listens on %t/keyward/agent.sock" \
    "ListenStream=%t/keyward/agent.sock" grep '^ListenStream=' "$root/lib/systemd/user/keyward-agent.socket"
service=$root/lib/systemd/user/keyward-agent.service
check_out "ExecStart names the installed agent" "ExecStart=$prefix/bin/keyward-agent -D" \
    grep '^ExecStart=' "$service"
check "no @VARIABLE@ is left in the service" fails grep -q '@[A-Z_]*@' "$service"

# The installed programs run from where they were installed.
check_out "the installed keyward-agent runs" "$("$build/keyward-agent" --version)" \
    "$root/bin/keyward-agent" --version
check "the installed keyward-probe runs" quiet "$root/bin/keyward-probe" --version
check "the installed keyward-pkcs11-helper runs" \
    quiet "$root/libexec/keyward/keyward-pkcs11-helper" --version
if command -v man >/dev/null 2>&1; then
    check_out "man finds the installed keyward-agent(1)" "$root/share/man/man1/keyward-agent.1" \
        man --manpath="$root/share/man" -w keyward-agent
fi

# systemd's own parser: no unknown keys, no bad values. It also wants the
# ExecStart program to exist, so it reads a copy that points into DESTDIR.
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$tmp/units" "$tmp/xdg" && chmod 700 "$tmp/xdg"
    cp "$root/lib/systemd/user/keyward-agent.socket" "$tmp/units/"
    sed "s|^ExecStart=$prefix/|ExecStart=$root/|" "$service" >"$tmp/units/keyward-agent.service"
    check_out "systemd-analyze verify --user accepts the units" "" \
        env XDG_RUNTIME_DIR="$tmp/xdg" systemd-analyze verify --user --man=no \
        "$tmp/units/keyward-agent.socket" "$tmp/units/keyward-agent.service"
else
    echo "# systemd-analyze not found: units not verified"
fi

# --- install_manifest.txt ---------------------------------------------------------
check "install_manifest.txt was written" test -s "$manifest"
for f in "${expected[@]}"; do
    check "the manifest lists $prefix/$f" grep -qxF -- "$prefix/$f" "$manifest"
done
outside=$(grep -v "^$prefix/" "$manifest")
check_out "every file in the manifest is under the prefix" "" echo -n "$outside"
fixtures=$(grep -E '/(defective_agent|closing_agent|shared_mux|sd_activate|test_[a-z]+)$' "$manifest")
check_out "no test program is installed" "" echo -n "$fixtures"
extra=$(grep -vxF -f <(printf "$prefix/%s\n" "${expected[@]}") "$manifest")
[ -z "$extra" ] || printf '%s\n' "$extra" | sed 's/^/# also installed: /'

# --- uninstall -----------------------------------------------------------------------
cp "$manifest" "$tmp/manifest.used"
if DESTDIR=$dest "$src/scripts/uninstall.sh" "$manifest" >"$tmp/uninstall.log" 2>&1; then
    ok "scripts/uninstall.sh exits 0"
else
    notok "scripts/uninstall.sh exits 0"
    sed 's/^/#   /' "$tmp/uninstall.log"
fi
left=
while IFS= read -r path; do
    if [ -e "$dest$path" ] || [ -L "$dest$path" ]; then left="$left $path"; fi
done <"$tmp/manifest.used"
check_out "every file the manifest lists is gone" "" echo -n "$left"
check_out "nothing but directories is left under DESTDIR" "" find "$dest" ! -type d
check "uninstalling again is harmless" \
    quiet env DESTDIR="$dest" "$src/scripts/uninstall.sh" "$manifest"
check "uninstall without a manifest fails" \
    fails env DESTDIR="$dest" "$src/scripts/uninstall.sh" "$tmp/no-such-manifest"

echo "1..$n"
if [ "$failed" = 0 ]; then
    echo "# PASS install_layout: $n passed"
    exit 0
fi
echo "# FAIL install_layout: $failed of $n failed"
exit 1
