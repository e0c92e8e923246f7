#!/usr/bin/env bash
# Once a bug (issue 22, finding 17b), now fixed: keyward-relay did not pass
# a client's end of stream on to the agent. It kept the upstream connection
# open for up to 10 s waiting for replies, so a confirmation prompt for a
# client that had gone stayed up, and approving it made the agent sign for
# nobody.
#
# Now the relay shuts down its sending side of the upstream connection
# (after the client's last whole request) when the client's stream ends,
# keeps delivering the agent's replies to the client until the agent
# closes, then closes the client.
#
#   client_eof.sh RELAY AGENT HOSTILE_CLIENT
#
#   1. a client asks through the relay for a signature that needs
#      confirmation, and hangs up while the prompt is up: the agent takes
#      the prompt down at once (it does so when its own client goes), and
#      nothing is signed when the askpass would have approved (after 5 s);
#   2. clients that only half-close (printf ... | socat) still get every
#      reply through the relay: an RSA signature, 1,000 lists.
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
ASKLOG=$E2E_TMP/askpass.log

trap rl_stop_on_exit EXIT

# Records that it was asked, waits 5 s (the user thinking), then approves.
cat >"$E2E_TMP/askpass" <<ASKPASS
#!/bin/sh
echo "started \$\$" >>"$ASKLOG"
sleep 5
echo "approved \$\$" >>"$ASKLOG"
exit 0
ASKPASS
chmod 755 "$E2E_TMP/askpass"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent -d -l "$E2E_TMP/audit.log"
e2e_keygen confirm ed25519 ""
e2e_run ssh-add -c "$E2E_TMP/confirm"
expect_rc "ssh-add -c" 0
e2e_keygen rsa rsa 3072
e2e_run ssh-add "$E2E_TMP/rsa"
expect_rc "ssh-add RSA-3072" 0
rl_start "$RELAY" "$RSOCK" "$E2E_AGENT_SOCK" "$RLOG" || e2e_fatal "relay did not start: $(cat "$RLOG")"

# --- 1. the client goes while its prompt is up ---------------------------------
"$HOSTILE_CLIENT" sign "$RSOCK" "$E2E_TMP/confirm.pub" 0 1000 >/dev/null &
client=$!
check "the agent asks for confirmation" hostile_wait_for 5 grep -q started "$ASKLOG"
askpass=$(sed -n 's/^started //p' "$ASKLOG" | head -n 1)
wait "$client"
# gone_soon: the askpass has gone within 1.5 s.
gone_soon() {
    local i
    [ -n "$askpass" ] || return 1
    for i in $(seq 1 15); do
        kill -0 "$askpass" 2>/dev/null || return 0
        sleep 0.1
    done
    : "$i"
    return 1
}
check "the client hung up: the prompt (pid ${askpass:-none}) is gone within 1.5 s" gone_soon
sleep 4 # past the askpass's approval
expect_not_contains "the prompt was never approved" approved "$(cat "$ASKLOG")"
expect_not_contains "nothing was signed" '"event":"sign","outcome":"ok"' "$(cat "$E2E_TMP/audit.log")"
[ -n "$askpass" ] && kill "$askpass" 2>/dev/null

# --- 2. half-closing clients get their replies ----------------------------------
for i in 1 2 3; do
    e2e_run "$HOSTILE_CLIENT" sign "$RSOCK" "$E2E_TMP/rsa.pub" 0 halfclose
    expect_eq "through the relay, RSA signature then the client's half-close (try $i): answered" \
        SIGN_RESPONSE "$(hostile_value sign "$E2E_OUT")"
done
e2e_run "$HOSTILE_CLIENT" pipeline "$RSOCK" 1000 halfclose
expect_eq "through the relay, 1,000 lists then a half-close: 1,000 replies" 1000 \
    "$(hostile_value replies "$E2E_OUT")"

check "the relay is still running" kill -0 "$RL_PID"
rl_stop
expect_eq "the relay exits 0 on SIGTERM" 0 "$RL_STATUS"
check "the relay log has no sanitizer report" rl_log_clean "$RLOG"
e2e_finish
