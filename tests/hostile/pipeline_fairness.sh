#!/usr/bin/env bash
# Issue 22, finding 10: one pipelining client stalled the others. A client
# that wrote 3,591 Ed25519 sign requests at once had them handled inline,
# back to back, in one callback of the loop: another client's list request
# waited up to 214 ms. Now a connection handles a bounded batch (32
# requests or 200 us) per turn, then the loop serves everyone else before
# its next turn; replies stay in order, and a connection whose replies
# pile up unread is not served further until they drain.
#
# Measured here: the round-trip times of a client listing keys back to
# back on one connection for 4 s, while another connection floods the
# agent with 3,591 signatures in one write, ten times over. Run alone
# (RUN_SERIAL): the thresholds are generous against machine noise, far
# below what the old behaviour costs.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
SCRIPT=$(dirname "$HOSTILE_CLIENT")/hostile_script

hostile_start_agent
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add "$E2E_TMP/ed25519"
expect_rc "ssh-add Ed25519" 0
ed=$E2E_TMP/ed25519.pub

"$SCRIPT" "$E2E_AGENT_SOCK" lists:4000 >"$E2E_TMP/lists.out" &
lister=$!
sleep 0.3
floods=()
for i in $(seq 1 10); do floods+=("flood:3591:$ed"); done
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" "${floods[@]}"
expect_rc "the flooding client got all its replies" 0
expect_eq "every flood was signed" "3591 3591 3591 3591 3591 3591 3591 3591 3591 3591" \
    "$(printf '%s\n' "$E2E_OUT" | sed -n 's/^flood_ok=//p' | tr '\n' ' ' | sed 's/ $//')"
printf '%s\n' "$E2E_OUT" | grep '^flood_ms=' | tr '\n' ' ' | sed 's/^/# /'
echo
wait "$lister"
lists=$(cat "$E2E_TMP/lists.out")
printf '%s\n' "$lists" | sed 's/^/# lister: /'
check "the lister was served throughout" test -n "$(hostile_value lists "$lists")"
# Before the fix each flood held the loop for over 100 ms at least once
# (6 to 8 lists of the ten floods took longer; the slowest 430 ms); now a
# batch costs well under a millisecond. This machine's own noise, with no
# flood at all, reaches tens of milliseconds, with a 99th percentile of
# about 1 ms when other builds run: hence one slow list is forgiven, and
# the percentile is held to 5 ms (it is about 0.2 ms on a quiet machine).
p99=$(hostile_value p99_us "$lists")
slow=$(hostile_value over_100ms "$lists")
check "at most one list took over 100 ms (${slow:-?}; slowest $(hostile_value max_us "$lists") us)" \
    test "${slow:-999999}" -le 1
check "the 99th percentile list round trip is under 5 ms (${p99:-?} us)" test "${p99:-999999}" -lt 5000

# Replies stay in order across turns: 100 list + sign pairs in one write.
args=()
for i in $(seq 1 100); do args+=(list "sign:$ed"); done
e2e_run "$SCRIPT" "$E2E_AGENT_SOCK" "${args[@]}" send read:200
expect_eq "200 pipelined requests: every odd reply a list answer" 100 \
    "$(printf '%s\n' "$E2E_OUT" | grep -cE '^reply[0-9]*[13579]=IDENTITIES_ANSWER$')"
expect_eq "and every even one a signature" 100 \
    "$(printf '%s\n' "$E2E_OUT" | grep -cE '^reply[0-9]*[02468]=SIGN_RESPONSE$')"
e2e_finish
