#!/bin/bash
# keyward-agent.exe keeps the keys it is given (issue 18), under Wine,
# driven by the Linux ssh-add through keyward-relay.exe (socat, as README's
# WSL2 line):
#   - added keys, with their constraints, are in the store, one file each,
#     and are loaded again, in the order they were added, after a Ctrl-C
#     and after a hard kill (kill -9, as taskkill /f); a lifetime runs on
#     across the restart;
#   - ssh-add -d, ssh-add -D and expiry remove stored entries, and that
#     holds after a restart; an entry that expired while the agent was
#     stopped is deleted at load;
#   - lock and unlock leave the store alone;
#   - each kind of bad entry (corrupt, truncated, undecryptable, another
#     user's, a newer format) is skipped with a log line and an audit event,
#     the others load, and a .tmp file a killed writer left is removed;
#   - a read-only store: its keys load, adds work in memory with a warning
#     in the log and in the add's audit event;
#   - --no-key-store writes nothing;
#   - a store and an audit log whose names the ANSI code page cannot hold.
# What Wine cannot show (the folder's DACL enforced, DPAPI across logons)
# is in docs/security.md.
. "$(dirname "$0")/lib.sh" "$1"

HELPER=$WIN_BUILD/tests/win/service_store.exe
[ -f "$HELPER" ] || fail "$HELPER is not built (make win)"
unset SSH_AUTH_SOCK

pipe=$(pipe_for store)
audit=$work/audit.log
# The read-only store: made immutable for root, who ignores mode bits.
ro_dir=
undo_ro() {
    [ -n "$ro_dir" ] || return 0
    chattr -i "$ro_dir" 2>/dev/null || true
    chmod u+w "$ro_dir" 2>/dev/null || true
}
trap 'undo_ro; cleanup' EXIT

start_socket_relay "$work/agent.sock" "$pipe"

start() {
    start_agent -a "$pipe" -l "$(winpath "$audit")" "$@"
}

# The store's entry for a key: the SHA-256 of its public blob, in hex.
entry() {
    local b64
    b64=$(cut -d' ' -f2 "$1.pub")
    printf '%s/%s.key' "$store_dir" "$(base64 -d <<<"$b64" | sha256sum | cut -d' ' -f1)"
}

listed() {
    local out
    out=$(ssh-add -l 2>&1) || true
    grep -qF "$(ssh-keygen -lf "$1.pub" | cut -d' ' -f2)" <<<"$out"
}

for k in k1 k2 k3 k4 k5 k6 k7; do
    ssh-keygen -q -t ed25519 -N '' -C "comment-$k" -f "$work/$k"
done

# ---- kept across a Ctrl-C and a hard kill ----
start
ssh-add "$work/k1" 2>/dev/null || fail "ssh-add k1"
ssh-add -t 1h "$work/k2" 2>/dev/null || fail "ssh-add -t 1h k2"
[ -f "$(entry "$work/k1")" ] || fail "k1 has no entry in the store"
[ -f "$(entry "$work/k2")" ] || fail "k2 has no entry in the store"
[ "$(ls "$store_dir" | wc -l)" -eq 2 ] || fail "the store holds more than the two entries: $(ls "$store_dir")"
grep -qF 'comment-k1' "$(entry "$work/k1")" && fail "the comment is stored in the clear"
sddl=$(wine_run "$HELPER" dacl "$(winpath "$store_dir")" | tr -d '\r')
sid=$(agent_sid)
grep -qF "(A;OICI;FA;;;$sid)" <<<"$sddl" || fail "the store's folder does not grant $sid: $sddl"
grep -qF "(A;OICI;FA;;;SY)" <<<"$sddl" || fail "the store's folder does not grant SYSTEM: $sddl"
ssh-add "$work/k3" 2>/dev/null || fail "ssh-add k3"
ssh-add -d "$work/k3" 2>/dev/null || fail "ssh-add -d k3"
order=$(ssh-add -l | cut -d' ' -f2)
stop_agent

