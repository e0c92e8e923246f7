#!/bin/bash
# The Windows installer (make msi, scripts/build-msi.sh) under Wine's
# msiexec, in a Wine prefix of its own (an installed Run value and an agent
# on the default pipe must not reach the other win_* tests):
#   - the package is per user and asks for no elevation (summary and
#     Property table), and /i /qn installs the programs, README.txt and
#     LICENSE.txt into %LOCALAPPDATA%\Programs\keyward and the HKCU Run
#     value, and starts the agent, which serves \\.\pipe\openssh-ssh-agent
#     (the installed keyward-probe.exe passes against it), logging to
#     %LOCALAPPDATA%\keyward\agent.log;
#   - the Run value's command (what Windows runs at logon) starts the agent
#     again; run while the pipe is held (Windows' agent service, say), it
#     exits and the log says what to do;
#   - an upgrade (a .msi of a higher version, same UpgradeCode) stops the
#     running agent, replaces the files, starts the new agent, and keeps
#     the key store: a key ssh-add put there is loaded by the new agent;
#   - /x /qn stops the agent and removes the files, the folder and the Run
#     value, and leaves the key store and the log.
# What Wine cannot show: Wine runs everything with an administrator's
# token, so "no elevation" is checked in the package, not by a refused
# elevation; and Wine does not run Run values at a session start, so the
# test runs the value's command itself (docs/windows.md).
. "$(dirname "$0")/lib.sh" "$1"

repo=$(cd "$(dirname "$0")/../.." && pwd)
command -v wixl >/dev/null || fail "wixl is not installed (scripts/setup.sh installs it)"
command -v msiinfo >/dev/null || fail "msiinfo is not installed (scripts/setup.sh installs msitools)"
unset SSH_AUTH_SOCK

