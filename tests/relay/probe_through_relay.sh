#!/bin/bash
#
# keyward-probe through keyward-relay: the relay must be invisible.
#
#     tests/relay/probe_through_relay.sh keyward build/keyward-relay build/keyward-agent build/keyward-probe
#     tests/relay/probe_through_relay.sh openssh build/keyward-relay /usr/bin/ssh-agent build/keyward-probe
#
# The agent runs on its own socket with the relay in front of it, and every
# probe run, ssh-add and check below goes through the relay.
#   keyward: every check passes, as tests/probe/probe_keyward.sh asserts
#            when the probe talks to keyward-agent directly;
#   openssh: every verdict is the one tests/probe/probe_openssh.sh records
#            for Debian's ssh-agent talked to directly.
# oversized-frame passing means the RELAY closed the client at the 256 KiB
# limit (the agent never saw that frame) and served a new connection.
# Then the relay's own log: one line per connection and request type, the
# refused frame, and for OpenSSH (whose agent dies of the malformed LOCK,
# run last) the relay closing clients whose upstream cannot be reached.

# shellcheck source=tests/probe/lib.sh
. "$(dirname "$0")/../probe/lib.sh"
# shellcheck source=tests/relay/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -ne 4 ] || { [ "$1" != keyward ] && [ "$1" != openssh ]; }; then
    echo "usage: $0 keyward|openssh RELAY AGENT PROBE" >&2
    exit 2
fi
KIND=$1
RELAY=$2
shift 2
pt_init "$@"
if [ ! -x "$RELAY" ]; then
    echo "relay $RELAY not found" >&2
    exit 1
fi
RLOG=$PT_TMP/relay.log

rl_cleanup() {
    local rc=$?
    if [ -n "$RL_PID" ]; then
        rl_stop
    fi
    if [ "$rc" != 0 ] && [ -s "$RLOG" ]; then
        pt_log "relay log (last 40 lines):"
        tail -n 40 "$RLOG" | sed 's/^/#   /'
    fi
    (exit "$rc")
    pt_cleanup
}
trap rl_cleanup EXIT

pt_start_agent "$KIND"
AGENT_SOCK=$PT_SOCK
if ! rl_start "$RELAY" "$PT_TMP/relay.sock" "$AGENT_SOCK" "$RLOG"; then
    pt_not_ok "relay started on $PT_TMP/relay.sock" "$(cat "$RLOG")"
    exit 1
fi
pt_ok "relay started on $PT_TMP/relay.sock in front of $AGENT_SOCK"
# From here on everything goes through the relay.
PT_SOCK=$PT_TMP/relay.sock

pt_add_user_key
pt_run_probe --json

if [ "$KIND" = keyward ]; then
    pt_expect_rc 0 "full run"
    pt_expect_verdict rebind-keeps-connection pass "refused with 28 (EXTENSION_FAILURE)"
    pt_expect_verdict query pass "session-bind@openssh.com"
    pt_expect_verdict oversized-frame pass "the connection was closed; a new connection was served"
    pt_expect_output '"summary": {"pass": 17, "fail": 0, "unsupported": 0, "skipped": 0, "error": 0}'
    # shellcheck disable=SC2046
    pt_expect_table $(pt_all_checks | sed 's/$/=pass/')
    pt_expect_user_key_only

    pt_run_probe --json --only malformed-lock
    pt_expect_rc 0 "malformed-lock run"
    pt_expect_table malformed-lock=pass
else
    # The verdicts of tests/probe/probe_openssh.sh, unchanged.
    pt_expect_openssh_table
    pt_expect_user_key_only

    # Last, because it takes the agent down. Directly, the probe then finds
    # the agent's socket gone; through the relay, a new connection is
    # accepted by the relay and closed at once, since its upstream cannot be
    # reached. Same verdict; only that last observation differs.
    pt_run_probe --json --only malformed-lock
    pt_expect_rc 1 "malformed-lock run"
    pt_expect_table malformed-lock=fail
    pt_expect_verdict malformed-lock fail '"sent": "LOCK without a passphrase: 00000001 16"' \
        "connection closed without a reply"
    # A client of the relay now must be closed promptly, not left hanging.
    start=$SECONDS
    out=$(SSH_AUTH_SOCK=$PT_SOCK timeout 20 ssh-add -l 2>&1)
    rc=$?
    # The connection is accepted, then closed: ssh-add exits 1 ("error
    # fetching identities") or 141 (SIGPIPE: closed while it was writing).
    if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ $((SECONDS - start)) -le 5 ] &&
        ! printf '%s\n' "$out" | grep -q "no identities"; then
        pt_ok "with the agent gone, a client of the relay is closed at once (ssh-add -l exit $rc)"
    else
        pt_not_ok "with the agent gone, a client of the relay is closed at once" \
            "ssh-add -l exit $rc after $((SECONDS - start)) s:" "$out"
    fi
    if rl_wait_for "$RLOG" "cannot reach the upstream agent at $AGENT_SOCK" 5; then
        pt_ok "the relay logs why it closed that client"
    else
        pt_not_ok "the relay logs why it closed that client" "$(tail -n 5 "$RLOG")"
    fi
fi

# The relay's log (-d): connections, request and reply types, the refusal.
for text in \
    "accepted from pid " \
    "upstream connected" \
    "request REQUEST_IDENTITIES(11)" \
    "reply IDENTITIES_ANSWER(12)" \
    "request EXTENSION(27) session-bind@openssh.com" \
    "request ADD_IDENTITY(17)" \
    "request (empty frame)" \
    "client sent a frame of 262145 bytes, over the 262144 byte limit" \
    "closed (oversized frame)"; do
    if grep -qF -- "$text" "$RLOG"; then
        pt_ok "relay log has \"$text\""
    else
        pt_not_ok "relay log has \"$text\""
    fi
done
if grep -qE 'request .*(PRIVATE|-----BEGIN)' "$RLOG"; then
    pt_not_ok "relay log shows no key material"
else
    pt_ok "relay log shows no key material"
fi
# Every client connection got an upstream connection of its own.
n_acc=$(grep -c "accepted from pid " "$RLOG")
n_up=$(grep -c "upstream connected" "$RLOG")
if [ "$n_acc" -ge 256 ]; then
    pt_ok "$n_acc client connections, $n_up upstream connections opened"
else
    pt_not_ok "at least 256 client connections (concurrent-connections)" "got $n_acc"
fi

if kill -0 "$RL_PID" 2>/dev/null; then
    pt_ok "relay still running"
else
    pt_not_ok "relay still running"
fi
rl_stop
if [ "$RL_STATUS" = 0 ]; then
    pt_ok "relay exits 0 on SIGTERM"
else
    pt_not_ok "relay exits 0 on SIGTERM" "status $RL_STATUS"
fi
if [ ! -e "$PT_TMP/relay.sock" ]; then
    pt_ok "relay removed its socket"
else
    pt_not_ok "relay removed its socket"
fi
if rl_log_clean "$RLOG"; then
    pt_ok "relay log has no sanitizer report"
else
    pt_not_ok "relay log has no sanitizer report" "$(grep -A30 -E 'Sanitizer|runtime error' "$RLOG" | head -n 60)"
fi

pt_finish
