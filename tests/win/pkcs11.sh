#!/bin/bash
# keyward-pkcs11-helper.exe under Wine, started with a duplex named pipe as
# its standard input and loading a module DLL (tests/win/pkcs11_client.c
# says what is checked). The module is tests/pkcs11/bad_module.c built for
# Windows: Debian has no Windows PKCS#11 module to test with.
. "$(dirname "$0")/lib.sh" "$1"

HELPER=$WIN_BUILD/keyward-pkcs11-helper.exe
PCLIENT=$WIN_BUILD/tests/win/pkcs11_client.exe
MODULE=$WIN_BUILD/tests/win/bad_pkcs11.dll
for f in "$HELPER" "$PCLIENT" "$MODULE"; do
    [ -f "$f" ] || fail "$f is not built (make win)"
done
# Under Wine, drive Z: is the Linux root.
winpath() {
    # shellcheck disable=SC1003 # a backslash, not an escape
    printf 'Z:%s' "$1" | tr / '\\'
}
cd "$work" || exit 1
wine_run "$PCLIENT" "$(winpath "$HELPER")" "$(winpath "$MODULE")"
