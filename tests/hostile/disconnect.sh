#!/usr/bin/env bash
# A client that disconnects in the middle of a sign or of a confirmation
# prompt leaves nothing behind.
#
# Sign: an RSA-4096 signature (tens of milliseconds, done on a worker
# thread) is requested 50 times, each time hanging up right after sending.
# Confirmation: the agent's askpass (SSH_ASKPASS) records its pid and
# sleeps for five minutes; the client asks for a signature with a key added
# with `ssh-add -c`, waits until the prompt is up, and hangs up.
#
# Afterwards the agent has the file descriptors and threads it had before
# (counted in /proc/PID/fd and /proc/PID/task after a warm-up, so the
# worker pool's threads and the signal pipe already exist), no child process (the askpass
# was killed, within 5 s), bounded memory growth, and still signs and
# confirms for the next client. In the sanitizer build, LeakSanitizer at
# the agent's exit (e2e_finish stops it and reads its log) finds nothing
# either: no job, reply or connection was leaked.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"

# The askpass: records its pid, then stands for a user who never answers.
cat >"$E2E_TMP/askpass" <<ASKPASS
#!/bin/sh
echo \$\$ >>"$E2E_TMP/askpass.pids"
exec sleep 300
ASKPASS
chmod 755 "$E2E_TMP/askpass"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent
pid=$E2E_AGENT_PID

e2e_keygen rsa4096 rsa 4096
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add "$E2E_TMP/rsa4096"
expect_rc "ssh-add RSA-4096" 0
e2e_run ssh-add -c "$E2E_TMP/ed25519"
expect_rc "ssh-add -c Ed25519 (every use confirmed)" 0

# --- mid-sign ----------------------------------------------------------
e2e_run "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/rsa4096.pub" 4
expect_eq "warm-up: an RSA-4096 signature (SHA-512)" SIGN_RESPONSE "$(hostile_value sign "$E2E_OUT")"
fds=$(hostile_fd_count "$pid")
threads=$(hostile_thread_count "$pid")
rss=$(hostile_rss_kb "$pid")
for i in $(seq 1 50); do
    "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/rsa4096.pub" 4 0 >/dev/null
done
# The last signatures may still be running on the worker threads.
hostile_wait_for 10 hostile_fds_at_most "$pid" "$fds"
now_fds=$(hostile_fd_count "$pid")
check "50 hang-ups mid-sign: no more fds than before ($now_fds <= $fds)" test "$now_fds" -le "$fds"
expect_eq "threads as before" "$threads" "$(hostile_thread_count "$pid")"
rss_after=$(hostile_rss_kb "$pid")
check "memory grew by at most 16 MiB (${rss} -> ${rss_after} KiB)" \
    test "$((rss_after - rss))" -le 16384
e2e_run "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/rsa4096.pub" 4
expect_eq "the next client's RSA-4096 signature" SIGN_RESPONSE "$(hostile_value sign "$E2E_OUT")"

# --- mid-confirmation ---------------------------------------------------
askpass_running() { # pid: alive and a child of the agent
    [ -n "$1" ] && [ "$(_e2e_children "$pid" | grep -cx "$1")" = 1 ]
}
asked() { [ -s "$E2E_TMP/askpass.pids" ]; }
fds=$(hostile_fd_count "$pid")
for round in 1 2 3; do
    : >"$E2E_TMP/askpass.pids"
    "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/ed25519.pub" 0 3000 >/dev/null &
    client=$!
    hostile_wait_for 5 asked
    ask=$(head -n 1 "$E2E_TMP/askpass.pids")
    check "round $round: the prompt is up (askpass pid ${ask:-none})" askpass_running "$ask"
    wait "$client"
    check "round $round: the client hung up; the askpass is gone within 5 s" \
        hostile_wait_for 5 eval '! kill -0 "$ask" 2>/dev/null'
done
expect_eq "no process is left under the agent" "" "$(hostile_descendants "$pid")"
hostile_wait_for 5 hostile_fds_at_most "$pid" "$fds"
now_fds=$(hostile_fd_count "$pid")
check "no more fds than before the prompts ($now_fds <= $fds)" test "$now_fds" -le "$fds"

# The next client is still asked, and a refusal (askpass killed) is a FAILURE.
: >"$E2E_TMP/askpass.pids"
"$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/ed25519.pub" 0 >"$E2E_TMP/sign.out" &
client=$!
hostile_wait_for 5 asked
ask=$(head -n 1 "$E2E_TMP/askpass.pids")
check "a new prompt comes up for the next client" askpass_running "$ask"
kill "$ask" 2>/dev/null
wait "$client"
expect_eq "an askpass that dies refuses the signature" FAILURE \
    "$(hostile_value sign "$(cat "$E2E_TMP/sign.out")")"
e2e_run "$HOSTILE_CLIENT" list "$E2E_AGENT_SOCK"
expect_eq "the agent lists both keys" 2 "$(hostile_value keys "$E2E_OUT")"
e2e_finish
