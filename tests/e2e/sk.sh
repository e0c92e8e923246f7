#!/bin/bash
# sk.sh AGENT SOFT_SK_DIR
#
# FIDO security keys through keyward-agent with the real OpenSSH tools and
# the test authenticator (tests/sk/soft_sk.c, built as SOFT_SK_DIR/soft_sk.so
# and its misbehaving variants soft_sk_crash, _hang, _garbage, _badsig):
#   - ssh-keygen -t ed25519-sk and -t ecdsa-sk -w soft_sk make keys;
#     ssh-add -S soft_sk (and SSH_SK_PROVIDER) adds them; -l lists them
#   - ssh logs in to the test sshd with each, directly and forwarded (ssh -A
#     to the node, then from the node again); a user certificate on an sk
#     key logs in too; ssh-keygen -Y sign through the agent, -Y verify
#   - -c asks, and the prompt says a touch follows; -t expires the key; the
#     audit log names the keys
#   - refusals, each a failure with the agent serving on: a provider outside
#     -P, one that does not exist, one added from a forwarded connection,
#     a web-origin message (ssh-add -T's random data) for an application
#     -O websafe-allow does not allow (and allowed with -O
#     no-restrict-websafe), "internal" without the built-in provider, and
#     providers that crash, answer garbage, sign wrongly or hang (the hang
#     runs meanwhile: other clients are served while it waits, and it fails
#     after the 60 s touch timeout)
#
# The agent finds keyward-sk-helper beside itself (the build tree); the
# helper inherits the agent's environment, hence SOFT_SK_STORE.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
SK_DIR=${2:-}
e2e_init "$1"
T=$E2E_TMP
[ -f "$SK_DIR/soft_sk.so" ] || e2e_fatal "usage: $0 AGENT SOFT_SK_DIR (with soft_sk.so)"
SK_DIR=$(cd "$SK_DIR" && pwd)
SOFT_SK=$SK_DIR/soft_sk.so
export SOFT_SK_STORE=$T/credentials

for type in ed25519-sk ecdsa-sk; do
    e2e_run ssh-keygen -q -t "$type" -w "$SOFT_SK" -N '' -C "soft-$type" -f "$T/id_$type"
    expect_rc "ssh-keygen -t $type -w soft_sk makes a key" 0
done
for v in crash hang garbage badsig; do
    e2e_run ssh-keygen -q -t ed25519-sk -w "$SK_DIR/soft_sk_$v.so" -N '' -C "soft-$v" \
        -f "$T/id_$v"
    expect_rc "ssh-keygen -w soft_sk_$v makes a key too" 0
done
# A library outside -P: a copy of the good one elsewhere.
mkdir "$T/elsewhere" && cp "$SOFT_SK" "$T/elsewhere/soft_sk.so"

# Every variant by its exact path: a pattern would be expanded by the shell
# that starts the agent.
ALLOWED=$SOFT_SK
for v in crash hang garbage badsig; do ALLOWED=$ALLOWED,$SK_DIR/soft_sk_$v.so; done
E2E_AGENT_EXTRA="-P $ALLOWED -l $T/audit.jsonl"
e2e_start_agent
e2e_start_sshd
e2e_authorize id_ed25519-sk id_ecdsa-sk id_crash id_hang id_garbage id_badsig

# --- adding and listing ----------------------------------------------------------
e2e_run ssh-add -S "$SOFT_SK" "$T/id_ed25519-sk"
expect_rc "ssh-add -S soft_sk adds the Ed25519 sk key" 0
e2e_run env SSH_SK_PROVIDER="$SOFT_SK" ssh-add "$T/id_ecdsa-sk"
expect_rc "ssh-add with SSH_SK_PROVIDER adds the ECDSA sk key" 0
e2e_run ssh-add -l
expect_contains "ssh-add -l lists the Ed25519 sk key" \
    "$(e2e_fp "$T/id_ed25519-sk.pub") soft-ed25519-sk (ED25519-SK)" "$E2E_OUT"
expect_contains "and the ECDSA one" "$(e2e_fp "$T/id_ecdsa-sk.pub") soft-ecdsa-sk (ECDSA-SK)" \
    "$E2E_OUT"
