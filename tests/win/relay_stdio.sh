#!/bin/bash
# keyward-relay.exe on stdin/stdout ("-"), under Wine, driven from Linux as
# WSL2 drives it (README.md, "WSL2: the Windows agent from Linux"):
#
#   relay_stdio.sh WIN_BUILD_DIR STDIO_BRIDGE
#
#   - one relay per client, each started with pipes as its stdin and stdout
#     (stdio_bridge -p, tests/relay/stdio_bridge.c) and then by socat with
#     README's own command line: the real ssh-add adds a key over it (to
#     keyward-agent.exe on its named pipe), lists it, and ssh-keygen -Y sign
#     signs through it; ssh-keygen -Y verify accepts the signature, and not
#     over another message. Every relay exits 0 soon after its client closes;
#   - in a shell pipeline: a request sent before stdin ends is answered;
#     an unreachable upstream and a frame over 256 KiB end it with status 1
#     and the reason; a file as stdin or stdout is refused at start;
#   - Ctrl-C while it serves stdin/stdout: exit 0;
#   - UPSTREAM "-": a relay listening on a pipe with its upstream on
#     stdin/stdout (chained to a second relay through a pipe and a fifo)
#     serves its first client, refuses a second one meanwhile, and both
#     relays exit when the first client leaves.
. "$(dirname "$0")/lib.sh" "$1"

BRIDGE=${2:?usage: relay_stdio.sh WIN_BUILD_DIR STDIO_BRIDGE}
HOLD=$WIN_BUILD/tests/win/hold_client.exe
for f in "$RELAY" "$HOLD" "$BRIDGE"; do
    [ -f "$f" ] || fail "$f is not built"
done
command -v socat >/dev/null || fail "socat is not installed (scripts/setup.sh installs it)"
unset SSH_AUTH_SOCK