start
grep -q "2 keys loaded, 0 skipped, 0 expired" "$agent_log" || fail "not both keys loaded after Ctrl-C"
listed "$work/k1" || fail "k1 is not listed after a restart"
listed "$work/k2" || fail "k2 is not listed after a restart"
grep -q "loaded ED25519 .* (lifetime)" "$agent_log" || fail "k2's lifetime was not kept"
[ "$(ssh-add -l | cut -d' ' -f2)" = "$order" ] || fail "the keys load in another order than they were added"
echo "kept across Ctrl-C"

# A hard kill (TerminateProcess, as taskkill /f): no shutdown at all.
ssh-add "$work/k3" 2>/dev/null || fail "ssh-add k3"
kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=
start
grep -q "3 keys loaded, 0 skipped" "$agent_log" || fail "not all three keys loaded after kill -9"
listed "$work/k3" || fail "k3 is not listed after a hard kill"
echo "kept across a hard kill"

# ---- lock leaves the store alone; removal persists ----
before=$(ls "$store_dir" | sort)
printf 'pass\npass\n' >"$work/pass"
SSH_ASKPASS_REQUIRE=never ssh-add -x <"$work/pass" >/dev/null 2>&1 || true
[ "$(ls "$store_dir" | sort)" = "$before" ] || fail "lock changed the store"
out=$(ssh-add -l 2>&1) || true
grep -q "no identities" <<<"$out" || fail "the agent did not lock: $out"
printf 'pass\n' | ssh-add -X >/dev/null 2>&1 || true
listed "$work/k1" || fail "the agent did not unlock"
[ "$(ls "$store_dir" | sort)" = "$before" ] || fail "unlock changed the store"

ssh-add -d "$work/k1" 2>/dev/null || fail "ssh-add -d k1"
[ -f "$(entry "$work/k1")" ] && fail "ssh-add -d left k1's entry"
stop_agent
start
grep -q "2 keys loaded" "$agent_log" || fail "not two keys after ssh-add -d and a restart"
listed "$work/k1" && fail "k1 is back after ssh-add -d and a restart"
ssh-add -D >/dev/null 2>&1 || fail "ssh-add -D"
[ -z "$(ls "$store_dir")" ] || fail "ssh-add -D left entries: $(ls "$store_dir")"
stop_agent
start
grep -q "0 keys loaded" "$agent_log" || fail "keys came back after ssh-add -D"
echo "removal persists; lock leaves the store alone"

# ---- expiry: while running, and while stopped ----
ssh-add -t 2 "$work/k4" 2>/dev/null || fail "ssh-add -t 2 k4"
ssh-add -t 3 "$work/k5" 2>/dev/null || fail "ssh-add -t 3 k5"
[ -f "$(entry "$work/k4")" ] || fail "k4 has no entry"
for _ in $(seq 1 50); do [ -f "$(entry "$work/k4")" ] || break; sleep 0.1; done
[ -f "$(entry "$work/k4")" ] && fail "k4's entry is still there after it expired"
stop_agent # k5 expires while the agent is stopped
sleep 3
start
grep -q "0 keys loaded, 0 skipped, 1 expired" "$agent_log" || fail "k5 was not expired at load"
[ -f "$(entry "$work/k5")" ] && fail "k5's expired entry was not deleted at load"
grep -q '"event":"expire".*"comment":"comment-k4"' "$audit" || fail "no audit event for k4's expiry"
echo "expiry persists"

# ---- bad entries ----
ssh-add "$work/k1" "$work/k2" "$work/k3" "$work/k4" "$work/k5" "$work/k6" 2>/dev/null ||
    fail "ssh-add of six keys"
