# Shared by the win_* tests: run the cross-built Windows programs under Wine.
# Source it with the cross build directory as $1:
#   . "$(dirname "$0")/lib.sh" "$1"
# Each test gets a scratch directory ($work, removed on exit), its own pipe
# names, and an agent that is stopped on exit whatever happens.

set -euo pipefail

WIN_BUILD=${1:?usage: $0 WIN_BUILD_DIR}
WIN_BUILD=$(cd "$WIN_BUILD" && pwd)

# Skip only when Wine is truly absent; anything else missing is a failure.
if ! command -v wine >/dev/null 2>&1; then
    echo "SKIP: wine is not installed (apt-get install wine wine64)"
    exit 77
fi

# The private prefix that `make win` or the win_prefix fixture created.
export WINEPREFIX=$WIN_BUILD/wineprefix
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree=;mshtml="
if [ ! -f "$WINEPREFIX/.keyward-ready" ]; then
    echo "FAIL: no Wine prefix at $WINEPREFIX (tests/win/wineprefix.sh makes it)"
    exit 1
fi

AGENT=$WIN_BUILD/keyward-agent.exe
CLIENT=$WIN_BUILD/tests/win/pipe_client.exe
for f in "$AGENT" "$CLIENT"; do
    [ -f "$f" ] || { echo "FAIL: $f is not built (make win)"; exit 1; }
done

work=$(mktemp -d /tmp/keyward-win.XXXXXX)
agent_pid=
agent_log=
relay_pid=
socat_pid=
relay_log=
started_pid= # the last program wine_start_serving started

cleanup() {
    local p
    for p in $agent_pid $relay_pid $started_pid $socat_pid; do
        if kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    if [ -n "$agent_log" ] && [ -f "$agent_log" ]; then
        echo "--- agent log ($agent_log):"
        cat "$agent_log"
    fi
    if [ -n "$relay_log" ] && [ -f "$relay_log" ]; then
        echo "--- relay log ($relay_log):"
        cat "$relay_log"
    fi
    exit 1
}

# A pipe name that no other test (nor another run) uses at the same time.
# The Windows path separators are backslashes: \\.\pipe\NAME.
pipe_for() {
    printf '\\\\.\\pipe\\keyward-test-%s-%s' "$1" "$$"
}

# wine with a time limit: a hung program fails its test instead of the run.
wine_run() {
    timeout 120 wine "$@"
}

# wine_start_serving EXE LOG [ARGS...]: runs `wine EXE -d ARGS`, logging to
# LOG, and waits until it says it listens. Sets started_pid.
wine_start_serving() {
    local exe=$1 log=$2 name i
    shift 2
    name=$(basename "$exe")
    : >"$log"
    wine "$exe" -d "$@" >"$log" 2>&1 &
    started_pid=$!
    for i in $(seq 1 300); do
        if grep -q "listening on" "$log"; then
            return 0
        fi
        kill -0 "$started_pid" 2>/dev/null || fail "$name exited before listening"
        sleep 0.1
    done
    fail "$name did not start listening within 30 s"
}

# wine_interrupt PID NAME: Ctrl-C (SIGINT, which Wine turns into
# CTRL_C_EVENT); NAME must exit, with status 0, within 30 s.
wine_interrupt() {
    local pid=$1 name=$2 status=0 i
    kill -INT "$pid"
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "$name ignored Ctrl-C for 30 s"
    wait "$pid" || status=$?
    [ "$pid" = "$started_pid" ] && started_pid=
    [ "$status" -eq 0 ] || fail "$name exited with status $status after Ctrl-C"
}

# A Linux path as Wine names it: drive Z: is the Linux root.
winpath() {
    printf 'Z:%s' "${1//\//\\}"
}

# The key store of the agents a test starts: the test's own, since the
# default (%LOCALAPPDATA%\keyward\keys) is one for every test in the prefix.
store_dir=$work/store

# Starts keyward-agent.exe -d with the given arguments (and --key-store
# $store_dir unless they name a store), logging to $work/agent.log. Sets
# agent_pid, the process Ctrl-C goes to.
start_agent() {
    local a own=
    for a in "$@"; do
        case $a in --key-store | --no-key-store) own=1 ;; esac
    done
    agent_log=$work/agent.log
    if [ -n "$own" ]; then
        wine_start_serving "$AGENT" "$agent_log" "$@"
    else
        wine_start_serving "$AGENT" "$agent_log" --key-store "$(winpath "$store_dir")" "$@"
    fi
    agent_pid=$started_pid
}

# Ctrl-C: the agent must shut down cleanly, clear its keys and exit 0.
stop_agent() {
    wine_interrupt "$agent_pid" keyward-agent.exe
    agent_pid=
    grep -q "shutting down: interrupted" "$agent_log" || fail "no clean shutdown logged"
    grep -q "stopped; keys cleared" "$agent_log" || fail "keys not reported cleared"
}

# start_holder OUT PATTERN WHAT CMD...: runs CMD (a client that holds its
# connection open) in the background with its output in OUT, and waits
# until OUT matches PATTERN (it was served). Sets hold_pid.
start_holder() {
    local out=$1 pattern=$2 what=$3 i
    shift 3
    "$@" >"$out" 2>&1 &
    hold_pid=$!
    for i in $(seq 1 300); do
        grep -q "$pattern" "$out" && return 0
        kill -0 "$hold_pid" 2>/dev/null || break
        sleep 0.1
    done
    fail "$what was not served: $(cat "$out")"
}

# The user SID the agent serves, from its "listening on ... for user S-..." line.
agent_sid() {
    sed -n 's/.* for user \(S-[0-9-]*\) .*/\1/p' "$agent_log" | head -n 1
}

# keyward-relay.exe -d LISTEN UPSTREAM, logging to $work/relay.log, once it
# says it listens. Sets relay_pid, which Ctrl-C goes to.
RELAY=$WIN_BUILD/keyward-relay.exe
start_relay() {
    [ -f "$RELAY" ] || fail "$RELAY is not built (make win)"
    relay_log=$work/relay.log
    wine_start_serving "$RELAY" "$relay_log" "$@"
    relay_pid=$started_pid
}

# Ctrl-C: the relay must close every connection and exit 0.
stop_relay() {
    wine_interrupt "$relay_pid" keyward-relay.exe
    relay_pid=
    grep -q "shutting down: interrupted" "$relay_log" || fail "no relay shutdown logged"
}

# The service's store and keyward's store tests: the Linux ssh tools reach
# PIPE through keyward-relay.exe, one per client, on the Unix socket SOCK
# (README's WSL2 line, socat), and SSH_AUTH_SOCK names it. Sets socat_pid.
start_socket_relay() {
    local sock=$1 pipe=$2
    command -v socat >/dev/null || fail "socat is not installed (scripts/setup.sh installs it)"
    [ -f "$RELAY" ] || fail "$RELAY is not built (make win)"
    socat UNIX-LISTEN:"$sock",fork,umask=077 \
        EXEC:"wine $RELAY - ${pipe//\\//}" </dev/null >/dev/null 2>"$work/socat.log" &
    socat_pid=$!
    for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || fail "socat did not listen on $sock"
    export SSH_AUTH_SOCK=$sock
}
