#!/bin/bash
# keyward-agent.exe on a named pipe under Wine, measured by win_bench.exe
# (bench/win_bench.c): the sign and list rows of `make bench`, with no
# targets, because Wine is not Windows (issue 20). Uses the Windows tests'
# Wine prefix and helpers (tests/win/lib.sh).
#   bench/wine_bench.sh WIN_BUILD_DIR [win_bench options: -w SECONDS -r REPS]
# shellcheck source=tests/win/lib.sh
. "$(dirname "$0")/../tests/win/lib.sh" "$1"
shift

BENCH=$WIN_BUILD/win_bench.exe
[ -f "$BENCH" ] || fail "$BENCH is not built (make win)"
pipe=$(pipe_for bench)
# Without -d: the agent logs nothing per request, as installed.
agent_log=$work/agent.log
wine "$AGENT" --key-store "$(winpath "$store_dir")" -a "$pipe" >"$agent_log" 2>&1 &
agent_pid=$!
started_pid=$agent_pid
for _ in $(seq 1 300); do
    grep -q "listening on" "$agent_log" && break
    kill -0 "$agent_pid" 2>/dev/null || fail "keyward-agent.exe exited before listening"
    sleep 0.1
done
echo "wine_bench: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $(wine --version)"
timeout 900 wine "$BENCH" -p "$pipe" "$@" || fail "win_bench.exe failed"
