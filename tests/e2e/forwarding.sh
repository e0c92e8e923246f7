#!/bin/bash
# forwarding.sh AGENT_BINARY
#
# The seed's scenario with OpenSSH tools.  The seed report: a client that
# forwards the agent logs in to a node, and on the node `ssh -A localhost`
# works once and fails the second time, because the Windows agent closed the
# connection after refusing the second session-bind.  Here:
#
#   test --ssh -A (ed25519)--> node (sshd session on this machine)
#       node: ssh-add -l                 via the forwarded socket
#       node: ssh -A e2e-sshd  (rsa2048)  inner login 1: marker + ssh-add -l
#       node: ssh -A e2e-sshd  (rsa2048)  inner login 2: marker + ssh-add -l
#       node: ssh-add -l                 the forwarded agent still answers
#       node: ssh -A e2e-sshd  (rsa2048)  inner login 3
#   test: ssh-add -l                     the agent itself still answers
#
# Both private key files are removed, so every signature comes from the
# agent under test, through one (outer) or two (inner) forwarding hops.
#
# What an agent sees (OpenSSH 9.2 client): the outer ssh opens one agent
# connection for its own authentication (session-bind@openssh.com with
# is_forwarding=0, then identities and a sign request) and, for every agent
# channel the node opens, a NEW agent connection that starts with
# session-bind with is_forwarding=1 for the outer session.  The inner ssh's
# authentication arrives on such a connection as a second session-bind
# (is_forwarding=0, the inner session id) after the forwarding bind: that
# must succeed.  Each inner ssh runs on its own channel/connection.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
T=$E2E_TMP

e2e_keygen ed25519 ed25519 ""
e2e_keygen rsa2048 rsa 2048

e2e_start_agent
e2e_start_sshd
e2e_authorize ed25519 rsa2048

for k in ed25519 rsa2048; do
    e2e_run ssh-add "$T/$k"
    expect_rc "ssh-add $k" 0
    e2e_drop_private "$k"
done
fp_ed=$(e2e_fp "$T/ed25519.pub")
fp_rsa=$(e2e_fp "$T/rsa2048.pub")
want_fps="$fp_ed
$fp_rsa"

# The inner session's command: a marker, then the agent as seen two hops
# away.  Every line is prefixed so the outer test can pick them apart.
cat >"$T/inner.sh" <<'EOF'
#!/bin/bash
n=$1
echo "inner-marker-$n"
echo "inner-sock-$n=${SSH_AUTH_SOCK:-unset}"
out=$(ssh-add -l 2>&1); rc=$?
printf '%s\n' "$out" | sed "s/^/inner-list-$n: /"
echo "inner-list-rc-$n=$rc"
EOF

