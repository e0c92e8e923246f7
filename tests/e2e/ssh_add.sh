#!/bin/bash
# ssh_add.sh AGENT_BINARY
#
# Drives the agent with OpenSSH's ssh-add: add every key type (and a key with
# its certificate), list (-l, -L), test-sign (-T), remove (-d, -D), lock and
# unlock (-x, -X) with right and wrong passphrases, lifetime (-t) including
# actual expiry, and confirm (-c) constraints.
#
# What ssh-add sends (OpenSSH 9.2, seen in `ssh-agent -d` logs):
#   ssh-add KEY          ADD_IDENTITY (17) for KEY, then 17 again for
#                        KEY-cert.pub if that file exists (same comment)
#   ssh-add -t N / -c    ADD_ID_CONSTRAINED (25) instead, for key and cert
#   ssh-add -l / -L      REQUEST_IDENTITIES (11)
#   ssh-add -d KEY       REMOVE_IDENTITY (18) for KEY, then for KEY-cert.pub
#   ssh-add -D           REMOVE_ALL_IDENTITIES (19), then the legacy SSH1
#                        REMOVE_ALL_RSA_IDENTITIES (9), whose answer it ignores
#   ssh-add -x / -X      LOCK (22) / UNLOCK (23)
#   ssh-add -T PUB       SIGN_REQUEST (13) and verifies the result locally

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
T=$E2E_TMP

# ---- keys ------------------------------------------------------------------
e2e_std_keys
e2e_keygen rsa1024 rsa 1024            # OpenSSH's minimum RSA size
e2e_keygen nocomment ed25519 "" ""     # empty comment
e2e_keygen certkey ed25519 ""          # carries a user certificate
e2e_make_ca ca
e2e_certify certkey e2e-cert-id ca 1
ALL_PLAIN="$E2E_KEY_NAMES rsa1024 nocomment"

e2e_start_agent

# Expected `ssh-add -l` line of a key as ssh-keygen -l prints it for the .pub.
# ssh-add sends the private key file's comment, or the file name when the
# comment is empty, so the "nocomment" key shows its path.
expected_l_line() {
    local name=$1 file=$T/$1.pub bits fp type
    read -r bits fp _ <<<"$(ssh-keygen -lf "$file")"
    type=$(ssh-keygen -lf "$file" | sed 's/.*(\([A-Z0-9-]*\))$/\1/')
    case $name in
        nocomment) echo "$bits $fp $T/nocomment ($type)" ;;
        certkey-cert) echo "$bits $fp e2e-certkey ($type)" ;;
        *) echo "$bits $fp e2e-$name ($type)" ;;
    esac
}

# ---- empty agent ---------------------------------------------------------------
e2e_run ssh-add -l
expect_rc "empty agent: ssh-add -l exits 1" 1
expect_eq "empty agent: ssh-add -l says so" "The agent has no identities." "$E2E_OUT"

# ---- add every key type ---------------------------------------------------------
for k in $ALL_PLAIN; do
    e2e_run ssh-add "$T/$k"
    expect_rc "ssh-add $k exits 0" 0
    if [ "$k" = nocomment ]; then
        expect_contains "ssh-add $k reports it (file name as comment)" \
            "Identity added: $T/$k ($T/$k)" "$E2E_ERR"
    else
        expect_contains "ssh-add $k reports it" "Identity added: $T/$k (e2e-$k)" "$E2E_ERR"
    fi
done

# A key next to KEY-cert.pub: ssh-add adds the key and then the certificate.
e2e_run ssh-add "$T/certkey"
expect_rc "ssh-add certkey (with certificate) exits 0" 0
expect_contains "ssh-add certkey reports the key" "Identity added: $T/certkey (e2e-certkey)" "$E2E_ERR"
expect_contains "ssh-add certkey reports the certificate" \
    "Certificate added: $T/certkey-cert.pub (e2e-cert-id)" "$E2E_ERR"

# ---- list -----------------------------------------------------------------
want_l=
for k in $ALL_PLAIN certkey certkey-cert; do
    want_l+="$(expected_l_line "$k")"$'\n'
done
want_l=${want_l%$'\n'}
e2e_run ssh-add -l
expect_rc "ssh-add -l exits 0 with keys loaded" 0
expect_eq "ssh-add -l lists 10 identities (8 keys, certkey, its cert)" 10 "$(e2e_count_lines "$E2E_OUT")"
# OpenSSH keeps identities in the order they were added; ssh offers agent keys
# in list order, so a drop-in should too.
expect_eq "ssh-add -l: every line (bits, fingerprint, comment, type) in add order" "$want_l" "$E2E_OUT"
for k in $ALL_PLAIN certkey; do
    expect_contains "ssh-add -l shows the fingerprint of $k" "$(e2e_fp "$T/$k.pub")" "$E2E_OUT"
done
expect_match "ssh-add -l shows the certificate as ED25519-CERT" \
    "^256 $(e2e_re_escape "$(e2e_fp "$T/certkey-cert.pub")") e2e-certkey \\(ED25519-CERT\\)\$" "$E2E_OUT"
