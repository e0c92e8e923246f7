#!/bin/bash
# keyward-agent.exe on a named pipe, under Wine, driven by a Windows client
# (pipe_client.exe, built on src/base/wire.h and src/crypto/key.h):
#   - the very first connection to a fresh agent's pipe, made by a client
#     that was already trying before the pipe existed, reads the restricted
#     DACL (our user and SYSTEM, protected) and is served: the instances are
#     created with it, there is no moment with the default one;
#   - keys added over the pipe (ML-DSA-44+Ed25519 too: the .exe has OpenSSL
#     3.5) are listed and sign, and ssh-keygen -Y verify
#     here on Linux accepts the SSHSIG signatures the client wrote;
#   - the seed: a second session-bind on one connection is refused and that
#     connection goes on serving;
#   - long-lived, short-lived, many simultaneous and half-sent connections do
#     not hold each other up; a storm of 40 threads, long- and short-lived
#     clients at once, is answered in full;
#   - the pipe's DACL read from a later instance is the same;
#   - a second agent on the same pipe exits with a clear message;
#   - an openssl.cnf named by OPENSSL_CONF is not read;
#   - Ctrl-C stops the agent cleanly, closing a connection still open, and
#     clears its keys.
# What Wine cannot show (PIPE_REJECT_REMOTE_CLIENTS, the DACL enforced,
# FILE_FLAG_FIRST_PIPE_INSTANCE) is in docs/security.md.
. "$(dirname "$0")/lib.sh" "$1"

pipe=$(pipe_for pipe)
out=$work/out
mkdir -p "$out"

# Clients run in the background are stopped on exit, as the agent is.
first_pid=
hold_pid=
trap 'for p in $first_pid $hold_pid; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT

# The DACL every instance must carry: our user and SYSTEM, nothing inherited.
want_dacl() {
    printf 'D:P(A;;FA;;;%s)(A;;FA;;;SY)' "$1"
}

# --- the first connection, a moment after the pipe comes to be ---
first_pipe=$(pipe_for first)
wine_run "$CLIENT" -p "$first_pipe" first >"$work/first.out" 2>"$work/first.err" &
first_pid=$!
for i in $(seq 1 300); do
    grep -q '^waiting' "$work/first.out" && break
    kill -0 "$first_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q '^waiting' "$work/first.out" ||
    fail "pipe_client first did not start trying: $(cat "$work/first.err")"
start_agent -a "$first_pipe"
status=0
wait "$first_pid" || status=$?
first_pid=
[ "$status" -eq 0 ] || fail "pipe_client first: status $status: $(cat "$work/first.out" "$work/first.err")"
sid=$(agent_sid)
[ -n "$sid" ] || fail "the agent did not say which user it serves"
dacl=$(sed -n 2p "$work/first.out" | tr -d '\r')
[ "$dacl" = "$(want_dacl "$sid")" ] ||
    fail "the first connection read the DACL \"$dacl\", expected $(want_dacl "$sid")"
tries=$(sed -n 's/^failed opens before the pipe existed: \([0-9]*\).*/\1/p' "$work/first.out")
[ "${tries:-0}" -gt 0 ] || fail "pipe_client first never found the pipe missing: $(cat "$work/first.out")"
grep -q "conn 1: accepted from pid [0-9]* user $sid" "$agent_log" ||
    fail "the first connection was not the agent's first"
grep -q "conn 1: REQUEST_IDENTITIES(11) 0 keys -> IDENTITIES_ANSWER" "$agent_log" ||
    fail "the first connection was not answered"
stop_agent
echo "first connection: $dacl after $tries failed opens"

# If the agent read this (its libcrypto would, without
# OPENSSL_INIT_NO_LOAD_CONFIG), every key operation would fail.
cat >"$work/evil.cnf" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
alg_section = evil_algs
[evil_algs]
default_properties = fips=yes
CNF
export OPENSSL_CONF="Z:$work/evil.cnf"
start_agent -D -a "$pipe" -l "Z:$work/audit.log"
unset OPENSSL_CONF
sid=$(agent_sid)
[ -n "$sid" ] || fail "the agent did not say which user it serves"

wine_run "$CLIENT" -p "$pipe" -o "Z:$out" full || fail "pipe_client full"

