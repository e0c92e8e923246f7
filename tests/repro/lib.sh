# shellcheck shell=bash
#
# The seed scenario's pieces, shared by tests/repro/seed.sh (the agent
# behind one shared connection) and tests/relay/seed_through_relay.sh (the
# same with keyward-relay in between). Source tests/e2e/lib.sh first and
# call e2e_init; these use its temp dir, sshd and helpers.

# seed_make_node: the seed's node, a real sshd on 127.0.0.1 trusting a user
# CA, where the user logs in by certificate. The user's private key is moved
# to $E2E_TMP/vault, which ssh never looks at, so only the agent can sign:
# `ssh-add $E2E_TMP/vault/user` loads the key and the certificate beside it.
# $E2E_TMP/node.sh runs on the node: three inner `ssh -A` logins through the
# forwarded agent, printing inner-N=ok or inner-N=failed (and its log).
seed_make_node() {
    local t=$E2E_TMP
    e2e_make_ca ca
    e2e_keygen user ed25519 "" "seed-user"
    e2e_certify user seed-user ca 7
    mkdir -p "$t/vault"
    cp "$t/user" "$t/user.pub" "$t/user-cert.pub" "$t/vault/"
    e2e_drop_private user
    e2e_start_sshd "TrustedUserCAKeys $t/ca.pub"

    cat >"$t/node.sh" <<NODE
#!/bin/bash
for i in 1 2 3; do
    if ssh -F $E2E_SSH_CONFIG -A -o IdentityFile=$t/user.pub \\
        -o CertificateFile=$t/user-cert.pub e2e-sshd echo inner-ok </dev/null >$t/inner.\$\$.out 2>&1 &&
        grep -qx inner-ok $t/inner.\$\$.out; then
        echo "inner-\$i=ok"
    else
        echo "inner-\$i=failed"
        sed "s/^/inner-\$i-log: /" $t/inner.\$\$.out
    fi
    rm -f $t/inner.\$\$.out
done
NODE
    chmod +x "$t/node.sh"
}

# seed_login SOCKET: the outer `ssh -A` login with SOCKET as its agent,
# running node.sh. Sets SEED_OUTER (ok/failed) and SEED_INNER (three
# results); E2E_RC, E2E_OUT and E2E_ERR are the outer ssh's.
seed_login() {
    local i v
    e2e_run ssh -F "$E2E_SSH_CONFIG" -A -o IdentityAgent="$1" \
        -o IdentityFile="$E2E_TMP/user.pub" -o CertificateFile="$E2E_TMP/user-cert.pub" \
        e2e-sshd "$E2E_TMP/node.sh"
    SEED_OUTER=failed
    [ "$E2E_RC" = 0 ] && SEED_OUTER=ok
    SEED_INNER=()
    for i in 1 2 3; do
        v=$(printf '%s\n' "$E2E_OUT" | sed -n "s/^inner-$i=//p")
        SEED_INNER+=("${v:-failed}")
    done
}

# seed_start_mux MUX UPSTREAM: shared_mux on $E2E_TMP/mux.sock, serving
# every client over ONE connection to UPSTREAM, as `tsh -A` did.
SEED_MUX_PID=
seed_start_mux() {
    rm -f "$E2E_TMP/mux.sock" "$E2E_TMP/mux.status"
    "$1" -l "$E2E_TMP/mux.sock" -u "$2" -s "$E2E_TMP/mux.status" 2>>"$E2E_TMP/mux.log" &
    SEED_MUX_PID=$!
    for _ in $(seq 1 50); do
        [ -S "$E2E_TMP/mux.sock" ] && return 0
        sleep 0.1
    done
    e2e_fatal "shared_mux did not start: $(cat "$E2E_TMP/mux.log")"
}

# seed_stop_mux: stops the mux; sets SEED_SHARED to "survived" if its one
# upstream connection was still open, else "closed".
seed_stop_mux() {
    SEED_SHARED=$(cat "$E2E_TMP/mux.status" 2>/dev/null)
    [ "$SEED_SHARED" = alive ] && SEED_SHARED=survived || SEED_SHARED=closed
    if [ -n "$SEED_MUX_PID" ]; then
        kill "$SEED_MUX_PID" 2>/dev/null
        wait "$SEED_MUX_PID" 2>/dev/null
        SEED_MUX_PID=
    fi
}

# seed_agent_path SPEC: the absolute agent binary of a NAME:EXPECT:AGENT spec.
seed_agent_path() {
    local a=${1#*:}
    a=${a#*:}
    case $a in /*) ;; *) a=$(cd "$(dirname "$a")" && pwd)/$(basename "$a") ;; esac
    printf '%s\n' "$a"
}

# seed_parse_spec SPEC: sets name, expect ("survives" or "breaks") and
# E2E_AGENT (absolute) from a NAME:EXPECT:AGENT spec.
seed_parse_spec() {
    local rest=${1#*:}
    name=${1%%:*}
    expect=${rest%%:*}
    E2E_AGENT=$(seed_agent_path "$1")
}
