#!/bin/bash
# keyward-agent.exe on a named pipe, under Wine, driven by a Windows client
# (pipe_client.exe, built on src/wire.h and src/key.h):
#   - keys added over the pipe are listed and sign, and ssh-keygen -Y verify
#     here on Linux accepts the SSHSIG signatures the client wrote;
#   - the seed: a second session-bind on one connection is refused and that
#     connection goes on serving;
#   - long-lived, short-lived, many simultaneous and half-sent connections do
#     not hold each other up;
#   - the pipe's DACL, as a client reads it, grants our user and SYSTEM only
#     and denies network logons;
#   - an openssl.cnf named by OPENSSL_CONF is not read;
#   - Ctrl-C stops the agent cleanly and clears its keys.
. "$(dirname "$0")/lib.sh" "$1"

pipe=$(pipe_for pipe)
out=$work/out
mkdir -p "$out"

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
start_agent -D -a "$pipe"
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

# The DACL every instance of the pipe carries, as a client reads it.
dacl=$(wine_run "$CLIENT" -p "$pipe" dacl | head -n 1 | tr -d '\r')
want="(D;;GA;;;NU)(A;;GA;;;$sid)(A;;GA;;;SY)"
case "$dacl" in
"D:$want" | "D:P$want") ;;
*) fail "pipe DACL is \"$dacl\", expected D:P$want" ;;
esac

stop_agent
echo "PASS"
