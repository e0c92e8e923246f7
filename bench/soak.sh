#!/usr/bin/env bash
# soak.sh AGENT DRIVER OUT_DIR SECONDS: the soak run behind `make soak`
# (issue 20; docs/performance.md, "Soak").
#
# Starts AGENT (keyward-agent) on a socket of its own with an askpass that
# approves every confirmation (SSH_ASKPASS, SSH_ASKPASS_REQUIRE=force, as
# the e2e tests give it), adds a login key and a user certificate with
# ssh-add, starts a private sshd on 127.0.0.1 that trusts the certificate's
# CA, and runs DRIVER (agent_soak, bench/soak.c) for SECONDS: a steady mix
# of agent clients, a lock cycle now and then, and forwarded sessions
# (`ssh -A` to the sshd, then on that "node" ssh-add -l and a certificate
# login through the forwarded agent). The helpers (agent, sshd, keys,
# clean-up) are the e2e tests' own, tests/e2e/lib.sh.
#
# Writes OUT_DIR/soak-TIME.json and .dat, OUT_DIR/latest.json and
# OUT_DIR/soak.png (RSS, open fds and threads, replies per second over time,
# drawn with gnuplot). Exit status 0 on pass, 1 on fail.
#
# Knobs: SOAK_WORKERS (3), SOAK_RATE (operations per second per worker, 20),
# SOAK_DRIVER_ARGS (more agent_soak options, e.g. --rss-slope-max 4).

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../tests/e2e/lib.sh"

if [ $# -ne 4 ]; then
    echo "usage: $0 AGENT DRIVER OUT_DIR SECONDS" >&2
    exit 1
fi
agent=$1 driver=$2 out=$3 seconds=$4
[ -x "$driver" ] || { echo "soak: $driver is not built" >&2; exit 1; }
case $seconds in '' | *[!0-9]*) echo "soak: SECONDS must be a whole number" >&2; exit 1 ;; esac
driver=$(cd "$(dirname "$driver")" && pwd)/$(basename "$driver")
mkdir -p "$out"
out=$(cd "$out" && pwd)
# shellcheck disable=SC2034  # read by lib.sh's e2e_run (ssh-add, gnuplot)
E2E_CMD_TIMEOUT=60
e2e_init "$agent"
e2e_need gnuplot jq ssh
T=$E2E_TMP

# The certificate must outlive the run (e2e_certify's is valid for an hour).
[ "$seconds" -le 3000 ] || e2e_fatal "SECONDS is over 3000: the certificate would expire"

e2e_keygen login ed25519 "" "soak-login"
e2e_keygen certkey ecdsa 384 "soak-certkey"
e2e_make_ca ca
e2e_certify certkey soak-cert ca 2020
e2e_start_agent
# The askpass the agent runs for every confirmation reads this.
echo yes >"$T/agent-confirm"
e2e_start_sshd "TrustedUserCAKeys $T/ca.pub" "MaxStartups 50:30:100"
e2e_authorize login
e2e_run ssh-add "$T/login"
expect_rc "ssh-add the login key" 0 || e2e_finish
e2e_run ssh-add "$T/certkey"
expect_rc "ssh-add the certificate and its key" 0 || e2e_finish
expect_contains "ssh-add added the certificate" "Certificate added" "$E2E_ERR" || e2e_finish
e2e_drop_private login
e2e_drop_private certkey

# The forwarded session. The node (an sshd session on this machine) sees
# nothing of this shell: every ssh option comes from the -F config file.
cat >"$T/node.sh" <<EOF
#!/bin/sh
ssh-add -l >/dev/null || exit 11
exec ssh -F '$E2E_SSH_CONFIG' -o IdentityFile='$T/certkey-cert.pub' e2e-sshd true
EOF
chmod 755 "$T/node.sh"
forward="ssh -F '$E2E_SSH_CONFIG' -o IdentityAgent='$E2E_AGENT_SOCK' \
-o IdentityFile='$T/login.pub' -A e2e-sshd '$T/node.sh' </dev/null >>'$T/forward.log' 2>&1"
# One by hand first, so that a broken set-up fails here and says why.
e2e_run sh -c "$forward"
expect_rc "a forwarded session with a login from the node works" 0 || {
    tail -n 20 "$T/forward.log" | sed 's/^/#   /'
    e2e_finish
}

stamp=$(date -u +%Y%m%d-%H%M%S)
json=$out/soak-$stamp.json
dat=$out/soak-$stamp.dat
e2e_log "soak for $seconds s; results in $json"
# shellcheck disable=SC2086  # extra options are words on purpose
"$driver" --socket "$E2E_AGENT_SOCK" --pid "$E2E_AGENT_PID" --seconds "$seconds" \
    --workers "${SOAK_WORKERS:-3}" --rate "${SOAK_RATE:-20}" \
    --forward-cmd "$forward" --data "$dat" --json "$json" ${SOAK_DRIVER_ARGS:-} \
    2>&1 | sed 's/^/# /'
rc=${PIPESTATUS[0]}
expect_eq "the soak driver passed (exit status)" 0 "$rc"
[ "$rc" = 0 ] || tail -n 20 "$T/forward.log" | sed 's/^/#   forward.log: /'
if [ -s "$json" ]; then
    cp "$json" "$out/latest.json"
    warmup=$(jq -r .warmup_seconds "$json")
    verdict=$(jq -r '(if .pass then "pass" else "FAIL" end) + "; slopes after the warm-up: RSS "
        + (.slopes_per_second.rss_kib.slope * 100 | round / 100 | tostring) + " KiB/s, fds "
        + (.slopes_per_second.fds.slope * 10000 | round / 10000 | tostring) + "/s, threads "
        + (.slopes_per_second.threads.slope * 10000 | round / 10000 | tostring) + "/s"' "$json")
    e2e_run gnuplot -e "datafile='$dat'; outfile='$out/soak.png'; warmup=$warmup; \
title='keyward-agent soak, $seconds s, $stamp UTC: $verdict'" "$(dirname "$0")/soak.gp"
    expect_rc "gnuplot drew $out/soak.png" 0
fi
check "the agent ran the askpass for the confirm key" test -s "$T/agent-askpass.log"
e2e_finish