e2e_run ssh-add -L
expect_contains "ssh-add -L gives the Ed25519 public key as ssh-keygen wrote it" \
    "$(e2e_keypart "$T/id_ed25519-sk.pub")" "$E2E_OUT"
expect_contains "and the ECDSA one" "$(e2e_keypart "$T/id_ecdsa-sk.pub")" "$E2E_OUT"

# --- signing: logins, forwarded, ssh-keygen -Y --------------------------------------
e2e_sk_logins

cat >"$T/node.sh" <<EOF
#!/bin/bash
ssh -F '$E2E_SSH_CONFIG' -o IdentityFile='$T/id_ecdsa-sk.pub' -o IdentitiesOnly=yes \
    e2e-sshd 'echo inner-login-ok'
echo "inner-rc=\$?"
SOFT_SK_STORE='$SOFT_SK_STORE' ssh-add -S '$SOFT_SK' '$T/id_garbage' >/dev/null 2>&1
echo "forwarded-add-rc=\$?"
EOF
chmod 755 "$T/node.sh"
e2e_ssh -A -o IdentityFile="$T/id_ed25519-sk.pub" -o IdentitiesOnly=yes e2e-sshd "bash $T/node.sh"
expect_rc "ssh -A to the node with the Ed25519 sk key" 0
expect_contains "the node logged in again with the ECDSA sk key, forwarded" "inner-login-ok" \
    "$E2E_OUT"
expect_contains "that inner login exited 0" "inner-rc=0" "$E2E_OUT"
expect_contains "ssh-add -S from the node (forwarded) is refused" "forwarded-add-rc=1" "$E2E_OUT"
expect_contains "the refusal is logged with the reason" \
    "forwarded connection may not add a FIDO provider" "$(cat "$E2E_AGENT_LOG")"

counter_before=$(cat "$SOFT_SK_STORE.counter")
printf 'a message for the authenticator\n' >"$T/msg"
for type in ed25519-sk ecdsa-sk; do
    rm -f "$T/msg.sig"
    e2e_run ssh-keygen -Y sign -f "$T/id_$type.pub" -n file "$T/msg"
    expect_rc "ssh-keygen -Y sign with the $type key through keyward" 0
    printf 'tester %s\n' "$(e2e_keypart "$T/id_$type.pub")" >"$T/allowed_signers"
    e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I tester -n file \
        -s "$T/msg.sig"
    expect_rc "ssh-keygen -Y verify accepts it ($type)" 0
done
e2e_run_in /dev/null ssh-keygen -Y verify -f "$T/allowed_signers" -I tester -n file \
    -s "$T/msg.sig"
check "and refuses it for another message (exit $E2E_RC)" test "$E2E_RC" != 0
check "the authenticator's counter went up ($counter_before -> $(cat "$SOFT_SK_STORE.counter"))" \
    test "$(cat "$SOFT_SK_STORE.counter")" -gt "$counter_before"

# --- a user certificate on an sk key -------------------------------------------------
e2e_make_ca ca
e2e_certify id_ed25519-sk sk-cert ca 11
chmod 600 "$T/id_ed25519-sk-cert.pub"
printf 'cert-authority %s\n' "$(e2e_keypart "$T/ca.pub")" >>"$T/authorized_keys"
e2e_run ssh-add -S "$SOFT_SK" "$T/id_ed25519-sk"
expect_rc "ssh-add -S adds the sk key with its certificate" 0
expect_contains "ssh-add says it added the certificate" "Certificate added" "$E2E_ERR"
e2e_run ssh-add -L
expect_contains "the certificate is listed" "$(e2e_keypart "$T/id_ed25519-sk-cert.pub")" \
    "$E2E_OUT"
e2e_ssh -o IdentityFile="$T/id_ed25519-sk-cert.pub" -o IdentitiesOnly=yes e2e-sshd \
    "echo cert-login-ok"
expect_rc "ssh logs in with the sk key's certificate" 0
expect_contains "sshd accepted it as an sk certificate" "ED25519-SK-CERT" \
    "$(grep "ID sk-cert" "$E2E_SSHD_LOG")"

