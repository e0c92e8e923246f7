#!/usr/bin/env bash
# destination.sh AGENT_BINARY
#
# Destination restrictions (`ssh-add -h`, restrict-destination-v00@openssh.com)
# with OpenSSH 9.2's own tools against three real sshd instances on
# 127.0.0.1, each with its own port and host key:
#
#   ssh-add -h host1                  log in to host1, not to host2
#   ssh-add -h host1 -h "host1>host2" ssh -A host1, then host1 -> host2 works,
#                                     host1 -> host3 is refused
#   a key restricted to host1 is invisible to ssh-add -l run on host2
#   ssh-add -h nobody@host1           refuses a login as another user
#   a restricted key cannot sign on a bare connection with no binding
#
# The agent decides all of this from the session-bind@openssh.com bindings
# ssh sends and from the userauth request it is asked to sign.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
T=$E2E_TMP

e2e_keygen restricted ed25519 "" "restricted-key"
e2e_keygen free ed25519 "" "free-key"
KEYWARD_E2E_DEBUG=1 e2e_start_agent
for h in host1 host2 host3; do
    E2E_SSHD_NAME=$h e2e_start_sshd
done
e2e_authorize restricted free

# ssh-add -h looks host keys up by name: a known_hosts file of our own that
# names each sshd's key by its alias.
for h in host1 host2 host3; do
    echo "$h $(e2e_keypart "$T/${h}_host_ed25519.pub")"
done >"$T/hosts_for_add"

# Only the agent may sign: drop the private key files after loading.
add_restricted() { # ssh-add -h args...
    ssh-add -D </dev/null >/dev/null 2>&1
    local args=() h
    for h in "$@"; do args+=(-h "$h"); done
    e2e_run ssh-add -H "$T/hosts_for_add" "${args[@]}" "$T/vault/restricted"
}
mkdir -p "$T/vault"
cp "$T/restricted" "$T/restricted.pub" "$T/free" "$T/free.pub" "$T/vault/"
e2e_drop_private restricted
e2e_drop_private free

# login HOST [extra ssh args...]: log in with the restricted key only.
login() {
    local host=$1
    shift
    e2e_run ssh -F "$E2E_SSH_CONFIG" -o IdentityAgent="$E2E_AGENT_SOCK" \
        -o IdentityFile="$T/restricted.pub" "$@" "e2e-$host" echo "login-ok-$host"
}

fp_restricted=$(e2e_fp "$T/restricted.pub")
fp_free=$(e2e_fp "$T/free.pub")

# --- ssh-add -h host1 ---------------------------------------------------------
add_restricted host1
expect_rc "ssh-add -h host1 is accepted" 0
e2e_run ssh-add -l
expect_contains "a local ssh-add -l still shows the restricted key" "$fp_restricted" "$E2E_OUT"
login host1
expect_rc "restricted to host1: login to host1 works" 0
expect_contains "restricted to host1: host1 ran the command" "login-ok-host1" "$E2E_OUT"
login host2
expect_rc "restricted to host1: login to host2 is refused" 255
expect_not_contains "restricted to host1: host2 ran nothing" "login-ok-host2" "$E2E_OUT"
expect_contains "the agent logged why it refused (hop and host key)" "hop 0 not permitted" \
    "$(cat "$E2E_AGENT_LOG")"

# --- a bare connection: no binding, no signature -------------------------------
echo "data" >"$T/msg"
e2e_run_in "$T/msg" ssh-keygen -Y sign -f "$T/restricted.pub" -n file
check "restricted key cannot sign on a connection with no session binding" test "$E2E_RC" != 0
expect_not_contains "no signature came out" "BEGIN SSH SIGNATURE" "$E2E_OUT"

# --- a user@host restriction ----------------------------------------------------
add_restricted "nobody@host1"
expect_rc "ssh-add -h nobody@host1 is accepted" 0
login host1
expect_rc "restricted to nobody@host1: login as $E2E_USER is refused" 255
add_restricted "$E2E_USER@host1"
login host1
expect_rc "restricted to $E2E_USER@host1: login as $E2E_USER works" 0

# --- hops: host1 > host2 allowed, host1 > host3 not ----------------------------
add_restricted host1 "host1>host2"
expect_rc "ssh-add -h host1 -h host1>host2 is accepted" 0
inner() { # TARGET: from host1, log in to TARGET through the forwarded agent
    e2e_run ssh -F "$E2E_SSH_CONFIG" -o IdentityAgent="$E2E_AGENT_SOCK" \
        -o IdentityFile="$T/restricted.pub" -A e2e-host1 \
        "echo on-host1; ssh -F $E2E_SSH_CONFIG -o IdentityFile=$T/restricted.pub e2e-$1 echo login-ok-via-host1-$1"
}
inner host2
expect_rc "host1 > host2: the outer login to host1 works" 0
expect_contains "host1 > host2: the forwarded login to host2 works" "login-ok-via-host1-host2" "$E2E_OUT"
inner host3
expect_contains "host1 > host3: the outer login to host1 works" "on-host1" "$E2E_OUT"
expect_not_contains "host1 > host3: the forwarded login to host3 is refused" \
    "login-ok-via-host1-host3" "$E2E_OUT"

# --- invisible where it cannot be used ------------------------------------------
add_restricted host1
e2e_run ssh-add "$T/vault/free"
e2e_run ssh -F "$E2E_SSH_CONFIG" -o IdentityAgent="$E2E_AGENT_SOCK" \
    -o IdentityFile="$T/free.pub" -A e2e-host2 ssh-add -l
expect_rc "ssh -A host2 with the unrestricted key" 0
expect_contains "ssh-add -l on host2 lists the unrestricted key" "$fp_free" "$E2E_OUT"
expect_not_contains "ssh-add -l on host2 does not list the key restricted to host1" \
    "$fp_restricted" "$E2E_OUT"
e2e_run ssh -F "$E2E_SSH_CONFIG" -o IdentityAgent="$E2E_AGENT_SOCK" \
    -o IdentityFile="$T/free.pub" -A e2e-host1 ssh-add -l
expect_contains "ssh-add -l on host1 (a permitted destination, no onward hop) hides it too" \
    "$fp_free" "$E2E_OUT"
expect_not_contains "because host1 has no permitted onward hop" "$fp_restricted" "$E2E_OUT"

e2e_finish
