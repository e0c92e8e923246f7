#!/usr/bin/env bash
# A frame of 256 KiB + 1 closes that connection, and only that one.
#
# On four connections opened together: one announces 262,145 bytes and
# sends 4 KiB of them (closed, unanswered), one announces 4 GiB - 1
# (closed), one sends a frame of exactly 262,144 bytes (answered FAILURE:
# it is a list request with trailing bytes; then a list on it is answered,
# so it stayed open), and the fourth, which sat idle through all this, is
# still answered; so is a new connection. The agent logs why it closed.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
hostile_start_agent

e2e_run "$HOSTILE_CLIENT" bigframe "$E2E_AGENT_SOCK"
expect_rc "the helper saw what it expected" 0
printf '%s\n' "$E2E_OUT" | sed 's/^/# /'
expect_eq "256 KiB + 1: connection closed" closed "$(hostile_value over_limit "$E2E_OUT")"
expect_eq "4 GiB - 1: connection closed" closed "$(hostile_value length_ffffffff "$E2E_OUT")"
expect_eq "exactly 256 KiB: answered with FAILURE" FAILURE "$(hostile_value at_limit "$E2E_OUT")"
expect_eq "and that connection stays open" answered "$(hostile_value at_limit_then_list "$E2E_OUT")"
expect_eq "an idle connection opened before is still served" answered \
    "$(hostile_value other_connection "$E2E_OUT")"
expect_eq "a new connection is served" answered "$(hostile_value new_connection "$E2E_OUT")"
sleep 0.2
expect_contains "the agent says why it closed" "frame of 262145 bytes is over the 262144 byte limit" \
    "$(cat "$E2E_AGENT_LOG")"
e2e_finish