# The node's script.  It runs in the sshd session, which inherits nothing
# from this test: every ssh option comes from the -F config file.
cat >"$T/node.sh" <<EOF
#!/bin/bash
T='$T'
CFG='$E2E_SSH_CONFIG'
EOF
cat >>"$T/node.sh" <<'EOF'
echo "node-start"
echo "node-sock=${SSH_AUTH_SOCK:-unset}"
out=$(ssh-add -l 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/node-list: /'
echo "node-list-rc=$rc"
inner() {
    ssh -v -F "$CFG" -A -o IdentityFile="$T/rsa2048.pub" e2e-sshd "bash $T/inner.sh $1" 2>"$T/inner-$1.err"
    echo "inner-ssh-rc-$1=$?"
}
inner 1
inner 2
out=$(ssh-add -l 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/node-list-again: /'
echo "node-list-again-rc=$rc"
inner 3
echo "node-end"
EOF
chmod 755 "$T/node.sh" "$T/inner.sh"

# Lines of $E2E_OUT starting with PREFIX, prefix removed.
lines_of() {
    printf '%s\n' "$E2E_OUT" | sed -n "s/^$1//p"
}
# Fingerprint column of `ssh-add -l` lines.
fps_of() {
    lines_of "$1" | awk '{print $2}'
}

# ---- the outer login with agent forwarding ------------------------------------------
e2e_ssh -A -o IdentityFile="$T/ed25519.pub" e2e-sshd "bash $T/node.sh"
expect_rc "outer ssh -A to the node exits 0" 0
expect_contains "node script started" "node-start" "$E2E_OUT"
expect_contains "node script ran to the end" "node-end" "$E2E_OUT"

node_sock=$(lines_of "node-sock=")
check "node has a forwarded SSH_AUTH_SOCK (not unset, not our socket)" \
    test -n "$node_sock" -a "$node_sock" != unset -a "$node_sock" != "$E2E_AGENT_SOCK"

expect_eq "node: ssh-add -l through the forwarded socket exits 0" 0 "$(lines_of "node-list-rc=")"
expect_eq "node: ssh-add -l lists both agent keys, in order" "$want_fps" "$(fps_of "node-list: ")"

for i in 1 2 3; do
    expect_eq "node: inner ssh -A #$i exits 0" 0 "$(lines_of "inner-ssh-rc-$i=")"
    expect_eq "node: inner login #$i printed its marker" "inner-marker-$i" \
        "$(printf '%s\n' "$E2E_OUT" | grep -x "inner-marker-$i")"
    isock=$(lines_of "inner-sock-$i=")
    check "inner #$i: session has a forwarded socket (two hops)" \
        test -n "$isock" -a "$isock" != unset -a "$isock" != "$node_sock"
    expect_eq "inner #$i: ssh-add -l two hops away exits 0" 0 "$(lines_of "inner-list-rc-$i=")"
    expect_eq "inner #$i: ssh-add -l two hops away lists both keys" "$want_fps" "$(fps_of "inner-list-$i: ")"
    expect_contains "inner #$i: ssh on the node authenticated with the forwarded agent's rsa2048" \
        "Server accepts key: $T/rsa2048.pub RSA $fp_rsa explicit agent" \
        "$(cat "$T/inner-$i.err" 2>/dev/null)"
done

expect_eq "node: ssh-add -l after two inner logins still exits 0" 0 "$(lines_of "node-list-again-rc=")"
expect_eq "node: ssh-add -l after two inner logins still lists both keys" "$want_fps" \
    "$(fps_of "node-list-again: ")"

# The order of events on the node, as one string: nothing skipped or repeated.
expect_eq "node: events happened in order" \
    "node-start inner-marker-1 inner-marker-2 inner-marker-3 node-end" \
    "$(printf '%s\n' "$E2E_OUT" | grep -xE 'node-start|node-end|inner-marker-[0-9]+' | tr '\n' ' ' | sed 's/ $//')"

# sshd saw one outer login with ed25519 and three inner ones with rsa2048.
sshd_log=$(tr -d '\r' <"$E2E_SSHD_LOG")
expect_eq "sshd accepted the outer ed25519 login once" 1 \
    "$(printf '%s\n' "$sshd_log" | grep -cF "ssh2: ED25519 $fp_ed")"
expect_eq "sshd accepted three inner rsa2048 logins" 3 \
    "$(printf '%s\n' "$sshd_log" | grep -F "Accepted publickey for $E2E_USER" | grep -cF "ssh2: RSA $fp_rsa")"

# ---- afterwards the agent serves new connections normally ------------------------
e2e_run ssh-add -l
expect_rc "after forwarding: local ssh-add -l exits 0" 0
expect_eq "after forwarding: local ssh-add -l lists both keys" "$want_fps" \
    "$(printf '%s\n' "$E2E_OUT" | awk '{print $2}')"
e2e_ssh -A -o IdentityFile="$T/rsa2048.pub" e2e-sshd "ssh-add -l >/dev/null && echo fwd-still-ok"
expect_rc "after forwarding: a new ssh -A login works" 0
expect_eq "after forwarding: the new session sees the forwarded agent" "fwd-still-ok" "$E2E_OUT"

e2e_finish
