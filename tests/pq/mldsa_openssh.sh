#!/bin/bash
# mldsa_openssh.sh AGENT_BINARY   (KEYWARD_E2E_OPENSSH=DIR: an OpenSSH with
# ssh-mldsa44-ed25519@openssh.com, 10.4 or later, as scripts/pq-deps.sh builds)
#
# ML-DSA-44+Ed25519 keys made by that OpenSSH's ssh-keygen, used through the
# agent by that OpenSSH's own tools: ssh-add and ssh-add -l, a login to its
# sshd, the same login from the "node" through a forwarded agent (ssh -A),
# ssh-keygen -Y sign / -Y verify, and a user certificate on an ML-DSA key
# signed by an ML-DSA CA, trusted through TrustedUserCAKeys. The agent must be
# built against OpenSSL >= 3.5 (make build-pq); tests/CMakeLists.txt registers
# this test (e2e_openssh_mldsa) only where that OpenSSH has the key type.

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"
e2e_init "$@"
T=$E2E_TMP

ssh -Q key | grep -qx 'ssh-mldsa44-ed25519@openssh.com' ||
    e2e_skip "$(ssh -V 2>&1) has no ssh-mldsa44-ed25519@openssh.com"

e2e_keygen pq mldsa44-ed25519 ""
e2e_keygen pqca mldsa44-ed25519 "" "e2e-pq-ca"
e2e_keygen pqcert mldsa44-ed25519 ""
e2e_certify pqcert e2e-pq-cert pqca 1919
pqfp=$(e2e_fp "$T/pq.pub")

e2e_start_agent
e2e_start_sshd "TrustedUserCAKeys $T/pqca.pub"
e2e_authorize pq

for k in pq pqcert; do
    e2e_run ssh-add "$T/$k"
    expect_rc "ssh-add $k (ML-DSA-44+Ed25519)" 0
    e2e_drop_private "$k"
done
e2e_run ssh-add -l
expect_rc "ssh-add -l" 0
expect_eq "ssh-add -l: pq, pqcert and its certificate" 3 "$(e2e_count_lines "$E2E_OUT")"
expect_contains "ssh-add -l names the ML-DSA key by its fingerprint" "$pqfp" "$E2E_OUT"
e2e_run ssh-add -L
expect_contains "ssh-add -L gives the public key as ssh-keygen wrote it" \
    "$(e2e_keypart "$T/pq.pub")" "$E2E_OUT"

# ---- a login, directly --------------------------------------------------------
e2e_ssh -v -o IdentityFile="$T/pq.pub" e2e-sshd "echo ok-pq"
expect_rc "login with the ML-DSA key through the agent exits 0" 0
expect_eq "login with the ML-DSA key runs the remote command" "ok-pq" "$E2E_OUT"
expect_contains "login: the client used the agent's key" "$pqfp explicit agent" "$E2E_ERR"
expect_match "login: sshd accepted exactly this key" \
    "Accepted publickey for $E2E_USER from 127\\.0\\.0\\.1 port [0-9]+ ssh2: [^ ]+ $(e2e_re_escape "$pqfp")" \
    "$(tr -d '\r' <"$E2E_SSHD_LOG")"

# ---- the same login from the node, through the forwarded agent ------------------
cat >"$T/node.sh" <<NODE
ssh-add -l >"$T/node-list.out" 2>&1; echo "node-list-rc=\$?"
ssh -F "$E2E_SSH_CONFIG" -o IdentityFile="$T/pq.pub" e2e-sshd "echo inner-pq" 2>"$T/node-ssh.err"
echo "node-ssh-rc=\$?"
NODE
e2e_ssh -A -o IdentityFile="$T/pq.pub" e2e-sshd "bash $T/node.sh"
expect_rc "ssh -A to the node with the ML-DSA key exits 0" 0
expect_contains "node: ssh-add -l through the forwarded agent exits 0" "node-list-rc=0" "$E2E_OUT"
check "node: the forwarded agent lists the ML-DSA key" grep -qF "$pqfp" "$T/node-list.out"
expect_contains "node: the second login with the forwarded ML-DSA key ran" "inner-pq" "$E2E_OUT"
expect_contains "node: the second ssh exits 0" "node-ssh-rc=0" "$E2E_OUT"

# ---- ssh-keygen -Y sign / -Y verify ----------------------------------------------
echo "a message signed by an ML-DSA key in the agent" >"$T/msg"
echo "pq@test namespaces=\"file\" $(e2e_keypart "$T/pq.pub")" >"$T/allowed_signers"
# (the message on stdin, the signature on stdout)
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/pq.pub" -n file
expect_rc "ssh-keygen -Y sign with the ML-DSA key through the agent exits 0" 0
printf '%s\n' "$E2E_OUT" >"$T/msg.sig"
e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I pq@test -n file -s "$T/msg.sig"
expect_rc "ssh-keygen -Y verify accepts the signature" 0
echo "another message" >"$T/msg2"
e2e_run_in "$T/msg2" ssh-keygen -Y verify -f "$T/allowed_signers" -I pq@test -n file -s "$T/msg.sig"
expect_rc "ssh-keygen -Y verify refuses it over another message" 255

# ---- a user certificate on an ML-DSA key, from an ML-DSA CA ----------------------
e2e_ssh -v -o IdentityFile="$T/pqcert-cert.pub" e2e-sshd "echo ok-pq-cert"
expect_rc "certificate login (ML-DSA certificate held by the agent) exits 0" 0
expect_eq "certificate login runs the remote command" "ok-pq-cert" "$E2E_OUT"
expect_contains "certificate login: sshd accepted the certificate via its CA" \
    "Accepted certificate ID \"e2e-pq-cert\" (serial 1919)" "$(tr -d '\r' <"$E2E_SSHD_LOG")"

# ---- removal ------------------------------------------------------------------
e2e_run ssh-add -d "$T/pq.pub"
expect_rc "ssh-add -d the ML-DSA key" 0
e2e_ssh -o IdentityFile="$T/pq.pub" e2e-sshd "echo ok-gone"
expect_rc "the removed ML-DSA key can no longer log in (255)" 255

e2e_finish
