#!/usr/bin/env bash
# keyward-agent's command line, the way a shell user meets it: -s/-c output,
# eval and ssh-add, -k, subprocess mode, the default socket directory and its
# permissions, -t, -a errors, --help/--version, and the peer uid check.
#
# This test is specific to keyward-agent (OpenSSH's agent has no --version
# and puts its socket elsewhere): run it as
#     tests/e2e/cli.sh build/keyward-agent
#
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
A=$E2E_AGENT

wait_gone() { # pid: up to 5 s for a process to exit
    local i
    for i in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    : "$i"
    return 1
}

# --- --help, --version, bad usage ---------------------------------------
e2e_run "$A" --version
expect_rc "--version exits 0" 0
expect_match "--version names the program and version" '^keyward-agent [0-9]+\.[0-9]+' "$E2E_OUT"
e2e_run "$A" --help
expect_rc "--help exits 0" 0
expect_contains "--help shows the synopsis" "[-c | -s] [-Dd] [-a bind_address] [-l file] [-t life]" "$E2E_OUT"
e2e_run "$A" -Z
expect_rc "an unknown option is a usage error" 1
expect_contains "usage error prints usage" "usage:" "$E2E_ERR"
e2e_run "$A" -t 10x
expect_rc "-t with a bad time is refused" 1
expect_contains "-t error names the value" '"10x"' "$E2E_ERR"
e2e_run "$A" -s true
expect_rc "a command together with -s is a usage error (as ssh-agent)" 1

# --- -s: Bourne shell output, eval, ssh-add, -k -----------------------------
e2e_keygen k1 ed25519 ""
e2e_run "$A" -s -a "$E2E_TMP/s.sock"
expect_rc "-s starts a background agent" 0
expect_match "-s line 1" '^SSH_AUTH_SOCK='"$(e2e_re_escape "$E2E_TMP/s.sock")"'; export SSH_AUTH_SOCK;$' "$E2E_OUT"
expect_match "-s line 2" '^SSH_AGENT_PID=[0-9]+; export SSH_AGENT_PID;$' "$E2E_OUT"
expect_match "-s line 3" '^echo Agent pid [0-9]+;$' "$E2E_OUT"
expect_eq "-s prints exactly three lines" 3 "$(e2e_count_lines "$E2E_OUT")"
(
    eval "$E2E_OUT" >/dev/null
    ssh-add "$E2E_TMP/k1" </dev/null >"$E2E_TMP/eval.out" 2>&1
    ssh-add -l </dev/null >>"$E2E_TMP/eval.out" 2>&1
    echo "pid=$SSH_AGENT_PID" >>"$E2E_TMP/eval.out"
)
eval_out=$(cat "$E2E_TMP/eval.out")
expect_contains "eval \"\$(keyward-agent -s)\" then ssh-add adds the key" "Identity added" "$eval_out"
expect_contains "ssh-add -l lists it" "$(e2e_fp "$E2E_TMP/k1.pub")" "$eval_out"
daemon_pid=$(printf '%s\n' "$eval_out" | sed -n 's/^pid=//p')
check "the daemon is running (pid $daemon_pid)" kill -0 "$daemon_pid"
e2e_run env SSH_AGENT_PID="$daemon_pid" "$A" -k
expect_rc "-k exits 0" 0
expect_eq "-k prints what ssh-agent -k prints" "unset SSH_AUTH_SOCK;
unset SSH_AGENT_PID;
echo Agent pid $daemon_pid killed;" "$E2E_OUT"
check "-k stopped the daemon" wait_gone "$daemon_pid"
check "the daemon removed its socket" test ! -e "$E2E_TMP/s.sock"
e2e_run env -u SSH_AGENT_PID "$A" -k
expect_rc "-k without SSH_AGENT_PID fails" 1
expect_contains "-k says why" "SSH_AGENT_PID" "$E2E_ERR"

