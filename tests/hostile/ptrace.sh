#!/usr/bin/env bash
# A process of the agent's own uid cannot attach to it with gdb -p or
# ptrace, nor read /proc/PID/mem.
#
# Root may do all of that (CAP_SYS_PTRACE), so both sides run as uid 65534
# (setpriv): the agent, and an attacker that starts it as its child. Being
# the parent keeps Yama (ptrace_scope=1) from being what refuses: the only
# thing left in the way is the agent's PR_SET_DUMPABLE=0. The attacker
# waits until the agent answers a list request (its hardening is done by
# then), then:
#   - opens and reads /proc/PID/mem             must fail (EACCES)
#   - PTRACE_ATTACH                             must fail (EPERM)
#   - execs gdb -p PID (gdb keeps its pid, so it is the parent too)
#                                               must print "ptrace: Operation not permitted."
# Each attack is first made against a control, sleep(1) started the same
# way: it must succeed, or the environment forbids ptrace outright and the
# test proves nothing (skip). Where Yama allows it, gdb -p from a separate
# process (not the parent) is refused too, and /proc/PID/limits shows that
# the agent allows itself no core file. Root, finally, can read the
# agent's memory: the boundary is the user, as docs/security.md says.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
[ "$(id -u)" = 0 ] || e2e_skip "needs root to run the agent and the attacker as uid 65534"
e2e_need setpriv gdb

# Everything uid 65534 needs, in a directory it owns: copies of the
# programs (the build tree may be out of its reach) and the socket.
chmod 711 "$E2E_TMP"
nb=$E2E_TMP/nobody
mkdir -m 700 "$nb"
cp "$E2E_AGENT" "$nb/keyward-agent"
cp "$HOSTILE_CLIENT" "$nb/hostile_client"
cp /bin/sleep "$nb/sleep"
chown -R 65534:65534 "$nb"
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH=/usr/bin:/bin HOME=/)

# attack MODE TARGET...: prints the helper's output; the target is killed after.
attack() {
    local mode=$1 wait=$2 out
    shift 2
    out=$(cd "$nb" && timeout -k 5 60 "${as_nobody[@]}" "$nb/hostile_client" attack "$mode" \
        "$wait" -- "$@" 2>&1)
    printf '%s\n' "$out"
    # gdb mode leaves the target behind (gdb replaced the helper).
    local p
    p=$(hostile_value pid "$out")
    [ -n "$p" ] && kill "$p" 2>/dev/null
    return 0
}

sock=$nb/agent.sock
for mode in mem ptrace; do
    control=$(attack "$mode" - "$nb/sleep" 30)
    want=$([ "$mode" = mem ] && echo read || echo attached)
    if [ "$(hostile_value "$mode" "$control")" != "$want" ]; then
        e2e_skip "uid 65534 cannot even $mode a dumpable process here ($(hostile_value "$mode" "$control")): ptrace is restricted by the environment"
    fi
    expect_eq "control: uid 65534 can $mode its own dumpable child" "$want" \
        "$(hostile_value "$mode" "$control")"
    rm -f "$sock"
    out=$(attack "$mode" "$sock" "$nb/keyward-agent" -D -a "$sock")
    expect_eq "the agent, run as uid 65534, answered first" yes "$(hostile_value ready "$out")"
    expect_eq "uid 65534 cannot $mode the agent it started" \
        "$([ "$mode" = mem ] && echo "Permission denied" || echo "Operation not permitted")" \
        "$(hostile_value "$mode" "$out")"
done

control=$(attack gdb - "$nb/sleep" 30)
expect_match "control: gdb -p attaches to a dumpable process of the same uid" \
    '^\[Inferior 1 \(process [0-9]+\) detached\]' "$control"
expect_not_contains "control: and is not refused" "Operation not permitted" "$control"
rm -f "$sock"
out=$(attack gdb "$sock" "$nb/keyward-agent" -D -a "$sock")
expect_eq "the agent answered before gdb came" yes "$(hostile_value ready "$out")"
expect_contains "gdb -p on the agent: refused" "ptrace: Operation not permitted." "$out"

# gdb -p from an unrelated process of the same uid, where Yama lets it try.
scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)
if [ "$scope" = 0 ]; then
    rm -f "$sock"
    # setpriv and env exec, so $! is the agent's pid.
    "${as_nobody[@]}" "$nb/keyward-agent" -D -a "$sock" </dev/null >/dev/null 2>&1 &
    apid=$!
    hostile_wait_for 10 "$HOSTILE_CLIENT" list "$sock" >/dev/null
    check "an agent runs as uid 65534 (pid ${apid:-none})" \
        test -n "$apid" -a "$(stat -c %u "/proc/${apid:-0}" 2>/dev/null)" = 65534
    e2e_run "${as_nobody[@]}" gdb -nx -batch -p "$apid" -ex "info inferiors"
    expect_contains "gdb -p from a sibling process: refused" "ptrace: Operation not permitted." \
        "$E2E_OUT $E2E_ERR"
    e2e_run "${as_nobody[@]}" cat "/proc/$apid/mem"
    expect_contains "cat /proc/PID/mem from a sibling process: refused" "Permission denied" "$E2E_ERR"
    expect_match "and it allows itself no core dump (RLIMIT_CORE 0)" \
        '^Max core file size +0 +0 ' "$(cat "/proc/$apid/limits")"
    e2e_run cat "/proc/$apid/maps"
    expect_rc "root still can read the agent's maps (root is trusted, see docs/security.md)" 0
    kill "$apid" 2>/dev/null
    wait "$apid" 2>/dev/null
else
    e2e_log "Yama ptrace_scope=$scope: only the parent may attach, so the sibling checks are left out"
fi
e2e_finish
