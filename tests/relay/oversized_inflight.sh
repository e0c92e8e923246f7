#!/usr/bin/env bash
# Once a bug (issue 22, finding 17a), now fixed: keyward-relay lost the
# replies around an oversized frame. For LIST + sign + a frame header over
# 256 KiB in one write, the agent itself answers both requests and then
# closes; the relay closed the client and its upstream at once, with no
# reply at all, not even for requests it had already forwarded.
#
# Now, on an oversized frame from the client, the relay forwards the whole
# frames before it, stops reading the client and forwards nothing more,
# delivers the replies to every request already forwarded, then closes
# (as the agent does).
#
#   oversized_inflight.sh RELAY AGENT HOSTILE_CLIENT
#
# The key is added with confirmation and the askpass approves after 1 s,
# so the signature is in flight upstream when the oversized header comes.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/../hostile/lib.sh"
# shellcheck source=tests/relay/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -ne 3 ] || [ ! -x "$1" ]; then
    echo "usage: $0 RELAY AGENT HOSTILE_CLIENT" >&2
    exit 1
fi
RELAY=$1
shift
hostile_init "$@"
RLOG=$E2E_TMP/relay.log
RSOCK=$E2E_TMP/relay.sock

trap rl_stop_on_exit EXIT

cat >"$E2E_TMP/askpass" <<'ASKPASS'
#!/bin/sh
sleep 1
exit 0
ASKPASS
chmod 755 "$E2E_TMP/askpass"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent
e2e_keygen key ed25519 ""
e2e_run ssh-add -c "$E2E_TMP/key"
expect_rc "ssh-add -c (signatures wait 1 s for the askpass)" 0
rl_start "$RELAY" "$RSOCK" "$E2E_AGENT_SOCK" "$RLOG" || e2e_fatal "relay did not start: $(cat "$RLOG")"

# pipeline_check WHERE SOCK N EXTRA WANT_REPLIES WANT_LAST
pipeline_check() {
    e2e_run "$HOSTILE_CLIENT" pipeline "$2" "$3" oversized ${4:+"$4"}
    expect_eq "$1: $5 replies" "$5" "$(hostile_value replies "$E2E_OUT")"
    expect_eq "$1: ... the last one $6" "$6" "$(hostile_value last "$E2E_OUT")"
    expect_eq "$1: ... then the connection is closed" "connection closed" \
        "$(hostile_value then "$E2E_OUT")"
}

pipeline_check "control, straight to the agent: LIST + sign + oversized header" \
    "$E2E_AGENT_SOCK" 1 "$E2E_TMP/key.pub" 2 SIGN_RESPONSE
pipeline_check "through the relay: LIST + sign + oversized header" \
    "$RSOCK" 1 "$E2E_TMP/key.pub" 2 SIGN_RESPONSE
# 5,004 bytes: the relay reads the first 4 KiB (and forwards those lists)
# before it sees the oversized header.
pipeline_check "control, straight to the agent: 1,000 lists + oversized header" \
    "$E2E_AGENT_SOCK" 1000 "" 1000 IDENTITIES_ANSWER
pipeline_check "through the relay: 1,000 lists + oversized header" \
    "$RSOCK" 1000 "" 1000 IDENTITIES_ANSWER
pipeline_check "through the relay: 1,000 lists + sign + oversized header" \
    "$RSOCK" 1000 "$E2E_TMP/key.pub" 1001 SIGN_RESPONSE
expect_contains "the relay logged the oversized frame" "over the 262144 byte limit" "$(cat "$RLOG")"

e2e_run "$HOSTILE_CLIENT" list "$RSOCK"
expect_rc "the relay still serves a new client" 0
check "the relay is still running" kill -0 "$RL_PID"
rl_stop
expect_eq "the relay exits 0 on SIGTERM" 0 "$RL_STATUS"
check "the relay log has no sanitizer report" rl_log_clean "$RLOG"
e2e_finish
