#!/usr/bin/env bash
# audit.sh AGENT_BINARY   (keyward-agent only: -l is keyward's)
#
# keyward-agent -l FILE: one JSON line per signature and per refusal, and
# for keys added, removed and expired, lock and unlock; with the client
# process, whether the connection is forwarded, and the destination host
# key and user when ssh bound the connection. Checked with a real ssh
# login through the agent, a forwarded one, and refusals.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
T=$E2E_TMP
LOG=$T/audit.log

e2e_keygen user ed25519 "" "audit-user-key"
e2e_keygen other ed25519 "" "not-in-agent"
E2E_AGENT_EXTRA="-l $LOG" e2e_start_agent
e2e_start_sshd
e2e_authorize user
mkdir -p "$T/vault"
cp "$T/user" "$T/vault/"
e2e_drop_private user
fp_user=$(e2e_fp "$T/user.pub")
fp_host=$(e2e_fp "$T/sshd_host_ed25519.pub")

# lines EVENT: the audit lines for an event
lines() { grep -F "\"event\":\"$1\"" "$LOG" 2>/dev/null; }

e2e_run ssh-add "$T/vault/user"
expect_rc "ssh-add" 0
check "the audit log exists" test -f "$LOG"
expect_eq "and is mode 600" 600 "$(stat -c %a "$LOG" 2>&1)"
add=$(lines add)
expect_contains "an add entry names the key" "\"key_fingerprint\":\"$fp_user\"" "$add"
expect_contains "and its comment" '"comment":"audit-user-key"' "$add"
expect_match "and the client program (ssh-add)" '"client_exe":"[^"]*/ssh-add"' "$add"
expect_contains "and the client's uid" "\"client_uid\":$(id -u)" "$add"
expect_contains "with outcome ok" '"outcome":"ok"' "$add"

# A direct login: a signature for the sshd's host key, not forwarded.
e2e_ssh -o IdentityFile="$T/user.pub" e2e-sshd echo direct-ok
expect_contains "a direct login works" "direct-ok" "$E2E_OUT"
sign=$(lines sign | grep -F '"forwarded":false')
expect_match "the login's signature is logged, made for ssh" '"client_exe":"[^"]*/ssh"' "$sign"
expect_contains "with the destination host key (the sshd's)" \
    "\"dest_hostkey_fingerprint\":\"$fp_host\"" "$sign"
expect_contains "and the destination user from the userauth request" \
    "\"dest_user\":\"$E2E_USER\"" "$sign"
expect_contains "and the key used" "\"key_fingerprint\":\"$fp_user\"" "$sign"

# A forwarded login: from the node, ssh again through the forwarded agent.
e2e_ssh -A -o IdentityFile="$T/user.pub" e2e-sshd \
    "ssh -F $E2E_SSH_CONFIG -o IdentityFile=$T/user.pub e2e-sshd echo inner-ok"
expect_contains "a forwarded login works" "inner-ok" "$E2E_OUT"
fwd=$(lines sign | grep -F '"forwarded":true')
expect_contains "the forwarded signature is logged as forwarded" '"outcome":"ok"' "$fwd"
expect_contains "with the inner destination's host key" \
    "\"dest_hostkey_fingerprint\":\"$fp_host\"" "$fwd"
expect_match "and the relaying ssh client as the client" '"client_exe":"[^"]*/ssh"' "$fwd"

# Refusals carry their reason: a confirm key whose prompt says no (lib.sh's
# agent askpass refuses unless told otherwise).
e2e_run ssh-add -c "$T/other"
e2e_drop_private other
echo data >"$T/msg"
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/other.pub" -n file
refused=$(grep -F '"outcome":"refused"' "$LOG")
expect_contains "a refused signature is logged" "\"key_fingerprint\":\"$(e2e_fp "$T/other.pub")\"" \
    "$refused"
expect_contains "with its reason" '"reason":"user did not confirm the use of the key"' "$refused"

# Lock, unlock, remove and expiry.
cat >"$T/pass" <<'EOF2'
#!/bin/sh
echo s3cret
EOF2
chmod +x "$T/pass"
e2e_run env SSH_ASKPASS="$T/pass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ssh-add -x
e2e_run env SSH_ASKPASS="$T/pass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ssh-add -X
expect_contains "lock is logged" '"outcome":"ok"' "$(lines lock)"
expect_contains "unlock is logged" '"outcome":"ok"' "$(lines unlock)"
e2e_run ssh-add -d "$T/user.pub"
expect_contains "remove is logged with the key" "\"key_fingerprint\":\"$fp_user\"" "$(lines remove)"
e2e_run ssh-add -t 1 "$T/vault/user"
sleep 2
e2e_run ssh-add -l
expect_contains "expiry is logged with the key" "\"key_fingerprint\":\"$fp_user\"" "$(lines expire)"

# Every line is one JSON object; no private key material.
check "every line is a JSON object" test "$(grep -cv '^{.*}$' "$LOG")" = 0
secret=$(sed -n '4p' "$T/vault/user" | cut -c1-40)
expect_not_contains "no private key material in the log" "$secret" "$(cat "$LOG")"

e2e_finish
