#!/usr/bin/env bash
# Once a bug (issue 22, finding 14), now fixed: a slow audit log sink
# blocked the whole agent. The log was written with a blocking write(2) on
# the event loop, so with a FIFO whose reader never reads every client hung
# once the pipe's 64 KiB were full; with no reader at all, open(2) blocked
# at start-up, with the socket already created.
#
# Now the loop only queues each line (up to 1,024 lines, 1 MiB) for a
# writer thread; when the queue is full, events are dropped and counted,
# the agent logs "audit: dropped N events: sink is not keeping up", and
# the log gets an "audit-lost" line with the count before the next event
# it takes. The file is opened with O_NONBLOCK, so a FIFO without a reader
# fails at start-up with a message that says so.
#
#   1. a FIFO that nobody has open for reading: the agent exits at once
#      with a clear error, and leaves no socket behind;
#   2. a FIFO held open by a reader that never reads: 3,000 refused
#      requests (an audit event each, about 660 KiB) are all answered, a
#      new client is served, and the drops are logged;
#   3. the reader starts reading: every line it gets is whole JSON, and an
#      "audit-lost" line says how many events were dropped;
#   4. an agent whose sink is stuck stops on SIGTERM within a few seconds
#      and removes its socket.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
e2e_need mkfifo jq

FIFO=$E2E_TMP/audit.fifo
mkfifo -m 600 "$FIFO"
stuck_pid=
stop_stuck_reader() {
    [ -n "$stuck_pid" ] && kill "$stuck_pid" 2>/dev/null && wait "$stuck_pid" 2>/dev/null
    stuck_pid=
}
trap 'rc=$?; stop_stuck_reader; (exit "$rc"); _e2e_cleanup' EXIT

# flood: 3,000 requests of an unknown type on one connection, each refused
# and each an audit event.
flood() {
    e2e_run "$HOSTILE_CLIENT" pipeline "$E2E_AGENT_SOCK" 3000 halfclose 200
}

# --- 1. no reader ------------------------------------------------------------
e2e_run timeout -k 2 5 "$E2E_AGENT" -D -a "$E2E_TMP/noreader.sock" -l "$FIFO"
check "a FIFO with no reader: the agent does not hang at start-up (exit $E2E_RC)" \
    test "$E2E_RC" != 124 -a "$E2E_RC" != 137
check "... it exits with an error" test "$E2E_RC" = 1
expect_contains "... saying why" "a FIFO that no process has open for reading" "$E2E_ERR"
check "... and leaves no socket behind" test ! -e "$E2E_TMP/noreader.sock"

# --- 2. a reader that never reads ---------------------------------------------
# Opened read-write, so that opening it does not wait for a writer.
sleep 600 <>"$FIFO" &
stuck_pid=$!
hostile_start_agent -l "$FIFO"
flood
expect_eq "3,000 audited requests while the FIFO's reader never reads: all answered" \
    3000 "$(hostile_value replies "$E2E_OUT")"
e2e_run "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK"
expect_rc "... and a new client is served" 0
expect_contains "... and the agent says it is dropping events" "sink is not keeping up" \
    "$(cat "$E2E_AGENT_LOG")"

# --- 3. the reader catches up -------------------------------------------------
timeout 10 cat "$FIFO" >"$E2E_TMP/fifo.out" &
reader=$!
# The next event taken after the drops is the one that reports them.
dropped_logged() {
    timeout 2 "$HOSTILE_CLIENT" pipeline "$E2E_AGENT_SOCK" 1 halfclose 200 >/dev/null
    grep -qE "audit: dropped [0-9]+ events: sink is not keeping up" "$E2E_AGENT_LOG"
}
check "once the sink reads again, the agent logs how many events it dropped" \
    hostile_wait_for 8 dropped_logged
sleep 0.5
stop_stuck_reader
wait "$reader" 2>/dev/null
check "every line the FIFO's reader got is whole JSON" whole_json "$E2E_TMP/fifo.out"
lost=$(jq -R -c 'fromjson? | select(.event == "audit-lost") | .dropped' "$E2E_TMP/fifo.out" | head -n 1)
check "an audit-lost line says how many events were dropped (${lost:-none})" \
    test "${lost:-0}" -gt 0
e2e_stop_agent

# --- 4. SIGTERM with a stuck sink ---------------------------------------------
sleep 600 <>"$FIFO" &
stuck_pid=$!
hostile_start_agent -l "$FIFO"
flood
expect_eq "again 3,000 audited requests into a stuck FIFO: all answered" 3000 \
    "$(hostile_value replies "$E2E_OUT")"
kill -TERM "$E2E_AGENT_PID"
# Gone, or a zombie (exited, not yet reaped by us).
exited() {
    local state
    state=$(sed 's/.*) //' "/proc/$E2E_AGENT_PID/stat" 2>/dev/null | cut -c1)
    [ -z "$state" ] || [ "$state" = Z ]
}
if check "the agent stops on SIGTERM within 5 s while its sink is stuck" hostile_wait_for 5 exited; then
    wait "$E2E_AGENT_PID" 2>/dev/null
    E2E_AGENT_PID=
    check "... and removes its socket" test ! -e "$E2E_AGENT_SOCK"
    check "agent log has no sanitizer report" _e2e_no_sanitizer_report "$E2E_AGENT_LOG"
else
    e2e_stop_agent
fi
stop_stuck_reader
e2e_finish