# ---- two packages: this version, and the next patch version ----
version=$(sed -n 's/^project(keyward VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
next=${version%.*}.$((${version##*.} + 1))
msi1=$work/keyward-$version.msi
msi2=$work/keyward-$next.msi
"$repo/scripts/build-msi.sh" "$WIN_BUILD" "$msi1" >/dev/null 2>"$work/build1.log" ||
    fail "build-msi.sh: $(cat "$work/build1.log")"
"$repo/scripts/build-msi.sh" "$WIN_BUILD" "$msi2" "$next" >/dev/null 2>"$work/build2.log" ||
    fail "build-msi.sh $next: $(cat "$work/build2.log")"

# Per user, no elevation: Word Count bit 3 (value 8, "elevated privileges
# are not required") and compressed (2); no ALLUSERS (a per-user install).
info=$(msiinfo suminfo "$msi1")
grep -qx 'Source: 10 (a)' <<<"$info" || fail "the word count is not 10 (per user, no elevation, compressed): $info"
props=$(msiinfo export "$msi1" Property)
grep -q '^ALLUSERS' <<<"$props" && fail "the package sets ALLUSERS: $props"
grep -qP "^ProductVersion\t$version\r?$" <<<"$props" || fail "ProductVersion is not $version: $props"

# ---- a Wine prefix of its own ----
export WINEPREFIX=$work/prefix
wineboot -i >/dev/null 2>&1 || fail "wineboot -i failed"
cleanup_prefix() {
    WINEPREFIX=$work/prefix wineserver -k 2>/dev/null || true
    WINEPREFIX=$work/prefix wineserver -w 2>/dev/null || true
    cleanup
}
trap cleanup_prefix EXIT

user=$(wine cmd /c 'echo %USERNAME%' 2>/dev/null | tr -d '\r')
[ -n "$user" ] || fail "no %USERNAME% in the prefix"
local_dir=$WINEPREFIX/drive_c/users/$user/AppData/Local
install_dir=$local_dir/Programs/keyward
log=$local_dir/keyward/agent.log
keys=$local_dir/keyward/keys
win_local='C:\users\'$user'\AppData\Local'
run_key='HKCU\Software\Microsoft\Windows\CurrentVersion\Run'
want_run="\"$win_local\\Programs\\keyward\\keyward-agent.exe\" --log-file \"$win_local\\keyward\\agent.log\""

msiexec() {
    local what=$1 pkg=$2 rc=0
    wine_run msiexec "$what" "$(winpath "$pkg")" /qn /l*v "$(winpath "$work/msiexec${what#/}.log")" \
        >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "msiexec $what $(basename "$pkg") /qn: status $rc
$(tr -d '\0' <"$work/msiexec${what#/}.log" 2>/dev/null | tail -n 30)"
}

run_value() {
    wine reg query "$run_key" /v keyward-agent 2>/dev/null | tr -d '\r' |
        sed -n 's/^ *keyward-agent *REG_SZ *//p'
}

# Installed agents in this prefix: Wine shows a Windows program's command
# line as its process title; other tests' agents have another WINEPREFIX.
agent_pids() {
    local p
    for p in $(pgrep -f 'Programs.keyward.keyward-agent\.exe'); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "WINEPREFIX=$WINEPREFIX" && echo "$p"
    done
    return 0
}

# wait_log N: until the log has N "listening on" lines, from N starts.
wait_log() {
    local n=$1
    for _ in $(seq 1 300); do
        [ "$(grep -c "listening on \\\\\\\\.\\\\pipe\\\\openssh-ssh-agent" "$log" 2>/dev/null)" -ge "$n" ] &&
            return 0
        sleep 0.1
    done
    fail "the agent did not start listening (start $n); log: $(cat "$log" 2>/dev/null)"
}

# wait_gone: until no installed agent runs.
wait_gone() {
    for _ in $(seq 1 100); do
        [ -z "$(agent_pids)" ] && return 0
        sleep 0.1
    done
    fail "an installed keyward-agent.exe still runs: $(agent_pids)"
}

files="keyward-agent.exe keyward-pkcs11-helper.exe keyward-sk-helper.exe keyward-probe.exe keyward-relay.exe README.txt LICENSE.txt"

# ---- install ----
msiexec /i "$msi1"
for f in $files; do
    [ -f "$install_dir/$f" ] || fail "$f is not in $install_dir: $(ls "$install_dir" 2>&1)"
done
cmp -s "$install_dir/keyward-agent.exe" "$AGENT" || fail "the installed keyward-agent.exe is not the one built"
[ "$(ls "$install_dir" | wc -l)" -eq 7 ] || fail "$install_dir holds more than the seven files: $(ls "$install_dir")"
grep -q "keyward $version" "$install_dir/README.txt" || fail "README.txt does not name version $version"
grep -q "no-licence-stated" "$install_dir/LICENSE.txt" || fail "LICENSE.txt does not say what debian/copyright says"
[ "$(run_value)" = "$want_run" ] || fail "Run value: '$(run_value)', expected '$want_run'"
wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run' /v keyward-agent >/dev/null 2>&1 &&
    fail "a machine-wide Run value was written"
wait_log 1
grep -q "started .*, version $version" "$log" || fail "the log does not name version $version: $(cat "$log")"
[ "$(agent_pids | wc -l)" -eq 1 ] || fail "not one installed agent runs after install: $(agent_pids)"

out=$(wine_run "$install_dir/keyward-probe.exe" --json 2>&1 | tr -d '\r') ||
    fail "keyward-probe.exe against the installed agent: $out"
grep -qF '"fail": 0, "unsupported": 0, "skipped": 0, "error": 0' <<<"$out" ||
    fail "the probe did not pass every check: $out"
grep -qF '"agent": "\\\\.\\pipe\\openssh-ssh-agent"' <<<"$out" || fail "the probe checked another agent: $out"
echo "installed: files, Run value, agent serving the default pipe, probe passes"

# ---- the pipe already held: the autostart's refusal goes to the log ----
eval "set -- $want_run"
rc=0
wine_run "$@" >"$work/second.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "a second agent on the held pipe exited with $rc"
grep -q "Stop-Service ssh-agent" "$log" || fail "the log does not say what to do: $(cat "$log")"
grep -q "Set-Service ssh-agent -StartupType Disabled" "$log" || fail "the log lacks Set-Service"
echo "pipe held: the autostarted agent's refusal and the fix are in agent.log"

# ---- logon: the Run value's command, as Windows runs it ----
for p in $(agent_pids); do kill -KILL "$p"; done
wait_gone
eval "set -- $(run_value)"
wine "$@" >/dev/null 2>&1 &
logon_pid=$!
wait_log 2

# A key into the store, with the Linux ssh-add through keyward-relay.exe.
ssh-keygen -q -t ed25519 -N '' -C msi-test -f "$work/key"
start_socket_relay "$work/agent.sock" '\\.\pipe\openssh-ssh-agent'
ssh-add "$work/key" 2>/dev/null || fail "ssh-add to the installed agent"
[ "$(ls "$keys" | wc -l)" -eq 1 ] || fail "the key store does not hold the one key: $(ls -la "$keys")"
stored=$(cd "$keys" && sha256sum ./*.key)
fp=$(ssh-keygen -lf "$work/key.pub" | cut -d' ' -f2)
echo "logon: the Run value's command serves the pipe; a key is stored"

# ---- upgrade ----
msiexec /i "$msi2"
# The old package's uninstall ended the running agent (keyward-agent.exe --stop).
for _ in $(seq 1 100); do kill -0 "$logon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$logon_pid" 2>/dev/null && fail "the upgrade left the old agent running"
wait "$logon_pid" 2>/dev/null || true
grep -q -- "--stop: stopped the agent serving" "$log" || fail "no --stop in the log: $(cat "$log")"
grep -q "keyward $next" "$install_dir/README.txt" || fail "the upgrade did not replace README.txt"
for f in $files; do
    [ -f "$install_dir/$f" ] || fail "$f is gone after the upgrade"
done
[ "$(run_value)" = "$want_run" ] || fail "Run value after the upgrade: '$(run_value)'"
products=$(wine reg query 'HKCU\Software\Microsoft\Installer\Products' /s 2>/dev/null | tr -d '\r' |
    grep -c 'ProductName *REG_SZ *keyward$' || true)
[ "$products" -eq 1 ] || fail "$products keyward products registered after the upgrade, expected 1"
[ "$(cd "$keys" && sha256sum ./*.key)" = "$stored" ] || fail "the upgrade changed the key store"
wait_log 3
# (The same program under a higher package version: the agent names its own.)
sed -n '/--stop: stopped/,$p' "$log" | grep -q "listening on" ||
    fail "no agent started after the upgrade stopped the old one: $(cat "$log")"
[ "$(agent_pids | wc -l)" -eq 1 ] || fail "not one agent after the upgrade: $(agent_pids)"
grep -q "1 keys loaded" "$log" || fail "the new agent did not load the stored key: $(cat "$log")"
ssh-add -l 2>/dev/null | grep -qF "$fp" || fail "the stored key is not listed after the upgrade"
echo "upgrade: files replaced, one product, the agent restarted with the stored key"

# ---- uninstall ----
msiexec /x "$msi2"
wait_gone
[ -e "$install_dir" ] && fail "uninstall left $install_dir: $(ls -la "$install_dir")"
[ -z "$(run_value)" ] || fail "uninstall left the Run value: $(run_value)"
[ "$(cd "$keys" && sha256sum ./*.key)" = "$stored" ] || fail "uninstall changed the key store"
[ -f "$log" ] || fail "uninstall removed the agent's log"
products=$(wine reg query 'HKCU\Software\Microsoft\Installer\Products' /s 2>/dev/null | tr -d '\r' |
    grep -c 'ProductName *REG_SZ *keyward$' || true)
[ "$products" -eq 0 ] || fail "keyward is still registered after /x"
echo "uninstall: files, folder and Run value gone; the key store and the log stay"
