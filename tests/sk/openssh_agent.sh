#!/bin/bash
# openssh_agent.sh AGENT SOFT_SK BADSIG_SK
#
# The test authenticator (soft_sk.c) checked with OpenSSH's own tools alone,
# so that keyward's FIDO tests rest on a middleware OpenSSH accepts:
#   - ssh-keygen -t ed25519-sk and -t ecdsa-sk -w SOFT_SK make keys, and the
#     credential file holds one line per key
#   - AGENT (OpenSSH's ssh-agent, with -P allowing the middleware) takes them
#     with ssh-add -S SOFT_SK; ssh-add -l lists them
#   - ssh logs in to the test sshd with each through that agent; sshd says
#     the key was an sk key and the touch was reported
#   - ssh-keygen -Y sign through the agent, -Y verify accepts it; the
#     counter in the credential file went up
#   - BADSIG_SK (the variant that signs other bytes) makes a key whose
#     signature ssh-keygen -Y verify rejects: the verifier is not blind
#   - a key handle the credential file does not know fails to sign
#
# Run by hand against keyward-agent too: the same checks then hold for it.

# shellcheck source=../e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
SOFT_SK=${2:-}
BADSIG_SK=${3:-}
e2e_init "$1"
T=$E2E_TMP
[ -f "$SOFT_SK" ] && [ -f "$BADSIG_SK" ] ||
    e2e_fatal "usage: $0 AGENT SOFT_SK BADSIG_SK (the built middleware libraries)"
SOFT_SK=$(cd "$(dirname "$SOFT_SK")" && pwd)/$(basename "$SOFT_SK")
BADSIG_SK=$(cd "$(dirname "$BADSIG_SK")" && pwd)/$(basename "$BADSIG_SK")

# ssh-keygen's and the agent's ssh-sk-helper find the credentials here.
export SOFT_SK_STORE=$T/credentials

for type in ed25519-sk ecdsa-sk; do
    e2e_run ssh-keygen -q -t "$type" -w "$SOFT_SK" -N '' -C "soft-$type" -f "$T/id_$type"
    expect_rc "ssh-keygen -t $type -w soft_sk makes a key" 0
done
expect_eq "the credential file holds both keys" 2 \
    "$(grep -c '^soft-sk ' "$SOFT_SK_STORE" 2>/dev/null)"
expect_contains "the Ed25519 one is an sk key" "sk-ssh-ed25519@openssh.com" \
    "$(cat "$T/id_ed25519-sk.pub")"
expect_contains "the ECDSA one too" "sk-ecdsa-sha2-nistp256@openssh.com" \
    "$(cat "$T/id_ecdsa-sk.pub")"

# The exact path: a pattern would be expanded by the shell that starts the agent.
E2E_AGENT_EXTRA="-P $SOFT_SK"
e2e_start_agent
e2e_start_sshd
e2e_authorize id_ed25519-sk id_ecdsa-sk

for type in ed25519-sk ecdsa-sk; do
    e2e_run ssh-add -S "$SOFT_SK" "$T/id_$type"
    expect_rc "ssh-add -S soft_sk adds the $type key" 0
done
e2e_run ssh-add -l
expect_contains "ssh-add -l lists the Ed25519 sk key" "(ED25519-SK)" "$E2E_OUT"
expect_contains "and the ECDSA one" "(ECDSA-SK)" "$E2E_OUT"

e2e_sk_logins

counter_before=$(cat "$SOFT_SK_STORE.counter")
printf 'a message for the authenticator\n' >"$T/msg"
printf 'tester %s\n' "$(e2e_keypart "$T/id_ed25519-sk.pub")" >"$T/allowed_signers"
e2e_run ssh-keygen -Y sign -f "$T/id_ed25519-sk.pub" -n file "$T/msg"
expect_rc "ssh-keygen -Y sign with the sk key through the agent" 0
e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I tester -n file \
    -s "$T/msg.sig"
expect_rc "ssh-keygen -Y verify accepts it" 0
check "the signature counter went up ($counter_before -> $(cat "$SOFT_SK_STORE.counter"))" \
    test "$(cat "$SOFT_SK_STORE.counter")" -gt "$counter_before"

# The variant that signs other bytes: its signature must not verify.
e2e_run ssh-keygen -q -t ed25519-sk -w "$BADSIG_SK" -N '' -C bad -f "$T/id_bad"
expect_rc "soft_sk_badsig makes a key too" 0
rm -f "$T/msg.sig"
e2e_run env -u SSH_AUTH_SOCK ssh-keygen -Y sign -w "$BADSIG_SK" -f "$T/id_bad" -n file "$T/msg"
if [ "$E2E_RC" = 0 ]; then
    printf 'tester %s\n' "$(e2e_keypart "$T/id_bad.pub")" >"$T/allowed_bad"
    e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_bad" -I tester -n file \
        -s "$T/msg.sig"
    check "ssh-keygen -Y verify rejects soft_sk_badsig's signature (exit $E2E_RC)" \
        test "$E2E_RC" != 0
else
    expect_contains "or ssh-keygen refuses it when signing" "ignature" "$E2E_ERR"
fi

# A credential file that no longer knows the key: signing fails cleanly.
mv "$SOFT_SK_STORE" "$SOFT_SK_STORE.gone"
rm -f "$T/msg.sig"
e2e_run env -u SSH_AUTH_SOCK ssh-keygen -Y sign -w "$SOFT_SK" -f "$T/id_ed25519-sk" -n file \
    "$T/msg"
check "a key the authenticator does not know cannot sign (exit $E2E_RC)" test "$E2E_RC" != 0
mv "$SOFT_SK_STORE.gone" "$SOFT_SK_STORE"

e2e_finish
