#!/usr/bin/env bash
# Two clients binding at once through keyward-relay do not see each
# other's session bindings.
#
#   isolation.sh RELAY BIND_CLIENT SHARED_MUX AGENT_BINARY...
#
# bind_client (tests/relay/bind_client.c) opens connections A and B, then A
# binds for authentication and B binds too: an agent refuses every bind
# after an authentication bind on the same connection, so B's bind succeeds
# only if B has an agent connection of its own. For each agent:
#   - directly to the agent: isolated (the baseline);
#   - through the relay: isolated, with two upstream connections in the
#     relay's log;
#   - through shared_mux (one agent connection for all, as tsh -A did):
#     shared, which shows that bind_client can tell the difference.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=tests/relay/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -lt 4 ]; then
    echo "usage: $0 RELAY BIND_CLIENT SHARED_MUX AGENT_BINARY..." >&2
    exit 1
fi
RELAY=$1
BIND=$2
MUX=$3
shift 3
for f in "$RELAY" "$BIND" "$MUX"; do
    [ -x "$f" ] || { echo "not ok 1 - '$f' is not executable"; exit 1; }
done
e2e_init "$1"
T=$E2E_TMP
mux_pid=

stop_all_on_exit() {
    local rc=$?
    [ -n "$RL_PID" ] && rl_stop
    [ -n "$mux_pid" ] && kill "$mux_pid" 2>/dev/null
    (exit "$rc")
    _e2e_cleanup
}
trap stop_all_on_exit EXIT

for agent in "$@"; do
    case $agent in /*) ;; *) agent=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent") ;; esac
    E2E_AGENT=$agent
    name=$(basename "$agent")
    e2e_log "=== $name"
    e2e_start_agent

    e2e_run "$BIND" "$E2E_AGENT_SOCK"
    expect_rc "$name directly: A and B are isolated" 0

    RLOG=$T/relay-$name.log
    rm -f "$T/relay.sock"
    rl_start "$RELAY" "$T/relay.sock" "$E2E_AGENT_SOCK" "$RLOG" ||
        e2e_fatal "relay did not start: $(cat "$RLOG")"
    e2e_run "$BIND" "$T/relay.sock"
    expect_rc "$name through the relay: A and B are isolated" 0
    expect_contains "$name through the relay: A's bind succeeded" \
        "A: session-bind (authentication) -> 6 (SUCCESS)" "$E2E_OUT"
    expect_contains "$name through the relay: B's bind succeeded" \
        "B: session-bind (authentication) -> 6 (SUCCESS)" "$E2E_OUT"
    expect_match "$name through the relay: A's second bind was refused on A's connection" \
        "^A: second session-bind \(authentication\) -> (5|28) " "$E2E_OUT"
    log=$(cat "$RLOG")
    expect_eq "$name: the relay opened one upstream connection per client" "2 2" \
        "$(grep -c 'accepted from pid' <<<"$log") $(grep -c 'upstream connected' <<<"$log")"
    expect_match "$name: relay log: conn 1 bound" "conn 1: request EXTENSION\(27\) session-bind@openssh.com" "$log"
    expect_match "$name: relay log: conn 2 bound" "conn 2: request EXTENSION\(27\) session-bind@openssh.com" "$log"
    rl_stop
    expect_eq "$name: relay exits 0 on SIGTERM" 0 "$RL_STATUS"
    check "$name: relay log has no sanitizer report" rl_log_clean "$RLOG"

    # The control: one shared agent connection for both clients.
    rm -f "$T/mux.sock"
    "$MUX" -l "$T/mux.sock" -u "$E2E_AGENT_SOCK" 2>>"$T/mux.log" &
    mux_pid=$!
    for _ in $(seq 1 50); do [ -S "$T/mux.sock" ] && break; sleep 0.1; done
    e2e_run "$BIND" "$T/mux.sock"
    expect_rc "$name through shared_mux: B sees A's binding (the control)" 1
    expect_match "$name through shared_mux: B's bind was refused" \
        "^B: session-bind \(authentication\) -> (5|28) " "$E2E_OUT"
    kill "$mux_pid" 2>/dev/null
    wait "$mux_pid" 2>/dev/null
    mux_pid=

    e2e_stop_agent
done
e2e_finish
