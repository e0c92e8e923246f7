#!/bin/bash
# keyward-agent.exe's command line, and what it does when the pipe is taken:
#   - the default pipe is \\.\pipe\openssh-ssh-agent; when something already
#     serves it (Windows' own ssh-agent service, typically) a second agent
#     exits with a message naming the cause and the fixes (Stop-Service,
#     Set-Service -StartupType Disabled, -a). Wine does not enforce
#     FILE_FLAG_FIRST_PIPE_INSTANCE, so this is the client-side check at work;
#   - the same for a pipe chosen with -a;
#   - the first agent goes on serving;
#   - --version, -D (a no-op), and clear refusals of -s, -c, -k, a command,
#     a bad pipe name, a bad lifetime, and key store options that contradict
#     each other; --help names the key store's options;
#   - --stop: no agent on the pipe is fine, one from another program file is
#     left running, one from this file is ended; --log-file gets the log,
#     also in a folder whose name the ANSI code page cannot hold.
. "$(dirname "$0")/lib.sh" "$1"

# Runs the agent expecting exit status 1 and a message with every given string.
expect_error() {
    local args=("${@:1:$#-1}") want=${!#} status=0 msg
    msg=$(wine_run "$AGENT" "${args[@]}" 2>&1 | tr -d '\r') || status=$?
    [ "$status" -ne 0 ] || fail "keyward-agent ${args[*]} succeeded"
    grep -qF -- "$want" <<<"$msg" || fail "keyward-agent ${args[*]}: no \"$want\" in: $msg"
}

# The default pipe has one name for everyone using this Wine prefix: two
# test runs at once take turns here (every other pipe name is per process).
exec 8>"$WINEPREFIX.default-pipe.lock"
flock 8
start_agent # the default pipe
grep -qF 'listening on \\.\pipe\openssh-ssh-agent' "$agent_log" ||
    fail "not listening on the default pipe"
for want in "already served by another agent" "OpenSSH Authentication Agent" \
    "Stop-Service ssh-agent" "Set-Service ssh-agent -StartupType Disabled" \
    'keyward-agent -a \\.\pipe\'; do
    expect_error "$want"
done
wine_run "$CLIENT" dacl >/dev/null || fail "the first agent no longer serves the default pipe"
stop_agent
flock -u 8

pipe=$(pipe_for cli)
start_agent -D -t 1h -a "$pipe"
expect_error -a "$pipe" "is already served by another program"
wine_run "$CLIENT" -p "$pipe" dacl >/dev/null || fail "the first agent no longer serves $pipe"
stop_agent

version=$(wine_run "$AGENT" --version | tr -d '\r')
case "$version" in
"keyward-agent "[0-9]*) ;;
*) fail "--version printed \"$version\"" ;;
esac
grep -q "openssh-ssh-agent" <<<"$(wine_run "$AGENT" --help)" || fail "--help does not name the default pipe"
expect_error -s "-s is not supported on Windows"
expect_error -c "-c is not supported on Windows"
expect_error -k "Stop-ScheduledTask"
expect_error cmd.exe "running a command under the agent is not supported on Windows"
expect_error -a 'C:\agent.sock' "invalid pipe name"
expect_error -a '\\.\pipe\' "invalid pipe name"
expect_error -t soon "invalid lifetime"
expect_error --key-store 'C:\k' --no-key-store "contradict each other"
expect_error --dry-run "--dry-run goes with --import-windows-agent"
expect_error --import-windows-agent --no-key-store "needs the key store"
expect_error -E sha1 "invalid fingerprint hash"
expect_error -O frobnicate "unknown -O option"
expect_error -P 'C:\\a\\*' -P 'C:\\b\\*' "-P given twice"
expect_error --stop --import-windows-agent "contradict each other"
help=$(wine_run "$AGENT" --help)
for opt in --key-store --no-key-store --import-windows-agent --dry-run -E -O -P --log-file --stop \
    allow-remote-pkcs11 no-restrict-websafe websafe-allow=; do
    grep -qF -- "$opt" <<<"$help" || fail "--help does not mention $opt"
done

# --stop (the installer's uninstall and upgrade): nothing on the pipe is
# fine; an agent run from another program file is left alone; the agent
# run from this same file is ended. --log-file takes what stderr would get,
# creating its folder.
stop_pipe=$(pipe_for stop)
out=$(wine_run "$AGENT" --stop -a "$stop_pipe" 2>&1) || fail "--stop with no agent: $out"
grep -q "no agent serves" <<<"$out" || fail "--stop with no agent said: $out"
start_agent -a "$stop_pipe"
cp "$AGENT" "$work/other-agent.exe"
rc=0
out=$(wine_run "$work/other-agent.exe" --stop -a "$stop_pipe" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "--stop from another program file exited $rc: $out"
grep -q "not by this program: left running" <<<"$out" || fail "--stop from another file said: $out"
kill -0 "$agent_pid" || fail "--stop from another program file ended the agent"
rc=0
wine_run "$AGENT" --stop -a "$stop_pipe" --log-file "$(winpath "$work/logs/stop.log")" \
    >"$work/stop.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "--stop exited $rc: $(cat "$work/stop.out" "$work/logs/stop.log")"
[ -s "$work/stop.out" ] && fail "--log-file left output on stderr: $(cat "$work/stop.out")"
grep -q "started .*, version " "$work/logs/stop.log" || fail "no start line in the --log-file"
grep -q -- "--stop: stopped the agent serving" "$work/logs/stop.log" ||
    fail "--stop did not log to --log-file: $(cat "$work/logs/stop.log")"
for _ in $(seq 1 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$agent_pid" 2>/dev/null && fail "--stop left the agent running"
wait "$agent_pid" 2>/dev/null || true
agent_pid=

# A user's folder may be named in any script (C:\Users\<name>\AppData\...):
# main()'s argv would carry it in the ANSI code page as '?'s. Wine reads
# the Linux arguments as UTF-8 only under a UTF-8 locale.
intl_dir="$work/ログ-Журнал-ü"
LC_ALL=C.UTF-8 wine_run "$AGENT" --stop -a "$stop_pipe" \
    --log-file "$(winpath "$intl_dir/stop.log")" >"$work/intl.out" 2>&1 ||
    fail "--stop with a non-ASCII --log-file: $(cat "$work/intl.out")"
grep -q "started .*, version " "$intl_dir/stop.log" 2>/dev/null ||
    fail "--log-file in a non-ASCII folder was not written: $(ls "$work") $(cat "$work/intl.out")"
echo "PASS"
