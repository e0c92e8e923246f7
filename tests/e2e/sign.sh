#!/bin/bash
# sign.sh AGENT_BINARY
#
# Signatures made by the agent, through `ssh-keygen -Y sign` (SSHSIG): for
# every key type and for a user certificate, with the private key file
# removed so that the agent is the only possible signer.  Each signature is
# verified with `ssh-keygen -Y verify` against an allowed_signers file, and
# taken apart to check what is inside (signature algorithm, hash, namespace).
# A tampered message and a wrong namespace must fail to verify.  Finally a
# key added with `ssh-add -c` must ask the agent's SSH_ASKPASS for
# confirmation: allowed -> signature, refused -> no signature.
#
# What an agent sees: ssh-keygen asks SIGN_REQUEST (13) with flags
# SSH_AGENT_RSA_SHA2_512 (4) for RSA keys, whatever -O hashalg= says (that
# only picks the hash of the message inside the signed blob), and flags 0 for
# the others.  For a certificate the key blob in the request is the
# certificate; the signature is a plain one (e.g. "ssh-ed25519").

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
T=$E2E_TMP

# ---- keys ------------------------------------------------------------------
e2e_std_keys
e2e_keygen certkey ed25519 ""
e2e_make_ca ca
e2e_certify certkey e2e-cert-id ca 1
e2e_keygen confirmkey ed25519 ""
SIGN_KEYS="$E2E_KEY_NAMES"

e2e_start_agent

for k in $SIGN_KEYS certkey; do
    e2e_run ssh-add "$T/$k"
    expect_rc "ssh-add $k" 0
done
e2e_run ssh-add -c "$T/confirmkey"
expect_rc "ssh-add -c confirmkey" 0
e2e_run ssh-add -l
expect_eq "agent holds 6 keys + certkey + its cert + confirmkey" 9 "$(e2e_count_lines "$E2E_OUT")"

# Without the private files, ssh-keygen can only sign through the agent.
for k in $SIGN_KEYS certkey confirmkey; do
    e2e_drop_private "$k"
done

# allowed_signers: one principal per key; the certificate is trusted through
# its CA (cert-authority) for the principal it was issued to.
: >"$T/allowed_signers"
for k in $SIGN_KEYS; do
    echo "e2e-$k@test namespaces=\"file\" $(e2e_keypart "$T/$k.pub")" >>"$T/allowed_signers"
done
echo "$E2E_USER cert-authority,namespaces=\"file\" $(e2e_keypart "$T/ca.pub")" >>"$T/allowed_signers"
echo "e2e-confirmkey@test namespaces=\"file\" $(e2e_keypart "$T/confirmkey.pub")" >>"$T/allowed_signers"

printf 'keyward e2e message %s %s\n' "$$" "$RANDOM" >"$T/msg"
printf 'keyward e2e message %s %s!\n' "$$" "$RANDOM" >"$T/msg.tampered"

# shellcheck disable=SC2317  # called through `check`
sshsig_parses() { e2e_sshsig_fields "$1" >/dev/null; }

# sign_and_check NAME PUBFILE PRINCIPAL KEYTYPE_LABEL PUBKEY_TYPE SIG_ALG HASHALG [-O opt]
sign_and_check() {
    local name=$1 pub=$2 principal=$3 label=$4 pktype=$5 sigalg=$6 hash=$7
    shift 7
    local sig=$T/$name.$hash.sig fields fp
    fp=$(e2e_fp "$pub")

    e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$pub" -n file "$@"
    expect_rc "$name ($hash): ssh-keygen -Y sign through the agent exits 0" 0 || return
    printf '%s\n' "$E2E_OUT" >"$sig"
    expect_eq "$name ($hash): output is an armored SSH signature" \
        "-----BEGIN SSH SIGNATURE-----" "$(head -n 1 "$sig")"

    fields=$(e2e_sshsig_fields "$sig")
    check "$name ($hash): SSHSIG blob parses completely" sshsig_parses "$sig"
    expect_eq "$name ($hash): magic and version" "SSHSIG 1" \
        "$(e2e_field magic "$fields") $(e2e_field version "$fields")"
    expect_eq "$name ($hash): embedded public key type" "$pktype" "$(e2e_field pubkey_type "$fields")"
    expect_eq "$name ($hash): namespace" "file" "$(e2e_field namespace "$fields")"
    expect_eq "$name ($hash): message hash algorithm" "$hash" "$(e2e_field hashalg "$fields")"
    expect_eq "$name ($hash): inner signature algorithm" "$sigalg" "$(e2e_field sig_type "$fields")"

    e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I "$principal" -n file -s "$sig"
    expect_rc "$name ($hash): ssh-keygen -Y verify exits 0" 0
    expect_contains "$name ($hash): verify names signer, key type and fingerprint" \
        "Good \"file\" signature for $principal with $label key $fp" "$E2E_OUT"

    # The checks above must be able to fail: a changed message must not verify.
    e2e_run_in "$T/msg.tampered" ssh-keygen -Y verify -f "$T/allowed_signers" -I "$principal" -n file -s "$sig"
    expect_rc "$name ($hash): tampered message fails to verify (255)" 255
    expect_contains "$name ($hash): tampered message reports a bad signature" \
        "Signature verification failed" "$E2E_ERR"
}

