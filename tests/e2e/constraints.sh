#!/usr/bin/env bash
# constraints.sh AGENT_BINARY
#
# Constraints that must hold without stalling the agent, driven with
# OpenSSH's ssh-add and ssh-keygen:
#   - lifetime: an expired key is gone and signing with it fails;
#   - confirm: while one client waits on a confirmation prompt that hangs,
#     other clients are served (list, and signing with an unconfirmed key);
#     when the waiting client goes away, its askpass is killed; an askpass
#     that dies refuses; with no askpass at all, the signature is refused;
#   - lock: a wrong unlock passphrase is answered late, and the delay grows,
#     but another client is answered during the delay.
# OpenSSH's own agent stalls every client while it asks or delays, so parts
# of this test are expected to fail against it.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
T=$E2E_TMP

e2e_keygen plain ed25519 "" "plain-key"
e2e_keygen confirmed ed25519 "" "confirmed-key"
e2e_keygen shortlived ed25519 "" "short-lived-key"
e2e_start_agent
mkdir -p "$T/vault"
cp "$T/plain" "$T/confirmed" "$T/shortlived" "$T/vault/"
for k in plain confirmed shortlived; do e2e_drop_private "$k"; done
echo "message" >"$T/msg"

sign_with() { # KEY: sign $T/msg through the agent
    e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/$1.pub" -n file
}
now() { printf '%s' "${EPOCHREALTIME/./}"; } # microseconds

# --- lifetime ------------------------------------------------------------------
e2e_run ssh-add -t 2 "$T/vault/shortlived"
expect_rc "ssh-add -t 2" 0
sign_with shortlived
expect_rc "the key signs while it lives" 0
sleep 3
e2e_run ssh-add -l
expect_not_contains "after its lifetime the key is not listed" \
    "$(e2e_fp "$T/shortlived.pub")" "$E2E_OUT"
sign_with shortlived
check "after its lifetime signing with it fails" test "$E2E_RC" != 0

# --- confirm: a hanging prompt does not stall other clients ---------------------
e2e_run ssh-add "$T/vault/plain"
e2e_run ssh-add -c "$T/vault/confirmed"
expect_rc "ssh-add -c" 0
# The agent runs $SSH_ASKPASS (set by lib.sh to this file) for each prompt.
cat >"$T/agent-askpass" <<EOF
#!/bin/sh
echo \$\$ >"$T/askpass.pid"
printf '%s\n' "\$*" >>"$T/agent-askpass.log"
exec sleep 60
EOF
ssh-keygen -Y sign -f "$T/confirmed.pub" -n file <"$T/msg" >"$T/waiting.out" 2>&1 &
waiting=$!
for _ in $(seq 1 100); do [ -s "$T/askpass.pid" ] && break; sleep 0.05; done
check "the agent started the askpass for the confirm key" test -s "$T/askpass.pid"
askpass_pid=$(cat "$T/askpass.pid" 2>/dev/null)
e2e_run ssh-add -l
expect_rc "while a prompt is pending, another client's list is answered" 0
expect_contains "and lists the keys" "$(e2e_fp "$T/plain.pub")" "$E2E_OUT"
sign_with plain
expect_rc "while a prompt is pending, another client signs with an unconfirmed key" 0
check "the first client is still waiting for its confirmation" kill -0 "$waiting"
kill "$waiting" 2>/dev/null
wait "$waiting" 2>/dev/null
gone=no
for _ in $(seq 1 50); do
    kill -0 "$askpass_pid" 2>/dev/null || { gone=yes; break; }
    sleep 0.1
done
expect_eq "when the waiting client disconnects, its askpass is killed" yes "$gone"

# An askpass that dies from a signal refuses.
cat >"$T/agent-askpass" <<'EOF'
#!/bin/sh
kill -9 $$
EOF
sign_with confirmed
check "an askpass killed by a signal refuses the signature" test "$E2E_RC" != 0
expect_not_contains "no signature came out" "BEGIN SSH SIGNATURE" "$E2E_OUT"

# --- no askpass at all: refuse ------------------------------------------------
"$E2E_AGENT" -D -a "$T/noask.sock" </dev/null >/dev/null 2>"$T/noask.log" &
noask=$!
for _ in $(seq 1 50); do [ -S "$T/noask.sock" ] && break; sleep 0.1; done
SSH_AUTH_SOCK=$T/noask.sock ssh-add -c "$T/vault/confirmed" </dev/null >/dev/null 2>&1
e2e_run_in "$T/msg" env SSH_AUTH_SOCK="$T/noask.sock" \
    ssh-keygen -Y sign -f "$T/confirmed.pub" -n file
check "with no SSH_ASKPASS the confirm key does not sign" test "$E2E_RC" != 0
kill "$noask" 2>/dev/null
wait "$noask" 2>/dev/null

# --- lock: growing delay on wrong passphrases, others served meanwhile ------------
cat >"$T/lock-askpass" <<EOF
#!/bin/sh
cat "$T/lock-pass"
EOF
chmod +x "$T/lock-askpass"
lockctl() { # -x or -X, with the passphrase in $T/lock-pass
    e2e_run env SSH_ASKPASS="$T/lock-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ssh-add "$1"
}
echo right >"$T/lock-pass"
lockctl -x
expect_rc "lock" 0
echo wrong >"$T/lock-pass"
t0=$(now)
lockctl -X
t1=$(now)
check "a wrong passphrase fails" test "$E2E_RC" != 0
check "and is answered no sooner than 100 ms ($(((t1 - t0) / 1000)) ms)" \
    test $((t1 - t0)) -ge 100000
for _ in 2 3 4 5 6 7; do lockctl -X; done
# The 8th failure is delayed 800 ms; a list from another client must not wait.
env SSH_ASKPASS="$T/lock-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
    ssh-add -X </dev/null >/dev/null 2>&1 &
slow=$!
sleep 0.2
e2e_run ssh-add -l
expect_rc "during the unlock delay another client's list is answered (locked: empty)" 1
expect_contains "with the locked agent's empty list" "The agent has no identities." "$E2E_OUT"
check "the delayed unlock was still waiting when the list came back" kill -0 "$slow"
wait "$slow"
check "the delayed unlock failed" test $? != 0
echo right >"$T/lock-pass"
lockctl -X
expect_rc "the right passphrase unlocks" 0
e2e_run ssh-add -l
expect_contains "and the keys are back" "$(e2e_fp "$T/plain.pub")" "$E2E_OUT"

e2e_finish
