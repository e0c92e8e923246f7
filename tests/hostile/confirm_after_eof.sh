#!/usr/bin/env bash
# Issue 22, finding 3: a confirmation started after the client's end of
# stream, and its prompt and connection leaked. An RSA-4096 signature and
# a confirm-constrained one in one write, then shutdown(SHUT_WR): the
# RSA signature runs on a worker, the end of stream arrives meanwhile (the
# agent stops reading), then the confirmation came up with nobody able to
# answer it or make it go away: the client reads the RSA reply and closes,
# and the prompt and one fd stayed until someone answered.
#
# Now no prompt starts for a connection whose client has ended its side
# (the confirmation is refused, FAILURE), and a pending prompt whose
# client hangs up is stopped: SIGTERM, then SIGKILL after 2 s. The askpass
# here ignores SIGTERM, so only the SIGKILL ends it.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
SCRIPT=$(dirname "$HOSTILE_CLIENT")/hostile_script

# An askpass that records its pid, ignores SIGTERM and never answers.
cat >"$E2E_TMP/askpass" <<ASKPASS
#!/bin/sh
echo \$\$ >>"$E2E_TMP/askpass.pids"
trap '' TERM
exec sleep 300
ASKPASS
chmod 755 "$E2E_TMP/askpass"
: >"$E2E_TMP/askpass.pids"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent
pid=$E2E_AGENT_PID
e2e_keygen rsa4096 rsa 4096
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add "$E2E_TMP/rsa4096"
expect_rc "ssh-add RSA-4096" 0
e2e_run ssh-add -c "$E2E_TMP/ed25519"
expect_rc "ssh-add -c Ed25519" 0
rsa=$E2E_TMP/rsa4096.pub
ed=$E2E_TMP/ed25519.pub

# Warm-up, so that the thread pool exists before fds are counted.
e2e_run "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$rsa" 4
expect_eq "warm-up RSA-4096 signature" SIGN_RESPONSE "$(hostile_value sign "$E2E_OUT")"
fds=$(hostile_fd_count "$pid")
no_prompt() { [ ! -s "$E2E_TMP/askpass.pids" ]; }

# 1. Half-closed and still reading: both requests answered, no prompt.
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" sign:"$rsa":4 sign:"$ed" send shut read:2 eof
expect_eq "half-closed: the RSA signature" SIGN_RESPONSE "$(hostile_value reply1 "$E2E_OUT")"
expect_eq "half-closed: the confirmation is refused, not asked" FAILURE \
    "$(hostile_value reply2 "$E2E_OUT")"
expect_eq "half-closed: then the agent closes" "connection closed" \
    "$(hostile_value "then" "$E2E_OUT")"
check "half-closed: no prompt was started" no_prompt

# 2. The reproducer: read the RSA reply, then close.
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" sign:"$rsa":4 sign:"$ed" send shut read:1 close
expect_eq "read one reply and closed: the RSA signature" SIGN_RESPONSE \
    "$(hostile_value reply1 "$E2E_OUT")"
sleep 1
check "read one reply and closed: no prompt was started" no_prompt
expect_eq "no process is left under the agent" "" "$(hostile_descendants "$pid")"
check "no more fds than before ($(hostile_fd_count "$pid") <= $fds)" \
    hostile_wait_for 5 hostile_fds_at_most "$pid" "$fds"

# 3. A prompt that is up when its client hangs up is stopped, even if it
#    ignores SIGTERM.
"$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$ed" 0 1500 >/dev/null &
client=$!
hostile_wait_for 5 test -s "$E2E_TMP/askpass.pids"
ask=$(head -n 1 "$E2E_TMP/askpass.pids")
check "the prompt is up (askpass pid ${ask:-none})" kill -0 "${ask:-none}"
wait "$client"
gone() { [ -n "$ask" ] && ! kill -0 "$ask" 2>/dev/null; }
check "the client hung up: the askpass, deaf to SIGTERM, is gone within 5 s" hostile_wait_for 5 gone
expect_contains "the agent says it killed it" "did not stop within 2000 ms of SIGTERM" \
    "$(cat "$E2E_AGENT_LOG")"
check "no more fds than before ($(hostile_fd_count "$pid") <= $fds)" \
    hostile_wait_for 5 hostile_fds_at_most "$pid" "$fds"
e2e_run "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK"
expect_eq "the agent lists both keys" 2 "$(hostile_value keys "$E2E_OUT")"

# Whatever an agent left behind must not outlive the test.
while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$E2E_TMP/askpass.pids"
e2e_finish
