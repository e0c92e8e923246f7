#!/usr/bin/env bash
# keyward-relay when its upstream agent goes away, and comes back.
#
#   upstream_drop.sh RELAY HOLD_CLIENT AGENT_BINARY
#
# A client holds a connection through the relay (hold_client, which lists
# once and then waits). Then:
#   1. the agent is killed (SIGKILL): the client's connection must be
#      closed at once, not left hanging and not bound to another upstream
#      connection; new clients are closed at once while no agent is there
#      (the relay says why); after a new agent starts on the same socket, a
#      new client is served by it;
#   2. the same with the agent stopped cleanly (SIGTERM);
#   3. the other way round: a client that leaves makes the relay close its
#      upstream connection (the agent, run with -d, logs the end of stream).
# The relay runs throughout and stops cleanly at the end.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=tests/relay/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -ne 3 ]; then
    echo "usage: $0 RELAY HOLD_CLIENT AGENT_BINARY" >&2
    exit 1
fi
RELAY=$1
HOLD=$2
shift 2
for f in "$RELAY" "$HOLD"; do
    [ -x "$f" ] || { echo "not ok 1 - '$f' is not executable"; exit 1; }
done
e2e_init "$1"
T=$E2E_TMP
RLOG=$T/relay.log
RSOCK=$T/relay.sock

trap rl_stop_on_exit EXIT

e2e_keygen user ed25519 "" "drop-user"
fp=$(e2e_fp "$T/user.pub")
e2e_start_agent
rl_start "$RELAY" "$RSOCK" "$E2E_AGENT_SOCK" "$RLOG" || e2e_fatal "relay did not start: $(cat "$RLOG")"
e2e_run env SSH_AUTH_SOCK="$RSOCK" ssh-add "$T/user"
expect_rc "ssh-add through the relay" 0

# hold NAME: a client holding a connection through the relay, in the
# background, waiting up to 10 s for the relay to close it.
hold() {
    "$HOLD" "$RSOCK" 10000 expect-close >"$T/hold-$1.out" 2>&1 &
    hold_pid=$!
    rl_wait_for "$T/hold-$1.out" ready 10 || e2e_fatal "$1: the holding client was not served"
}

# agent_gone NAME HOW: the checks after the agent went away while held.
agent_gone() {
    local name=$1 how=$2 start took unreachable
    unreachable=$(grep -c "cannot reach the upstream agent at $E2E_AGENT_SOCK" "$RLOG")
    wait "$hold_pid"
    expect_eq "$name: the held client's connection was closed ($how)" 0 "$?"
    # "At once" is under 5 s, as below: far from the holder's 10 s, and loose
    # enough for an ASan agent's clean stop on a loaded machine (2.2 s seen).
    expect_match "$name: ... at once" "^closed by the peer after [0-9]{1,3} ms$|^closed by the peer after [1-4][0-9]{3} ms$" \
        "$(cat "$T/hold-$name.out")"
    expect_contains "$name: the relay logged it" "upstream closed" "$(cat "$RLOG")"

    # No agent: a new client is accepted and closed at once, never hangs.
    start=$SECONDS
    e2e_run env SSH_AUTH_SOCK="$RSOCK" ssh-add -l
    took=$((SECONDS - start))
    check "$name: with no agent, a new client is not served (ssh-add -l exit $E2E_RC)" \
        test "$E2E_RC" != 0 -a "$E2E_RC" != 124
    check "$name: ... and is closed at once (took $took s)" test "$took" -le 5
    expect_not_contains "$name: ... with no answer from the relay itself" "no identities" "$E2E_OUT"
    check "$name: the relay says why (\"cannot reach the upstream agent\")" \
        test "$(grep -c "cannot reach the upstream agent at $E2E_AGENT_SOCK" "$RLOG")" -gt "$unreachable"
    check "$name: the relay is still running" kill -0 "$RL_PID"

    # A new agent on the same socket serves new clients of the relay.
    rm -f "$E2E_AGENT_SOCK"
    e2e_start_agent
    e2e_run env SSH_AUTH_SOCK="$RSOCK" ssh-add -l
    expect_rc "$name: after a new agent starts, a new client is served (no keys yet)" 1
    e2e_run env SSH_AUTH_SOCK="$RSOCK" ssh-add "$T/user"
    expect_rc "$name: ... ssh-add through the relay" 0
    e2e_run env SSH_AUTH_SOCK="$RSOCK" ssh-add -l
    expect_contains "$name: ... and the new agent lists the key" "$fp" "$E2E_OUT"
}

# --- 1. the agent is killed -------------------------------------------------
hold killed
kill -KILL "$E2E_AGENT_PID"
wait "$E2E_AGENT_PID" 2>/dev/null
E2E_AGENT_PID=
agent_gone killed SIGKILL

# --- 2. the agent stops cleanly ---------------------------------------------
hold stopped
e2e_stop_agent
agent_gone stopped SIGTERM

# --- 3. a client leaves: its upstream connection is closed ------------------
e2e_stop_agent
rm -f "$E2E_AGENT_SOCK"
KEYWARD_E2E_DEBUG=1 e2e_start_agent
before=$(grep -c "closed (end of stream)" "$E2E_AGENT_LOG")
e2e_run "$HOLD" "$RSOCK" 300 expect-open
expect_rc "a client that holds a connection for 0.3 s is served" 0
for _ in $(seq 1 50); do
    [ "$(grep -c "closed (end of stream)" "$E2E_AGENT_LOG")" -gt "$before" ] && break
    sleep 0.1
done
check "when it leaves, the relay closes its upstream connection (the agent sees the end of stream)" \
    test "$(grep -c "closed (end of stream)" "$E2E_AGENT_LOG")" -gt "$before"

check "the relay is still running at the end" kill -0 "$RL_PID"
rl_stop
expect_eq "the relay exits 0 on SIGTERM" 0 "$RL_STATUS"
check "the relay removed its socket" test ! -e "$RSOCK"
check "the relay log has no sanitizer report" rl_log_clean "$RLOG"
e2e_finish