# --- constraints: -c (the prompt says a touch follows), -t ------------------------------
e2e_run ssh-add -d "$T/id_ecdsa-sk.pub"
e2e_run ssh-add -c -S "$SOFT_SK" "$T/id_ecdsa-sk"
expect_rc "ssh-add -c -S soft_sk" 0
: >"$T/agent-askpass.log"
echo no >"$T/agent-confirm"
rm -f "$T/msg.sig"
e2e_run ssh-keygen -Y sign -f "$T/id_ecdsa-sk.pub" -n file "$T/msg"
check "-c: refused by the user, no signature (exit $E2E_RC)" test "$E2E_RC" != 0
askpass_log=$(cat "$T/agent-askpass.log" 2>/dev/null)
expect_contains "-c: the user was asked about the key" "soft-ecdsa-sk" "$askpass_log"
expect_contains "-c: and told a touch will follow" "touch" "$askpass_log"
echo yes >"$T/agent-confirm"
rm -f "$T/msg.sig"
e2e_run ssh-keygen -Y sign -f "$T/id_ecdsa-sk.pub" -n file "$T/msg"
expect_rc "-c: approved, the authenticator signs" 0
e2e_run ssh-add -d "$T/id_ecdsa-sk.pub"
e2e_run ssh-add -t 2 -S "$SOFT_SK" "$T/id_ecdsa-sk"
expect_rc "ssh-add -t 2 -S soft_sk" 0
sleep 3
e2e_run ssh-add -l
expect_not_contains "-t: the sk key is gone after its lifetime" "soft-ecdsa-sk" "$E2E_OUT"
e2e_run ssh-add -S "$SOFT_SK" "$T/id_ecdsa-sk"
expect_rc "and is added again without constraints" 0

# --- refusals at ADD ---------------------------------------------------------------
e2e_run ssh-add -S "$T/elsewhere/soft_sk.so" "$T/id_badsig"
check "ssh-add -S with a provider outside -P is refused (exit $E2E_RC)" test "$E2E_RC" != 0
expect_contains "the refusal is logged" "not allowed by the allow-list (keyward-agent -P)" \
    "$(cat "$E2E_AGENT_LOG")"
e2e_run ssh-add -S "$SK_DIR/no-such-provider.so" "$T/id_badsig"
check "ssh-add -S with a provider that does not exist is refused (exit $E2E_RC)" \
    test "$E2E_RC" != 0
expect_contains "the refusal is logged with the reason" \
    "no-such-provider.so: No such file or directory" "$(cat "$E2E_AGENT_LOG")"
e2e_run ssh-add -l
expect_rc "the agent serves on after the refusals" 0
expect_not_contains "and holds neither refused key" "soft-badsig" "$E2E_OUT"

# --- the built-in provider ("internal"): no authenticator here ------------------------
# (libfido2 finds no device in a test machine; a build without libfido2 says so.)
e2e_run env -u SSH_SK_PROVIDER ssh-add "$T/id_badsig"
expect_rc "ssh-add without -S adds the key for the built-in provider" 0
rm -f "$T/msg.sig"
e2e_run ssh-keygen -Y sign -f "$T/id_badsig.pub" -n file "$T/msg"
check "signing through \"internal\" fails cleanly here (exit $E2E_RC)" test "$E2E_RC" != 0
check "with the reason in the log" grep -Eq \
    "FIDO provider internal failed: .*(no FIDO authenticator found|is not in this build)" \
    "$E2E_AGENT_LOG"
e2e_run ssh-add -d "$T/id_badsig.pub"

# --- misbehaving providers: each fails its signature; the agent serves on --------------
for v in crash garbage badsig; do
    e2e_run ssh-add -S "$SK_DIR/soft_sk_$v.so" "$T/id_$v"
    expect_rc "ssh-add -S soft_sk_$v" 0
    rm -f "$T/msg.sig"
    e2e_run ssh-keygen -Y sign -f "$T/id_$v.pub" -n file "$T/msg"
    check "soft_sk_$v: the signature fails (exit $E2E_RC)" test "$E2E_RC" != 0
    e2e_ssh -o IdentityFile="$T/id_ed25519-sk.pub" -o IdentitiesOnly=yes e2e-sshd "echo after-$v"
    expect_rc "soft_sk_$v: another key still logs in" 0
done
agent_log=$(cat "$E2E_AGENT_LOG")
expect_contains "the crash is logged" "FIDO helper for $SK_DIR/soft_sk_crash.so: its helper" \
    "$agent_log"
