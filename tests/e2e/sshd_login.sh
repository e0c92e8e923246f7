#!/bin/bash
# sshd_login.sh AGENT_BINARY
#
# Real logins: the test starts its own sshd on 127.0.0.1 and logs in as the
# current user (root) with `ssh ... e2e-sshd echo ok-TYPE`, one key type at a
# time (IdentitiesOnly + IdentityFile=KEY.pub, private key file removed, so
# the agent must sign the userauth request).  Checks the command output, the
# client's account of which key was accepted from the agent, and sshd's log
# line naming the same key.  Then a user certificate trusted only through
# sshd's TrustedUserCAKeys (the key is not in authorized_keys), asked for both
# ways ssh can use it (certificate held by the agent; certificate from a
# file with the plain key in the agent).  Negative checks: a key that is not
# authorized, a certificate from an untrusted CA, and an authorized key after
# it was deleted from the agent are all refused (ssh exits 255).
#
# What an agent sees per login (OpenSSH 9.2 client): a new connection, then
# session-bind@openssh.com (extension 27, is_forwarding=0), REQUEST_IDENTITIES
# (11), SIGN_REQUEST (13) on the userauth data; RSA signatures are asked with
# flag SSH_AGENT_RSA_SHA2_512 (4) because sshd offers rsa-sha2-512 in
# server-sig-algs; sshd rejects a signature whose algorithm differs from
# the one the client announced.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
T=$E2E_TMP

# ---- keys ------------------------------------------------------------------
e2e_std_keys
e2e_keygen stranger ed25519 ""          # in the agent, never authorized
e2e_keygen certkey ed25519 ""           # authorized only through its cert
e2e_make_ca ca
e2e_certify certkey e2e-cert-login ca 4242
e2e_make_ca rogueca                      # a CA sshd does not trust
e2e_keygen roguekey ed25519 ""
e2e_certify roguekey e2e-cert-rogue rogueca 666

e2e_start_agent
e2e_start_sshd "TrustedUserCAKeys $T/ca.pub"
# shellcheck disable=SC2086  # a space-separated list of key names
e2e_authorize $E2E_KEY_NAMES

for k in $E2E_KEY_NAMES stranger certkey roguekey; do
    e2e_run ssh-add "$T/$k"
    expect_rc "ssh-add $k" 0
    e2e_drop_private "$k"
done
e2e_run ssh-add -l
expect_eq "agent holds 6 keys + stranger + certkey/cert + roguekey/cert" 11 "$(e2e_count_lines "$E2E_OUT")"

# new_sshd_log: put the sshd log lines written since the previous call into
# $log, so each check only looks at its own login.  (Not a $(...) function:
# the mark must survive between calls.)
SSHD_LOG_MARK=0
log=
new_sshd_log() {
    local n
    n=$(wc -l <"$E2E_SSHD_LOG")
    # sshd -e ends its stderr lines with CR LF; drop the CR for line matching.
    log=$(sed -n "$((SSHD_LOG_MARK + 1)),${n}p" "$E2E_SSHD_LOG" | tr -d '\r')
    SSHD_LOG_MARK=$n
}
new_sshd_log

# ---- one login per key type ------------------------------------------------------
for k in $E2E_KEY_NAMES; do
    fp=$(e2e_fp "$T/$k.pub")
    case $k in ed25519) label=ED25519 ;; ecdsa*) label=ECDSA ;; rsa*) label=RSA ;; esac
    e2e_ssh -v -o IdentityFile="$T/$k.pub" e2e-sshd "echo ok-$k"
    expect_rc "login with $k through the agent exits 0" 0
    expect_eq "login with $k runs the remote command" "ok-$k" "$E2E_OUT"
    # ssh -v says which key the server accepted and that the agent holds it.
    expect_match "login with $k: client used the agent's $k key" \
        "Server accepts key: $(e2e_re_escape "$T/$k.pub") $label $(e2e_re_escape "$fp") explicit agent" "$E2E_ERR"
    expect_contains "login with $k: client authenticated with publickey" \
        "Authenticated to 127.0.0.1 ([127.0.0.1]:$E2E_SSHD_PORT) using \"publickey\"" "$E2E_ERR"
    new_sshd_log
    expect_match "login with $k: sshd accepted exactly this key" \
        "Accepted publickey for $E2E_USER from 127\\.0\\.0\\.1 port [0-9]+ ssh2: $label $(e2e_re_escape "$fp")\$" "$log"
done

# ---- certificate trusted through TrustedUserCAKeys --------------------------------
check "certkey is NOT in authorized_keys (only the CA makes it valid)" \
    bash -c "! grep -qF '$(e2e_keypart "$T/certkey.pub" | cut -d' ' -f2)' '$T/authorized_keys'"
