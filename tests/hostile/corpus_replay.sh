#!/usr/bin/env bash
# Every case of the shared agent protocol corpus (../shared/corpus/agent,
# 7,061 wire streams from OpenSSH's fuzzing corpus) over the agent's real
# socket, one connection each, with the corpus keys loaded by ssh-add.
#
# For each case the helper (hostile_client replay) counts the complete
# frames, expects exactly one reply per frame (and the connection closed
# after a frame over 256 KiB), then checks that a new connection still
# gets an answer to a list request. Cases that changed the keys or locked
# the agent (seen from their successful replies) are followed by a restore
# (unlock, remove all, add the corpus keys again), so every case meets the
# same agent state; the restore requests are built from the key files by
# fuzz/keyfile.c and checked to give exactly the identities ssh-add gave.
#
# Then: the agent is alive, its fd count is what it was before the replay,
# and its log has no sanitizer report (the sanitizer build runs this too).
#
#     tests/hostile/corpus_replay.sh build/keyward-agent build/tests/hostile_client
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
hostile_corpus
corpus=$HOSTILE_CORPUS

# ssh-add refuses private key files that others can read: copies, mode 600.
mkdir -p "$E2E_TMP/keys"
for k in id_ecdsa id_ed25519 id_rsa; do
    cp "$corpus/keys/$k" "$corpus/keys/$k.pub" "$corpus/keys/$k-cert.pub" "$E2E_TMP/keys/"
    chmod 600 "$E2E_TMP/keys/$k"
done

# Confirmations a case may ask for are refused at once by /bin/false.
hostile_start_agent
e2e_run ssh-add "$E2E_TMP/keys/id_ecdsa" "$E2E_TMP/keys/id_ed25519" "$E2E_TMP/keys/id_rsa"
expect_rc "ssh-add loads the three corpus keys" 0
expect_eq "with their certificates: six identities" 6 \
    "$(SSH_AUTH_SOCK=$E2E_AGENT_SOCK ssh-add -l | wc -l)"
fds_before=$(hostile_fd_count "$E2E_AGENT_PID")

start=$SECONDS
E2E_CMD_TIMEOUT=600 e2e_run "$HOSTILE_CLIENT" replay "$E2E_AGENT_SOCK" "$corpus/agent" "$E2E_TMP/keys"
expect_rc "every corpus case got its replies, and a list answered after each" 0
printf '%s\n' "$E2E_OUT" | sed 's/^/# /'
expect_eq "all 7,061 cases were sent" "$(ls "$corpus/agent" | grep -vc '^README')" \
    "$(hostile_value cases "$E2E_OUT")"
expect_eq "no case failed" 0 "$(hostile_value failures "$E2E_OUT")"
e2e_log "replay took $((SECONDS - start)) s"

check "agent still running" kill -0 "$E2E_AGENT_PID"
# Connections are closed asynchronously; give the last ones a moment.
hostile_wait_for 5 hostile_fds_at_most "$E2E_AGENT_PID" "$fds_before"
fds_after=$(hostile_fd_count "$E2E_AGENT_PID")
check "no file descriptor left behind ($fds_after <= $fds_before)" test "$fds_after" -le "$fds_before"
e2e_run ssh-add -l
expect_rc "ssh-add -l still works" 0

e2e_finish
