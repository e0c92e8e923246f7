#!/usr/bin/env bash
# Once a bug (issue 22, finding 15), now fixed: a short write of an audit
# line (full disk, or the file size limit) left the partial line in the
# log, and the next event was appended to it (`..."client_ex{"time":...`):
# one corrupt line, two events lost to any JSON reader. The error message
# carried a stale errno (the short write(2) sets none).
#
# Now every line is whole or absent: after a short write the writer
# truncates the file back to where the line started, and the message names
# the error of the call that failed.
#
# Short writes are provoked with RLIMIT_FSIZE (prlimit --fsize): the write
# that crosses the limit is cut short, every later one fails with EFBIG.
# SIGXFSZ is ignored here by the wrapper, so that this test shows the
# short write alone on an agent that does not ignore it itself (finding
# 16, tests/hostile/audit_fsize.sh). Then the limit is lifted
# (prlimit --pid), as when space is freed on a full disk, and more events
# are logged.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
e2e_need prlimit jq

LOG=$E2E_TMP/audit.log
LIMIT=65536
audit_prefill "$LOG"

# shellcheck disable=SC2016  # expanded by the inner shell
hostile_start_agent bash -c 'trap "" XFSZ; exec "$@"' ignore-xfsz prlimit --fsize=$LIMIT:unlimited -- \
    -l "$LOG"
# 40 refused requests, one audit event each: the file reaches the limit.
e2e_run "$HOSTILE_CLIENT" pipeline "$E2E_AGENT_SOCK" 40 halfclose 200
expect_eq "40 audited requests, the log reaching its size limit: all answered" 40 \
    "$(hostile_value replies "$E2E_OUT")"
sleep 0.5
size=$(stat -c %s "$LOG")
e2e_log "audit log: $size bytes at the limit of $LIMIT"
check "every line in the log is whole JSON" whole_json "$LOG"
check "... and the log ends with a whole line" test "$(tail -c 1 "$LOG" | od -An -c | tr -d ' ')" = '\n'
errors=$(grep -E "audit.*(write|writing)" "$E2E_AGENT_LOG")
expect_contains "the agent says why events are lost" "File too large" "$errors"
expect_not_contains "... and never with a stale errno" "Resource temporarily unavailable" "$errors"
expect_not_contains "... (not 'Success' either)" "Success" "$errors"
before=$(wc -l <"$LOG")

# Space again: the next events must start on lines of their own. (The soft
# limit only: raising a hard limit needs CAP_SYS_RESOURCE.)
e2e_run prlimit --pid "$E2E_AGENT_PID" --fsize=unlimited:unlimited
expect_rc "the size limit is lifted" 0
e2e_run "$HOSTILE_CLIENT" pipeline "$E2E_AGENT_SOCK" 3 halfclose 200
expect_eq "3 more audited requests once the limit is lifted: answered" 3 \
    "$(hostile_value replies "$E2E_OUT")"
sleep 0.5
check "every line in the log is still whole JSON" whole_json "$LOG"
after=$(wc -l <"$LOG")
lost=$(jq -R -c 'fromjson? | select(.event == "audit-lost") | .failed' "$LOG" | tail -n 1)
check "an audit-lost line counts the events that could not be written (${lost:-none})" \
    test "${lost:-0}" -gt 0
check "the 3 new events are all there ($before lines before, $after after)" \
    test "$after" -ge $((before + 3))
e2e_finish
