#!/bin/bash
# keyward-agent.exe --import-windows-agent, under Wine (issue 18):
#   - service_store.exe writes keys exactly as Windows' agent service keeps
#     them (HKCU\SOFTWARE\OpenSSH\Agent\Keys\<fingerprint>), and five bad
#     entries beside them (one a PKCS#11 token's key, which has no private part);
#   - the store unreadable (its DACL as an unelevated shell meets it): the
#     import says that an elevated shell of the same user is needed, and why;
#   - --dry-run lists what it would import and skip, and writes nothing;
#   - the import copies the good keys into keyward's store, says what it
#     skipped and why, and leaves the service's store exactly as it was;
#   - the agent loads them: the Linux ssh-add -l lists them with their
#     comments, and a signature made with an imported key verifies with
#     ssh-keygen -Y verify here on Linux;
#   - the audit log records the imports and the loads.
# The service's store is one per Wine prefix: this test alone writes it, and
# clears it before and after.
. "$(dirname "$0")/lib.sh" "$1"

HELPER=$WIN_BUILD/tests/win/service_store.exe
[ -f "$HELPER" ] || fail "$HELPER is not built (make win)"
unset SSH_AUTH_SOCK

pipe=$(pipe_for import)
audit=$work/audit.log
clear_service() {
    wine_run "$HELPER" restore >/dev/null 2>&1 || true
    wine_run "$HELPER" clear || true
}
trap 'clear_service; cleanup' EXIT

import() {
    local status=0
    out=$(wine_run "$AGENT" --import-windows-agent --key-store "$(winpath "$store_dir")" \
        -l "$(winpath "$audit")" "$@" 2>&1 | tr -d '\r') || status=$?
    return $status
}

clear_service
fp_ed=$(wine_run "$HELPER" add ed25519 "svc ed25519 key" "$(winpath "$work/ed.pub")" | tr -d '\r')
fp_ec=$(wine_run "$HELPER" add ecdsa "svc-ecdsa" "$(winpath "$work/ec.pub")" | tr -d '\r')
fp_rsa=$(wine_run "$HELPER" add rsa "svc-rsa" "$(winpath "$work/rsa.pub")" | tr -d '\r')
for what in undecryptable nopriv mismatch garbage pkcs11; do
    wine_run "$HELPER" bad "$what" >/dev/null || fail "service_store bad $what"
done
[ "$(ssh-keygen -lf "$work/ed.pub" | cut -d' ' -f2)" = "$fp_ed" ] ||
    fail "the helper's .pub does not match its entry"
wine_run "$HELPER" dump >"$work/before" || fail "service_store dump"
[ "$(cut -d' ' -f1 "$work/before" | sort -u | wc -l)" -eq 8 ] ||
    fail "expected 8 entries in the service's store: $(cat "$work/before")"

# ---- not elevated: the store's DACL lets only SYSTEM read ----
wine_run "$HELPER" sysonly || fail "service_store sysonly"
status=0
import || status=$?
[ "$status" -eq 1 ] || fail "an unreadable store: status $status, not 1: $out"
grep -q "access denied" <<<"$out" || fail "no \"access denied\": $out"
grep -q "elevated shell" <<<"$out" || fail "the message does not ask for an elevated shell: $out"
grep -q "YOUR account" <<<"$out" || fail "the message does not say it must be the same user: $out"
grep -q "DPAPI" <<<"$out" || fail "the message does not say why (DPAPI): $out"
[ -e "$store_dir" ] && fail "an import that could not read wrote a store"
grep -q '"event":"import","outcome":"refused","reason":"the service.s store may not be read (not elevated)"' \
    "$audit" || fail "no audit event for the unreadable store"
rm -f "$audit"
wine_run "$HELPER" restore || fail "service_store restore"
echo "unelevated: $(head -n 1 <<<"$out")"

# ---- --dry-run ----
status=0
import --dry-run || status=$?
[ "$status" -eq 1 ] || fail "dry run: status $status (entries were skipped: 1): $out"
for fp in "$fp_ed" "$fp_ec" "$fp_rsa"; do
    grep -qF "would import" <<<"$(grep -F "$fp" <<<"$out")" || fail "dry run does not list $fp: $out"
