#!/usr/bin/env bash
# Once a bug (issue 22, finding 16), now fixed: SIGXFSZ killed the agent
# when the audit log reached the file size limit (RLIMIT_FSIZE). The agent
# died at once, with every key, and left its socket file behind.
#
# Now the agent ignores SIGXFSZ: the write fails with EFBIG, the line is
# left out whole (tests/hostile/audit_short_write.sh), the agent says so
# and serves on.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
e2e_need prlimit jq

LOG=$E2E_TMP/audit.log
LIMIT=65536
audit_prefill "$LOG"

# The agent's state letter from /proc ("" once reaped; Z: dead, not reaped).
state() { sed 's/.*) //' "/proc/$E2E_AGENT_PID/stat" 2>/dev/null | cut -c1; }
alive() { local s; s=$(state); [ -n "$s" ] && [ "$s" != Z ]; }
exited() { ! alive; }

hostile_start_agent prlimit --fsize=$LIMIT -- -l "$LOG"
e2e_run "$HOSTILE_CLIENT" pipeline "$E2E_AGENT_SOCK" 40 halfclose 200
expect_eq "40 audited requests, the log reaching its size limit: all answered" 40 \
    "$(hostile_value replies "$E2E_OUT")"
sleep 0.5
check "the agent is still running" alive
e2e_run "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK"
expect_rc "... and serves a new client" 0
expect_contains "... and says why events are lost" "File too large" "$(cat "$E2E_AGENT_LOG")"
check "every line in the log is whole JSON" whole_json "$LOG"
kill -TERM "$E2E_AGENT_PID" 2>/dev/null
hostile_wait_for 5 exited || kill -KILL "$E2E_AGENT_PID"
wait "$E2E_AGENT_PID"
rc=$?
E2E_AGENT_PID=
expect_eq "the agent exits 0 on SIGTERM (not killed by a signal)" 0 "$rc"
check "... and removes its socket" test ! -e "$E2E_AGENT_SOCK"
check "agent log has no sanitizer report" _e2e_no_sanitizer_report "$E2E_AGENT_LOG"
e2e_finish
