#!/usr/bin/env bash
# Once a bug (docs/security.md, "Findings"), now fixed: replies are lost when the
# agent closes a connection, for a frame over the limit or at the end of
# the client's stream, while replies are still queued. (A job still
# running at the end of the stream, the first check below, was fixed in
# 5b688b1.)
#
# A client that shuts down its sending side after its request (what
# `printf ... | socat - UNIX-CONNECT:$SSH_AUTH_SOCK` does, or a relay that
# passes a half-close on) is still reading, and must get every reply:
#   - an RSA signature (a job on a worker thread) then a half-close
#   - 1,000 list requests in one write then a half-close
#   - 1,000 list requests in one write then a frame over 256 KiB: the
#     frame ends the connection, but the 1,000 requests before it were
#     good and are answered first (OpenSSH's agent answers all 1,000)
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
hostile_start_agent
e2e_keygen rsa rsa 3072
e2e_run ssh-add "$E2E_TMP/rsa"
expect_rc "ssh-add RSA-3072" 0

for i in 1 2 3; do
    e2e_run "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/rsa.pub" 4 halfclose
    expect_eq "RSA signature, then the client's half-close (try $i): answered" SIGN_RESPONSE \
        "$(hostile_value sign "$E2E_OUT")"
done
e2e_run "$HOSTILE_CLIENT" pipeline "$E2E_AGENT_SOCK" 1000 halfclose
expect_eq "1,000 lists then a half-close: 1,000 replies" 1000 "$(hostile_value replies "$E2E_OUT")"
e2e_run "$HOSTILE_CLIENT" pipeline "$E2E_AGENT_SOCK" 1000 oversized
expect_eq "1,000 lists then an oversized frame: 1,000 replies, then closed" 1000 \
    "$(hostile_value replies "$E2E_OUT")"
e2e_finish
