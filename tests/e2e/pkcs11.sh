#!/bin/bash
# pkcs11.sh AGENT BAD_MODULE
#
# PKCS#11 tokens through keyward-agent with the real OpenSSH tools and a
# real module, SoftHSM2 (tests/pkcs11/softhsm_token.sh makes a token with
# RSA-2048, RSA-4096, ECDSA P-256 and P-384 keys):
#   - ssh-add -s MODULE with the PIN adds the token's four keys; -l and -L
#     list them (-L: exactly the token's public keys); a wrong PIN is refused
#   - ssh logs in to the test sshd with each, directly, and forwarded (ssh -A
#     to the node, then from the node again)
#   - ssh-keygen -Y sign through the agent, and -Y verify
#   - a module outside -P, and ssh-add -s from a forwarded connection, are
#     refused; the agent serves on
#   - ssh-add -e removes the module and its keys; ssh-add -D does too, and
#     the module can be added again after either
#   - BAD_MODULE (tests/pkcs11/bad_module.c): a module that aborts while
#     signing, answers garbage, reports its token removed, or hangs: that
#     signature fails, the agent and other clients are served meanwhile,
#     the keys of a module whose helper is gone are removed, and it can be
#     added again
#
# The agent finds keyward-pkcs11-helper beside itself (the build tree).

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
E2E_BAD_MODULE=${2:-}
e2e_init "$1"
T=$E2E_TMP

e2e_need softhsm2-util
tok=$T/token
if ! module=$("$(dirname "$0")/../pkcs11/softhsm_token.sh" "$tok" 2>"$T/token.err"); then
    cat "$T/token.err"
    e2e_fatal "could not make the SoftHSM2 token"
fi
export SOFTHSM2_CONF=$tok/softhsm2.conf # the agent's helper inherits it
pin=$(cat "$tok/pin")
names="id_rsa2048 id_rsa4096 id_ecdsa256 id_ecdsa384"
module_dir=$(dirname "$module")

# ssh-add asks for the PIN through askpass, as a desktop session would.
cat >"$T/pin-askpass" <<EOF
#!/bin/sh
cat "$T/pin-to-give"
EOF
chmod 700 "$T/pin-askpass"
add_module() { # PIN MODULE [ssh-add options]: ssh-add -s
    printf '%s\n' "$1" >"$T/pin-to-give"
    local m=$2
    shift 2
    e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ssh-add "$@" -s "$m"
}

E2E_AGENT_EXTRA="-P $module_dir/*,$(dirname "${E2E_BAD_MODULE:-/nowhere/x}")/*"
e2e_start_agent
e2e_start_sshd
for n in $names; do cp "$tok/$n.pub" "$T/$n.pub"; done
e2e_authorize $names

# --- adding: a wrong PIN, then the right one ------------------------------------
add_module 000000 "$module"
check "ssh-add -s with a wrong PIN fails (exit $E2E_RC)" test "$E2E_RC" != 0
e2e_run ssh-add -l
expect_contains "and adds nothing" "The agent has no identities." "$E2E_OUT"
add_module "$pin" "$module"
expect_rc "ssh-add -s MODULE with the PIN" 0
expect_contains "ssh-add says the card was added" "Card added: $module" "$E2E_OUT$E2E_ERR"
e2e_run ssh-add -l
expect_rc "ssh-add -l" 0
for n in $names; do
    expect_contains "ssh-add -l lists $n" "$(e2e_fp "$tok/$n.pub")" "$E2E_OUT"
done
expect_eq "exactly the token's four keys" 4 "$(e2e_count_lines "$E2E_OUT")"
expect_contains "labelled as on the token" "keyward-test-id_rsa2048" "$E2E_OUT"
e2e_run ssh-add -L
want=$(for n in $names; do e2e_keypart "$tok/$n.pub"; done | sort)
expect_eq "ssh-add -L prints exactly the token's public keys" "$want" \
    "$(printf '%s\n' "$E2E_OUT" | awk '{print $1, $2}' | sort)"
add_module "$pin" "$module"
check "adding the same module again fails, as in OpenSSH (exit $E2E_RC)" test "$E2E_RC" != 0

# --- signing: logins with each key, a forwarded one, ssh-keygen -Y ---------------
for n in $names; do
    e2e_ssh -o IdentityFile="$T/$n.pub" -o IdentitiesOnly=yes e2e-sshd "echo login-ok-$n"
    expect_rc "ssh login with the token's $n" 0
    expect_contains "the session ran ($n)" "login-ok-$n" "$E2E_OUT"
