#!/usr/bin/env bash
# After a key is removed, or expires, its private bytes are no longer in
# the agent's memory.
#
# The agent is non-dumpable, so there is no core to take the ordinary way,
# and gcore would not do anyway: it leaves out MADV_DONTDUMP mappings, and
# OpenSSL's secure heap, where most private key material lives, is one of
# them, so a gcore-based check would pass without looking where the keys
# are. Instead the test (root, which may: CAP_SYS_PTRACE) reads every
# writable mapping of the running agent through /proc/PID/mem, a complete
# image of what the process could have written, with
# `hostile_client memscan`. It searches for each private scalar of each key
# file (Ed25519 seed; ECDSA d; RSA d, p and q) as it is in the file and
# byte-reversed (a BIGNUM on x86-64 holds it little-endian), each by three
# 20-byte windows so a copy partly overwritten is still found. No test-only
# build and no knob in the agent: it is the agent as shipped.
#
# The search must work before its silence means anything: with the keys
# loaded (and each used once to sign) every key must be FOUND. Then:
#   ssh-add -d (each key)         nothing of any key is found
#   ssh-add -t N, expiry          nothing of any key is found
#                                 (N: three times what adding and scanning took)
#   ssh-add, ssh-add -D           nothing of any key is found
#
# This found that OpenSSL's DER decoder behind d2i_PrivateKey(), which
# src/crypto/key.c imports RSA keys with, frees its copies of the key uncleared
# (docs/security.md, "Findings"); whether one was still there when the scan
# ran depended on the allocator. Fixed in src/crypto/key.c (libcrypto clears every
# block it frees); tests/hostile/freed_secrets.c checks that deterministically.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
[ "$(id -u)" = 0 ] || e2e_skip "needs root to read the non-dumpable agent's memory"

e2e_std_keys
keys=()
for k in $E2E_KEY_NAMES; do keys+=("$E2E_TMP/$k"); done
hostile_start_agent

scan() { # label: the memscan output in $SCAN, also in the test output
    SCAN=$("$HOSTILE_CLIENT" memscan "$E2E_AGENT_PID" "${keys[@]}" 2>&1)
    printf '%s\n' "$SCAN" | grep -E '^(FOUND|scanned)' | sed "s|$E2E_TMP/||; s/^/# $1: /"
}
use_keys() { # sign once with each key, so signing leaves whatever it leaves
    local k flags
    for k in $E2E_KEY_NAMES; do
        flags=0
        case $k in rsa*) flags=4 ;; esac
        "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/$k.pub" "$flags" >/dev/null ||
            echo "# signing with $k failed"
    done
}
all_found() { # every key has at least one secret found
    local k
    for k in "${keys[@]}"; do
        printf '%s\n' "$SCAN" | grep -q "^FOUND $k " || { echo "# not found: $k"; return 1; }
    done
}
none_found() {
    ! printf '%s\n' "$SCAN" | grep -q '^FOUND'
}
no_keys_listed() {
    [ "$("$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK" | sed -n 's/^keys=//p')" = 0 ]
}

scan "before"
check "the scan read the agent's memory" test "$(hostile_value scanned_bytes "$SCAN")" -gt 1000000
check "before any key is added, none is found" none_found

keys_listed() {
    "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK" | sed -n 's/^keys=//p'
}

# --- removed one by one ---------------------------------------------------
t0=$SECONDS
e2e_run ssh-add "${keys[@]}"
expect_rc "ssh-add the six keys" 0
use_keys
scan "loaded"
check "loaded: every key's private bytes are found (the search works)" all_found
# How long adding, signing and scanning take here (a sanitizer build on a
# busy machine is slow): the lifetime below must outlast it comfortably.
lifetime=$(( (SECONDS - t0) * 3 + 5 ))
for k in "${keys[@]}"; do
    e2e_run ssh-add -d "$k.pub"
    expect_rc "ssh-add -d $(basename "$k")" 0
done
scan "removed"
check "after ssh-add -d: no private byte of any key is left" none_found

# --- expired -----------------------------------------------------------------
e2e_run ssh-add -t "$lifetime" "${keys[@]}"
expect_rc "ssh-add -t $lifetime the six keys" 0
use_keys
scan "loaded"
expect_eq "the scan was done before they expired" 6 "$(keys_listed)"
check "loaded with a lifetime: every key is found" all_found
check "the keys expire (list empty within $((lifetime + 10)) s)" \
    hostile_wait_for $((lifetime + 10)) no_keys_listed
scan "expired"
check "after expiry: no private byte of any key is left" none_found

# --- removed all at once ---------------------------------------------------
e2e_run ssh-add "${keys[@]}"
expect_rc "ssh-add the six keys again" 0
use_keys
scan "loaded"
check "loaded again: every key is found" all_found
e2e_run ssh-add -D
expect_rc "ssh-add -D" 0
scan "removed all"
check "after ssh-add -D: no private byte of any key is left" none_found
e2e_finish
