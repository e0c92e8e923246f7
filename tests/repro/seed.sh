#!/usr/bin/env bash
# The seed report, end to end, on localhost.
#
#   seed.sh SHARED_MUX NAME:EXPECT:AGENT_BINARY [NAME:EXPECT:AGENT_BINARY ...]
#
# EXPECT is "survives" or "breaks". For each agent:
#
#   agent (holds a user key and its certificate)
#     <- shared_mux: every client over ONE agent connection, as `tsh -A` did
#        <- ssh -A to the node: a real sshd on 127.0.0.1 that trusts the
#           user CA (TrustedUserCAKeys), the key itself not authorized
#           node: ssh -A localhost   (inner login 1)
#           node: ssh -A localhost   (inner login 2)
#           node: ssh -A localhost   (inner login 3)
#
# Every agent request of all four logins travels over the mux's single
# connection, so the agent sees a session-bind for authentication followed
# by more binds on the same connection: exactly the refusal in the seed.
# An agent that answers the refusal keeps the shared connection and every
# login works; one that closes the connection (the Windows port's defect)
# takes the agent away from every later login.
#
# Prints one row per agent, then checks each row against EXPECT.
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../e2e/lib.sh"

if [ $# -lt 2 ]; then
    echo "usage: $0 SHARED_MUX NAME:EXPECT:AGENT_BINARY..." >&2
    exit 1
fi
MUX=$1
shift
[ -x "$MUX" ] || { echo "not ok 1 - shared_mux '$MUX' is not executable"; exit 1; }
first=${1#*:}
e2e_init "${first#*:}"
T=$E2E_TMP

# The seed's node: sshd trusting a user CA; the user logs in by certificate.
e2e_make_ca ca
e2e_keygen user ed25519 "" "seed-user"
e2e_certify user seed-user ca 7
# Only the agent may sign: the private key moves to a vault that ssh never
# looks at, and ssh-add loads it (and the certificate beside it) from there.
mkdir -p "$T/vault"
cp "$T/user" "$T/user.pub" "$T/user-cert.pub" "$T/vault/"
e2e_drop_private user
e2e_start_sshd "TrustedUserCAKeys $T/ca.pub"

cat >"$T/node.sh" <<EOF
#!/bin/bash
# Runs on the node, inside the outer session: three inner logins through
# the forwarded agent, each reporting its result.
for i in 1 2 3; do
    if ssh -F $E2E_SSH_CONFIG -A -o IdentityFile=$T/user.pub \\
        -o CertificateFile=$T/user-cert.pub e2e-sshd echo inner-ok </dev/null >$T/inner.\$\$.out 2>&1 &&
        grep -qx inner-ok $T/inner.\$\$.out; then
        echo "inner-\$i=ok"
    else
        echo "inner-\$i=failed"
        sed "s/^/inner-\$i-log: /" $T/inner.\$\$.out
    fi
    rm -f $T/inner.\$\$.out
done
EOF
chmod +x "$T/node.sh"

rows=()
for spec in "$@"; do
    name=${spec%%:*}
    rest=${spec#*:}
    expect=${rest%%:*}
    E2E_AGENT=${rest#*:}
    case $E2E_AGENT in /*) ;; *) E2E_AGENT=$(cd "$(dirname "$E2E_AGENT")" && pwd)/$(basename "$E2E_AGENT") ;; esac
    e2e_log "=== $name ($E2E_AGENT), expected to $expect"

    e2e_start_agent
    e2e_run ssh-add "$T/vault/user"
    expect_rc "$name: ssh-add adds the key and its certificate" 0
    e2e_run ssh-add -l
    expect_contains "$name: the agent holds the certificate" "(ED25519-CERT)" "$E2E_OUT"

    rm -f "$T/mux.sock" "$T/mux.status"
    "$MUX" -l "$T/mux.sock" -u "$E2E_AGENT_SOCK" -s "$T/mux.status" 2>>"$T/mux.log" &
    mux_pid=$!
    for _ in $(seq 1 50); do [ -S "$T/mux.sock" ] && break; sleep 0.1; done

    e2e_run ssh -F "$E2E_SSH_CONFIG" -A -o IdentityAgent="$T/mux.sock" \
        -o IdentityFile="$T/user.pub" -o CertificateFile="$T/user-cert.pub" \
        e2e-sshd "$T/node.sh"
    outer=failed
    [ "$E2E_RC" = 0 ] && outer=ok
    inner=()
    for i in 1 2 3; do
        v=$(printf '%s\n' "$E2E_OUT" | sed -n "s/^inner-$i=//p")
        inner+=("${v:-failed}")
    done
    shared=$(cat "$T/mux.status" 2>/dev/null)
    [ "$shared" = alive ] && shared=survived || shared=closed
    # The agent process itself must still be there and answer a new connection.
    e2e_run ssh-add -l
    direct=answers
    [ "$E2E_RC" = 0 ] || direct="no answer"

    rows+=("$(printf '%-13s %-6s %-8s %-8s %-8s %-17s %s' "$name" "$outer" \
        "${inner[0]}" "${inner[1]}" "${inner[2]}" "$shared" "$direct")")

    if [ "$expect" = survives ]; then
        expect_eq "$name: outer login" ok "$outer"
        expect_eq "$name: inner logins 1, 2 and 3" "ok ok ok" "${inner[*]}"
        expect_eq "$name: the shared agent connection survived" survived "$shared"
    else
        expect_eq "$name: the shared agent connection was closed" closed "$shared"
        check "$name: a later forwarded login failed (${inner[*]})" \
            test "${inner[0]} ${inner[1]} ${inner[2]}" != "ok ok ok"
    fi
    if [ "$E2E_RC" != 0 ] || [ "$outer" != ok ]; then
        printf '%s\n' "$E2E_OUT" "$E2E_ERR" | sed "s/^/#   $name: /" | tail -n 20
    fi

    kill "$mux_pid" 2>/dev/null
    wait "$mux_pid" 2>/dev/null
    e2e_stop_agent
done

echo
echo "The seed, end to end: ssh -A through one shared agent connection, then ssh -A localhost x3"
printf '%-13s %-6s %-8s %-8s %-8s %-17s %s\n' agent outer inner-1 inner-2 inner-3 \
    "shared-connection" "agent-itself"
for r in "${rows[@]}"; do echo "$r"; done
echo

E2E_AGENT_PID=
e2e_finish