done
sshd_log=$(tr -d '\r' <"$E2E_SSHD_LOG")
expect_contains "sshd accepted the RSA-4096 token key" \
    "ssh2: RSA $(e2e_fp "$tok/id_rsa4096.pub")" "$sshd_log"
expect_contains "sshd accepted the P-384 token key" \
    "ssh2: ECDSA $(e2e_fp "$tok/id_ecdsa384.pub")" "$sshd_log"

cat >"$T/node.sh" <<EOF
#!/bin/bash
ssh -F '$E2E_SSH_CONFIG' -o IdentityFile='$T/id_ecdsa256.pub' -o IdentitiesOnly=yes \
    e2e-sshd 'echo inner-login-ok'
echo "inner-rc=\$?"
printf '%s\n' '$pin' >'$T/pin-to-give'
SSH_ASKPASS='$T/pin-askpass' SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ssh-add -e '$module' \
    >/dev/null 2>&1
echo "forwarded-remove-rc=\$?"
SSH_ASKPASS='$T/pin-askpass' SSH_ASKPASS_REQUIRE=force DISPLAY=:0 ssh-add -s '$module' \
    >/dev/null 2>&1
echo "forwarded-add-rc=\$?"
EOF
chmod 755 "$T/node.sh"
e2e_ssh -A -o IdentityFile="$T/id_rsa2048.pub" -o IdentitiesOnly=yes e2e-sshd "bash $T/node.sh"
expect_rc "ssh -A to the node with a token key" 0
expect_contains "the node logged in again through the forwarded agent" "inner-login-ok" "$E2E_OUT"
expect_contains "that inner login exited 0" "inner-rc=0" "$E2E_OUT"
# A forwarded connection may remove a module (OpenSSH allows it) but not load one.
expect_contains "ssh-add -s from the node (forwarded) is refused" "forwarded-add-rc=1" "$E2E_OUT"
expect_contains "the refusal is logged with the reason" "forwarded connection is disabled" \
    "$(cat "$E2E_AGENT_LOG")"
add_module "$pin" "$module"
expect_rc "ssh-add -s again after the node removed the module" 0

printf 'a message for the token\n' >"$T/msg"
e2e_run ssh-keygen -Y sign -f "$T/id_ecdsa384.pub" -n file "$T/msg"
expect_rc "ssh-keygen -Y sign with the token's P-384 key through the agent" 0
printf 'tester %s\n' "$(e2e_keypart "$T/id_ecdsa384.pub")" >"$T/allowed_signers"
e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I tester -n file \
    -s "$T/msg.sig"
expect_rc "ssh-keygen -Y verify accepts it" 0
rm -f "$T/msg.sig"
e2e_run ssh-keygen -Y sign -f "$T/id_rsa4096.pub" -n file "$T/msg"
expect_rc "ssh-keygen -Y sign with the token's RSA-4096 key" 0
printf 'tester %s\n' "$(e2e_keypart "$T/id_rsa4096.pub")" >"$T/allowed_signers"
e2e_run_in "$T/msg" ssh-keygen -Y verify -f "$T/allowed_signers" -I tester -n file \
    -s "$T/msg.sig"
expect_rc "ssh-keygen -Y verify accepts the RSA one" 0
e2e_run_in /dev/null ssh-keygen -Y verify -f "$T/allowed_signers" -I tester -n file \
    -s "$T/msg.sig"
check "and refuses it for another message (exit $E2E_RC)" test "$E2E_RC" != 0

# --- constraints apply to token keys as to others: -c, then -t --------------------
printf '%s\n' "$pin" >"$T/pin-to-give"
e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
    ssh-add -e "$module"
add_module "$pin" "$module" -c
expect_rc "ssh-add -c -s MODULE" 0
: >"$T/agent-askpass.log"
echo no >"$T/agent-confirm"
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/id_ecdsa256.pub" -n file
check "-c: a token key's signature refused by the user fails (exit $E2E_RC)" test "$E2E_RC" != 0
expect_contains "-c: the user was asked, with the key's label" "keyward-test-id_ecdsa256" \
    "$(cat "$T/agent-askpass.log" 2>/dev/null)"
echo yes >"$T/agent-confirm"
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/id_ecdsa256.pub" -n file
expect_rc "-c: approved, the token signs" 0
e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
    ssh-add -e "$module"
