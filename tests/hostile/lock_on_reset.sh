#!/usr/bin/env bash
# Issue 22, finding 4: a LOCK the agent had accepted was lost when the
# connection was reset. LIST + LOCK in one write, then close with the LIST
# reply unread (so the close is a reset): the LOCK was on a worker thread
# (the passphrase's scrypt) when the reset came, the finished job was
# dropped with the connection, and the agent never locked; the audit log
# had no lock event. An accepted LOCK must take effect, and be audited,
# even if the client is gone.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
SCRIPT=$(dirname "$HOSTILE_CLIENT")/hostile_script

audit=$E2E_TMP/audit.log
hostile_start_agent -l "$audit"
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add "$E2E_TMP/ed25519"
expect_rc "ssh-add Ed25519" 0

e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" list lock:issue22 send wait close
expect_eq "the list reply arrived, and was left unread" yes "$(hostile_value readable "$E2E_OUT")"
locked() {
    [ "$(hostile_value keys "$("$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK" 2>/dev/null)")" = 0 ]
}
check "the agent is locked within 5 s (lists no keys)" hostile_wait_for 5 locked
check "the audit log has the lock" \
    hostile_wait_for 2 grep -qF '"event":"lock","outcome":"ok"' "$audit"
expect_contains "the agent log says the reply was dropped" "LOCK carried out after the client left" \
    "$(cat "$E2E_AGENT_LOG")"
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" sign:"$E2E_TMP/ed25519.pub" send read:1
expect_eq "a signature is refused while locked" FAILURE "$(hostile_value reply1 "$E2E_OUT")"

# An UNLOCK whose client leaves the same way is not carried out (nobody
# would learn the result; guesses made so would skip the failed-unlock
# delay), but it is logged and audited as refused.
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" list unlock:issue22 send wait close
expect_eq "list + UNLOCK, then a reset" yes "$(hostile_value readable "$E2E_OUT")"
refused_unlock() { grep -qF '"event":"unlock","outcome":"refused"' "$audit"; }
check "the audit log has the unlock, refused" hostile_wait_for 5 refused_unlock
check "the agent log says why" \
    grep -qF "the client left before its passphrase was checked" "$E2E_AGENT_LOG"
check "the agent is still locked" locked
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" unlock:issue22 send read:1 list send read:1
expect_eq "the passphrase of the lost client unlocks it" SUCCESS "$(hostile_value reply1 "$E2E_OUT")"
e2e_run "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK"
expect_eq "the key is back" 1 "$(hostile_value keys "$E2E_OUT")"
e2e_finish
