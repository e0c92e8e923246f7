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
e2e_run "$A" -V
expect_rc "-V exits 0 (OpenSSH 10.5+)" 0
expect_eq "-V prints what --version prints" "$(TERM=dumb "$A" --version)" "$E2E_OUT"
expect_match "line 1: the program and its version" '^keyward-agent [0-9]+\.[0-9]+(\.[0-9]+)*$' "$(printf '%s\n' "$E2E_OUT" | head -n 1)"
expect_match "line 2: the OpenSSL in use" '^OpenSSL [0-9]' "$(printf '%s\n' "$E2E_OUT" | sed -n 2p)"
e2e_run "$A" --help
expect_rc "--help exits 0" 0
expect_contains "--help shows the synopsis" "[-c | -s] [-DdTU] [-a bind_address] [-E fingerprint_hash] [-l file]" "$E2E_OUT"
e2e_run "$A" -Z
expect_rc "an unknown option is a usage error" 1
expect_contains "usage error prints usage" "usage:" "$E2E_ERR"
e2e_run "$A" -t 10x
expect_rc "-t with a bad time is refused" 1
expect_contains "-t error names the value" '"10x"' "$E2E_ERR"
e2e_run "$A" -s true
expect_rc "a command together with -s is a usage error (as ssh-agent)" 1

# --- -E, -O, -P: checked as ssh-agent checks them ---------------------------
e2e_run "$A" -E sha1 -D -a "$E2E_TMP/e.sock"
expect_rc "-E with an unknown hash is refused" 1
expect_contains "and names it" '"sha1"' "$E2E_ERR"
e2e_run "$A" -O frobnicate -D -a "$E2E_TMP/e.sock"
expect_rc "an unknown -O option is refused" 1
expect_contains "and named" '"frobnicate"' "$E2E_ERR"
e2e_run "$A" -O websafe-allow=ssh:* -O websafe-allow=x -D -a "$E2E_TMP/e.sock"
expect_rc "-O websafe-allow= twice is refused" 1
e2e_run "$A" -P '/usr/lib*/*' -P '/opt/*' -D -a "$E2E_TMP/e.sock"
expect_rc "-P twice is refused" 1
e2e_run "$A" -P '/usr/lib*/*' -O allow-remote-pkcs11 -O no-restrict-websafe -s -a "$E2E_TMP/p.sock"
expect_rc "-P and the three -O options are accepted" 0
expect_not_contains "and in force: no note that they change nothing (e2e_sk tests them)" \
    "have no effect" "$E2E_ERR"
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
e2e_run env SSH_AUTH_SOCK="$E2E_TMP/p.sock" ssh-add -l
expect_rc "and the agent serves" 1
[ -n "$pid" ] && kill "$pid" 2>/dev/null

e2e_keygen kE ed25519 ""
"$A" -d -E md5 -l "$E2E_TMP/md5.audit" -a "$E2E_TMP/md5.sock" </dev/null >/dev/null 2>"$E2E_TMP/md5.log" &
mpid=$!
for _ in $(seq 1 50); do [ -S "$E2E_TMP/md5.sock" ] && break; sleep 0.1; done
e2e_run env SSH_AUTH_SOCK="$E2E_TMP/md5.sock" ssh-add "$E2E_TMP/kE"
expect_rc "ssh-add under -E md5" 0
kill "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null
md5_fp=$(ssh-keygen -l -E md5 -f "$E2E_TMP/kE.pub" | cut -d' ' -f2)
expect_contains "-E md5: the log names the key as ssh-keygen -l -E md5 does ($md5_fp)" \
    "$md5_fp" "$(cat "$E2E_TMP/md5.log")"
expect_contains "the audit log keeps SHA-256 fingerprints, whatever -E says" \
    "\"key_fingerprint\":\"$(e2e_fp "$E2E_TMP/kE.pub")\"" "$(cat "$E2E_TMP/md5.audit")"

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

