# shellcheck shell=bash
#
# keyward hostile-client tests: shared helpers.
#
# Each tests/hostile/*.sh (except this file) is registered with CTest as
# hostile_<name> and run as
#
#     tests/hostile/NAME.sh AGENT HOSTILE_CLIENT
#
# AGENT is keyward-agent, HOSTILE_CLIENT the C helper built from
# hostile_client.c (the client side: raw frames, timing, memory scans).
# Reporting, assertions, temp dirs and cleanup are tests/e2e/lib.sh's (TAP
# output, exit 0 pass, 1 fail, 77 skip; KEYWARD_E2E_KEEP=1 keeps the temp
# dir); this file adds what the hostile tests need on top: starting the
# agent under a wrapper (prlimit, setpriv) or with a given askpass, the
# shared corpus, and /proc readings of the agent process.
#
# The tests run as root here. Where the threat is "another process of the
# same user", they run both sides as uid 65534 (nobody) with setpriv.

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

HOSTILE_CLIENT=

# hostile_init "$@": AGENT HOSTILE_CLIENT
hostile_init() {
    if [ $# -ne 2 ] || [ ! -x "$2" ]; then
        echo "usage: $0 AGENT HOSTILE_CLIENT" >&2
        exit 1
    fi
    HOSTILE_CLIENT=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    e2e_init "$1"
}

# hostile_corpus: sets HOSTILE_CORPUS to the shared corpus beside the
# checkout (../shared/corpus, or $KEYWARD_CORPUS_DIR), or fails the test:
# a replay of nothing must not pass.
hostile_corpus() {
    local src dir
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    dir=${KEYWARD_CORPUS_DIR:-$src/../shared/corpus}
    if [ ! -d "$dir/agent" ] || [ ! -d "$dir/keys" ]; then
        e2e_fatal "no shared corpus at $dir: put it at ../shared/corpus beside the checkout, or set KEYWARD_CORPUS_DIR"
    fi
    HOSTILE_CORPUS=$(cd "$dir" && pwd)
}

# hostile_start_agent [WRAPPER... --] [AGENT_FLAGS...]: start the agent in
# the foreground on $E2E_TMP/agent.sock, as `WRAPPER... AGENT -D FLAGS -a
# SOCK`, with stderr in $E2E_TMP/agent.log and HOSTILE_ASKPASS (default:
# refuse) as its askpass. The wrapper must exec the agent, so that the pid
# we get is the agent's (prlimit and setpriv do). Waits until it answers.
hostile_start_agent() {
    local wrapper=() flags=() i
    if printf '%s\n' "$@" | grep -qx -- '--'; then
        while [ "$1" != "--" ]; do wrapper+=("$1"); shift; done
        shift
    fi
    flags=("$@")
    E2E_AGENT_SOCK=${HOSTILE_SOCK:-$E2E_TMP/agent.sock}
    E2E_AGENT_LOG=$E2E_TMP/agent.log
    : >"$E2E_AGENT_LOG"
    rm -f "$E2E_AGENT_SOCK"
    SSH_ASKPASS=${HOSTILE_ASKPASS:-/bin/false} SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        "${wrapper[@]}" "$E2E_AGENT" -D "${flags[@]}" -a "$E2E_AGENT_SOCK" \
        </dev/null >>"$E2E_AGENT_LOG.stdout" 2>>"$E2E_AGENT_LOG" &
    E2E_AGENT_PID=$!
    for i in $(seq 1 100); do
        if ! kill -0 "$E2E_AGENT_PID" 2>/dev/null; then
            E2E_AGENT_PID=
            e2e_fatal "agent exited during startup: $(cat "$E2E_AGENT_LOG")"
        fi
        "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK" >/dev/null 2>&1 && break
        sleep 0.1
    done
    : "$i"
    "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK" >/dev/null 2>&1 ||
        e2e_fatal "agent socket $E2E_AGENT_SOCK did not answer within 10 s"
    export SSH_AUTH_SOCK=$E2E_AGENT_SOCK
    e2e_log "agent pid $E2E_AGENT_PID listening on $E2E_AGENT_SOCK"
}

# hostile_value NAME TEXT: the value of "NAME=value" in the helper's output.
hostile_value() {
    printf '%s\n' "$2" | sed -n "s/^$1=//p" | head -n 1
}

# Open file descriptors of a process.
hostile_fd_count() {
    ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# Threads of a process.
hostile_thread_count() {
    ls "/proc/$1/task" 2>/dev/null | wc -l
}

# Every descendant of a process (children first, then theirs).
hostile_descendants() {
    local child
    for child in $(_e2e_children "$1"); do
        echo "$child"
        hostile_descendants "$child"
    done
}

# Resident memory of a process in KiB.
hostile_rss_kb() {
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null
}

# hostile_fds_at_most PID N: the process holds N descriptors or fewer (read
# afresh on every call, so that hostile_wait_for can poll it).
hostile_fds_at_most() {
    [ "$(hostile_fd_count "$1")" -le "$2" ]
}

# hostile_wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
hostile_wait_for() {
    local n=$(($1 * 10)) i
    shift
    for i in $(seq 1 "$n"); do
        "$@" && return 0
        sleep 0.1
    done
    : "$i"
    return 1
}

# whole_json FILE (audit log tests): FILE is not empty, ends with a newline,
# and every line is one JSON object with a time, nothing more. (Not jq -e
# alone: its exit status says only whether the last value was true.)
whole_json() {
    local lines objects
    [ -s "$1" ] && [ "$(tail -c 1 "$1" | od -An -tx1 | tr -d ' ')" = 0a ] || return 1
    lines=$(wc -l <"$1")
    objects=$(jq -R -c 'fromjson? | objects | select(has("time")) | 1' "$1" 2>/dev/null | wc -l)
    [ "$lines" = "$objects" ]
}

# audit_prefill FILE: 1000 earlier lines (about 60 KiB) of whole JSON, for
# the tests that run the agent under RLIMIT_FSIZE=65536. The limit is on
# every file the agent writes, its own log (stderr) too: the audit log
# starts just below it, so that the agent's log stays far below.
audit_prefill() {
    local i
    for i in $(seq 1 1000); do
        printf '{"time":"2026-01-01T00:00:00Z","event":"filler","n":%05d}\n' "$i"
    done >"$1"
}
