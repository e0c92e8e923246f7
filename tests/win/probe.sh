#!/bin/bash
# keyward-probe.exe under Wine, over named pipes:
#   - against keyward-agent.exe on a private pipe, every check of a default
#     run passes (rebind-keeps-connection, the seed, included), read from
#     --json as tests/probe/lib.sh reads it; --no-modify skips exactly the
#     checks that add keys or lock; the --only check passes too;
#   - the probe removed every throwaway key it added, and sent no REMOVE_ALL;
#   - the address: -a, else SSH_AUTH_SOCK naming a pipe, else
#     \\.\pipe\openssh-ssh-agent; no agent, or an address that is not a
#     pipe (a Linux SSH_AUTH_SOCK), stops it with exit status 2;
#   - against pipe_fixture.exe the transport tells every outcome apart
#     within --timeout: no reply, part of a frame, an oversized header, a
#     close (two ways), a write the server never reads, and no free instance.
. "$(dirname "$0")/lib.sh" "$1"

PROBE=$WIN_BUILD/keyward-probe.exe
FIXTURE=$WIN_BUILD/tests/win/pipe_fixture.exe
for f in "$PROBE" "$FIXTURE"; do
    [ -f "$f" ] || fail "$f is not built (make win)"
done
# Wine hands the Linux environment to Windows programs: a Linux agent's
# socket here would be the probe's default address.
unset SSH_AUTH_SOCK

# The pipe_fixture.exe that runs now, stopped on exit as the agent is.
fixture_pid=
stop_fixture() {
    if [ -n "$fixture_pid" ]; then
        kill "$fixture_pid" 2>/dev/null || true
        wait "$fixture_pid" 2>/dev/null || true
        fixture_pid=
    fi
}
trap 'stop_fixture; cleanup' EXIT
# ctest's timeout, or Ctrl-C: exit through the trap above.
trap 'exit 1' INT TERM HUP

# Runs the probe; sets out (stdout and stderr, without CRs) and rc.
run_probe() {
    rc=0
    out=$(wine_run "$PROBE" "$@" 2>&1 | tr -d '\r') || rc=$?
}

# The --json line of one check ("" if it is not there).
result_line() {
    printf '%s\n' "$out" | grep -F "{\"name\": \"$1\"," || true
}

# expect_verdict NAME VERDICT [TEXT...]: the check's verdict, and strings
# its JSON line must contain.
expect_verdict() {
    local name=$1 want=$2 line got text
    shift 2
    line=$(result_line "$name")
    got=$(printf '%s\n' "$line" | sed -n 's/.*"verdict": "\([a-z]*\)".*/\1/p')
    [ "$got" = "$want" ] || fail "$name: verdict \"$got\", expected $want; probe output:
$out"
    for text in "$@"; do
        grep -qF -- "$text" <<<"$line" ||
            fail "$name: no \"$text\" in: $line"
    done
}

expect_rc() {
    [ "$rc" -eq "$1" ] || fail "$2: exit status $rc, expected $1; probe output:
$out"
}

# A string as it appears inside a JSON string literal (backslashes doubled).
json_escaped() {
    printf '%s' "${1//\\/\\\\}"
}

# The checks of a default run, and those among them that modify the agent.
list=$(wine_run "$PROBE" --list | tr -d '\r')
all=$(printf '%s\n' "$list" | awk '!/\[only with --only\]/ { print $1 }')
modifying=$(printf '%s\n' "$list" | awk '!/\[only with --only\]/ && /\[modifies\]/ { print $1 }')
n_all=$(printf '%s\n' "$all" | wc -l)
if [ "$n_all" -le 10 ] || [ -z "$modifying" ]; then
    fail "--list printed: $list"
fi

# ---- keyward-agent.exe on a private pipe ----
pipe=$(pipe_for probe)
start_agent -D -a "$pipe"

run_probe -a "$pipe" --json
expect_rc 0 "full run"
for name in $all; do
    expect_verdict "$name" pass
done
expect_verdict rebind-keeps-connection pass "refused with 28 (EXTENSION_FAILURE)"
expect_verdict concurrent-connections pass "256 of 256 connections answered"
[ "$(printf '%s\n' "$out" | grep -c '^ *{"name": ')" -eq "$n_all" ] ||
    fail "expected $n_all results: $out"
summary="\"summary\": {\"pass\": $n_all, \"fail\": 0, \"unsupported\": 0, \"skipped\": 0, \"error\": 0}"
grep -qF "$summary" <<<"$out" || fail "no $summary in: $out"
grep -qF "\"agent\": \"$(json_escaped "$pipe")\"" <<<"$out" ||
    fail "the report does not name $pipe: $out"

run_probe -a "$pipe" --json --no-modify
expect_rc 0 "--no-modify run"
for name in $all; do
    if grep -qx -- "$name" <<<"$modifying"; then
        expect_verdict "$name" skipped "(--no-modify)"
    else
        expect_verdict "$name" pass
    fi
done

# The check that runs only when named: LOCK/UNLOCK without a passphrase.
run_probe -a "$pipe" --json --only malformed-lock
expect_rc 0 "malformed-lock run"
expect_verdict malformed-lock pass

