#!/usr/bin/env bash
# The seed report, end to end, on localhost.
#
#   seed.sh SHARED_MUX NAME:EXPECT:AGENT_BINARY [NAME:EXPECT:AGENT_BINARY ...]
#
# EXPECT is "survives" or "breaks". For each agent:
#
#   agent (holds a user key and its certificate)
#     <- shared_mux: every client over ONE agent connection, as `tsh -A` did
#        <- ssh -A to the node: a real sshd on 127.0.0.1 that trusts the
#           user CA (TrustedUserCAKeys), the key itself not authorized
#           node: ssh -A localhost   (inner login 1)
#           node: ssh -A localhost   (inner login 2)
#           node: ssh -A localhost   (inner login 3)
#
# Every agent request of all four logins travels over the mux's single
# connection, so the agent sees a session-bind for authentication followed
# by more binds on the same connection: exactly the refusal in the seed.
# An agent that answers the refusal keeps the shared connection and every
# login works; one that closes the connection (the Windows port's defect)
# takes the agent away from every later login.
#
# Prints one row per agent, then checks each row against EXPECT.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=tests/repro/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -lt 2 ]; then
    echo "usage: $0 SHARED_MUX NAME:EXPECT:AGENT_BINARY..." >&2
    exit 1
fi
MUX=$1
shift
[ -x "$MUX" ] || { echo "not ok 1 - shared_mux '$MUX' is not executable"; exit 1; }
e2e_init "$(seed_agent_path "$1")"
T=$E2E_TMP

stop_mux_on_exit() {
    local rc=$?
    [ -n "$SEED_MUX_PID" ] && kill "$SEED_MUX_PID" 2>/dev/null
    (exit "$rc")
    _e2e_cleanup
}
trap stop_mux_on_exit EXIT

seed_make_node

rows=()
for spec in "$@"; do
    seed_parse_spec "$spec"
    e2e_log "=== $name ($E2E_AGENT), expected to $expect"

    e2e_start_agent
    e2e_run ssh-add "$T/vault/user"
    expect_rc "$name: ssh-add adds the key and its certificate" 0
    e2e_run ssh-add -l
    expect_contains "$name: the agent holds the certificate" "(ED25519-CERT)" "$E2E_OUT"

    seed_start_mux "$MUX" "$E2E_AGENT_SOCK"
    seed_login "$T/mux.sock"
    outer=$SEED_OUTER inner=("${SEED_INNER[@]}") outer_rc=$E2E_RC
    outer_log=$(printf '%s\n' "$E2E_OUT" "$E2E_ERR")
    seed_stop_mux
    shared=$SEED_SHARED
    # The agent process itself must still be there and answer a new connection.
    e2e_run ssh-add -l
    direct=answers
    [ "$E2E_RC" = 0 ] || direct="no answer"

    rows+=("$(printf '%-13s %-6s %-8s %-8s %-8s %-17s %s' "$name" "$outer" \
        "${inner[0]}" "${inner[1]}" "${inner[2]}" "$shared" "$direct")")

    if [ "$expect" = survives ]; then
        expect_eq "$name: outer login" ok "$outer"
        expect_eq "$name: inner logins 1, 2 and 3" "ok ok ok" "${inner[*]}"
        expect_eq "$name: the shared agent connection survived" survived "$shared"
    else
        expect_eq "$name: the shared agent connection was closed" closed "$shared"
        check "$name: a later forwarded login failed (${inner[*]})" \
            test "${inner[0]} ${inner[1]} ${inner[2]}" != "ok ok ok"
    fi
    if [ "$outer_rc" != 0 ] || [ "$outer" != ok ]; then
        printf '%s\n' "$outer_log" | sed "s/^/#   $name: /" | tail -n 20
    fi
    e2e_stop_agent
done

echo
echo "The seed, end to end: ssh -A through one shared agent connection, then ssh -A localhost x3"
printf '%-13s %-6s %-8s %-8s %-8s %-17s %s\n' agent outer inner-1 inner-2 inner-3 \
    "shared-connection" "agent-itself"
for r in "${rows[@]}"; do echo "$r"; done
echo

E2E_AGENT_PID=
e2e_finish