done
[ "$(grep -c '^skipped ' <<<"$out")" -eq 5 ] || fail "dry run: expected 5 skipped: $out"
grep -q "nothing written" <<<"$out" || fail "dry run does not say it wrote nothing: $out"
[ -e "$store_dir" ] && fail "a dry run wrote the store"
[ -s "$audit" ] && fail "a dry run wrote audit events: $(cat "$audit")"
wine_run "$HELPER" dump >"$work/after" || fail "service_store dump"
cmp -s "$work/before" "$work/after" || fail "a dry run changed the service's store"
echo "dry run: lists, writes nothing"

# ---- the import ----
status=0
import || status=$?
[ "$status" -eq 1 ] || fail "import: status $status (entries were skipped: 1): $out"
for fp in "$fp_ed" "$fp_ec" "$fp_rsa"; do
    grep -q "^imported .* $fp" <<<"$out" || fail "$fp was not imported: $out"
done
for why in "cannot be decrypted" "incomplete: no private key" "is not the one the entry names" \
    "the private key does not parse" "a PKCS#11 token's key"; do
    grep -q "^skipped SHA256:.*$why" <<<"$out" || fail "not skipped for \"$why\": $out"
done
grep -q "3 keys imported, 5 skipped" <<<"$out" || fail "no summary: $out"
[ "$(ls "$store_dir"/*.key | wc -l)" -eq 3 ] || fail "expected 3 entries in keyward's store"
wine_run "$HELPER" dump >"$work/after" || fail "service_store dump"
cmp -s "$work/before" "$work/after" || fail "the import changed the service's store"
[ "$(grep -c '"event":"import","outcome":"ok"' "$audit")" -eq 3 ] || fail "not 3 import events"
[ "$(grep -c '"event":"import","outcome":"refused"' "$audit")" -eq 5 ] ||
    fail "not 5 refused import events"
grep '"event":"import","outcome":"ok"' "$audit" | grep -qF "\"key_fingerprint\":\"$fp_rsa\"" ||
    fail "the RSA key's import event does not name it"
echo "import: 3 imported, 5 skipped, the service's store unchanged"

# ---- the agent loads them; the Linux tools use them ----
start_socket_relay "$work/agent.sock" "$pipe"
start_agent -a "$pipe" -l "$(winpath "$audit")"
grep -q "3 keys loaded, 0 skipped" "$agent_log" || fail "the agent did not load the 3 imported keys"
list=$(ssh-add -l 2>&1) || fail "ssh-add -l: $list"
grep -qF "$fp_ed svc ed25519 key (ED25519)" <<<"$list" || fail "ssh-add -l: no ed25519 key: $list"
grep -qF "$fp_ec svc-ecdsa (ECDSA)" <<<"$list" || fail "ssh-add -l: no ECDSA key: $list"
grep -qF "$fp_rsa svc-rsa (RSA)" <<<"$list" || fail "ssh-add -l: no RSA key: $list"
printf 'a message signed by a key imported from the Windows agent\n' >"$work/msg"
for k in ed rsa; do
    rm -f "$work/msg.sig"
    ssh-keygen -Y sign -f "$work/$k.pub" -n file "$work/msg" >/dev/null 2>&1 ||
        fail "ssh-keygen -Y sign with the imported $k key failed"
    printf 'imported %s\n' "$(cut -d' ' -f1,2 "$work/$k.pub")" >"$work/allowed_signers"
    ssh-keygen -Y verify -f "$work/allowed_signers" -I imported -n file -s "$work/msg.sig" \
        <"$work/msg" >/dev/null || fail "the imported $k key's signature does not verify"
done
[ "$(grep -c '"event":"load","outcome":"ok"' "$audit")" -eq 3 ] || fail "not 3 load events"
stop_agent
echo "loaded: ssh-add -l lists them, their signatures verify"
