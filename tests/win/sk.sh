#!/bin/bash
# FIDO keys in keyward-agent.exe under Wine, through keyward-sk-helper.exe and
# the test authenticator cross-built as a DLL (tests/sk/soft_sk.c), driven by
# the Linux ssh-keygen and ssh-add through keyward-relay.exe (socat, as
# README's WSL2 line):
#   - ssh-add -S soft_sk.dll adds an Ed25519 and an ECDSA sk key made by the
#     Linux ssh-keygen with the same credential file; ssh-add -l lists them
#   - ssh-keygen -Y sign through the agent signs with each (the helper .exe
#     loads the DLL), and -Y verify accepts the signatures
#   - a provider DLL outside -P, and one that does not exist, are refused;
#     soft_sk_crash.dll and soft_sk_garbage.dll fail their signature; the
#     agent serves on
#   - FIDO keys are not written to the key store
# The credential file is shared: the Linux tools read it by its Linux path,
# the DLL (in keyward-sk-helper.exe, which inherits keyward-agent.exe's
# environment) by its Z: path.
. "$(dirname "$0")/lib.sh" "$1"

SK=$WIN_BUILD/tests/sk
LINUX_SK=${2:-}
[ -f "$SK/soft_sk.dll" ] || fail "$SK/soft_sk.dll is not built (make win)"
[ -f "$WIN_BUILD/keyward-sk-helper.exe" ] || fail "keyward-sk-helper.exe is not built (make win)"
[ -f "$LINUX_SK" ] || fail "usage: $0 WIN_BUILD_DIR LINUX_SOFT_SK (the Linux soft_sk.so)"
unset SSH_AUTH_SOCK

creds=$work/credentials
for t in ed25519-sk ecdsa-sk; do
    SOFT_SK_STORE=$creds ssh-keygen -q -t "$t" -w "$LINUX_SK" -N '' -C "win-$t" -f "$work/id_$t" ||
        fail "ssh-keygen -t $t -w soft_sk.so"
done
for v in crash garbage; do
    SOFT_SK_STORE=$creds ssh-keygen -q -t ed25519-sk -w "$LINUX_SK" -N '' -C "win-$v" \
        -f "$work/id_$v" || fail "ssh-keygen for $v"
done
mkdir "$work/elsewhere" && cp "$SK/soft_sk.dll" "$work/elsewhere/soft_sk.dll"

pipe=$(pipe_for sk)
start_socket_relay "$work/agent.sock" "$pipe"
allowed="$(winpath "$SK")\\soft_sk*.dll"
SOFT_SK_STORE=$(winpath "$creds") start_agent -a "$pipe" -P "$allowed"

for t in ed25519-sk ecdsa-sk; do
    ssh-add -S "$(winpath "$SK/soft_sk.dll")" "$work/id_$t" 2>/dev/null ||
        fail "ssh-add -S soft_sk.dll $t"
done
out=$(ssh-add -l 2>&1) || fail "ssh-add -l: $out"
grep -q "win-ed25519-sk (ED25519-SK)" <<<"$out" || fail "the Ed25519 sk key is not listed: $out"
grep -q "win-ecdsa-sk (ECDSA-SK)" <<<"$out" || fail "the ECDSA sk key is not listed: $out"
[ -z "$(ls -A "$store_dir" 2>/dev/null)" ] || fail "FIDO keys were written to the key store"

printf 'signed through keyward-sk-helper.exe\n' >"$work/msg"
for t in ed25519-sk ecdsa-sk; do
    rm -f "$work/msg.sig"
    ssh-keygen -Y sign -f "$work/id_$t.pub" -n file "$work/msg" >/dev/null 2>&1 ||
        fail "ssh-keygen -Y sign with the $t key through keyward-agent.exe"
    printf 'tester %s\n' "$(cut -d' ' -f1,2 "$work/id_$t.pub")" >"$work/allowed"
    ssh-keygen -Y verify -f "$work/allowed" -I tester -n file -s "$work/msg.sig" \
        <"$work/msg" >/dev/null 2>&1 || fail "ssh-keygen -Y verify of the $t signature"
done

ssh-add -S "$(winpath "$work/elsewhere/soft_sk.dll")" "$work/id_crash" 2>/dev/null &&
    fail "a provider outside -P was accepted"
grep -q "not allowed by the allow-list" "$agent_log" || fail "the -P refusal is not logged"
ssh-add -S "$(winpath "$SK/soft_sk_missing.dll")" "$work/id_crash" 2>/dev/null &&
    fail "a provider that does not exist was accepted"
for v in crash garbage; do
    ssh-add -S "$(winpath "$SK/soft_sk_$v.dll")" "$work/id_$v" 2>/dev/null ||
        fail "ssh-add -S soft_sk_$v.dll"
    rm -f "$work/msg.sig"
    ssh-keygen -Y sign -f "$work/id_$v.pub" -n file "$work/msg" >/dev/null 2>&1 &&
        fail "soft_sk_$v.dll signed"
    ssh-add -l >/dev/null 2>&1 || fail "the agent does not serve after soft_sk_$v.dll"
done
grep -q "sk_sign answered a malformed signature" "$agent_log" || fail "the garbage is not logged"
grep -q "FIDO helper for .*soft_sk_crash.dll" "$agent_log" || fail "the crash is not logged"
rm -f "$work/msg.sig"
ssh-keygen -Y sign -f "$work/id_ecdsa-sk.pub" -n file "$work/msg" >/dev/null 2>&1 ||
    fail "the good key no longer signs after the misbehaving providers"

stop_agent
echo "PASS: win_sk"