# --- -c and $SHELL ------------------------------------------------------------
e2e_run "$A" -c -a "$E2E_TMP/c.sock"
expect_rc "-c starts a background agent" 0
expect_match "-c line 1" '^setenv SSH_AUTH_SOCK '"$(e2e_re_escape "$E2E_TMP/c.sock")"';$' "$E2E_OUT"
expect_match "-c line 2" '^setenv SSH_AGENT_PID [0-9]+;$' "$E2E_OUT"
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^setenv SSH_AGENT_PID \([0-9]*\);$/\1/p')
e2e_run env SSH_AGENT_PID="$pid" "$A" -c -k
expect_match "-c -k prints unsetenv" '^unsetenv SSH_AUTH_SOCK;$' "$E2E_OUT"
check "-c -k stopped it" wait_gone "$pid"

e2e_run env SHELL=/bin/tcsh "$A" -a "$E2E_TMP/t.sock"
expect_match "SHELL=.../tcsh selects C-shell output" '^setenv SSH_AUTH_SOCK ' "$E2E_OUT"
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^echo Agent pid \([0-9]*\);$/\1/p')
[ -n "$pid" ] && kill "$pid" 2>/dev/null
e2e_run env SHELL=/bin/bash "$A" -a "$E2E_TMP/b.sock"
expect_match "SHELL=.../bash selects Bourne output" '^SSH_AUTH_SOCK=.*; export SSH_AUTH_SOCK;$' "$E2E_OUT"
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^echo Agent pid \([0-9]*\);$/\1/p')
[ -n "$pid" ] && kill "$pid" 2>/dev/null

# --- the default socket: a fresh private directory --------------------------
mkdir -p "$E2E_TMP/xdg" && chmod 700 "$E2E_TMP/xdg"
e2e_run env XDG_RUNTIME_DIR="$E2E_TMP/xdg" "$A" -s
sock=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AUTH_SOCK=\([^;]*\);.*/\1/p')
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
expect_match "default socket is under \$XDG_RUNTIME_DIR in its own directory" \
    "^$(e2e_re_escape "$E2E_TMP/xdg")/keyward-[A-Za-z0-9]{10}/agent\.[0-9]+\$" "$sock"
# glibc's mkdtemp fills only the last six X's of a template: a name that
# starts with XXXX came from a template, not from ten random characters.
case $sock in
    */keyward-XXXX*) dir_name_random=no ;;
    *) dir_name_random=yes ;;
esac
expect_eq "socket directory name is random throughout ($sock)" yes "$dir_name_random"
expect_eq "socket directory mode is 700" 700 "$(stat -c %a "$(dirname "$sock")" 2>&1)"
expect_eq "socket mode is 600" 600 "$(stat -c %a "$sock" 2>&1)"
e2e_run env SSH_AUTH_SOCK="$sock" ssh-add -l
expect_rc "the default socket serves (no identities: exit 1)" 1
kill "$pid" 2>/dev/null
check "agent exits on SIGTERM" wait_gone "$pid"
check "and removes its socket directory" test ! -e "$(dirname "$sock")"

mkdir -p "$E2E_TMP/tmpdir"
e2e_run env -u XDG_RUNTIME_DIR TMPDIR="$E2E_TMP/tmpdir" "$A" -s
sock=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AUTH_SOCK=\([^;]*\);.*/\1/p')
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
expect_match "without XDG_RUNTIME_DIR the socket is under \$TMPDIR" \
    "^$(e2e_re_escape "$E2E_TMP/tmpdir")/keyward-[A-Za-z0-9]{10}/agent\.[0-9]+\$" "$sock"
[ -n "$pid" ] && kill "$pid" 2>/dev/null

# --- -a errors name the problem -----------------------------------------------
: >"$E2E_TMP/occupied"
e2e_run "$A" -D -a "$E2E_TMP/occupied"
expect_rc "binding an existing path fails" 1
expect_contains "the error names the path and the cause" \
    "cannot bind $E2E_TMP/occupied: Address already in use" "$E2E_ERR"
