#!/usr/bin/env bash
# seed_protocol.sh AGENT_BINARY SEED_CLIENT EXPECT [CLIENT_FLAG]
#
# The seed at protocol level over the agent's real socket (seed_client.c):
# on one connection, an authentication session-bind, a second bind that
# must be refused, then a list and a signature on that same connection.
# EXPECT is "survives" (every step passes) or "breaks" (the fixture that
# closes connections on failed requests must fail it). CLIENT_FLAG
# (--half-close) runs seed_client's other scenario instead.
set -u
agent=$1 client=$2 expect=$3 flag=${4:-}
tmp=$(mktemp -d /tmp/kw-seedproto.XXXXXX)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$agent" -D -a "$tmp/sock" </dev/null >"$tmp/agent.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -S "$tmp/sock" ] && break; sleep 0.05; done
# shellcheck disable=SC2086  # an optional flag
"$client" $flag "$tmp/sock"
rc=$?
if [ "$expect" = survives ] && [ "$rc" = 0 ]; then
    # Stop the agent here, so that a sanitizer's report at exit is seen.
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/agent.out"; then
        echo "FAIL: sanitizer report in the agent's output"
        sed 's/^/# agent: /' "$tmp/agent.out" | tail -40
        exit 1
    fi
    echo "PASS: $agent kept the connection after the refused bind"
    exit 0
fi
if [ "$expect" = breaks ] && [ "$rc" = 1 ]; then
    echo "PASS: the check caught $agent closing the connection"
    exit 0
fi
echo "FAIL: expected the agent to $expect, seed_client exited $rc"
sed 's/^/# agent: /' "$tmp/agent.out" | tail -20
exit 1
