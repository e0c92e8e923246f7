#!/usr/bin/env bash
# keyward-pkcs11-helper against SoftHSM2 and the bad module
# (tests/pkcs11/helper_client.c says what is checked):
#
#     tests/pkcs11/helper.sh [--more] HELPER_CLIENT BAD_MODULE -- HELPER [ARG...]
#
# Makes a fresh token (softhsm_token.sh, with --more: also ECDSA P-521 and
# Ed25519 keys) in a temporary directory, then runs
# HELPER_CLIENT on it. HELPER [ARG...] is the command that runs the helper
# (valgrind in front of it for valgrind_pkcs11_helper).
# Exit status: 0 pass, 1 fail, 77 softhsm2 is not installed.
set -u

token_args=()
if [ "${1:-}" = --more ]; then
    token_args=(--more)
    shift
fi
if [ $# -lt 4 ] || [ "$3" != -- ]; then
    echo "usage: $0 [--more] HELPER_CLIENT BAD_MODULE -- HELPER [ARG...]" >&2
    exit 1
fi
client=$1 bad=$2
shift 3
here=$(cd "$(dirname "$0")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kw-pkcs11.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

"$here/softhsm_token.sh" "${token_args[@]}" "$tmp/token" >/dev/null
rc=$?
if [ $rc = 77 ]; then
    echo "# SKIP: softhsm2 is not installed (scripts/setup.sh installs it)"
    exit 77
fi
[ $rc = 0 ] || exit 1
"$client" "$tmp/token" "$bad" -- "$@"