expect_contains "the garbage is logged" "sk_sign answered a malformed signature" "$agent_log"
expect_contains "the bad signature is logged" "the FIDO provider's signature does not verify" "$agent_log"

# The audit log names FIDO keys like the others.
audit_sign=$(grep -F '"event":"sign"' "$T/audit.jsonl" | grep -F '"outcome":"ok"')
expect_contains "the audit log records an Ed25519 sk key's signature" \
    '"key_type":"sk-ssh-ed25519@openssh.com"' "$audit_sign"
expect_contains "and an ECDSA one's" '"key_type":"sk-ecdsa-sha2-nistp256@openssh.com"' \
    "$audit_sign"
expect_contains "and a refused one (the crash) with its fingerprint" \
    "\"key_fingerprint\":\"$(e2e_fp "$T/id_crash.pub")\"" \
    "$(grep -F '"outcome":"refused"' "$T/audit.jsonl")"

# The hang: its signature waits for the touch timeout (60 s); meanwhile the
# agent serves every other client.
e2e_run ssh-add -S "$SK_DIR/soft_sk_hang.so" "$T/id_hang"
expect_rc "ssh-add -S soft_sk_hang" 0
rm -f "$T/msg.sig"
hang_start=$(date +%s)
(
    cd "$T" && ssh-keygen -Y sign -f "$T/id_hang.pub" -n file "$T/msg" >"$T/hang.out" 2>&1
    echo $? >"$T/hang.rc"
) &
hang_pid=$!
sleep 2
for i in 1 2 3; do
    e2e_run ssh-add -l
    expect_rc "while the hang waits, ssh-add -l is answered ($i)" 0
    e2e_ssh -o IdentityFile="$T/id_ecdsa-sk.pub" -o IdentitiesOnly=yes e2e-sshd "echo during-$i"
    expect_rc "while the hang waits, another sk key logs in ($i)" 0
done
check "the hanging signature is still pending meanwhile" test ! -e "$T/hang.rc"
wait "$hang_pid"
hang_secs=$(($(date +%s) - hang_start))
check "the hanging signature fails (exit $(cat "$T/hang.rc"))" test "$(cat "$T/hang.rc")" != 0
check "after the touch timeout ($hang_secs s)" test "$hang_secs" -ge 55
expect_contains "the timeout is logged" "no answer from its helper within 60 s" \
    "$(cat "$E2E_AGENT_LOG")"
e2e_run ssh-add -l
expect_rc "the agent serves on after the hang" 0

# --- web origins: -O websafe-allow and -O no-restrict-websafe ------------------------
# ssh-add -T signs random bytes: neither a userauth request nor an SSHSIG
# message, as a web site's challenge would be.
e2e_run ssh-add -T "$T/id_ed25519-sk.pub"
expect_rc "ssh-add -T with an ssh: key under the default allow-list (ssh:*)" 0
e2e_stop_agent
E2E_AGENT_EXTRA="-P $ALLOWED -O websafe-allow=web:*"
e2e_start_agent
e2e_run ssh-add -S "$SOFT_SK" "$T/id_ed25519-sk"
e2e_run ssh-add -T "$T/id_ed25519-sk.pub"
check "websafe-allow=web:*: ssh-add -T's data is refused (exit $E2E_RC)" test "$E2E_RC" != 0
expect_contains "the refusal is logged" "is not web-safe" "$(cat "$E2E_AGENT_LOG")"
rm -f "$T/msg.sig"
e2e_run ssh-keygen -Y sign -f "$T/id_ed25519-sk.pub" -n file "$T/msg"
expect_rc "websafe-allow=web:*: an SSHSIG message is still signed" 0
e2e_ssh -o IdentityFile="$T/id_ed25519-sk-cert.pub" -o IdentitiesOnly=yes e2e-sshd "echo websafe"
expect_rc "websafe-allow=web:*: and a userauth request" 0
e2e_stop_agent
E2E_AGENT_EXTRA="-P $ALLOWED -O websafe-allow=web:* -O no-restrict-websafe"
e2e_start_agent
e2e_run ssh-add -S "$SOFT_SK" "$T/id_ed25519-sk"
e2e_run ssh-add -T "$T/id_ed25519-sk.pub"
expect_rc "-O no-restrict-websafe: ssh-add -T's data is signed" 0

e2e_finish