expect_match "ssh-add -l shows RSA-1024 with its size" "^1024 $(e2e_re_escape "$(e2e_fp "$T/rsa1024.pub")") .*\\(RSA\\)\$" "$E2E_OUT"
expect_match "ssh-add -l shows RSA-4096 with its size" "^4096 $(e2e_re_escape "$(e2e_fp "$T/rsa4096.pub")") .*\\(RSA\\)\$" "$E2E_OUT"
expect_match "ssh-add -l shows ECDSA-521 with its size" "^521 $(e2e_re_escape "$(e2e_fp "$T/ecdsa521.pub")") .*\\(ECDSA\\)\$" "$E2E_OUT"

# -L prints the public blobs: they must be byte-identical to the .pub files.
want_L=
for k in $ALL_PLAIN certkey certkey-cert; do
    want_L+="$(e2e_keypart "$T/$k.pub")"$'\n'
done
want_L=${want_L%$'\n'}
e2e_run ssh-add -L
expect_rc "ssh-add -L exits 0" 0
expect_eq "ssh-add -L key blobs equal the .pub files (and the cert)" \
    "$want_L" "$(printf '%s\n' "$E2E_OUT" | awk '{print $1, $2}')"
expect_contains "ssh-add -L has the certificate line" "$(e2e_keypart "$T/certkey-cert.pub") e2e-certkey" "$E2E_OUT"
expect_contains "ssh-add -L: empty-comment key carries its file name" \
    "$(e2e_keypart "$T/nocomment.pub") $T/nocomment" "$E2E_OUT"

# ---- -T: sign and verify with each key (ssh-add checks the signature) ---------
for k in $ALL_PLAIN certkey-cert; do
    e2e_run ssh-add -T "$T/$k.pub"
    expect_rc "ssh-add -T $k: agent signature verifies" 0
done

# ---- re-adding an existing key replaces it, no duplicate --------------------
e2e_run ssh-add "$T/ed25519"
expect_rc "re-adding ed25519 exits 0" 0
e2e_run ssh-add -l
expect_eq "re-adding does not duplicate: still 10 identities" 10 "$(e2e_count_lines "$E2E_OUT")"

# ---- -d -------------------------------------------------------------------
fp384=$(e2e_fp "$T/ecdsa384.pub")
e2e_run ssh-add -d "$T/ecdsa384"
expect_rc "ssh-add -d ecdsa384 exits 0" 0
expect_contains "ssh-add -d reports the removal" "Identity removed: $T/ecdsa384" "$E2E_ERR"
e2e_run ssh-add -l
expect_eq "after -d: 9 identities" 9 "$(e2e_count_lines "$E2E_OUT")"
expect_not_contains "after -d: ecdsa384 fingerprint gone" "$fp384" "$E2E_OUT"
expect_contains "after -d: ecdsa256 still there" "$(e2e_fp "$T/ecdsa256.pub")" "$E2E_OUT"

# Removing a key that is not there fails and changes nothing.
e2e_run ssh-add -d "$T/ecdsa384"
expect_rc "ssh-add -d of an absent key exits 1" 1
e2e_run ssh-add -l
expect_eq "failed -d leaves 9 identities" 9 "$(e2e_count_lines "$E2E_OUT")"

# -d of a key with a cert next to it removes both (two REMOVE_IDENTITY).
e2e_run ssh-add -d "$T/certkey"
expect_rc "ssh-add -d certkey exits 0" 0
expect_contains "ssh-add -d certkey removes the key" "Identity removed: $T/certkey " "$E2E_ERR"
expect_contains "ssh-add -d certkey removes the certificate" "Identity removed: $T/certkey-cert.pub" "$E2E_ERR"
e2e_run ssh-add -l
expect_eq "after -d certkey: 7 identities" 7 "$(e2e_count_lines "$E2E_OUT")"
expect_not_contains "after -d certkey: no CERT line" "CERT" "$E2E_OUT"

# ---- -D -------------------------------------------------------------------
e2e_run ssh-add -D
expect_rc "ssh-add -D exits 0" 0
expect_contains "ssh-add -D reports it" "All identities removed." "$E2E_ERR"
e2e_run ssh-add -l
expect_rc "after -D: ssh-add -l exits 1" 1
expect_eq "after -D: no identities" "The agent has no identities." "$E2E_OUT"
e2e_run ssh-add -L
expect_rc "after -D: ssh-add -L exits 1" 1

# ---- lock / unlock ------------------------------------------------------------
# ssh-add reads the passphrase through SSH_ASKPASS (forced, stdin /dev/null):
# -x asks twice ("Enter lock password:", "Again:"), -X once.
cat >"$T/askpass" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$T/askpass.log"
cat "$T/askpass.pass"
EOF
chmod 700 "$T/askpass"
export SSH_ASKPASS=$T/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=:0

e2e_run ssh-add "$T/ed25519" "$T/rsa2048"
expect_rc "add ed25519 + rsa2048 before locking" 0
want_locked_keys="$(e2e_fp "$T/ed25519.pub")
$(e2e_fp "$T/rsa2048.pub")"

