#!/bin/bash
# A client whose token user is not on the agent's allowed list is refused:
# the connection is closed before any request is read, and the log says who
# was refused. Every Wine process runs as the same user, so the test makes
# the agent treat that user as a stranger (KEYWARD_TEST_REFUSE_SID, which
# can only narrow who is served). The whole path runs for real:
# GetNamedPipeClientProcessId, OpenProcess, OpenProcessToken,
# GetTokenInformation(TokenUser) and the SID comparison. That another
# user's SID is refused is shown by test_sid (win_unit_sid); Wine cannot run
# a process as another user.
. "$(dirname "$0")/lib.sh" "$1"

pipe=$(pipe_for refused)

# Learn the user Wine runs everything as.
start_agent -a "$pipe"
sid=$(agent_sid)
[ -n "$sid" ] || fail "the agent did not say which user it serves"
stop_agent

export KEYWARD_TEST_REFUSE_SID=$sid
start_agent -a "$pipe"
unset KEYWARD_TEST_REFUSE_SID
wine_run "$CLIENT" -p "$pipe" refused || fail "the client was not refused"
grep -q "refused connection from pid [0-9]* user $sid: not our user" "$agent_log" ||
    fail "no refusal logged"
if grep -q "REQUEST_IDENTITIES" "$agent_log"; then
    fail "the refused client's request was handled"
fi
# The refusal is per connection: the agent itself is still there.
kill -0 "$agent_pid" 2>/dev/null || fail "the agent exited after refusing a client"
stop_agent

# A malformed value is an error at start, not a silent no-op.
status=0
msg=$(KEYWARD_TEST_REFUSE_SID=nonsense wine_run "$AGENT" -a "$pipe" 2>&1) || status=$?
[ "$status" -eq 1 ] || fail "a malformed KEYWARD_TEST_REFUSE_SID gave status $status"
grep -q "is not a SID" <<<"$msg" || fail "unexpected message: $msg"
echo "PASS"
