#!/usr/bin/env bash
# Issue 22, finding 13: a signature finished on a worker thread was not
# re-checked before it was delivered. A job that completed after the agent
# was locked, or after its key was removed or had expired, was still
# answered with the signature. Now agent_job_finish() re-checks, as is
# done after a confirmation: FAILURE and a log line instead.
#
# One client pipelines RSA-4096 signatures (about 7 ms each, on a worker
# thread one after another, so one is always under way); meanwhile another
# client locks the agent, or removes the key, or the key's lifetime runs
# out. The audit log, written on the loop thread in the order things
# happen, must show no successful signature after the lock, the removal or
# the expiry.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
SCRIPT=$(dirname "$HOSTILE_CLIENT")/hostile_script

audit=$E2E_TMP/audit.log
hostile_start_agent -l "$audit"
e2e_keygen rsa4096 rsa 4096
rsa=$E2E_TMP/rsa4096.pub

# after EVENT OUTCOME: sign events with OUTCOME after the first successful EVENT.
after() {
    awk -v ev="\"event\":\"$1\"" -v out="\"outcome\":\"$2\"" '
        !seen && index($0, ev) && index($0, "\"outcome\":\"ok\"") { seen = 1; next }
        seen && index($0, "\"event\":\"sign\"") && index($0, out) { n++ }
        END { print n + 0 }' "$audit"
}
# pipeline N: N RSA-4096 signatures in one write, in the background; the
# replies are read into $E2E_TMP/pipeline.out.
pipeline() {
    local args=() i
    for i in $(seq 1 "$1"); do args+=("sign:$rsa:4"); done
    "$SCRIPT" "$E2E_AGENT_SOCK" "${args[@]}" send read:"$1" >"$E2E_TMP/pipeline.out" &
    PIPELINE=$!
}

# 1. Locked while signing.
e2e_run ssh-add "$E2E_TMP/rsa4096"
expect_rc "ssh-add RSA-4096" 0
: >"$audit"
pipeline 200
sleep 0.2
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" lock:issue22 send read:1
expect_eq "another client locks the agent meanwhile" SUCCESS "$(hostile_value reply1 "$E2E_OUT")"
wait "$PIPELINE"
check "signatures were still asked for after the lock ($(after lock refused) refused)" \
    test "$(after lock refused)" -gt 0
expect_eq "no signature delivered after the lock" 0 "$(after lock ok)"
check "the one under way is refused, with a log line" \
    grep -qF "agent was locked while signing" "$E2E_AGENT_LOG"
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" unlock:issue22 send read:1
expect_eq "unlocked" SUCCESS "$(hostile_value reply1 "$E2E_OUT")"

# 2. Removed while signing.
: >"$audit"
pipeline 200
sleep 0.2
e2e_run ssh-add -d "$rsa"
expect_rc "another client removes the key meanwhile" 0
wait "$PIPELINE"
check "signatures were still asked for after the removal ($(after remove refused) refused)" \
    test "$(after remove refused)" -gt 0
expect_eq "no signature delivered after the removal" 0 "$(after remove ok)"
check "the one under way is refused, with a log line" \
    grep -qF "key was removed or expired while signing" "$E2E_AGENT_LOG"

# 3. Expired while signing: a lifetime of one second, signatures for about four.
: >"$audit"
e2e_run ssh-add -t 1 "$E2E_TMP/rsa4096"
expect_rc "ssh-add -t 1 RSA-4096" 0
n0=$(grep -c "key was removed or expired while signing" "$E2E_AGENT_LOG")
pipeline 600
wait "$PIPELINE"
check "signatures were still asked for after the expiry ($(after expire refused) refused)" \
    test "$(after expire refused)" -gt 0
expect_eq "no signature delivered after the expiry" 0 "$(after expire ok)"
n1=$(grep -c "key was removed or expired while signing" "$E2E_AGENT_LOG")
check "the one under way is refused, with a log line ($n0 -> $n1)" test "$n1" -gt "$n0"
e2e_finish