echo "correct horse" >"$T/askpass.pass"
e2e_run ssh-add -x
expect_rc "ssh-add -x (lock) exits 0" 0
expect_contains "ssh-add -x reports it" "Agent locked." "$E2E_ERR"
expect_eq "ssh-add -x asked for the passphrase twice" 2 "$(e2e_count_lines "$(cat "$T/askpass.log")")"

e2e_run ssh-add -l
expect_rc "locked: ssh-add -l exits 1" 1
expect_eq "locked: agent lists no identities" "The agent has no identities." "$E2E_OUT"
e2e_run ssh-add -L
expect_rc "locked: ssh-add -L exits 1" 1
e2e_run ssh-add "$T/ecdsa256"
expect_rc "locked: adding a key is refused" 1
e2e_run ssh-add -x
expect_rc "locked: locking again is refused" 1
expect_contains "locked: second lock reports failure" "Failed to lock agent" "$E2E_ERR"

echo "wrong horse" >"$T/askpass.pass"
e2e_run ssh-add -X
expect_rc "unlock with the wrong passphrase exits 1" 1
expect_contains "wrong unlock reports failure" "Failed to unlock agent" "$E2E_ERR"
e2e_run ssh-add -l
expect_rc "after wrong unlock: still locked (ssh-add -l exits 1)" 1
expect_eq "after wrong unlock: still no identities listed" "The agent has no identities." "$E2E_OUT"

echo "correct horse" >"$T/askpass.pass"
e2e_run ssh-add -X
expect_rc "unlock with the right passphrase exits 0" 0
expect_contains "unlock reports it" "Agent unlocked." "$E2E_ERR"
e2e_run ssh-add -l
expect_rc "unlocked: ssh-add -l exits 0" 0
expect_eq "unlocked: the same two keys are back (and the refused add did not happen)" \
    "$want_locked_keys" "$(printf '%s\n' "$E2E_OUT" | awk '{print $2}')"
e2e_run ssh-add -T "$T/ed25519.pub"
expect_rc "unlocked: keys sign again (ssh-add -T)" 0

# Unlocking an agent that is not locked is refused.
e2e_run ssh-add -X
expect_rc "unlocking an unlocked agent exits 1" 1
unset SSH_ASKPASS SSH_ASKPASS_REQUIRE DISPLAY

e2e_run ssh-add -D
expect_rc "ssh-add -D before the constraint tests" 0

# ---- constraints ---------------------------------------------------------------
e2e_run ssh-add -t 60 "$T/ed25519"
expect_rc "ssh-add -t 60 exits 0" 0
expect_contains "ssh-add -t reports the lifetime" "Lifetime set to 60 seconds" "$E2E_ERR"

e2e_run ssh-add -c "$T/rsa2048"
expect_rc "ssh-add -c exits 0" 0
expect_contains "ssh-add -c reports confirmation" "The user must confirm each use of the key" "$E2E_ERR"

# Key + certificate with a lifetime: both get it (two ADD_ID_CONSTRAINED).
e2e_run ssh-add -t 60 "$T/certkey"
expect_rc "ssh-add -t 60 certkey exits 0" 0
expect_eq "ssh-add -t certkey sets the lifetime on key and cert" 2 \
    "$(printf '%s\n' "$E2E_ERR" | grep -c 'Lifetime set to 60 seconds')"
expect_contains "ssh-add -t certkey adds the certificate" "Certificate added: $T/certkey-cert.pub" "$E2E_ERR"

# A short lifetime must actually expire.  4 s leaves room for a loaded
# machine between the add and the listing that proves the key arrived.
e2e_run ssh-add -t 4 "$T/ecdsa521"
expect_rc "ssh-add -t 4 exits 0" 0
expect_contains "ssh-add -t 4 reports the lifetime" "Lifetime set to 4 seconds" "$E2E_ERR"
e2e_run ssh-add -l
expect_contains "the -t 4 key is listed right after adding" "$(e2e_fp "$T/ecdsa521.pub")" "$E2E_OUT"
expect_eq "constrained keys listed: ed25519, rsa2048, certkey, cert, ecdsa521" 5 "$(e2e_count_lines "$E2E_OUT")"
t0=$SECONDS
gone=0
while [ $((SECONDS - t0)) -lt 15 ]; do
    sleep 0.5
    e2e_run ssh-add -l
    if ! printf '%s\n' "$E2E_OUT" | grep -qF "$(e2e_fp "$T/ecdsa521.pub")"; then gone=1; break; fi
done
expect_eq "the -t 4 key expired within 15 s" 1 "$gone"
e2e_run ssh-add -l
expect_eq "after expiry the other 4 identities remain (-t 60, -c, key+cert)" \
    "$(e2e_fp "$T/ed25519.pub")
$(e2e_fp "$T/rsa2048.pub")
$(e2e_fp "$T/certkey.pub")
$(e2e_fp "$T/certkey-cert.pub")" "$(printf '%s\n' "$E2E_OUT" | awk '{print $2}')"

e2e_finish
