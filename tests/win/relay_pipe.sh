#!/bin/bash
# keyward-relay.exe from a named pipe to keyward-agent.exe, under Wine:
#   - keyward-probe.exe through the relay passes every check of a default
#     run, rebind-keeps-connection included, and the relay opened one
#     upstream connection per client;
#   - a frame over 256 KiB is refused by the relay itself (its log says so;
#     the agent never sees it);
#   - two clients binding at once (bind_client.exe, tests/relay/) each keep
#     their own binding through the relay, as directly on the agent;
#   - the pipe carries the agent's DACL (our user and SYSTEM, protected),
#     and a client whose user is refused (the KEYWARD_TEST_REFUSE_SID hook
#     of platform_init_user()) is closed unanswered, with no upstream made;
#   - a LISTEN pipe that an agent or another relay serves is refused with a
#     clear message, and the one serving it goes on;
#   - the agent killed: a client holding a connection through the relay is
#     closed at once; with no agent new clients are closed (the relay says
#     why); an agent started again on the pipe serves new clients;
#   - Ctrl-C with a client connected: the client is closed, exit 0.
. "$(dirname "$0")/lib.sh" "$1"

PROBE=$WIN_BUILD/keyward-probe.exe
BIND=$WIN_BUILD/tests/win/bind_client.exe
HOLD=$WIN_BUILD/tests/win/hold_client.exe
for f in "$RELAY" "$PROBE" "$BIND" "$HOLD"; do
    [ -f "$f" ] || fail "$f is not built (make win)"
done
# A Linux agent's socket here would be the probe's default address.
unset SSH_AUTH_SOCK

apipe=$(pipe_for relay-agent)
rpipe=$(pipe_for relay)

# Clients run in the background are stopped on exit too.
hold_pid=
trap 'if [ -n "$hold_pid" ]; then kill "$hold_pid" 2>/dev/null || true; fi; cleanup' EXIT
trap 'exit 1' INT TERM HUP

# count TEXT FILE: lines of FILE containing TEXT.
count() {
    grep -cF -- "$1" "$2" || true
}

start_agent -a "$apipe"
start_relay "$rpipe" "$apipe"
sid=$(agent_sid)
[ -n "$sid" ] || fail "the agent did not say which user it serves"
grep -qF "listening on $rpipe for user $sid" "$relay_log" ||
    fail "the relay does not serve our user: $(cat "$relay_log")"

# ---- keyward-probe.exe through the relay ----
list=$(wine_run "$PROBE" --list | tr -d '\r')
all=$(printf '%s\n' "$list" | awk '!/\[only with --only\]/ { print $1 }')
n_all=$(printf '%s\n' "$all" | wc -l)
[ "$n_all" -gt 10 ] || fail "--list printed: $list"
rc=0
out=$(wine_run "$PROBE" -a "$rpipe" --json 2>&1 | tr -d '\r') || rc=$?
[ "$rc" -eq 0 ] || fail "the probe through the relay: exit status $rc: $out"
for name in $all; do
    grep -qF "{\"name\": \"$name\", \"verdict\": \"pass\"" <<<"$out" ||
        fail "$name did not pass through the relay: $(grep -F "\"$name\"" <<<"$out")"
done
grep -qF "{\"name\": \"rebind-keeps-connection\", \"verdict\": \"pass\"" <<<"$out" ||
    fail "rebind-keeps-connection did not pass through the relay"
summary="\"summary\": {\"pass\": $n_all, \"fail\": 0, \"unsupported\": 0, \"skipped\": 0, \"error\": 0}"
grep -qF "$summary" <<<"$out" || fail "no $summary in: $out"
accepted=$(count "accepted from pid" "$relay_log")
upstreams=$(count "upstream connected" "$relay_log")
[ "$accepted" -gt 200 ] && [ "$accepted" -eq "$upstreams" ] ||
    fail "$accepted clients accepted but $upstreams upstream connections made"
echo "probe through the relay: $n_all checks passed; $accepted clients, $upstreams upstream connections"

# The probe's oversized-frame check sent 256 KiB + 1: the relay refused it.
grep -qF "client sent a frame of 262145 bytes, over the 262144 byte limit" "$relay_log" ||
    fail "the relay did not refuse the oversized frame itself"
if grep -q "over the 262144 byte limit" "$agent_log"; then
    fail "the oversized frame reached the agent"
fi

