#!/usr/bin/env bash
# keyward-agent started the way systemd's socket activation starts it: the
# service manager binds the socket, and the agent gets it as fd 3 with
# LISTEN_PID and LISTEN_FDS (sd_listen_fds(3)).
#
#   1. With systemd-socket-activate (Debian's systemd package), which, like a
#      .socket unit, starts the agent only when the first client connects:
#      ssh-add -l through the socket ("The agent has no identities.", exit 1),
#      then a key added and listed, a confirmation through askpass (which must
#      see neither fd 3 nor the LISTEN_* variables), and after SIGTERM the
#      socket file is still there: it belongs to the manager.
#   2. With sd_activate (tests/install/sd_activate.c), which can also pass
#      what a misconfigured manager might: two sockets, a socket that does
#      not listen, nothing on fd 3, a LISTEN_PID meant for another process.
#
#     tests/install/systemd_socket_activation.sh build/keyward-agent build/tests/sd_activate
#
# Exit status: 0 pass, 1 fail, 77 skipped. Uses tests/e2e/lib.sh.

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
if [ $# -ne 2 ]; then
    echo "usage: $0 AGENT SD_ACTIVATE" >&2
    exit 1
fi
LAUNCHER=$2
e2e_init "$1"
A=$E2E_AGENT
[ -x "$LAUNCHER" ] || e2e_fatal "launcher '$LAUNCHER' is not executable"
E2E_AGENT_LOG=$E2E_TMP/agent.log
: >"$E2E_AGENT_LOG"

# wait_for COND...: up to 10 s for a condition.
wait_for() {
    local i
    for i in $(seq 1 100); do
        "$@" && return 0
        sleep 0.1
    done
    : "$i"
    return 1
}
# (called through wait_for and check, which shellcheck cannot see)
# shellcheck disable=SC2317
exe_is() { [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$2" ]; }
# shellcheck disable=SC2317
gone() { ! kill -0 "$1" 2>/dev/null; }

# stop_agent: SIGTERM, then the exit status must be 0 (a clean shutdown).
stop_agent() {
    local rc
    kill -TERM "$E2E_AGENT_PID" 2>/dev/null
    if wait_for gone "$E2E_AGENT_PID"; then
        wait "$E2E_AGENT_PID"
        rc=$?
    else
        rc=timeout
        e2e_stop_agent
    fi
    E2E_AGENT_PID=
    expect_eq "the agent exits 0 on SIGTERM" 0 "$rc"
}

# An askpass that records what it inherited, and approves.
cat >"$E2E_TMP/askpass" <<EOF
#!/bin/sh
{
    echo "prompt: \$1"
    echo "fd3: \$(readlink /proc/\$\$/fd/3 2>/dev/null || echo none)"
    env | grep '^LISTEN_' || echo "no LISTEN_ variables"
} >>"$E2E_TMP/askpass.log"
exit 0
EOF
chmod 700 "$E2E_TMP/askpass"
e2e_keygen k1 ed25519 ""
e2e_keygen k2 ed25519 ""
echo "a message" >"$E2E_TMP/msg"

# --- 1. systemd-socket-activate ---------------------------------------------
# %t/keyward/agent.sock of the .socket unit, with its DirectoryMode=0700.
mkdir -m 700 "$E2E_TMP/run" "$E2E_TMP/run/keyward"
sock=$E2E_TMP/run/keyward/agent.sock
ssa=$(command -v systemd-socket-activate || true)
if [ -n "$ssa" ]; then
    ssa=$(readlink -f "$ssa")
    # Like a service, the agent gets only the environment it is given (and
    # the sanitizer settings of an ASan build).
    env_args=(-E SSH_ASKPASS="$E2E_TMP/askpass" -E DISPLAY=:0)
    for var in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
        [ -z "${!var:-}" ] || env_args+=(-E "$var")
    done
    "$ssa" -l "$sock" "${env_args[@]}" -- "$A" -D \
        </dev/null >"$E2E_TMP/ssa.stdout" 2>>"$E2E_AGENT_LOG" &
    E2E_AGENT_PID=$!
    check "systemd-socket-activate made the socket" wait_for test -S "$sock"
    check "no agent runs before the first connection" exe_is "$E2E_AGENT_PID" "$ssa"

    e2e_run env SSH_AUTH_SOCK="$sock" ssh-add -l
    expect_rc "ssh-add -l through the passed socket: no identities (exit 1)" 1
    expect_contains "and says so" "The agent has no identities." "$E2E_OUT"
    check "the first connection started keyward-agent (same pid)" \
        exe_is "$E2E_AGENT_PID" "$(readlink -f "$A")"
    expect_contains "the agent logs where it listens" \
        "listening on $sock (socket passed by the service manager)" "$(cat "$E2E_AGENT_LOG")"

    e2e_run env SSH_AUTH_SOCK="$sock" ssh-add "$E2E_TMP/k1"
    expect_rc "ssh-add adds a key through it" 0
    e2e_run env SSH_AUTH_SOCK="$sock" ssh-add -l
    expect_rc "ssh-add -l lists it (exit 0)" 0
    expect_contains "with its fingerprint" "$(e2e_fp "$E2E_TMP/k1.pub")" "$E2E_OUT"

    # A confirmation runs askpass, a child of the agent.
    e2e_run env SSH_AUTH_SOCK="$sock" ssh-add -c "$E2E_TMP/k2"
    expect_rc "ssh-add -c adds a key that needs confirmation" 0
    e2e_drop_private k2
    e2e_run env SSH_AUTH_SOCK="$sock" \
        ssh-keygen -Y sign -q -n file -f "$E2E_TMP/k2.pub" "$E2E_TMP/msg"
    expect_rc "a signature with it, confirmed through askpass, works" 0
    askpass_log=$(cat "$E2E_TMP/askpass.log" 2>/dev/null)
    expect_contains "askpass was asked" "prompt: " "$askpass_log"
    expect_contains "askpass sees no LISTEN_ variables" "no LISTEN_ variables" "$askpass_log"
    expect_not_contains "askpass did not inherit the listening socket" "fd3: socket:" \
        "$askpass_log"

    stop_agent
    check "the socket file is still there after the agent exits" test -S "$sock"
else
    e2e_log "systemd-socket-activate not found (Debian package systemd): part 1 skipped"
fi

# --- 2. sd_activate: the same protocol, and what a broken manager passes ---
sock2=$E2E_TMP/run/keyward/agent2.sock
"$LAUNCHER" "$sock2" "$A" -d </dev/null >"$E2E_TMP/sd.stdout" 2>>"$E2E_AGENT_LOG" &
E2E_AGENT_PID=$!
check "sd_activate made the socket" wait_for test -S "$sock2"
e2e_run env SSH_AUTH_SOCK="$sock2" ssh-add -l
expect_rc "sd_activate: ssh-add -l answers (exit 1, no identities)" 1
e2e_run env SSH_AUTH_SOCK="$sock2" ssh-add "$E2E_TMP/k1"
e2e_run env SSH_AUTH_SOCK="$sock2" ssh-add -l
expect_contains "sd_activate: a key added is listed" "$(e2e_fp "$E2E_TMP/k1.pub")" "$E2E_OUT"
expect_eq "nothing on stdout (no shell commands to evaluate)" "" "$(cat "$E2E_TMP/sd.stdout")"
expect_contains "-d logs every request" "REQUEST_IDENTITIES" "$(cat "$E2E_AGENT_LOG")"
stop_agent
check "sd_activate: the socket file is still there after the agent exits" test -S "$sock2"

# shellcheck disable=SC2034  # read by e2e_run in lib.sh
E2E_CMD_TIMEOUT=10
e2e_run "$LAUNCHER" --fds 2 "$E2E_TMP/two.sock" "$A" -D
expect_rc "two sockets are refused" 1
expect_contains "and the error says why" "passed 2 sockets" "$E2E_ERR"
e2e_run "$LAUNCHER" --no-listen "$E2E_TMP/nolisten.sock" "$A" -D
expect_rc "a socket that does not listen is refused" 1
expect_contains "and the error says why" "not a listening socket" "$E2E_ERR"
e2e_run "$LAUNCHER" --no-fd "$E2E_TMP/nofd.sock" "$A" -D
expect_rc "LISTEN_FDS=1 without an fd 3 is refused" 1
expect_contains "and the error names the fd" "fd 3 from the service manager" "$E2E_ERR"
e2e_run "$LAUNCHER" "$E2E_TMP/a.sock" "$A" -D -a "$E2E_TMP/other.sock"
expect_rc "-a with a passed socket is refused" 1
expect_contains "and the error says why" "-a and a command cannot be used" "$E2E_ERR"
check "no socket was made at the -a path" test ! -e "$E2E_TMP/other.sock"
e2e_run "$LAUNCHER" "$E2E_TMP/c.sock" "$A" true
expect_rc "a command with a passed socket is refused" 1

# LISTEN_PID names another process: nothing was passed to us. The agent
# makes its own socket, and the command it runs sees no LISTEN_ variables.
cat >"$E2E_TMP/child.sh" <<'CHILD'
#!/bin/sh
echo "sock=$SSH_AUTH_SOCK"
echo "listen_vars=$(env | grep -c '^LISTEN_')"
ssh-add -l </dev/null >/dev/null 2>&1
echo "list=$?"
CHILD
chmod 700 "$E2E_TMP/child.sh"
mkdir -m 700 "$E2E_TMP/h" # lib.sh checks that the tests leave $HOME/.ssh alone
e2e_run env HOME="$E2E_TMP/h" \
    "$LAUNCHER" --wrong-pid "$E2E_TMP/w.sock" "$A" "$E2E_TMP/child.sh"
expect_rc "LISTEN_PID of another process: the agent starts as usual" 0
expect_contains "with a socket of its own" "sock=$E2E_TMP/h/.ssh/agent/s." "$E2E_OUT"
expect_contains "that serves" "list=1" "$E2E_OUT"
expect_contains "and its command sees no LISTEN_ variables" "listen_vars=0" "$E2E_OUT"

# (A sanitizer build writes its reports into the log when an agent exits.)
check "the agent log has no sanitizer report" _e2e_no_sanitizer_report "$E2E_AGENT_LOG"
e2e_finish
