#!/usr/bin/env bash
# The seed scenario through keyward-relay, end to end, on localhost.
#
#   seed_through_relay.sh RELAY SHARED_MUX NAME:EXPECT:AGENT_BINARY...
#
# For each agent (holding a user key and its certificate; the node is a
# real sshd on 127.0.0.1 trusting the user CA, as in tests/repro/seed.sh),
# with keyward-relay in front of it:
#
#   1. direct: ssh -A with SSH_AUTH_SOCK (IdentityAgent) = the relay, then
#      on the node `ssh -A localhost` three times. Every ssh connection to
#      the relay gets its own upstream connection, so every login must work
#      with every agent, even one that closes connections on failed
#      requests (the Windows port's defect): nobody shares a connection.
#
#   2. shared: the seed's own setup, shared_mux (one agent connection for
#      every client, as `tsh -A` did) in front of the relay. The mux's one
#      connection is one relay client with one upstream connection; the
#      relay must be invisible. EXPECT says what the agent does then:
#      "survives" (keyward-agent, OpenSSH: all logins work) or "breaks" (the
#      Windows-like agent closes the shared connection, and the relay must
#      pass that on by closing the mux's connection, never re-binding the
#      mux to a fresh upstream connection behind its back).
#
#   Afterwards a new client of the relay is served (a fresh upstream), the
#   relay log shows what passed, and the relay stops cleanly.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=tests/repro/lib.sh
. "$(dirname "$0")/../repro/lib.sh"
# shellcheck source=tests/relay/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -lt 3 ]; then
    echo "usage: $0 RELAY SHARED_MUX NAME:EXPECT:AGENT_BINARY..." >&2
    exit 1
fi
RELAY=$1
MUX=$2
shift 2
[ -x "$RELAY" ] || { echo "not ok 1 - relay '$RELAY' is not executable"; exit 1; }
[ -x "$MUX" ] || { echo "not ok 1 - shared_mux '$MUX' is not executable"; exit 1; }
e2e_init "$(seed_agent_path "$1")"
T=$E2E_TMP

stop_relay_on_exit() {
    local rc=$?
    [ -n "$RL_PID" ] && rl_stop
    [ -n "$SEED_MUX_PID" ] && kill "$SEED_MUX_PID" 2>/dev/null
    (exit "$rc")
    _e2e_cleanup
}
trap stop_relay_on_exit EXIT

seed_make_node

# login SOCKET: seed_login, showing the outer ssh's output if it failed.
login() {
    seed_login "$1"
    if [ "$E2E_RC" != 0 ]; then
        printf '%s\n' "$E2E_OUT" "$E2E_ERR" | sed 's/^/#   login: /' | tail -n 20
    fi
}

rows=()
for spec in "$@"; do
    seed_parse_spec "$spec"
    e2e_log "=== $name ($E2E_AGENT) behind the relay, shared connection expected to $expect"

    e2e_start_agent
    e2e_run ssh-add "$T/vault/user"
    expect_rc "$name: ssh-add adds the key and its certificate" 0

    relay_sock=$T/relay.sock
    RLOG=$T/relay-$name.log
    rm -f "$relay_sock"
    rl_start "$RELAY" "$relay_sock" "$E2E_AGENT_SOCK" "$RLOG" ||
        e2e_fatal "$name: relay did not start: $(cat "$RLOG")"

    # 1. ssh -A straight through the relay.
    login "$relay_sock"
    d_outer=$SEED_OUTER d_inner=("${SEED_INNER[@]}")
    expect_eq "$name: direct through the relay: outer login" ok "$d_outer"
    expect_eq "$name: direct through the relay: inner logins 1, 2 and 3" "ok ok ok" "${d_inner[*]}"

    # 2. The seed's shared connection: shared_mux in front of the relay.
    seed_start_mux "$MUX" "$relay_sock"
    login "$T/mux.sock"
    s_outer=$SEED_OUTER s_inner=("${SEED_INNER[@]}")
    seed_stop_mux
    shared=$SEED_SHARED
    if [ "$expect" = survives ]; then
        expect_eq "$name: shared, through the relay: outer login" ok "$s_outer"
        expect_eq "$name: shared, through the relay: inner logins 1, 2 and 3" "ok ok ok" \
            "${s_inner[*]}"
        expect_eq "$name: the shared connection survived" survived "$shared"
    else
        expect_eq "$name: the shared connection was closed (the relay passed the close on)" \
            closed "$shared"
        check "$name: a later shared login failed (${s_inner[*]}), as without the relay" \
            test "${s_inner[0]} ${s_inner[1]} ${s_inner[2]}" != "ok ok ok"
        expect_contains "$name: the relay logged its upstream closing" "upstream closed" \
            "$(cat "$RLOG")"
    fi

    # A new client of the relay gets a fresh upstream connection.
    e2e_run env SSH_AUTH_SOCK="$relay_sock" ssh-add -l
    expect_contains "$name: a new client of the relay is served" "(ED25519-CERT)" "$E2E_OUT"
    fresh=answers
    [ "$E2E_RC" = 0 ] || fresh="no answer"

    log=$(cat "$RLOG")
    expect_match "$name: relay log: connections accepted" "conn [0-9]+: accepted from pid [0-9]+ uid " "$log"
    expect_contains "$name: relay log: session-binds passed through" \
        "request EXTENSION(27) session-bind@openssh.com" "$log"
    expect_contains "$name: relay log: signatures passed through" "request SIGN_REQUEST(13)" "$log"
    check "$name: relay still running" kill -0 "$RL_PID"
    rl_stop
    expect_eq "$name: relay exits 0 on SIGTERM" 0 "$RL_STATUS"
    check "$name: relay log has no sanitizer report" rl_log_clean "$RLOG"
    check "$name: relay removed its socket" test ! -e "$relay_sock"
    if [ "$E2E_FAILED" != 0 ]; then
        _e2e_show_log "relay log ($name)" "$RLOG"
    fi

    rows+=("$(printf '%-13s %-6s %-8s %-8s %-8s | %-6s %-8s %-8s %-8s %-9s | %s' "$name" \
        "$d_outer" "${d_inner[@]}" "$s_outer" "${s_inner[@]}" "$shared" "$fresh")")
    e2e_stop_agent
done

echo
echo "The seed through keyward-relay: ssh -A, then ssh -A localhost x3"
printf '%-13s %-33s | %-43s | %s\n' "" "direct (one upstream per client)" \
    "shared (shared_mux -> relay)" "new client"
printf '%-13s %-6s %-8s %-8s %-8s | %-6s %-8s %-8s %-8s %-9s |\n' agent outer inner-1 inner-2 \
    inner-3 outer inner-1 inner-2 inner-3 shared
for r in "${rows[@]}"; do echo "$r"; done
echo

E2E_AGENT_PID=
e2e_finish
