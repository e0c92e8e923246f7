#!/bin/bash
#
# keyward-probe against Debian's OpenSSH ssh-agent (9.2p1 in Debian 12).
# The verdicts asserted here are what that agent was seen to do, recorded
# so that a change in either the probe or the reference agent is noticed:
#   - it refuses a second session-bind, a bad signature and a 17th binding
#     with SSH_AGENT_FAILURE (5), not EXTENSION_FAILURE (28), and keeps the
#     connection;
#   - it does not know the "query" extension and answers 5 (not supported);
#   - empty-message FAILs: for a frame of length 0 (00000000) it sends
#     nothing and waits for a fifth byte, then reads the next request out of
#     step and closes the connection;
#   - malformed-lock (run only when named) FAILs: a LOCK without its
#     passphrase string (00000001 16) is fatal to the whole agent process
#     ("process_lock_agent: parse: incomplete message"), so it runs last;
#   - everything else passes.
#
#     tests/probe/probe_openssh.sh /usr/bin/ssh-agent build/keyward-probe

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
pt_init "$@"
pt_log "$(ssh -V 2>&1)"

pt_start_agent openssh
pt_add_user_key

pt_run_probe --json
pt_expect_openssh_table
pt_expect_user_key_only

pt_run_probe --json --no-modify
pt_expect_openssh_table --no-modify
pt_expect_user_key_only

# Last, because it takes the agent down.
pt_run_probe --json --only malformed-lock
pt_expect_rc 1 "malformed-lock run"
pt_expect_table malformed-lock=fail
pt_expect_verdict malformed-lock fail '"sent": "LOCK without a passphrase: 00000001 16"' \
    "connection closed without a reply; then a new connection -> " \
    "the agent no longer accepts connections"

pt_finish
