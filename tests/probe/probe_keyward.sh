#!/bin/bash
#
# keyward-probe against keyward-agent: every check must pass, --no-modify
# must skip exactly the checks that add keys or lock, and the user's own
# key must survive the probe untouched.
#
#     tests/probe/probe_keyward.sh build/keyward-agent build/keyward-probe

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
pt_init "$@"

pt_start_agent keyward
pt_add_user_key

pt_run_probe --json
pt_expect_rc 0 "full run"
for name in $(pt_all_checks); do
    pt_expect_verdict "$name" pass
done
pt_expect_verdict rebind-keeps-connection pass "refused with 28 (EXTENSION_FAILURE)"
pt_expect_verdict query pass "session-bind@openssh.com"
pt_expect_verdict bind-while-locked pass "accepted while locked"
pt_expect_output '"summary": {"pass": 17, "fail": 0, "unsupported": 0, "skipped": 0, "error": 0}'
pt_expect_table $(pt_all_checks | sed 's/$/=pass/')
pt_expect_user_key_only

pt_run_probe --json --no-modify
pt_expect_rc 0 "--no-modify run"
for name in $(pt_all_checks); do
    case $name in
    lock-unlock | bind-while-locked | malformed-add | sk-missing-provider | rsa-sha2-signatures)
        pt_expect_verdict "$name" skipped ;;
    *) pt_expect_verdict "$name" pass ;;
    esac
done
pt_expect_user_key_only

# The check that only runs when named: LOCK/UNLOCK without a passphrase.
pt_run_probe --json --only malformed-lock
pt_expect_rc 0 "malformed-lock run"
pt_expect_table malformed-lock=pass
pt_expect_user_key_only

# The table and its summary line, for one check.
pt_run_probe --only rebind-keeps-connection
pt_expect_rc 0 "table run of one check"
pt_expect_output "1 check: 1 pass, 0 FAIL, 0 not supported, 0 skipped"

# Usage and connect errors exit 2.
pt_run_probe --only no-such-check
pt_expect_rc 2 "unknown check name"
PT_OUT=$("$PT_PROBE" -a "$PT_TMP/nothing-here.sock" 2>&1)
PT_RC=$?
pt_expect_rc 2 "no agent at the address"

pt_finish
