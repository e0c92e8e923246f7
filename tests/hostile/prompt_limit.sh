#!/usr/bin/env bash
# Issue 22, finding 12: there was no limit on simultaneous confirmation
# prompts: 100 connections asking at once got 100 askpass processes. Now
# at most 4 are up at a time, agent-wide (SERVER_MAX_PROMPTS; see
# keyward-agent(1)); further confirmations wait their turn, first come
# first served, and a client that hangs up while waiting leaves nothing
# behind.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"

# The askpass records its pid and approves once $E2E_TMP/go exists.
cat >"$E2E_TMP/askpass" <<ASKPASS
#!/bin/sh
echo \$\$ >>"$E2E_TMP/askpass.pids"
while [ ! -e "$E2E_TMP/go" ]; do sleep 0.1; done
exit 0
ASKPASS
chmod 755 "$E2E_TMP/askpass"
: >"$E2E_TMP/askpass.pids"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent
pid=$E2E_AGENT_PID
e2e_keygen ed25519 ed25519 ""
e2e_run ssh-add -c "$E2E_TMP/ed25519"
expect_rc "ssh-add -c Ed25519" 0
ed=$E2E_TMP/ed25519.pub

# Askpass processes alive now.
up() {
    local n=0 p
    while read -r p; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done <"$E2E_TMP/askpass.pids"
    echo "$n"
}
asked() { [ "$(wc -l <"$E2E_TMP/askpass.pids")" -ge "$1" ]; }

# 1. Ten clients ask at once: four prompts, the rest wait, all are answered.
clients=()
for i in $(seq 1 10); do
    "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$ed" 0 >"$E2E_TMP/sign.$i" &
    clients+=($!)
done
hostile_wait_for 5 asked 4
sleep 1
most=0
for i in $(seq 1 10); do
    n=$(up)
    [ "$n" -gt "$most" ] && most=$n
    sleep 0.1
done
expect_eq "ten confirmations at once: four prompts up" 4 "$most"
expect_eq "and no more were started" 4 "$(wc -l <"$E2E_TMP/askpass.pids")"
expect_contains "the agent says the others wait" "confirmation prompts are up; this one waits" \
    "$(cat "$E2E_AGENT_LOG")"
touch "$E2E_TMP/go"
for c in "${clients[@]}"; do wait "$c"; done
signed=$(cat "$E2E_TMP"/sign.* | grep -c '^sign=SIGN_RESPONSE')
expect_eq "approved: every client got its signature" 10 "$signed"
expect_eq "each was asked once" 10 "$(wc -l <"$E2E_TMP/askpass.pids")"

# 2. Clients that hang up, while asked or while waiting, leave nothing.
rm -f "$E2E_TMP/go"
: >"$E2E_TMP/askpass.pids"
fds=$(hostile_fd_count "$pid")
clients=()
for i in $(seq 1 8); do
    "$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$ed" 0 1500 >/dev/null &
    clients+=($!)
done
# Never more than four up, also while the slots of those hanging up are handed on.
most=0
while kill -0 "${clients[@]}" 2>/dev/null; do
    n=$(up)
    [ "$n" -gt "$most" ] && most=$n
    sleep 0.05
done
for c in "${clients[@]}"; do wait "$c"; done
check "at most four prompts up at any time ($most)" test "$most" -le 4
none_up() { [ "$(up)" = 0 ]; }
check "eight hung up: every askpass is gone within 5 s" hostile_wait_for 5 none_up
check "no process is left under the agent" hostile_wait_for 5 test -z "$(hostile_descendants "$pid")"
check "no more fds than before" hostile_wait_for 5 hostile_fds_at_most "$pid" "$fds"

# 3. The queue is empty again: the next client is asked at once.
: >"$E2E_TMP/askpass.pids"
"$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$ed" 0 >"$E2E_TMP/sign.last" &
client=$!
check "the next client is asked" hostile_wait_for 5 asked 1
touch "$E2E_TMP/go"
wait "$client"
expect_eq "and gets its signature" SIGN_RESPONSE "$(hostile_value sign "$(cat "$E2E_TMP/sign.last")")"
e2e_finish
