#!/usr/bin/env bash
# Issue 22, finding 11: SIGTERM never completed while an askpass that
# ignores SIGTERM was up. The agent closed its listener, sent the askpass
# SIGTERM, and then waited for it forever: the socket file stayed, and the
# keys stayed in memory. Now the askpass gets SIGKILL 2 s after SIGTERM,
# and the agent clears its keys and removes its socket as soon as it is
# told to stop, before it waits for anything.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"

cat >"$E2E_TMP/askpass" <<ASKPASS
#!/bin/sh
echo \$\$ >>"$E2E_TMP/askpass.pids"
trap '' TERM
exec sleep 300
ASKPASS
chmod 755 "$E2E_TMP/askpass"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent
pid=$E2E_AGENT_PID
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add -c "$E2E_TMP/ed25519"
expect_rc "ssh-add -c Ed25519" 0

# A confirmation is pending when the agent is told to stop.
"$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/ed25519.pub" 0 >"$E2E_TMP/sign.out" &
client=$!
hostile_wait_for 5 test -s "$E2E_TMP/askpass.pids"
ask=$(head -n 1 "$E2E_TMP/askpass.pids")
check "the prompt is up (askpass pid ${ask:-none})" kill -0 "${ask:-none}"
SCAN=$("$HOSTILE_CLIENT" memscan "$pid" "$E2E_TMP/ed25519" 2>&1)
check "before SIGTERM: the key is in the agent's memory" \
    eval 'printf "%s\n" "$SCAN" | grep -q "^FOUND"'

kill -TERM "$pid"
sleep 0.3
# Still waiting for the askpass (it ignores SIGTERM), but the keys and the
# socket are gone already.
SCAN=$("$HOSTILE_CLIENT" memscan "$pid" "$E2E_TMP/ed25519" 2>&1)
printf '%s\n' "$SCAN" | grep -E '^(FOUND|scanned)' | sed 's/^/# after SIGTERM: /'
if printf '%s\n' "$SCAN" | grep -q '^scanned'; then
    check "0.3 s after SIGTERM: no key bytes left in the agent's memory" \
        eval '! printf "%s\n" "$SCAN" | grep -q "^FOUND"'
else
    e2e_log "the agent had exited before the scan: nothing to scan"
fi
check "0.3 s after SIGTERM: the socket file is removed" test ! -e "$E2E_AGENT_SOCK"
exited() { ! kill -0 "$pid" 2>/dev/null; }
check "the agent exits within 10 s" hostile_wait_for 10 exited
if exited; then
    wait "$pid"
    expect_eq "with status 0" 0 "$?"
    E2E_AGENT_PID=
fi
gone() { [ -n "$ask" ] && ! kill -0 "$ask" 2>/dev/null; }
check "the askpass, deaf to SIGTERM, is gone" gone
expect_contains "the agent says it killed it" "did not stop within 2000 ms of SIGTERM" \
    "$(cat "$E2E_AGENT_LOG")"
check "agent log has no sanitizer report" _e2e_no_sanitizer_report "$E2E_AGENT_LOG"
wait "$client"
while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$E2E_TMP/askpass.pids"
e2e_finish
