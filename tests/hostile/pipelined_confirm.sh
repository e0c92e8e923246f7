#!/usr/bin/env bash
# Issue 22, finding 1: two sign requests for a confirm-constrained key
# (ssh-add -c) in one write. The first reply came, then the agent aborted
# (libuv: "Assertion 'handle->flags & UV_HANDLE_CLOSING' failed"): the
# askpass's exit callback closed the process handle and delivered the
# reply in the same callback, and the next buffered request spawned the
# next askpass on the handle still closing. Now each prompt is its own
# object, never reused. Both answers of the askpass are tried, and the
# connection must still answer a list afterwards.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
SCRIPT=$(dirname "$HOSTILE_CLIENT")/hostile_script

# The askpass answers with the exit status in $E2E_TMP/answer.
cat >"$E2E_TMP/askpass" <<ASKPASS
#!/bin/sh
exit \$(cat "$E2E_TMP/answer")
ASKPASS
chmod 755 "$E2E_TMP/askpass"
echo 0 >"$E2E_TMP/answer"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add -c "$E2E_TMP/ed25519"
expect_rc "ssh-add -c Ed25519" 0
pub=$E2E_TMP/ed25519.pub

for answer in 0 1; do
    echo "$answer" >"$E2E_TMP/answer"
    want=$([ "$answer" = 0 ] && echo SIGN_RESPONSE || echo FAILURE)
    e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" sign:"$pub" sign:"$pub" sign:"$pub" list send read:4
    expect_eq "askpass exit $answer: first reply" "$want" "$(hostile_value reply1 "$E2E_OUT")"
    expect_eq "askpass exit $answer: second reply" "$want" "$(hostile_value reply2 "$E2E_OUT")"
    expect_eq "askpass exit $answer: third reply" "$want" "$(hostile_value reply3 "$E2E_OUT")"
    expect_eq "askpass exit $answer: the list after them, same connection" IDENTITIES_ANSWER \
        "$(hostile_value reply4 "$E2E_OUT")"
    check "askpass exit $answer: the agent is still running" kill -0 "$E2E_AGENT_PID"
done
expect_eq "no askpass is left under the agent" "" "$(hostile_descendants "$E2E_AGENT_PID")"
e2e_finish