apipe=$(pipe_for stdio-agent)
# The same pipe as README writes it for socat: forward slashes.
apipe_slashes=${apipe//\\//}

bridge_pid=
chain_pid=
hold_pid=
stop_extra() {
    local p
    for p in $bridge_pid $chain_pid $hold_pid; do
        pkill -P "$p" 2>/dev/null || true
        kill "$p" 2>/dev/null || true
    done
}
trap 'stop_extra; cleanup' EXIT
trap 'exit 1' INT TERM HUP

# wait_for FILE TEXT: 0 once FILE contains TEXT (30 s at most).
wait_for() {
    local i
    for i in $(seq 1 300); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

start_agent -a "$apipe"

ssh-keygen -q -t ed25519 -N '' -C stdio-user -f "$work/user"
fp=$(ssh-keygen -lf "$work/user.pub" | cut -d' ' -f2)
printf 'stdio-user %s\n' "$(cut -d' ' -f1,2 "$work/user.pub")" >"$work/allowed_signers"
printf 'a message signed through keyward-relay.exe\n' >"$work/msg"

# use_relay NAME SOCKET: ssh-add, ssh-add -l and ssh-keygen -Y sign through
# SOCKET, each its own client (and so its own relay process).
use_relay() {
    local name=$1 sock=$2 out
    SSH_AUTH_SOCK=$sock ssh-add -D >/dev/null 2>&1 || fail "$name: ssh-add -D"
    SSH_AUTH_SOCK=$sock ssh-add "$work/user" 2>/dev/null || fail "$name: ssh-add failed"
    out=$(SSH_AUTH_SOCK=$sock ssh-add -l 2>&1) || fail "$name: ssh-add -l: $out"
    grep -qF "$fp" <<<"$out" || fail "$name: ssh-add -l does not list the key: $out"
    rm -f "$work/msg.sig"
    SSH_AUTH_SOCK=$sock ssh-keygen -Y sign -f "$work/user.pub" -n file "$work/msg" \
        >/dev/null 2>&1 || fail "$name: ssh-keygen -Y sign failed"
    ssh-keygen -Y verify -f "$work/allowed_signers" -I stdio-user -n file \
        -s "$work/msg.sig" <"$work/msg" >/dev/null || fail "$name: the signature does not verify"
    if printf 'tampered\n' | ssh-keygen -Y verify -f "$work/allowed_signers" -I stdio-user \
        -n file -s "$work/msg.sig" >/dev/null 2>&1; then
        fail "$name: the signature verifies over another message"
    fi
}

# ---- one relay per client, stdin and stdout two pipes (as from WSL) ----
sock=$work/bridge.sock
relay_log=$work/relay-bridge.log
"$BRIDGE" -p -l "$sock" -s "$work/bridge.status" -- \
    wine "$RELAY" -d - "$apipe" </dev/null >/dev/null 2>"$relay_log" &
bridge_pid=$!
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "stdio_bridge did not listen"
use_relay "two pipes" "$sock"
# Every relay (one per client) has exited, 0, soon after its client closed.
n=0
for _ in $(seq 1 300); do
    n=$(grep -c "serving stdin/stdout" "$relay_log" || true)
    [ "$(cat "$work/bridge.status" 2>/dev/null | wc -l)" -ge "$n" ] && break
    sleep 0.1
done
[ "$n" -ge 4 ] || fail "expected at least 4 relays (one per client), saw $n"
st=$(cat "$work/bridge.status")
bad=$(grep -vE '^client [0-9]+: exit 0, [0-9]+ ms after the client closed$' <<<"$st" || true)
[ -z "$bad" ] || fail "a relay did not exit 0 after its client closed: $bad"
slow=$(sed -nE 's/.*exit 0, ([0-9]+) ms after.*/\1/p' <<<"$st" | awk '$1 > 5000')
[ -z "$slow" ] || fail "a relay took more than 5 s to exit after its client closed: $st"
for what in "request ADD_IDENTITY(17)" "request REQUEST_IDENTITIES(11)" "request SIGN_REQUEST(13)" \
    "reply SIGN_RESPONSE(14)"; do
    grep -qF "$what" "$relay_log" || fail "no \"$what\" in the relays' log"
done
grep -q "ADD_IDENTITY(17) ED25519 $fp -> SUCCESS" "$agent_log" ||
    fail "the agent did not log the key added through the relay"
pkill -P "$bridge_pid" 2>/dev/null || true
kill "$bridge_pid" 2>/dev/null || true
wait "$bridge_pid" 2>/dev/null || true
bridge_pid=
echo "stdio_bridge -p: $n relays, each exited 0 after its client"

# ---- README's socat line ----
sock=$work/socat.sock
relay_log=$work/relay-socat.log
socat UNIX-LISTEN:"$sock",fork,umask=077 \
    EXEC:"wine $RELAY -d - $apipe_slashes" </dev/null >/dev/null 2>"$relay_log" &
bridge_pid=$!
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "socat did not listen"
use_relay socat "$sock"
grep -qF "relaying stdin/stdout to $apipe" "$relay_log" ||
    fail "the relay did not read $apipe_slashes as $apipe"
pkill -P "$bridge_pid" 2>/dev/null || true
kill "$bridge_pid" 2>/dev/null || true
wait "$bridge_pid" 2>/dev/null || true
bridge_pid=
echo "socat EXEC: served"
relay_log=

# ---- in a shell pipeline ----
LIST='\0\0\0\001\013'     # REQUEST_IDENTITIES
OVERSIZED='\0\004\0\001' # a header announcing 256 KiB + 1
set +e # the relay's own status, not the pipeline's
printf %b "$LIST" | wine_run "$RELAY" -d - "$apipe" 2>"$work/p1.log" | cat >"$work/p1.out"
rc=${PIPESTATUS[1]}
[ "$rc" -eq 0 ] || fail "a request, then the end of stdin: status $rc: $(cat "$work/p1.log")"
[ "$(od -An -tx1 -j4 -N1 "$work/p1.out" | tr -d ' ')" = 0c ] ||
    fail "the request sent before stdin ended was not answered: $(od -An -tx1 "$work/p1.out")"

# A burst of replies larger than every pipe buffer on the way (stdout's,
# and the private pipe's inside the relay), to a reader that starts late,
# with stdin ending at once: every reply arrives, although the relay is
# done and exits as soon as the last one has left it.
n=3000
one=$(wc -c <"$work/p1.out")
for _ in $(seq 1 "$n"); do printf %b "$LIST"; done >"$work/burst"
cat "$work/burst" | wine_run "$RELAY" - "$apipe" 2>"$work/burst.log" |
    { sleep 2; cat; } >"$work/burst.out"
rc=${PIPESTATUS[1]}
[ "$rc" -eq 0 ] || fail "a burst of $n requests: status $rc: $(cat "$work/burst.log")"
[ "$(wc -c <"$work/burst.out")" -eq $((n * one)) ] ||
    fail "a burst of $n requests: $(wc -c <"$work/burst.out") bytes of replies, expected $((n * one))"

printf %b "$LIST" | wine_run "$RELAY" - '\\.\pipe\keyward-test-nobody' 2>"$work/p2.log" |
    cat >"$work/p2.out"
rc=${PIPESTATUS[1]}
[ "$rc" -eq 1 ] || fail "an unreachable upstream: status $rc"
[ ! -s "$work/p2.out" ] || fail "the relay answered by itself with no upstream"
grep -qF 'cannot reach the upstream agent at \\.\pipe\keyward-test-nobody' "$work/p2.log" ||
    fail "an unreachable upstream: $(cat "$work/p2.log")"

printf %b "$OVERSIZED" | wine_run "$RELAY" - "$apipe" 2>"$work/p3.log" | cat >/dev/null
rc=${PIPESTATUS[1]}
set -e
[ "$rc" -eq 1 ] || fail "a frame over 256 KiB: status $rc"
grep -qF "client sent a frame of 262145 bytes, over the 262144 byte limit" "$work/p3.log" ||
    fail "a frame over 256 KiB: $(cat "$work/p3.log")"

: >"$work/a-file"
rc=0
msg=$(wine_run "$RELAY" - "$apipe" <"$work/a-file" 2>&1 | tr -d '\r') || rc=$?
[ "$rc" -eq 1 ] && grep -qF "stdin is a file or device" <<<"$msg" ||
    fail "stdin that is a file: status $rc: $msg"
rc=0
echo | wine_run "$RELAY" - "$apipe" >"$work/a-file" 2>"$work/p4.log" || rc=$?
[ "$rc" -eq 1 ] && grep -qF "stdout is a file or device" "$work/p4.log" ||
    fail "stdout that is a file: status $rc: $(cat "$work/p4.log")"
echo "pipeline: answered, and each failure ends it with status 1 and the reason"

# ---- Ctrl-C while serving stdin/stdout ----
# stdin a fifo held open (so it does not end), stdout a pipe.
mkfifo "$work/in"
relay_log=$work/relay-int.log
wine "$RELAY" -d - "$apipe" <"$work/in" > >(cat >/dev/null) 2>"$relay_log" &
relay_pid=$!
exec 7>"$work/in"
wait_for "$relay_log" "upstream connected" || fail "the stdin/stdout relay did not start"
stop_relay
exec 7>&-
grep -q "closed (relay shutting down)" "$relay_log" || fail "the connection was not closed at Ctrl-C"
echo "Ctrl-C: stopped, exit 0"

# ---- UPSTREAM "-": LISTEN -> stdin/stdout -> a second relay -> the agent ----
rpipe=$(pipe_for stdio-up)
mkfifo "$work/back"
{
    {
        wine "$RELAY" -d "$rpipe" - <"$work/back" 2>>"$work/up.log"
        echo $? >"$work/up.rc"
    } | {
        wine "$RELAY" -d - "$apipe" >"$work/back" 2>>"$work/down.log"
        echo $? >"$work/down.rc"
    }
} &
chain_pid=$!
relay_log=$work/up.log
wait_for "$work/up.log" "listening on $rpipe" || fail "a relay with UPSTREAM - did not listen"
wine_run "$HOLD" "$rpipe" 3000 expect-open >"$work/hold.out" 2>&1 &
hold_pid=$!
wait_for "$work/hold.out" ready || fail "its first client was not served: $(cat "$work/hold.out")"
status=0
out=$(wine_run "$HOLD" "$rpipe" 100 expect-open 2>&1 | tr -d '\r') || status=$?
[ "$status" -eq 1 ] || fail "a second client was served meanwhile: $out"
grep -qF "the upstream is stdin/stdout, which carries one client only" "$work/up.log" ||
    fail "the relay did not say why it refused the second client"
status=0
wait "$hold_pid" || status=$?
hold_pid=
[ "$status" -eq 0 ] || fail "the first client was not served throughout: $(cat "$work/hold.out")"
for _ in $(seq 1 300); do
    [ -s "$work/up.rc" ] && [ -s "$work/down.rc" ] && break
    sleep 0.1
done
[ "$(cat "$work/up.rc" "$work/down.rc" 2>/dev/null | tr -d '\n')" = 00 ] ||
    fail "when the first client left, the relays exited with \"$(cat "$work/up.rc" "$work/down.rc" 2>/dev/null)\", not 0 and 0"
wait "$chain_pid" 2>/dev/null || true
chain_pid=
echo "UPSTREAM -: one client served, a second refused, both relays exited 0"

relay_log=
stop_agent
echo "PASS"
