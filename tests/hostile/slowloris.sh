#!/usr/bin/env bash
# Slow clients (slowloris): 500 connections that each send half a frame and
# stall must not delay a normal client's list request.
#
# The helper times 30 list requests on fresh connections before the stalled
# clients arrive (the baseline, measured in this run on this machine) and 30
# while all 500 are connected, each with 54 of a 104-byte frame sent. The
# bound is deliberately generous (this machine is noisy and shared): the
# median under load within 10x the baseline median plus 50 ms, and every
# request answered. An agent that blocked on a partial frame would not
# answer at all, and one that scanned every connection per request would
# show up as a large multiple.
#
# Afterwards: all 500 are still open and unanswered (the agent waits for
# the rest, it does not give up on slow clients), completing one of them
# gets its answer, and closing them all leaves the agent's fd count and
# memory where they were.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
N=500

[ "$(ulimit -n)" -gt $((N + 64)) ] || ulimit -n $((N + 256)) 2>/dev/null ||
    e2e_skip "needs $((N + 64)) file descriptors, ulimit -n is $(ulimit -n)"
hostile_start_agent
fds_before=$(hostile_fd_count "$E2E_AGENT_PID")

e2e_run "$HOSTILE_CLIENT" slowloris "$E2E_AGENT_SOCK" "$N" 30
expect_rc "every list request was answered, before and during" 0
printf '%s\n' "$E2E_OUT" | sed 's/^/# /'
base=$(hostile_value baseline_median_us "$E2E_OUT")
load=$(hostile_value loaded_median_us "$E2E_OUT")
expect_eq "all $N stalled connections were accepted" "$N" "$(hostile_value stalled_connections "$E2E_OUT")"
check "a list during the stall: median ${load:-?} us, within 10x baseline ${base:-?} us + 50 ms" \
    test "${load:-999999999}" -le $(( ${base:-0} * 10 + 50000 ))
expect_eq "the stalled connections are still open, waiting" "$N" "$(hostile_value still_waiting "$E2E_OUT")"
expect_eq "a stalled frame, completed, is answered" answered "$(hostile_value completed_frame "$E2E_OUT")"

hostile_wait_for 5 hostile_fds_at_most "$E2E_AGENT_PID" "$fds_before"
# At most as many as before: the count before may still include the
# connection that checked the agent was up, which closes on its own.
fds_after=$(hostile_fd_count "$E2E_AGENT_PID")
check "closing them leaves no file descriptor behind ($fds_after <= $fds_before)" \
    test "$fds_after" -le "$fds_before"
e2e_run "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK"
expect_rc "the agent still answers" 0
e2e_finish