cafp=$(e2e_fp "$T/ca.pub")
certfp=$(e2e_fp "$T/certkey-cert.pub")

# (a) IdentityFile is the certificate: ssh matches it with the agent's
# certificate identity and the agent signs with the certificate blob.
e2e_ssh -v -o IdentityFile="$T/certkey-cert.pub" e2e-sshd "echo ok-cert-agent"
expect_rc "certificate login (cert held by agent) exits 0" 0
expect_eq "certificate login (cert held by agent) runs the remote command" "ok-cert-agent" "$E2E_OUT"
expect_contains "certificate login (cert held by agent): client offered the cert from the agent" \
    "Server accepts key: $T/certkey-cert.pub ED25519-CERT $certfp explicit agent" "$E2E_ERR"
new_sshd_log
expect_contains "certificate login (cert held by agent): sshd accepted the certificate via its CA" \
    "Accepted certificate ID \"e2e-cert-login\" (serial 4242) signed by ED25519 CA $cafp via $T/ca.pub" "$log"
expect_match "certificate login (cert held by agent): sshd logged the cert publickey login" \
    "Accepted publickey for $E2E_USER from 127\\.0\\.0\\.1 port [0-9]+ ssh2: ED25519-CERT $(e2e_re_escape "$certfp") ID e2e-cert-login \\(serial 4242\\) CA ED25519 $(e2e_re_escape "$cafp")" "$log"

# (b) IdentityFile is the plain key, CertificateFile the certificate: ssh
# sends the cert from disk and asks the agent to sign with the plain key.
e2e_ssh -v -o IdentityFile="$T/certkey.pub" -o CertificateFile="$T/certkey-cert.pub" \
    e2e-sshd "echo ok-cert-file"
expect_rc "certificate login (cert from file, key in agent) exits 0" 0
expect_eq "certificate login (cert from file) runs the remote command" "ok-cert-file" "$E2E_OUT"
new_sshd_log
expect_contains "certificate login (cert from file): sshd accepted the certificate via its CA" \
    "Accepted certificate ID \"e2e-cert-login\" (serial 4242) signed by ED25519 CA $cafp via $T/ca.pub" "$log"

# ---- refusals -----------------------------------------------------------------
# A key in the agent but not authorized.
e2e_ssh -o IdentityFile="$T/stranger.pub" e2e-sshd "echo ok-stranger"
expect_rc "unauthorized key is refused (ssh exits 255)" 255
expect_not_contains "unauthorized key: remote command did not run" "ok-stranger" "$E2E_OUT"
expect_contains "unauthorized key: ssh reports permission denied" "Permission denied (publickey)" "$E2E_ERR"
new_sshd_log
expect_match "unauthorized key: sshd logged the refusal of exactly this key" \
    "Failed publickey for $E2E_USER from 127\\.0\\.0\\.1 port [0-9]+ ssh2: ED25519 $(e2e_re_escape "$(e2e_fp "$T/stranger.pub")")" "$log"
expect_not_contains "unauthorized key: sshd accepted no login" "Accepted publickey" "$log"

# A certificate signed by a CA sshd does not trust.
e2e_ssh -o IdentityFile="$T/roguekey-cert.pub" e2e-sshd "echo ok-rogue"
expect_rc "certificate from an untrusted CA is refused (ssh exits 255)" 255
expect_not_contains "untrusted CA: remote command did not run" "ok-rogue" "$E2E_OUT"
new_sshd_log
expect_not_contains "untrusted CA: sshd accepted no certificate" "Accepted certificate" "$log"
expect_not_contains "untrusted CA: sshd accepted no login" "Accepted publickey" "$log"

# An authorized key that the agent no longer holds (and has no file): the
# agent really is the only signer.
e2e_run ssh-add -d "$T/ed25519.pub"
expect_rc "ssh-add -d ed25519" 0
e2e_ssh -o IdentityFile="$T/ed25519.pub" e2e-sshd "echo ok-deleted"
expect_rc "authorized key removed from the agent can no longer log in (255)" 255
expect_not_contains "removed key: remote command did not run" "ok-deleted" "$E2E_OUT"
new_sshd_log
expect_not_contains "removed key: sshd accepted no login" "Accepted publickey" "$log"

# The agent connection used by the failed attempts did not break the agent:
# the remaining keys still log in.
e2e_ssh -o IdentityFile="$T/rsa2048.pub" e2e-sshd "echo ok-again"
expect_rc "after the refusals, rsa2048 still logs in" 0
expect_eq "after the refusals, the remote command runs" "ok-again" "$E2E_OUT"

e2e_finish