add_module "$pin" "$module" -t 2
expect_rc "ssh-add -t 2 -s MODULE" 0
e2e_run ssh-add -l
expect_eq "-t: the four keys at first" 4 "$(e2e_count_lines "$E2E_OUT")"
sleep 3
e2e_run ssh-add -l
expect_contains "-t: and none after their lifetime" "The agent has no identities." "$E2E_OUT"
e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
    ssh-add -e "$module"
expect_rc "-t: the module stays loaded until ssh-add -e" 0
add_module "$pin" "$module"
expect_rc "and is added again without constraints" 0

# --- certificates for the token's keys (associated-certs-v00@openssh.com) ---------
# ssh-add sends them with the module from OpenSSH 9.8 on (ssh-add -s MODULE
# CERT...); Debian 12's 9.2 cannot, so this part runs with another OpenSSH
# (KEYWARD_E2E_OPENSSH, make test's pq tests: OpenSSH 10.0).
if [ -n "${KEYWARD_E2E_OPENSSH:-}" ]; then
    e2e_make_ca ca
    e2e_certify id_ecdsa256 token-cert ca 7
    chmod 600 "$T/id_ecdsa256-cert.pub" # ssh refuses identity files others may read
    printf 'cert-authority %s\n' "$(e2e_keypart "$T/ca.pub")" >>"$T/authorized_keys"
    printf '%s\n' "$pin" >"$T/pin-to-give"
    e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ssh-add -e "$module"
    e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ssh-add -s "$module" "$T/id_ecdsa256-cert.pub"
    expect_rc "ssh-add -s MODULE CERT ($(ssh -V 2>&1))" 0
    e2e_run ssh-add -L
    expect_eq "the token's four keys and the certificate" 5 "$(e2e_count_lines "$E2E_OUT")"
    expect_contains "the certificate is an identity of its own" \
        "$(e2e_keypart "$T/id_ecdsa256-cert.pub")" "$E2E_OUT"
    e2e_ssh -o IdentityFile="$T/id_ecdsa256-cert.pub" -o IdentitiesOnly=yes e2e-sshd \
        "echo cert-login-ok"
    expect_rc "ssh logs in with the token key's certificate" 0
    expect_contains "sshd accepted it as a certificate" "ECDSA-CERT" \
        "$(grep "ID token-cert" "$E2E_SSHD_LOG")"
    e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ssh-add -e "$module"
    e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ssh-add -C -s "$module" "$T/id_ecdsa256-cert.pub"
    expect_rc "ssh-add -C -s MODULE CERT: certificates only" 0
    e2e_run ssh-add -L
    expect_eq "then only the certificate is listed" \
        "$(e2e_keypart "$T/id_ecdsa256-cert.pub")" "$(printf '%s\n' "$E2E_OUT" | awk '{print $1, $2}')"
    e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        ssh-add -e "$module"
    add_module "$pin" "$module"
fi

# --- refusals that keep the agent serving ----------------------------------------
cp "$module" "$T/elsewhere.so"
add_module "$pin" "$T/elsewhere.so"
check "a module outside -P is refused (exit $E2E_RC)" test "$E2E_RC" != 0
expect_contains "and the log says why" "not allowed by the provider allow-list" \
    "$(cat "$E2E_AGENT_LOG")"
add_module "$pin" "$T/no-such-module.so"
check "a module that does not exist is refused (exit $E2E_RC)" test "$E2E_RC" != 0
e2e_run ssh-add -l
expect_eq "the token's keys are still there" 4 "$(e2e_count_lines "$E2E_OUT")"

# --- removing: -e, then -D ------------------------------------------------------
printf '%s\n' "$pin" >"$T/pin-to-give"
e2e_run env SSH_ASKPASS="$T/pin-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
    ssh-add -e "$module"
expect_rc "ssh-add -e MODULE" 0
e2e_run ssh-add -l
expect_contains "removes the token's keys" "The agent has no identities." "$E2E_OUT"
add_module "$pin" "$module"
expect_rc "the module can be added again" 0
e2e_keygen soft ed25519 ""
e2e_run ssh-add "$T/soft"
e2e_run ssh-add -D
expect_rc "ssh-add -D" 0
e2e_run ssh-add -l
expect_contains "removes token keys too" "The agent has no identities." "$E2E_OUT"
add_module "$pin" "$module"
expect_rc "and the module can be added again at once" 0
e2e_run ssh-add -l
expect_eq "with its four keys" 4 "$(e2e_count_lines "$E2E_OUT")"