# SSH_AUTH_SOCK naming a pipe stands in for -a, as for OpenSSH for Windows.
rc=0
out=$(SSH_AUTH_SOCK=$pipe wine_run "$PROBE" --json --only rebind-keeps-connection 2>&1 |
    tr -d '\r') || rc=$?
expect_rc 0 "run with SSH_AUTH_SOCK"
expect_verdict rebind-keeps-connection pass
grep -qF "\"agent\": \"$(json_escaped "$pipe")\"" <<<"$out" ||
    fail "SSH_AUTH_SOCK was not used: $out"

# Every key the probe added (ADD_IDENTITY -> SUCCESS in the agent's log)
# was removed again, by its own fingerprint; nothing was removed wholesale.
added=$(sed -n 's/.* ADD_IDENTITY([0-9]*) [^ ]* \(SHA256:[^ ]*\) -> SUCCESS.*/\1/p' "$agent_log" |
    sort)
removed=$(sed -n 's/.* REMOVE_IDENTITY([0-9]*) [^ ]* \(SHA256:[^ ]*\) -> SUCCESS.*/\1/p' \
    "$agent_log" | sort)
[ -n "$added" ] || fail "the agent logged no key added by the probe"
[ "$added" = "$removed" ] || fail "keys added: $added; keys removed: $removed"
if grep -q "REMOVE_ALL" "$agent_log"; then
    fail "the probe sent REMOVE_ALL_IDENTITIES"
fi
stop_agent

# ---- the default pipe ----
# One name for everyone using this Wine prefix: take turns with agent_cli.sh.
exec 8>"$WINEPREFIX.default-pipe.lock"
flock 8
start_agent -D
run_probe --json --only rebind-keeps-connection
expect_rc 0 "run on the default pipe"
expect_verdict rebind-keeps-connection pass
grep -qF '"agent": "\\\\.\\pipe\\openssh-ssh-agent"' <<<"$out" ||
    fail "not run on \\\\.\\pipe\\openssh-ssh-agent: $out"
stop_agent
flock -u 8
agent_log= # from here on, a failure has nothing to do with the agent

# ---- no agent there ----
nobody=$(pipe_for nobody)
run_probe -a "$nobody"
expect_rc 2 "a pipe nobody serves"
grep -qF "cannot connect to the agent at $nobody: no such pipe" <<<"$out" ||
    fail "no reason given for $nobody: $out"
rc=0
out=$(SSH_AUTH_SOCK=/tmp/ssh-XXXX/agent.1 wine_run "$PROBE" 2>&1 | tr -d '\r') || rc=$?
expect_rc 2 "a Linux socket path in SSH_AUTH_SOCK"
grep -qF "/tmp/ssh-XXXX/agent.1: not a named pipe" <<<"$out" ||
    fail "a Unix socket path was not refused as such: $out"

# ---- pipe_fixture.exe: each outcome, each within its deadline ----
# expect_outcome MODE CHECK WAITS TEXT: against pipe_fixture in MODE, CHECK
# fails and says TEXT, after WAITS full 1 s timeouts (0 or 1): a wait must
# last its whole timeout, and no longer than that plus Wine's start-up.
expect_outcome() {
    local mode=$1 check=$2 waits=$3 text=$4 fpipe log start ms
    fpipe=$(pipe_for "fixture-$mode")
    # Its own log, made here: the background shell may open it only later.
    log=$work/fixture-$mode-$check.log
    : >"$log"
    wine "$FIXTURE" "$fpipe" "$mode" >"$log" 2>&1 &
    fixture_pid=$!
    for _ in $(seq 1 300); do
        grep -q listening "$log" && break
        kill -0 "$fixture_pid" 2>/dev/null || fail "pipe_fixture $mode: $(cat "$log")"
        sleep 0.1
    done
    grep -q listening "$log" || fail "pipe_fixture $mode did not start listening within 30 s"
    start=$(date +%s%N)
    run_probe -a "$fpipe" --json --timeout 1000 --only "$check"
    ms=$((($(date +%s%N) - start) / 1000000))
    stop_fixture
    expect_rc 1 "$check against pipe_fixture $mode"
    expect_verdict "$check" fail "$text"
    if [ "$ms" -lt $((waits * 1000)) ] || [ "$ms" -ge $((waits * 1000 + 10000)) ]; then
        fail "$check against pipe_fixture $mode took $ms ms, expected $waits s and a little"
    fi
    echo "pipe_fixture $mode: $check failed as it should, in $ms ms"
}

expect_outcome silent rebind-keeps-connection 1 "no reply within 1000 ms"
expect_outcome silent oversized-frame 1 "the agent stopped reading: send blocked for 1000 ms"
expect_outcome partial rebind-keeps-connection 1 \
    "malformed frame: nothing more after 3 bytes of a length field: 000000"
expect_outcome oversized rebind-keeps-connection 0 \
    "malformed frame: header announces 2147483647 bytes, over the 262144 limit: 7fffffff"
expect_outcome cut rebind-keeps-connection 0 \
    "malformed frame: connection closed after 3 of 9 announced bytes: 00000009 0c0000"
expect_outcome close rebind-keeps-connection 0 "connection closed without a reply"
expect_outcome disconnect rebind-keeps-connection 0 "connection closed without a reply"
expect_outcome busy rebind-keeps-connection 1 \
    "cannot open a connection: timed out: every instance of the pipe stayed busy"
echo "PASS"