# ---- every key type ------------------------------------------------------------
for k in $SIGN_KEYS; do
    case $k in
        ed25519) label=ED25519; pktype=ssh-ed25519 ;;
        ecdsa*) label=ECDSA; pktype=ecdsa-sha2-nistp${k#ecdsa} ;;
        rsa*) label=RSA; pktype=ssh-rsa ;;
    esac
    sign_and_check "$k" "$T/$k.pub" "e2e-$k@test" "$label" "$pktype" "$(e2e_sig_alg "$k")" sha512
done

# RSA with -O hashalg=sha256: the message hash changes; OpenSSH before 10.0
# still requests (and the agent must make) an rsa-sha2-512 signature, 10.0
# and later request rsa-sha2-256 to match the hash (its ChangeLog: "select
# the signature algorithm based on the requested hash algorithm").
rsa_sha256_alg=rsa-sha2-512
ssh_major=$(ssh -V 2>&1 | sed -n 's/^OpenSSH_\([0-9]*\)\..*/\1/p')
[ "${ssh_major:-0}" -ge 10 ] && rsa_sha256_alg=rsa-sha2-256
for k in rsa2048 rsa4096; do
    sign_and_check "$k" "$T/$k.pub" "e2e-$k@test" RSA ssh-rsa "$rsa_sha256_alg" sha256 -O hashalg=sha256
done
sign_and_check ed25519 "$T/ed25519.pub" "e2e-ed25519@test" ED25519 ssh-ed25519 ssh-ed25519 sha256 -O hashalg=sha256

# ---- certificate -----------------------------------------------------------------
sign_and_check certkey-cert "$T/certkey-cert.pub" "$E2E_USER" ED25519-CERT \
    ssh-ed25519-cert-v01@openssh.com ssh-ed25519 sha512

# ---- wrong namespace / wrong principal must not verify ------------------------------
e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I "e2e-ed25519@test" \
    -n other -s "$T/ed25519.sha512.sig"
expect_rc "signature for namespace 'file' does not verify as 'other'" 255
e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I "e2e-rsa2048@test" \
    -n file -s "$T/ed25519.sha512.sig"
expect_rc "ed25519 signature does not verify for the rsa2048 principal" 255

# ---- a key the agent does not hold cannot sign ------------------------------------
e2e_run ssh-add -d "$T/ecdsa256.pub"
expect_rc "ssh-add -d ecdsa256" 0
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/ecdsa256.pub" -n file
check "after removal, signing with ecdsa256 fails" test "$E2E_RC" != 0
expect_not_contains "after removal, no signature is printed" "BEGIN SSH SIGNATURE" "$E2E_OUT"

# ---- confirmation (ssh-add -c): the agent asks its SSH_ASKPASS ------------------
# The askpass the test gave the agent answers from $T/agent-confirm.
fpc=$(e2e_fp "$T/confirmkey.pub")
echo yes >"$T/agent-confirm"
: >"$T/agent-askpass.log"
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/confirmkey.pub" -n file
expect_rc "confirm allowed: signing with the -c key exits 0" 0
printf '%s\n' "$E2E_OUT" >"$T/confirmkey.sig"
e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I e2e-confirmkey@test -n file -s "$T/confirmkey.sig"
expect_rc "confirm allowed: the signature verifies" 0
expect_contains "confirm allowed: the agent asked, naming the key's fingerprint" \
    "$fpc" "$(cat "$T/agent-askpass.log" 2>/dev/null)"

echo no >"$T/agent-confirm"
: >"$T/agent-askpass.log"
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/confirmkey.pub" -n file
check "confirm refused: signing with the -c key fails" test "$E2E_RC" != 0
expect_not_contains "confirm refused: no signature is printed" "BEGIN SSH SIGNATURE" "$E2E_OUT"
expect_contains "confirm refused: the agent asked before refusing" \
    "$fpc" "$(cat "$T/agent-askpass.log" 2>/dev/null)"

# Keys without -c never ask.
: >"$T/agent-askpass.log"
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/ed25519.pub" -n file
expect_rc "unconstrained key still signs while confirmations are refused" 0
expect_eq "unconstrained key did not trigger a confirmation" "" "$(cat "$T/agent-askpass.log" 2>/dev/null)"

e2e_finish
