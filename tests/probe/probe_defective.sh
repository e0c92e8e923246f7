#!/bin/bash
#
# keyward-probe against tests/fixtures/defective_agent, which drops the
# connection on a second session-bind as the Windows port does: proves the
# checks can fail, and fail with a useful report.
#
#     tests/probe/probe_defective.sh build/tests/defective_agent build/keyward-probe

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
pt_init "$@"

pt_start_agent defective
pt_run_probe --json
pt_expect_rc 1 "full run"
pt_expect_verdict rebind-keeps-connection fail \
    '"sent": "first session-bind (authentication): 000000' \
    'then second session-bind (authentication): 000000' \
    'first session-bind (authentication) -> reply 6 (SSH_AGENT_SUCCESS): 00000001 06' \
    'second session-bind (authentication) -> connection closed without a reply' \
    'connection closed after a refused session-bind: clients that keep one agent connection, such as tsh -A, lose the agent'
# What else the fixture does, so that a change in the probe is noticed: it
# verifies no signature, drops every later bind, and refuses the rest.
pt_expect_table \
    rebind-keeps-connection=fail \
    bind-bad-signature=fail \
    bind-limit=fail \
    unknown-message=pass \
    unknown-extension=pass \
    smartcard-missing-module=pass \
    sk-missing-provider=pass \
    empty-message=pass \
    query=unsupported \
    extension-reply-framing=pass \
    lock-unlock=unsupported \
    bind-while-locked=unsupported \
    malformed-requests=pass \
    malformed-add=pass \
    oversized-frame=pass \
    rsa-sha2-signatures=unsupported \
    concurrent-connections=pass
pt_expect_verdict bind-limit fail "forwarding session-bind #2 -> connection closed without a reply"

# The readable table shows what was sent, what came back and why.
pt_run_probe --only rebind-keeps-connection
pt_expect_rc 1 "table run"
pt_expect_output "rebind-keeps-connection    FAIL"
pt_expect_output "    sent: first session-bind (authentication): 000000"
pt_expect_output "    got:  first session-bind (authentication) -> reply 6"
pt_expect_output "    why:  connection closed after a refused session-bind"
pt_expect_output "1 check: 0 pass, 1 FAIL, 0 not supported, 0 skipped"
pt_stop_agent

# The Windows port's framing bug: 00000005 00000001 06 for a success.
pt_start_agent bad-framing --bad-framing
pt_run_probe --json --only extension-reply-framing
pt_expect_rc 1 "--bad-framing run"
pt_expect_verdict extension-reply-framing fail \
    "reply 0 (not a reply type): 00000005 0000000106" \
    "extra length field"
pt_expect_table extension-reply-framing=fail

pt_finish