e2e_run "$A" -D -a "$E2E_TMP/no/such/dir/sock"
expect_rc "binding in a missing directory fails" 1
expect_contains "the error names the cause" "No such file or directory" "$E2E_ERR"

# --- subprocess mode ---------------------------------------------------------
cat >"$E2E_TMP/child.sh" <<'EOF'
#!/bin/sh
echo "sock=$SSH_AUTH_SOCK"
echo "pid=$SSH_AGENT_PID"
ssh-add -l </dev/null
echo "list=$?"
EOF
chmod +x "$E2E_TMP/child.sh"
e2e_run env XDG_RUNTIME_DIR="$E2E_TMP/xdg" "$A" "$E2E_TMP/child.sh"
expect_rc "subprocess mode returns the command's status" 0
expect_contains "the command sees SSH_AUTH_SOCK" "sock=$E2E_TMP/xdg/keyward-" "$E2E_OUT"
expect_contains "the command can use the agent" "list=1" "$E2E_OUT"
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^pid=//p')
sock=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^sock=//p')
check "the agent exits when the command exits" wait_gone "$pid"
check "and removes its socket" test ! -e "$sock"

# --- -t: a default lifetime for added keys -----------------------------------
E2E_AGENT_SOCK=$E2E_TMP/t2.sock
"$A" -D -t 2 -a "$E2E_AGENT_SOCK" </dev/null >/dev/null 2>"$E2E_TMP/t2.log" &
tpid=$!
for _ in $(seq 1 50); do [ -S "$E2E_AGENT_SOCK" ] && break; sleep 0.1; done
e2e_run env SSH_AUTH_SOCK="$E2E_AGENT_SOCK" ssh-add "$E2E_TMP/k1"
expect_rc "ssh-add under -t 2" 0
e2e_run env SSH_AUTH_SOCK="$E2E_AGENT_SOCK" ssh-add -l
expect_contains "the key is listed at first" "$(e2e_fp "$E2E_TMP/k1.pub")" "$E2E_OUT"
sleep 3
e2e_run env SSH_AUTH_SOCK="$E2E_AGENT_SOCK" ssh-add -l
expect_contains "and is gone after its lifetime" "The agent has no identities." "$E2E_OUT"
kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null

# --- only our uid (or root) may connect ---------------------------------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    mkdir -p "$E2E_TMP/open" && chmod 755 "$E2E_TMP/open" && chmod 711 "$E2E_TMP"
    "$A" -d -a "$E2E_TMP/open/sock" </dev/null >/dev/null 2>"$E2E_TMP/uid.log" &
    upid=$!
    for _ in $(seq 1 50); do [ -S "$E2E_TMP/open/sock" ] && break; sleep 0.1; done
    chmod 666 "$E2E_TMP/open/sock" # the test opens the door; the uid check must hold
    e2e_run setpriv --reuid=65534 --regid=65534 --clear-groups \
        env SSH_AUTH_SOCK="$E2E_TMP/open/sock" ssh-add -l
    # An answered list prints keys or "The agent has no identities."; a
    # closed connection makes ssh-add fail (exit 1 with "error fetching
    # identities", or SIGPIPE, 141, if it was still writing).
    check "a client of another uid is not served (ssh-add exit $E2E_RC)" test "$E2E_RC" != 0
    expect_not_contains "it gets no answer" "The agent has no identities." "$E2E_OUT"
    sleep 0.2
    expect_contains "the refusal is logged with the peer's uid" "uid 65534: not our user" \
        "$(cat "$E2E_TMP/uid.log")"
    e2e_run env SSH_AUTH_SOCK="$E2E_TMP/open/sock" ssh-add -l
    expect_rc "our own uid is still served" 1
    kill "$upid" 2>/dev/null; wait "$upid" 2>/dev/null
    chmod 700 "$E2E_TMP"
else
    e2e_log "skipping the other-uid check: needs root and setpriv"
fi

e2e_finish
