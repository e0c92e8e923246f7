#!/usr/bin/env bash
# keyward-relay on stdin/stdout ("-"), without socat.
#
#   stdio.sh RELAY STDIO_BRIDGE HOLD_CLIENT AGENT_BINARY
#
#   - LISTEN "-": stdio_bridge (tests/relay/stdio_bridge.c) does what
#     `socat UNIX-LISTEN:SOCK,fork EXEC:"keyward-relay - AGENT"` would: one
#     relay per client, on a socketpair (socat's default) and then on two
#     pipes (what a Windows .exe started from WSL gets). ssh-add -l and
#     ssh-keygen -Y sign work through it, and every relay exits 0 soon
#     after its client closes.
#   - In a shell pipeline: closing stdin ends the relay; a request sent
#     before stdin closes is still answered; an unreachable upstream, an
#     oversized frame, or a stdin that is a file end it with status 1.
#   - UPSTREAM "-": two relays back to back through a pipe and a fifo
#     (`keyward-relay SOCK - | keyward-relay - AGENT`): the first client is
#     served, a second one is refused while it is connected, and when it
#     leaves both relays exit.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=tests/relay/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -ne 4 ]; then
    echo "usage: $0 RELAY STDIO_BRIDGE HOLD_CLIENT AGENT_BINARY" >&2
    exit 1
fi
RELAY=$1
BRIDGE=$2
HOLD=$3
shift 3
for f in "$RELAY" "$BRIDGE" "$HOLD"; do
    [ -x "$f" ] || { echo "not ok 1 - '$f' is not executable"; exit 1; }
done
e2e_init "$1"
T=$E2E_TMP
bridge_pid=
chain_pid=

stop_all_on_exit() {
    local rc=$?
    [ -n "$bridge_pid" ] && _e2e_kill_tree "$bridge_pid"
    [ -n "$chain_pid" ] && _e2e_kill_tree "$chain_pid"
    (exit "$rc")
    _e2e_cleanup
}
trap stop_all_on_exit EXIT

# wait_gone PID SECONDS: 0 once PID has exited.
wait_gone() {
    local i
    for i in $(seq 1 $(($2 * 20))); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
    done
    : "$i"
    return 1
}

e2e_keygen user ed25519 "" "stdio-user"
e2e_start_agent
e2e_run ssh-add "$T/user"
expect_rc "ssh-add the user key (directly)" 0
e2e_drop_private user
fp=$(e2e_fp "$T/user.pub")
echo "stdio-user $(e2e_keypart "$T/user.pub")" >"$T/allowed_signers"
echo "a message signed through the relay" >"$T/msg"

# --- LISTEN "-": one relay per client, as socat's fork EXEC ---------------
for mode in socketpair pipes; do
    flag=
    [ "$mode" = pipes ] && flag=-p
    sock=$T/stdio-$mode.sock
    status=$T/bridge-$mode.status
    blog=$T/relay-stdio-$mode.log
    # shellcheck disable=SC2086
    "$BRIDGE" $flag -l "$sock" -s "$status" -- "$RELAY" -d - "$E2E_AGENT_SOCK" \
        </dev/null >/dev/null 2>>"$blog" &
    bridge_pid=$!
    for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done

    e2e_run env SSH_AUTH_SOCK="$sock" ssh-add -l
    expect_rc "$mode: ssh-add -l through a stdin/stdout relay" 0
    expect_contains "$mode: it lists the key" "$fp" "$E2E_OUT"
    rm -f "$T/msg.sig"
    e2e_run env SSH_AUTH_SOCK="$sock" ssh-keygen -Y sign -f "$T/user.pub" -n file "$T/msg"
    expect_rc "$mode: ssh-keygen -Y sign through a stdin/stdout relay" 0
    e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I stdio-user -n file \
        -s "$T/msg.sig"
    expect_rc "$mode: the signature verifies" 0

    # Every relay the bridge started has exited: one status line each.
    for _ in $(seq 1 100); do
        [ "$(e2e_count_lines "$(cat "$status" 2>/dev/null)")" -ge \
            "$(grep -c 'serving stdin/stdout' "$blog")" ] && break
        sleep 0.1
    done
    st=$(cat "$status" 2>/dev/null)
    n=$(grep -c 'serving stdin/stdout' "$blog")
    expect_eq "$mode: every relay (one per client) has exited" "$n" "$(e2e_count_lines "$st")"
    check "$mode: at least two relays ran (list, sign)" test "$n" -ge 2
    bad=$(printf '%s\n' "$st" | grep -vE '^client [0-9]+: exit 0, [0-9]+ ms after the client closed$')
    expect_eq "$mode: each relay exited 0 after its client closed" "" "$bad"
    slow=$(printf '%s\n' "$st" | sed -nE 's/.*exit 0, ([0-9]+) ms after.*/\1/p' |
        awk '$1 > 2000')
    expect_eq "$mode: ... within 2 s of its stdin closing" "" "$slow"
    log=$(cat "$blog")
    expect_contains "$mode: relay log: the list" "request REQUEST_IDENTITIES(11)" "$log"
    expect_contains "$mode: relay log: the signature" "request SIGN_REQUEST(13)" "$log"
    check "$mode: relay logs have no sanitizer report" rl_log_clean "$blog"
    _e2e_kill_tree "$bridge_pid"
    wait "$bridge_pid" 2>/dev/null
    bridge_pid=
done

