#!/usr/bin/env bash
# Once a bug (docs/security.md, "Findings"), now fixed: keyward-agent makes itself
# non-dumpable (prctl PR_SET_DUMPABLE 0) only after its socket is bound
# and listening, and in daemon mode after the fork. A same-uid process
# that attaches with ptrace inside that window (inotify tells it the
# moment the socket appears) stays attached after the prctl and can read
# every key added later. OpenSSH's ssh-agent disables tracing first thing
# in main().
#
# The order is read from strace, which is deterministic where a race is
# not: PR_SET_DUMPABLE must come before bind() in the foreground (-D) and
# in the daemon (both processes followed with -f).
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
e2e_need strace
order() { # strace log: "ok" if PR_SET_DUMPABLE comes before bind, else what came
    awk '/prctl\(PR_SET_DUMPABLE/ && !b { print "ok"; exit } /bind\(/ { b = 1 }
         END { if (b) print "bind() first" }' "$1" | head -n 1
}

sock=$E2E_TMP/fg.sock
timeout -k 2 10 strace -f -qq -e trace=prctl,bind,listen -o "$E2E_TMP/fg.trace" \
    "$E2E_AGENT" -D -a "$sock" </dev/null >/dev/null 2>&1 &
spid=$!
hostile_wait_for 5 test -S "$sock"
hostile_wait_for 5 "$HOSTILE_CLIENT" list "$sock" >/dev/null
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
sed 's/^/# /' "$E2E_TMP/fg.trace"
expect_eq "foreground: non-dumpable before the socket is bound" ok "$(order "$E2E_TMP/fg.trace")"

sock=$E2E_TMP/bg.sock
strace -f -qq -e trace=prctl,bind,listen -o "$E2E_TMP/bg.trace" \
    "$E2E_AGENT" -s -a "$sock" </dev/null >"$E2E_TMP/bg.out" 2>&1 &
spid=$!
hostile_wait_for 5 grep -q '^SSH_AGENT_PID=' "$E2E_TMP/bg.out"
apid=$(sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p' "$E2E_TMP/bg.out")
hostile_wait_for 5 "$HOSTILE_CLIENT" list "$sock" >/dev/null
[ -n "$apid" ] && kill "$apid" 2>/dev/null
wait "$spid" 2>/dev/null
sed 's/^/# /' "$E2E_TMP/bg.trace"
expect_eq "daemon: non-dumpable before the socket is bound" ok "$(order "$E2E_TMP/bg.trace")"
e2e_finish
