#!/usr/bin/env bash
# Connections up to the fd limit: the agent keeps running, does not spin
# the CPU on EMFILE, and serves new clients once others close.
#
# The agent runs under `prlimit --nofile=64`. The helper opens connections,
# each proving it is served with a list request, until three in a row are
# turned away (libuv then accepts and closes them at once with its reserve
# fd, or they wait in the listen queue). With every fd taken and one more
# client waiting, the agent's CPU time (utime + stime from /proc/PID/stat)
# over 3 s must stay under 300 ms: an agent that spun on EMFILE would burn
# the whole 3 s. Then ten connections close and a new client must be served
# within 5 s, and an old connection is still served.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
e2e_need prlimit

hostile_start_agent prlimit --nofile=64 --
expect_eq "the agent runs with 64 fds" 64 \
    "$(sed -n 's/^Max open files *\([0-9]*\).*/\1/p' "/proc/$E2E_AGENT_PID/limits")"

e2e_run "$HOSTILE_CLIENT" fdexhaust "$E2E_AGENT_SOCK" "$E2E_AGENT_PID"
expect_rc "the helper ran" 0
printf '%s\n' "$E2E_OUT" | sed 's/^/# /'
served=$(hostile_value served_connections "$E2E_OUT")
check "it served connections up to its limit ($served)" test "${served:-0}" -ge 40
expect_eq "then it turned new ones away" yes "$(hostile_value agent_full "$E2E_OUT")"
cpu=$(hostile_value cpu_ms_while_full "$E2E_OUT")
check "it did not spin while full: ${cpu:-?} ms of CPU in 3000 ms" test "${cpu:-99999}" -ge 0 -a "${cpu:-99999}" -lt 300
expect_eq "it kept running" yes "$(hostile_value agent_alive "$E2E_OUT")"
expect_eq "a new client is served once others close" yes "$(hostile_value served_after_release "$E2E_OUT")"
expect_eq "a connection held throughout is still served" yes \
    "$(hostile_value old_connection_still_served "$E2E_OUT")"
# libuv turns the excess away itself (its reserve fd) and tells the agent
# only when that fails, so "accept: too many open files" may or may not be
# in the log: not checked.
e2e_finish