# --- in a shell pipeline ---------------------------------------------------
# A request (list: 00000001 0b) and a frame over the limit (256 KiB + 1).
LIST='\0\0\0\001\013'
OVERSIZED='\0\004\0\001'

# stdout goes through cat: a file there is refused as it is on stdin.
start=$SECONDS
{ sleep 1; } | timeout 20 "$RELAY" -d - "$E2E_AGENT_SOCK" 2>"$T/pipe1.log" | cat >/dev/null
rc=${PIPESTATUS[1]}
took=$((SECONDS - start))
expect_eq "closing stdin ends the relay, with status 0" 0 "$rc"
check "... within 3 s (stdin closed after 1 s; took $took s)" test "$took" -le 3
check "... and its log has no sanitizer report" rl_log_clean "$T/pipe1.log"

printf %b "$LIST" | timeout 20 "$RELAY" -d - "$E2E_AGENT_SOCK" 2>"$T/pipe2.log" | cat >"$T/pipe2.out"
rc=${PIPESTATUS[1]}
expect_eq "a request followed by end of stdin: status 0" 0 "$rc"
expect_eq "... the request was still answered (IDENTITIES_ANSWER, 12)" 0c \
    "$(od -An -tx1 -j4 -N1 "$T/pipe2.out" | tr -d ' ')"
check "... and its log has no sanitizer report" rl_log_clean "$T/pipe2.log"

printf %b "$LIST" | timeout 20 "$RELAY" - "$T/no-such-agent.sock" 2>"$T/pipe3.log" | cat >"$T/pipe3.out"
rc=${PIPESTATUS[1]}
expect_eq "an unreachable upstream: status 1" 1 "$rc"
expect_eq "... nothing was answered (the relay answers nothing itself)" 0 \
    "$(wc -c <"$T/pipe3.out")"
expect_contains "... and the log says why" "cannot reach the upstream agent at $T/no-such-agent.sock" \
    "$(cat "$T/pipe3.log")"

printf %b "$OVERSIZED" | timeout 20 "$RELAY" - "$E2E_AGENT_SOCK" 2>"$T/pipe4.log" | cat >/dev/null
rc=${PIPESTATUS[1]}
expect_eq "a frame over 256 KiB: status 1" 1 "$rc"
expect_contains "... and the log says why" "client sent a frame of 262145 bytes, over the 262144 byte limit" \
    "$(cat "$T/pipe4.log")"

: >"$T/a-file"
e2e_run "$RELAY" - "$E2E_AGENT_SOCK" <"$T/a-file"
expect_rc "stdin that is a file: refused at start, status 1" 1
expect_contains "... saying why" "stdin is a file or device" "$E2E_ERR"
echo | "$RELAY" - "$E2E_AGENT_SOCK" >"$T/a-file" 2>"$T/pipe5.log"
rc=${PIPESTATUS[1]}
expect_eq "stdout that is a file: refused at start, status 1" 1 "$rc"
expect_contains "... saying why" "stdout is a file or device" "$(cat "$T/pipe5.log")"

# --- UPSTREAM "-": keyward-relay SOCK - | keyward-relay - AGENT --------------
mkfifo "$T/back"
{
    {
        "$RELAY" -d "$T/up.sock" - <"$T/back" 2>>"$T/up.log"
        echo $? >"$T/up.rc"
    } | {
        "$RELAY" -d - "$E2E_AGENT_SOCK" >"$T/back" 2>>"$T/down.log"
        echo $? >"$T/down.rc"
    }
} &
chain_pid=$!
for _ in $(seq 1 50); do [ -S "$T/up.sock" ] && break; sleep 0.1; done
check "a relay with UPSTREAM - listens" test -S "$T/up.sock"
"$HOLD" "$T/up.sock" 2000 expect-open >"$T/hold.out" 2>&1 &
hold_pid=$!
rl_wait_for "$T/hold.out" ready 10
expect_contains "its first client is served" ready "$(cat "$T/hold.out")"
e2e_run env SSH_AUTH_SOCK="$T/up.sock" ssh-add -l
check "a second client, meanwhile, is not served (ssh-add -l exit $E2E_RC)" \
    test "$E2E_RC" != 0 -a "$E2E_RC" != 124
expect_not_contains "... it gets no answer" "$fp" "$E2E_OUT"
expect_contains "... and the relay says why" "the upstream is stdin/stdout, which carries one client only" \
    "$(cat "$T/up.log")"
wait "$hold_pid"
expect_eq "the first client stayed connected meanwhile" 0 "$?"
if wait_gone "$chain_pid" 5; then
    _e2e_ok "when the first client leaves, both relays exit"
else
    _e2e_notok "when the first client leaves, both relays exit"
fi
wait "$chain_pid" 2>/dev/null
chain_pid=
expect_eq "... with status 0 and 0" "0 0" "$(cat "$T/up.rc" 2>/dev/null) $(cat "$T/down.rc" 2>/dev/null)"
check "... and the listening relay removed its socket" test ! -e "$T/up.sock"
check "... logs have no sanitizer report" rl_log_clean "$T/up.log"
check "... (the other one either)" rl_log_clean "$T/down.log"

if [ "$E2E_FAILED" != 0 ]; then
    for f in "$T"/relay-stdio-*.log "$T"/pipe*.log "$T/up.log" "$T/down.log"; do
        _e2e_show_log "$(basename "$f")" "$f"
    done
fi
e2e_finish