# --- modules that misbehave -----------------------------------------------------
if [ -n "$E2E_BAD_MODULE" ]; then
    bad_agent() { # MODE: a fresh agent whose helpers load the bad module in that mode
        e2e_stop_agent
        KEYWARD_BAD_MODULE=$1 e2e_start_agent
    }
    sign_with_first_key() { # ssh-keygen -Y sign with the bad module's key
        e2e_run ssh-add -L
        printf '%s\n' "$E2E_OUT" | grep bad-module-key >"$T/bad.pub"
        rm -f "$T/msg.sig"
        e2e_run timeout 90 ssh-keygen -Y sign -f "$T/bad.pub" -n file "$T/msg"
    }
    for mode in abort garbage; do
        bad_agent "$mode"
        add_module "" "$E2E_BAD_MODULE"
        expect_rc "$mode: the bad module loads" 0
        e2e_run ssh-add -l
        expect_contains "$mode: its key is listed" "bad-module-key" "$E2E_OUT"
        sign_with_first_key
        check "$mode: its signature fails (exit $E2E_RC)" test "$E2E_RC" != 0
        e2e_run ssh-add "$T/soft"
        expect_rc "$mode: the agent still serves (ssh-add of a file key)" 0
        e2e_run ssh-add -l
        expect_contains "$mode: and lists" "$(e2e_fp "$T/soft.pub")" "$E2E_OUT"
        if [ "$mode" = abort ]; then
            expect_contains "abort: the log names the helper's death" "killed by signal 6" \
                "$(cat "$E2E_AGENT_LOG")"
            expect_not_contains "abort: the dead module's key was removed" "bad-module-key" \
                "$E2E_OUT"
            add_module "" "$E2E_BAD_MODULE"
            expect_rc "abort: the module can be added again" 0
        else
            expect_match "garbage: the log says why the signature was refused" \
                "SIGN_REQUEST.*-> FAILURE: .*(module's helper failed|does not verify|malformed)" \
                "$(cat "$E2E_AGENT_LOG")"
        fi
    done

    # A token pulled out after it was loaded: that signature fails, and its keys go.
    bad_agent removed
    add_module "" "$E2E_BAD_MODULE"
    expect_rc "removed: the module loads" 0
    sign_with_first_key
    check "removed: the signature fails (exit $E2E_RC)" test "$E2E_RC" != 0
    sleep 0.5
    e2e_run ssh-add -l
    expect_not_contains "removed: the token's key was removed from the agent" "bad-module-key" \
        "$E2E_OUT"
    expect_contains "removed: the log says the token is gone" "token removed?" \
        "$(cat "$E2E_AGENT_LOG")"
    add_module "" "$E2E_BAD_MODULE"
    expect_rc "removed: the module can be added again" 0

    bad_agent hang
    add_module "" "$E2E_BAD_MODULE"
    expect_rc "hang: the bad module loads" 0
    e2e_run ssh-add -L
    printf '%s\n' "$E2E_OUT" | grep bad-module-key >"$T/bad.pub"
    start=$SECONDS
    # Not e2e_run: it shares its output files with the main shell's.
    (
        timeout 90 ssh-keygen -Y sign -f "$T/bad.pub" -n file "$T/msg" \
            >"$T/hang.out" 2>&1 </dev/null
        echo "$?" >"$T/hang.rc"
    ) &
    hanging=$!
    sleep 1
    e2e_run ssh-add "$T/soft"
    expect_rc "hang: other clients are served while a signature hangs" 0
    e2e_run ssh-add -l
    expect_rc "hang: and can list" 0
    wait "$hanging"
    took=$((SECONDS - start))
    check "hang: the hanging signature fails when the 30 s timeout strikes ($took s)" \
        test "$(cat "$T/hang.rc")" != 0 -a "$took" -ge 25 -a "$took" -lt 60
    expect_contains "hang: the log says the helper did not answer" "no answer from its helper" \
        "$(cat "$E2E_AGENT_LOG")"
    e2e_run ssh-add -l
    expect_not_contains "hang: the module's key was removed" "bad-module-key" "$E2E_OUT"
    add_module "" "$E2E_BAD_MODULE"
    expect_rc "hang: the module can be added again" 0
fi

e2e_finish
