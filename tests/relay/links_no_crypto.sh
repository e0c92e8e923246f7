#!/bin/sh
# keyward-relay links no crypto (issue 15): it never looks inside a frame
# beyond its type, so it must not carry keyward's crypto layer (key parsing,
# signing, the libcrypto allocator hook), the agent's rules, or libcrypto.
#
#   links_no_crypto.sh NM RELAY AGENT
#
# NM lists a program's symbols (nm, or x86_64-w64-mingw32-nm for the .exe
# files, which link libcrypto statically). AGENT is the control: the same
# patterns must find those symbols in keyward-agent, or the check itself is
# broken (a stripped binary, a wrong nm) and proves nothing.
set -u
nm_tool=$1 relay=$2 agent=$3

# keyward's crypto and agent layers, and any libcrypto function.
forbidden=' (key_sign|key_from_private|key_from_blob|dest_permitted|agent_handle|keystore_add|CRYPTO_set_mem_functions|EVP_[A-Za-z_]+|OPENSSL_[A-Za-z_]+)(@|$)'
fail=0

symbols() {
    "$nm_tool" "$1" 2>/dev/null | sed 's/^[0-9a-fA-F ]* [A-Za-z] //; s/^ *U //' | sed 's/^/ /'
}

control=$(symbols "$agent" | grep -cE "$forbidden")
if [ "$control" -lt 5 ]; then
    echo "FAIL: only $control crypto symbols found in $agent: the check cannot see them" >&2
    exit 1
fi
echo "ok: the check sees $control crypto symbols in keyward-agent"

found=$(symbols "$relay" | grep -E "$forbidden" | sort -u)
if [ -n "$found" ]; then
    echo "FAIL: keyward-relay carries crypto:" >&2
    echo "$found" | head -20 >&2
    fail=1
else
    echo "ok: keyward-relay has none of them"
fi

# A dynamically linked relay must not load libcrypto either.
case $relay in
*.exe)
    ;;
*)
    if readelf -d "$relay" | grep -q 'NEEDED.*libcrypto'; then
        echo "FAIL: keyward-relay loads libcrypto:" >&2
        readelf -d "$relay" | grep NEEDED >&2
        fail=1
    else
        echo "ok: keyward-relay does not load libcrypto"
    fi
    ;;
esac
exit $fail
