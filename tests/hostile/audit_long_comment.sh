#!/usr/bin/env bash
# Once a bug (docs/security.md, "Findings"), now fixed: the audit log (keyward-agent -l)
# silently drops every event whose JSON line would exceed 4 KiB. Events
# about a request carry the key's comment cut to 127 bytes, but the
# "expire" event carries the whole comment, which whoever added the key
# chose: a key added with a lifetime and a 5,000-byte comment expires
# without a trace in the log. (The same can happen to any event whose
# escaped fields add up to more than 4 KiB: control characters take six
# bytes each in JSON.)
#
# The control: the same with a short comment is logged.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
hostile_start_agent -l "$E2E_TMP/audit.log"
# ssh-keygen keeps comments to about 1 KiB, so the helper builds the add
# request itself (from the key file, with a comment of the given length).
e2e_keygen short ed25519 ""
e2e_keygen long ed25519 ""
e2e_run "$HOSTILE_CLIENT" add "$E2E_AGENT_SOCK" "$E2E_TMP/short" 2 13
expect_rc "add with a 2 s lifetime and a 13-byte comment" 0
e2e_run "$HOSTILE_CLIENT" add "$E2E_AGENT_SOCK" "$E2E_TMP/long" 2 5000
expect_rc "add with a 2 s lifetime and a 5,000-byte comment" 0
no_keys() { [ "$("$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK" | sed -n 's/^keys=//p')" = 0 ]; }
check "both keys expire" hostile_wait_for 10 no_keys
sleep 0.2
log=$(cat "$E2E_TMP/audit.log" 2>/dev/null)
expect_contains "control: the short-comment key's expiry is logged" "\"event\":\"expire\"" \
    "$(printf '%s\n' "$log" | grep -F "$(e2e_fp "$E2E_TMP/short.pub")")"
expect_contains "the long-comment key's expiry is logged too" "\"event\":\"expire\"" \
    "$(printf '%s\n' "$log" | grep -F "$(e2e_fp "$E2E_TMP/long.pub")")"
e2e_finish