# Real ssh-keygen checks what the Windows agent signed.
for k in ed25519 ecdsa rsa; do
    for f in "$k.pub" "$k.msg" "$k.msg.sig"; do
        [ -s "$out/$f" ] || fail "pipe_client did not write $f"
    done
    printf 'keyward-test %s\n' "$(cut -d' ' -f1,2 "$out/$k.pub")" >"$out/allowed_signers"
    ssh-keygen -Y verify -f "$out/allowed_signers" -I keyward-test -n file \
        -s "$out/$k.msg.sig" <"$out/$k.msg" || fail "ssh-keygen rejects the $k signature"
    # And the check is real: a changed message does not verify.
    if printf 'tampered\n' | ssh-keygen -Y verify -f "$out/allowed_signers" -I keyward-test \
        -n file -s "$out/$k.msg.sig" >/dev/null 2>&1; then
        fail "ssh-keygen accepted the $k signature over another message"
    fi
done

# The audit log (-l): JSON lines naming the Windows client program.
[ -s "$work/audit.log" ] || fail "the agent wrote no audit log"
grep -q '"event":"add","outcome":"ok"' "$work/audit.log" || fail "no add entry in the audit log"
grep -qi 'pipe_client.exe' <<<"$(grep '"event":"sign","outcome":"ok"' "$work/audit.log")" ||
    fail "no sign entry naming pipe_client.exe in the audit log: $(head -c 600 "$work/audit.log")"
if grep -qv '^{.*}'$'\r''\?$' "$work/audit.log"; then
    fail "the audit log has a line that is not one JSON object"
fi

grep -q "conn 1: accepted from pid [0-9]* user $sid" "$agent_log" ||
    fail "no accepted connection from our user logged"
grep -q "conn 1: EXTENSION(27) session-bind@openssh.com .* -> EXTENSION_FAILURE: attempt to bind session ID to socket previously bound for authentication attempt" "$agent_log" ||
    fail "the second session-bind was not refused as OpenSSH refuses it"
# The long-lived connection lasted until the client closed it, after the
# stalled connection's frame (0xEE, an unknown type) was finally answered.
closed_at=$(grep -n "conn 1: closed (end of stream)" "$agent_log" | cut -d: -f1)
stalled_at=$(grep -n "UNKNOWN(238) -> FAILURE" "$agent_log" | cut -d: -f1)
[ -n "$closed_at" ] && [ -n "$stalled_at" ] && [ "$closed_at" -gt "$stalled_at" ] ||
    fail "connection 1 did not last until the client was done"

# Many clients at once: long-lived ones asking every round while
# short-lived ones come and go, more of them than instances wait.
wine_run "$CLIENT" -p "$pipe" storm >"$work/storm.out" 2>&1 ||
    fail "pipe_client storm: $(cat "$work/storm.out")"
grep "^storm:" "$work/storm.out" | tr -d '\r'

# The DACL of a later instance, as a client reads it: the same.
dacl=$(wine_run "$CLIENT" -p "$pipe" dacl | sed -n 1p | tr -d '\r')
[ "$dacl" = "$(want_dacl "$sid")" ] || fail "pipe DACL is \"$dacl\", expected $(want_dacl "$sid")"

# A second agent on the same pipe: a clear message, and the first serves on.
status=0
msg=$(wine_run "$AGENT" -a "$pipe" 2>&1 | tr -d '\r') || status=$?
[ "$status" -eq 1 ] || fail "a second agent on $pipe gave status $status: $msg"
# (A here-string: with pipefail, `echo | grep -q` fails when grep quits early.)
grep -qF "is already served by another program" <<<"$msg" ||
    fail "a second agent on $pipe said: $msg"

# The acceptor never had to report a failure.
if grep -q "failed (error" "$agent_log"; then
    fail "the pipe acceptor reported a failure"
fi

# Ctrl-C with a client still connected: the agent closes it and exits.
start_holder "$work/hold.out" '^held' "pipe_client hold" wine_run "$CLIENT" -p "$pipe" hold
stop_agent
status=0
wait "$hold_pid" || status=$?
hold_pid=
[ "$status" -eq 0 ] || fail "the held connection was not closed at shutdown: $(cat "$work/hold.out")"
echo "PASS"