# --- the default socket: ~/.ssh/agent/s.<host>.agent.<random>, as OpenSSH 10.1+ ---
# OpenSSH's host tag: SHA-512 of the host name, its first ten bytes each
# taken modulo 62 into [a-z][A-Z][0-9]. Computed here with coreutils so that
# keyward-agent's own code is not the judge of its names.
alphabet=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789
hex=$(printf '%s' "$(uname -n)" | sha512sum | cut -c1-20)
host_tag=""
for i in $(seq 0 9); do
    b=$((16#${hex:$((2 * i)):2}))
    host_tag+=${alphabet:$((b % 62)):1}
done
H=$E2E_TMP/h # a home of its own: lib.sh checks that the tests leave $HOME/.ssh alone
mkdir -m 700 "$H"
e2e_run env HOME="$H" "$A" -s
sock=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AUTH_SOCK=\([^;]*\);.*/\1/p')
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
expect_match "default socket is ~/.ssh/agent/s.<host tag>.agent.<10 random>" \
    "^$(e2e_re_escape "$H")/\.ssh/agent/s\.${host_tag}\.agent\.[A-Za-z0-9]{10}\$" "$sock"
expect_eq "~/.ssh is created mode 700" 700 "$(stat -c %a "$H/.ssh" 2>&1)"
expect_eq "~/.ssh/agent is created mode 700" 700 "$(stat -c %a "$H/.ssh/agent" 2>&1)"
expect_eq "socket mode is 600" 600 "$(stat -c %a "$sock" 2>&1)"
e2e_run env SSH_AUTH_SOCK="$sock" ssh-add -l
expect_rc "the default socket serves (no identities: exit 1)" 1
e2e_run env HOME="$H" "$A" -s
sock2=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AUTH_SOCK=\([^;]*\);.*/\1/p')
pid2=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
check "a second agent gets a socket of its own ($sock2)" test -S "$sock2" -a "$sock2" != "$sock"
kill "$pid" "$pid2" 2>/dev/null
check "agent exits on SIGTERM" wait_gone "$pid"
check "and removes its socket" test ! -e "$sock"
check "and leaves ~/.ssh/agent, shared with other agents" test -d "$H/.ssh/agent"
wait_gone "$pid2"

# --- stale sockets: -u, -uu, -U and the clean-up at start ----------------------
# A stale socket is what an agent killed with SIGKILL leaves behind. Clean-up
# takes only sockets older than an hour (younger ones may belong to an agent
# still starting) that refuse connections, and only this host's unless -uu.
stale_socket() { # path [age]: a socket nobody listens on, last changed age ago
    "$A" -D -a "$1" </dev/null >/dev/null 2>&1 &
    local p=$! i
    for i in $(seq 1 50); do [ -S "$1" ] && break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    : "$i"
    [ -z "${2:-}" ] || touch -d "$2" "$1"
}
D=$H/.ssh/agent
stale_socket "$D/s.$host_tag.agent.oldoldold1" "2 hours ago"
stale_socket "$D/s.$host_tag.agent.youngyoung" "10 minutes ago"
stale_socket "$D/s.OtherHost1.agent.oldoldold2" "2 hours ago"
: >"$D/s.$host_tag.agent.plainfile1" && touch -d "2 hours ago" "$D/s.$host_tag.agent.plainfile1"
"$A" -D -a "$D/s.$host_tag.agent.alivealive" </dev/null >/dev/null 2>&1 &
alive=$!
for _ in $(seq 1 50); do [ -S "$D/s.$host_tag.agent.alivealive" ] && break; sleep 0.1; done
touch -d "2 hours ago" "$D/s.$host_tag.agent.alivealive"
e2e_run env HOME="$H" "$A" -u
expect_rc "-u exits 0" 0
expect_eq "-u says what it did" "Deleted 1 stale agent socket in ~/.ssh/agent" "$E2E_OUT"
check "-u removed this host's old dead socket" test ! -e "$D/s.$host_tag.agent.oldoldold1"
check "-u kept a dead socket younger than an hour" test -S "$D/s.$host_tag.agent.youngyoung"
check "-u kept another host's socket" test -S "$D/s.OtherHost1.agent.oldoldold2"
check "-u kept a file that is not a socket" test -f "$D/s.$host_tag.agent.plainfile1"
check "-u kept a socket an agent listens on" test -S "$D/s.$host_tag.agent.alivealive"
e2e_run env SSH_AUTH_SOCK="$D/s.$host_tag.agent.alivealive" ssh-add -l
expect_rc "and that agent still serves" 1
e2e_run env HOME="$H" "$A" -uu
expect_eq "-uu removes another host's dead socket too" \
    "Deleted 1 stale agent socket in ~/.ssh/agent" "$E2E_OUT"
check "-uu removed it" test ! -e "$D/s.OtherHost1.agent.oldoldold2"
check "-uu kept the live one" test -S "$D/s.$host_tag.agent.alivealive"
kill "$alive" 2>/dev/null; wait "$alive" 2>/dev/null
e2e_run env HOME="$H" "$A" -u -s
expect_rc "-u with -s is accepted (-s is moot)" 0
e2e_run env HOME="$H" "$A" -u true
expect_rc "-u with a command is a usage error" 1

stale_socket "$D/s.$host_tag.agent.oldoldold3" "2 hours ago"
e2e_run env HOME="$H" "$A" -U -s
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
check "-U leaves stale sockets at start" test -S "$D/s.$host_tag.agent.oldoldold3"
kill "$pid" 2>/dev/null; wait_gone "$pid"
e2e_run env HOME="$H" "$A" -s
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
check "without -U, starting cleans stale sockets up" test ! -e "$D/s.$host_tag.agent.oldoldold3"
kill "$pid" 2>/dev/null; wait_gone "$pid"

# --- -T: a fresh private directory under $TMPDIR, as before 10.1 ----------------
mkdir -p "$E2E_TMP/tmpdir"
e2e_run env HOME="$H" TMPDIR="$E2E_TMP/tmpdir" "$A" -T -s
sock=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AUTH_SOCK=\([^;]*\);.*/\1/p')
pid=$(printf '%s\n' "$E2E_OUT" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
expect_match "-T puts the socket under \$TMPDIR in its own directory" \
    "^$(e2e_re_escape "$E2E_TMP/tmpdir")/keyward-[A-Za-z0-9]{10}/agent\.[0-9]+\$" "$sock"
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
expect_rc "the -T socket serves" 1
kill "$pid" 2>/dev/null
check "agent exits on SIGTERM" wait_gone "$pid"
check "and removes its socket directory" test ! -e "$(dirname "$sock")"
e2e_run "$A" -T -a "$E2E_TMP/x.sock"
expect_rc "-T with -a is refused" 1
expect_contains "and says why" "-T and -a" "$E2E_ERR"

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
e2e_run env HOME="$H" "$A" "$E2E_TMP/child.sh"
expect_rc "subprocess mode returns the command's status" 0
expect_contains "the command sees SSH_AUTH_SOCK" "sock=$H/.ssh/agent/s.$host_tag.agent." "$E2E_OUT"
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
