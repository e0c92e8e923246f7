#!/usr/bin/env bash
# Issue 22, finding 2: with an askpass that cannot be run
# (SSH_ASKPASS=/nonexistent), sign + sign + list in one write aborted the
# agent ("Assertion '!(handle->flags & UV_HANDLE_CLOSED)' failed"): the
# failed spawn closed the connection's one process handle and replied at
# once, and the next confirmation spawned on that closed handle. Each
# request must get its FAILURE, the list its answer, on a connection that
# stays open.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
SCRIPT=$(dirname "$HOSTILE_CLIENT")/hostile_script

HOSTILE_ASKPASS=/nonexistent hostile_start_agent
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add -c "$E2E_TMP/ed25519"
expect_rc "ssh-add -c Ed25519" 0
pub=$E2E_TMP/ed25519.pub

e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" sign:"$pub" sign:"$pub" list send read:3 list send read:1
expect_eq "first sign: FAILURE (no askpass to ask)" FAILURE "$(hostile_value reply1 "$E2E_OUT")"
expect_eq "second sign: FAILURE" FAILURE "$(hostile_value reply2 "$E2E_OUT")"
expect_eq "the list in the same write" IDENTITIES_ANSWER "$(hostile_value reply3 "$E2E_OUT")"
expect_eq "a list after that, same connection" IDENTITIES_ANSWER "$(hostile_value reply4 "$E2E_OUT")"
check "the agent is still running" kill -0 "$E2E_AGENT_PID"
expect_contains "the agent says why" "cannot run askpass /nonexistent" "$(cat "$E2E_AGENT_LOG")"
e2e_finish
