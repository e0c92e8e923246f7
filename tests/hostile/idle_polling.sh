#!/usr/bin/env bash
# Polling between requests stays bounded (src/server/server.c, server_run()).
#
# While requests come close together the agent's loop polls for up to
# 200 us after each one instead of sleeping. That must never turn into an
# agent that burns CPU on its own: it must stop polling as soon as the
# requests stop, and never poll for clients that pause longer than the
# window between requests. The agent's CPU time is read from
# /proc/PID/task/*/schedstat (every thread):
#
# - idle, freshly started: about nothing over a second;
# - right after 20,000 back-to-back list round trips: about nothing over
#   the following second (an agent that kept polling would spend ~1 s);
# - 1,000 lists 2 ms apart: the CPU per request stays what handling a list
#   costs (tens of us), where polling after every request would add up to
#   200 us to each.
#
# The bounds are wide (this machine is shared; ASan builds are slower);
# each failure mode above costs several times the bound.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"

[ -r "/proc/self/task/$$/schedstat" ] || e2e_skip "no /proc/PID/task/TID/schedstat here"
hostile_start_agent

run_cpu() { # N GAP_US IDLE_MS
    e2e_run "$HOSTILE_CLIENT" cpu "$E2E_AGENT_SOCK" "$E2E_AGENT_PID" "$@"
    printf '%s\n' "$E2E_OUT" | sed 's/^/# /'
}

run_cpu 1 0 1000
expect_rc "one list, then a second of silence" 0
idle=$(hostile_value idle_cpu_us "$E2E_OUT")
check "an idle agent used ${idle:-?} us of CPU in a second (bound 20000)" \
    test "${idle:-999999999}" -le 20000

run_cpu 20000 0 1000
expect_rc "20000 back-to-back lists, then a second of silence" 0
idle=$(hostile_value idle_cpu_us "$E2E_OUT")
check "after the burst it used ${idle:-?} us of CPU in a second (bound 20000)" \
    test "${idle:-999999999}" -le 20000

run_cpu 1000 2000 100
expect_rc "1000 lists 2 ms apart" 0
busy=$(hostile_value busy_cpu_us "$E2E_OUT")
per=$(( ${busy:-999999999} / 1000 ))
check "paced lists cost ${per} us of agent CPU each (bound 150)" test "$per" -le 150

e2e_run "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK"
expect_rc "the agent still answers" 0
e2e_finish