# ---- two clients binding at once ----
rc=0
direct=$(wine_run "$BIND" "$apipe" 2>&1 | tr -d '\r') || rc=$?
[ "$rc" -eq 0 ] || fail "bind_client directly on the agent: status $rc: $direct"
before=$(count "upstream connected" "$relay_log")
rc=0
out=$(wine_run "$BIND" "$rpipe" 2>&1 | tr -d '\r') || rc=$?
[ "$rc" -eq 0 ] || fail "bind_client through the relay: status $rc (1: B saw A's binding): $out"
for line in "A: session-bind (authentication) -> 6 (SUCCESS)" \
    "B: session-bind (authentication) -> 6 (SUCCESS)" \
    "A: second session-bind (authentication) -> 28"; do
    grep -qF "$line" <<<"$out" || fail "bind_client through the relay: no \"$line\" in: $out"
done
after=$(count "upstream connected" "$relay_log")
[ $((after - before)) -eq 2 ] ||
    fail "two clients made $((after - before)) upstream connections, not 2"
echo "two clients binding through the relay: each kept its own binding"

# ---- who may connect ----
dacl=$(wine_run "$CLIENT" -p "$rpipe" dacl | sed -n 1p | tr -d '\r')
[ "$dacl" = "D:P(A;;FA;;;$sid)(A;;FA;;;SY)" ] || fail "the relay's pipe DACL is \"$dacl\""

# ---- LISTEN already served ----
status=0
msg=$(wine_run "$RELAY" "$apipe" "$rpipe" 2>&1 | tr -d '\r') || status=$?
[ "$status" -eq 1 ] || fail "a relay on the agent's pipe gave status $status: $msg"
grep -qF "$apipe is already served by another program" <<<"$msg" ||
    fail "a relay on the agent's pipe said: $msg"
status=0
msg=$(wine_run "$RELAY" "$rpipe" "$apipe" 2>&1 | tr -d '\r') || status=$?
[ "$status" -eq 1 ] || fail "a second relay on $rpipe gave status $status: $msg"
grep -qF "$rpipe is already served by another program" <<<"$msg" ||
    fail "a second relay on $rpipe said: $msg"
wine_run "$HOLD" "$rpipe" 100 expect-open >/dev/null ||
    fail "the first relay stopped serving after a second one was refused"
echo "a pipe already served: refused with a clear message"

stop_relay
# The refusal path: our own SID, refused by the test hook.
KEYWARD_TEST_REFUSE_SID=$sid start_relay "$rpipe" "$apipe"
wine_run "$CLIENT" -p "$rpipe" refused || fail "a refused user's client was served"
grep -q "refused connection from pid [0-9]* user $sid: not our user" "$relay_log" ||
    fail "no refusal logged"
if grep -q "upstream connected" "$relay_log"; then
    fail "an upstream connection was made for a refused client"
fi
stop_relay
echo "a refused user: closed unanswered, no upstream connection"

# ---- the agent goes away ----
start_relay "$rpipe" "$apipe"
start_holder "$work/hold.out" ready "hold_client" wine_run "$HOLD" "$rpipe" 20000 expect-close
kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=
status=0
wait "$hold_pid" || status=$?
hold_pid=
out=$(tr -d '\r' <"$work/hold.out")
[ "$status" -eq 0 ] || fail "the held connection was not closed when the agent died: $out"
grep -qE "closed by the peer after [0-9]{1,4} ms" <<<"$out" || fail "hold_client: $out"
grep -q "upstream closed" "$relay_log" || fail "the relay did not log the upstream closing"

# No agent: a new client is accepted, closed, never answered.
status=0
out=$(wine_run "$HOLD" "$rpipe" 100 expect-open 2>&1 | tr -d '\r') || status=$?
[ "$status" -eq 1 ] && grep -qF "the first list request was not answered" <<<"$out" ||
    fail "with no agent, a new client got: status $status: $out"
grep -qF "cannot reach the upstream agent at $apipe" "$relay_log" ||
    fail "the relay did not say why it closed the client"
kill -0 "$relay_pid" 2>/dev/null || fail "the relay exited when its agent died"

# An agent on the same pipe again: new clients are served by it.
start_agent -a "$apipe"
wine_run "$HOLD" "$rpipe" 100 expect-open >/dev/null ||
    fail "a new client was not served by the new agent"
echo "agent killed: held client closed at once, new clients served by the next agent"

# ---- Ctrl-C with a client connected ----
start_holder "$work/held.out" '^held' "pipe_client hold" wine_run "$CLIENT" -p "$rpipe" hold
stop_relay
status=0
wait "$hold_pid" || status=$?
hold_pid=
[ "$status" -eq 0 ] || fail "Ctrl-C left a client connected: $(cat "$work/held.out")"
grep -q "closed (relay shutting down)" "$relay_log" || fail "no connection closed at shutdown"
stop_agent
echo "PASS"
