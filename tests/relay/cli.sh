#!/usr/bin/env bash
# keyward-relay's command line and its listening socket:
# --help/--version, usage errors, a LISTEN path that already exists, the
# socket's mode, its removal on exit (SIGTERM, SIGINT) and only of our own
# socket, and the peer uid check (our uid or root, as the agent).
#
#     tests/relay/cli.sh build/keyward-relay build/keyward-agent
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=tests/relay/lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -ne 2 ]; then
    echo "usage: $0 RELAY AGENT_BINARY" >&2
    exit 1
fi
R=$1
shift
[ -x "$R" ] || { echo "not ok 1 - relay '$R' is not executable"; exit 1; }
e2e_init "$1"
T=$E2E_TMP
other_pid=

stop_all_on_exit() {
    local rc=$?
    [ -n "$RL_PID" ] && rl_stop
    [ -n "$other_pid" ] && kill "$other_pid" 2>/dev/null
    (exit "$rc")
    _e2e_cleanup
}
trap stop_all_on_exit EXIT

# --- --help, --version, usage errors ----------------------------------------
e2e_run "$R" --version
expect_rc "--version exits 0" 0
expect_match "--version names the program and version" '^keyward-relay [0-9]+\.[0-9]+' "$E2E_OUT"
e2e_run "$R" --help
expect_rc "--help exits 0" 0
expect_contains "--help shows the synopsis" "usage: keyward-relay [-d] LISTEN UPSTREAM" "$E2E_OUT"
e2e_run "$R"
expect_rc "no arguments: usage error" 1
expect_contains "... prints usage" "usage:" "$E2E_ERR"
e2e_run "$R" "$T/a.sock"
expect_rc "one argument: usage error" 1
e2e_run "$R" -x "$T/a.sock" "$T/b.sock"
expect_rc "an unknown option: usage error" 1
e2e_run "$R" - -
expect_rc "LISTEN and UPSTREAM both -: refused" 1
expect_contains "... saying so" "cannot both be -" "$E2E_ERR"
e2e_run "$R" "$T/a.sock" "$T/a.sock"
expect_rc "LISTEN = UPSTREAM: refused" 1
expect_contains "... saying so" "relay to itself" "$E2E_ERR"
check "... and nothing was created" test ! -e "$T/a.sock"

# --- LISTEN must not exist ----------------------------------------------------
e2e_start_agent
e2e_run "$R" "$E2E_AGENT_SOCK" "$T/elsewhere.sock"
expect_rc "LISTEN is the running agent's socket: refused" 1
expect_contains "... saying that it exists" "$E2E_AGENT_SOCK already exists" "$E2E_ERR"
check "... and the agent's socket is still there" test -S "$E2E_AGENT_SOCK"
e2e_run ssh-add -l
expect_rc "... and still answers" 1
: >"$T/plain-file"
e2e_run "$R" "$T/plain-file" "$E2E_AGENT_SOCK"
expect_rc "LISTEN is an existing file: refused" 1
check "... and the file is left alone" test -f "$T/plain-file"
e2e_run "$R" "$T/no-such-dir/relay.sock" "$E2E_AGENT_SOCK"
expect_rc "LISTEN in a missing directory: refused" 1
expect_contains "... saying why" "No such file or directory" "$E2E_ERR"

# --- the socket: 0600, served, removed on exit ------------------------------
rl_start "$R" "$T/relay.sock" "$E2E_AGENT_SOCK" "$T/relay.log" || e2e_fatal "relay did not start"
expect_eq "the socket is created with mode 0600" "srw-------" "$(stat -c %A "$T/relay.sock")"
e2e_run env SSH_AUTH_SOCK="$T/relay.sock" ssh-add -l
expect_rc "it is served (no keys)" 1
expect_contains "... with one log line per connection (-d)" "accepted from pid" "$(cat "$T/relay.log")"
rl_stop
expect_eq "SIGTERM: exit status 0" 0 "$RL_STATUS"
check "SIGTERM: the socket is removed" test ! -e "$T/relay.sock"

"$R" "$T/relay.sock" "$E2E_AGENT_SOCK" </dev/null >/dev/null 2>"$T/int.log" &
ipid=$!
for _ in $(seq 1 50); do [ -S "$T/relay.sock" ] && break; sleep 0.1; done
kill -INT "$ipid"
wait "$ipid"
expect_eq "SIGINT: exit status 0" 0 "$?"
check "SIGINT: the socket is removed" test ! -e "$T/relay.sock"
expect_eq "without -d nothing is logged for normal use" "" "$(cat "$T/int.log")"

# Another relay took the path over after ours was removed: ours must not
# remove the new one on exit.
rl_start "$R" "$T/relay.sock" "$E2E_AGENT_SOCK" "$T/first.log" || e2e_fatal "relay did not start"
rm -f "$T/relay.sock"
"$R" "$T/relay.sock" "$E2E_AGENT_SOCK" </dev/null >/dev/null 2>"$T/second.log" &
other_pid=$!
for _ in $(seq 1 50); do [ -S "$T/relay.sock" ] && break; sleep 0.1; done
rl_stop
check "a relay leaves alone a socket that replaced its own" test -S "$T/relay.sock"
kill "$other_pid"
wait "$other_pid" 2>/dev/null
other_pid=
check "... which its own relay removes on exit" test ! -e "$T/relay.sock"

# --- only our uid (or root) may connect -------------------------------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    mkdir -p "$T/open" && chmod 755 "$T/open" && chmod 711 "$T"
    rl_start "$R" "$T/open/sock" "$E2E_AGENT_SOCK" "$T/uid.log" || e2e_fatal "relay did not start"
    chmod 666 "$T/open/sock" # the test opens the door; the uid check must hold
    e2e_run setpriv --reuid=65534 --regid=65534 --clear-groups \
        env SSH_AUTH_SOCK="$T/open/sock" ssh-add -l
    check "a client of another uid is not served (ssh-add exit $E2E_RC)" test "$E2E_RC" != 0
    expect_not_contains "... it gets no answer" "no identities" "$E2E_OUT"
    rl_wait_for "$T/uid.log" "uid 65534: not our user" 5
    expect_contains "... the refusal is logged with the peer's uid" "uid 65534: not our user" \
        "$(cat "$T/uid.log")"
    expect_not_contains "... and no upstream connection was made for it" "upstream connected" \
        "$(cat "$T/uid.log")"
    e2e_run env SSH_AUTH_SOCK="$T/open/sock" ssh-add -l
    expect_rc "our own uid is still served" 1
    rl_stop
    chmod 700 "$T"
    check "the relay log has no sanitizer report" rl_log_clean "$T/uid.log"
else
    e2e_log "skipping the other-uid check: needs root and setpriv"
fi

check "relay logs have no sanitizer report" rl_log_clean "$T/relay.log"
e2e_finish