ssh-add -c "$work/k7" 2>/dev/null || fail "ssh-add -c k7"
stop_agent
sid=$(agent_sid)
# corrupt: not an entry at all
head -c 300 /dev/urandom >"$(entry "$work/k1")"
# truncated
truncate -s -7 "$(entry "$work/k2")"
# undecryptable: a byte of the DPAPI blob (the entry's last field) changed
f=$(entry "$work/k3")
size=$(stat -c %s "$f")
printf '\xff' | dd of="$f" bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
# another user's
perl -0777 -pi -e "s/\Q$sid\E/S-1-5-21-1-2-3-1001/" "$(entry "$work/k4")"
# a newer format: the format number after the 8-byte magic
printf '\0\0\0\002' | dd of="$(entry "$work/k5")" bs=1 seek=8 conv=notrunc 2>/dev/null
# a write cut short
printf 'half an entry' >"$store_dir/0000.4242.tmp"
start
grep -q "2 keys loaded, 5 skipped" "$agent_log" || fail "expected 2 keys loaded and 5 skipped"
listed "$work/k6" || fail "k6 did not load beside the bad entries"
listed "$work/k7" || fail "k7 did not load beside the bad entries"
grep -q "loaded ED25519 .* (confirm)" "$agent_log" || fail "k7's confirm constraint was not kept"
for why in "corrupt: not a keyward key entry" "corrupt or truncated" "cannot be decrypted" \
    "belongs to another user (S-1-5-21-1-2-3-1001)" "written by a newer keyward"; do
    grep -qF "$why" "$agent_log" || fail "no log line \"$why\""
    grep -F '"event":"load","outcome":"refused"' "$audit" | grep -qF "$why" ||
        fail "no audit event \"$why\""
done
grep -q "removed 0000.4242.tmp" "$agent_log" || fail "the .tmp file was not removed"
[ -f "$store_dir/0000.4242.tmp" ] && fail "the .tmp file is still there"
[ "$(grep -c '"event":"load","outcome":"ok"' "$audit")" -ge 2 ] || fail "no audit events for loads"
echo "bad entries skipped, the others loaded"

# ---- a read-only store ----
ssh-add -D >/dev/null 2>&1 || fail "ssh-add -D"
ssh-add "$work/k1" 2>/dev/null || fail "ssh-add k1"
stop_agent
ro_dir=$store_dir
if [ "$(id -u)" -eq 0 ]; then
    chattr +i "$ro_dir" || fail "chattr +i (root ignores mode bits; the test needs the immutable flag)"
else
    chmod a-w "$ro_dir"
fi
start
grep -q "1 keys loaded" "$agent_log" || fail "the read-only store's key did not load"
ssh-add "$work/k2" 2>/dev/null || fail "ssh-add to an agent with a read-only store failed"
listed "$work/k2" || fail "the key added to an agent with a read-only store is not listed"
grep -q "kept in memory only, not stored" "$agent_log" || fail "no warning in the log"
grep '"event":"add"' "$audit" | tail -n 1 | grep -q '"warning":"kept in memory only, not stored' ||
    fail "no warning in the add's audit event"
stop_agent
undo_ro
ro_dir=
echo "read-only store: adds work in memory, with a warning"

# ---- --no-key-store ----
rm -rf "$store_dir"
start --no-key-store
ssh-add "$work/k1" 2>/dev/null || fail "ssh-add with --no-key-store"
[ -e "$store_dir" ] && fail "--no-key-store wrote a store"
grep -q "key store off" "$agent_log" || fail "--no-key-store not logged"
stop_agent
echo "--no-key-store keeps nothing"

# ---- names in any script ----
# A user's profile folder may be named in any script; main()'s argv would
# carry it in the ANSI code page as '?'s. Wine reads the Linux arguments as
# UTF-8 only under a UTF-8 locale.
store_dir="$work/鍵-Ключи-ü"
intl_audit="$work/監査-ü.log"
LC_ALL=C.UTF-8 start_agent -a "$pipe" -l "$(winpath "$intl_audit")"
ssh-add "$work/k1" 2>/dev/null || fail "ssh-add to an agent with a non-ASCII store"
[ "$(ls "$store_dir" 2>/dev/null | wc -l)" -eq 1 ] ||
    fail "no entry in the non-ASCII store: $(ls "$work")"
grep -q '"event":"add"' "$intl_audit" 2>/dev/null ||
    fail "no add event in the non-ASCII audit log: $(ls "$work")"
stop_agent
# Loaded again from that folder, whose name the log line gives back as the
# same UTF-8.
LC_ALL=C.UTF-8 start_agent -a "$pipe"
grep -q "key store .*\\鍵-Ключи-ü: 1 keys loaded, 0 skipped" "$agent_log" ||
    fail "the non-ASCII store's key did not load, or its name is not in the log"
stop_agent
echo "a store and an audit log named in any script"
