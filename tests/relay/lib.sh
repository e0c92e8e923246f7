# shellcheck shell=bash
#
# keyward-relay tests: helpers for running the relay, shared by scripts
# built on tests/e2e/lib.sh and on tests/probe/lib.sh. They assert nothing
# themselves: each returns a status (and sets RL_* variables) for the
# caller's own checks.
#
#   rl_start RELAY LISTEN UPSTREAM LOG   start `RELAY -d LISTEN UPSTREAM` in the
#                                        background (stderr to LOG); 0 once
#                                        LISTEN exists; RL_PID is its pid
#   rl_stop                              SIGTERM, then wait up to 5 s; sets
#                                        RL_STATUS to its exit status, or
#                                        "hung" if it had to be killed
#   rl_log_clean LOG                     0 if LOG holds no sanitizer report
#   rl_wait_for FILE TEXT [SECONDS]      0 once FILE contains TEXT
#   rl_stop_on_exit                      EXIT trap for e2e-based tests whose
#                                        relay logs to $RLOG
#
# Every relay runs with -d, so each test can read what it did.

RL_PID=
# shellcheck disable=SC2034  # read by the tests
RL_STATUS=

rl_start() {
    local relay=$1 listen=$2 upstream=$3 log=$4 i
    "$relay" -d "$listen" "$upstream" </dev/null >>"$log.stdout" 2>>"$log" &
    RL_PID=$!
    for i in $(seq 1 100); do
        [ -S "$listen" ] && return 0
        if ! kill -0 "$RL_PID" 2>/dev/null; then
            wait "$RL_PID" 2>/dev/null
            RL_PID=
            return 1
        fi
        sleep 0.05
    done
    : "$i"
    return 1
}

rl_stop() {
    local i
    RL_STATUS=
    [ -n "$RL_PID" ] || return 0
    kill -TERM "$RL_PID" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$RL_PID" 2>/dev/null || break
        sleep 0.1
    done
    : "$i"
    if kill -0 "$RL_PID" 2>/dev/null; then
        kill -KILL "$RL_PID" 2>/dev/null
        wait "$RL_PID" 2>/dev/null
        RL_STATUS=hung
    else
        wait "$RL_PID" 2>/dev/null
        # shellcheck disable=SC2034  # read by the tests
        RL_STATUS=$?
    fi
    RL_PID=
}

rl_log_clean() {
    ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1" 2>/dev/null
}

rl_wait_for() {
    local file=$1 text=$2 secs=${3:-10} i
    for i in $(seq 1 $((secs * 20))); do
        grep -qF -- "$text" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    : "$i"
    return 1
}

# rl_stop_on_exit: the EXIT trap of a test whose relay logs to $RLOG: stops
# the relay, shows its log if the test failed, then the e2e clean-up.
rl_stop_on_exit() {
    local rc=$?
    [ -n "$RL_PID" ] && rl_stop
    if [ "$rc" != 0 ]; then _e2e_show_log "relay log" "$RLOG"; fi
    (exit "$rc")
    _e2e_cleanup
}
