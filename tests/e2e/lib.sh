# shellcheck shell=bash
#
# keyward end-to-end tests: shared helpers.
#
# README
# ======
# Every test in this directory is an executable bash script that drives the
# real OpenSSH tools (ssh, ssh-add, ssh-keygen and a private sshd) against an
# ssh-agent compatible binary given as its only argument.  Run one by hand:
#
#     tests/e2e/ssh_add.sh /usr/bin/ssh-agent        # the reference agent
#     tests/e2e/ssh_add.sh build/keyward-agent       # the agent under test
#     KEYWARD_E2E_DEBUG=1 tests/e2e/forwarding.sh build/keyward-agent
#
# or all of them through CTest (tests/CMakeLists.txt registers every
# tests/e2e/*.sh except this file as e2e_<name>):  ctest -R e2e_ -j4
#
# The tests:  ssh_add.sh (ssh-add add/list/delete/lock/constraints),
# sign.sh (ssh-keygen -Y sign/verify through the agent), sshd_login.sh (ssh
# logins to a private sshd with every key type and a certificate),
# forwarding.sh (ssh -A, then ssh -A again from the "node": the seed case).
#
# A test starts the agent itself as `AGENT -D -a SOCKET` (stderr to
# agent.log in its temp dir), runs its checks and removes every process and
# temp file it made when it exits, pass or fail.  Exit status: 0 pass,
# 1 fail, 77 skipped (a prerequisite is missing; the reason is printed).
# Tests run as root here; sshd lets them log in as the current user.
# Several tests may run at once: each has its own temp dir, agent socket and
# sshd port (picked at random in 20000-59999, retried if bind fails).
#
# Environment knobs:
#   KEYWARD_E2E_DEBUG=1        start the agent as `AGENT -D -d -a SOCKET`
#                              (OpenSSH's ssh-agent rejects -D with -d, so
#                              then `-d -a SOCKET` is tried); the agent log
#                              is printed when the test fails
#   KEYWARD_E2E_KEEP=1         keep the temp dir (its path is printed)
#   KEYWARD_E2E_VERBOSE=1      print stdout/stderr of passing checks too
#   KEYWARD_E2E_CMD_TIMEOUT=N  per-command timeout in seconds (default 30)
#   KEYWARD_E2E_OPENSSH=DIR    use another OpenSSH: DIR/bin's ssh, ssh-add,
#                              ssh-keygen (first in PATH, also in the "node"'s
#                              sessions) and DIR/sbin/sshd, e.g. the one
#                              scripts/pq-deps.sh builds; default: the
#                              machine's (Debian 12's 9.2)
#   TMPDIR                     where temp dirs go (falls back to /tmp when the
#                              path would be too long for a Unix socket)
#
# Output is TAP-like: one "ok N - ..." / "not ok N - ..." per check, details of
# failures indented with "#" (expected vs. got, the command, its exit status,
# stdout and stderr), the agent and sshd logs on failure, and a summary line:
#     # PASS ssh_add: 104 passed, 0 failed, 5 s, agent /usr/bin/ssh-agent
#
# Checking the checks: selftest/mutant_agent.py is an "agent" that relays to
# /usr/bin/ssh-agent but breaks one behaviour (MUTANT=lock_noop, rsa_sha1,
# ...); the suite must fail against it.  MUTANT=trace logs every request.
#
# Writing a test: source this file, call `e2e_init "$@"`, start the agent with
# `e2e_start_agent`, run commands with `e2e_run` (it records E2E_RC, E2E_OUT,
# E2E_ERR) and assert with expect_rc / expect_eq / expect_contains / ...,
# then end with `e2e_finish`.  Cleanup is done by an EXIT trap.

set -u
# No `set -e`: a failing command is a test result to report, not a reason to
# stop before the remaining checks and the cleanup have run.

E2E_NAME=$(basename "$0" .sh)
E2E_PASS=0
E2E_FAILED=0
E2E_NCHECK=0
E2E_TMP=
E2E_AGENT=
E2E_AGENT_PID=
E2E_AGENT_SOCK=
E2E_AGENT_LOG=
E2E_SSHD_PID=
E2E_SSHD_PIDS=
E2E_SSHD_PORT=
E2E_SSHD_LOG=
E2E_SSHD_CONFIG=
E2E_SSH_CONFIG=
E2E_RC=0
E2E_OUT=
E2E_ERR=
E2E_CMD=
E2E_START=$SECONDS
E2E_CMD_TIMEOUT=${KEYWARD_E2E_CMD_TIMEOUT:-30}
E2E_USER=$(id -un)
E2E_FINISHED=0

# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

e2e_log() { printf '# %s\n' "$*"; }

# Indent a block of text as TAP diagnostics, limited so a runaway log does
# not drown the report.
_e2e_diag() {
    local label=$1 text=$2
    [ -n "$text" ] || { printf '#   %s: (empty)\n' "$label"; return; }
    printf '#   %s:\n' "$label"
    printf '%s\n' "$text" | head -n 60 | sed 's/^/#     | /'
}

_e2e_ok() {
    E2E_NCHECK=$((E2E_NCHECK + 1)); E2E_PASS=$((E2E_PASS + 1))
    printf 'ok %d - %s\n' "$E2E_NCHECK" "$1"
}

_e2e_notok() {
    E2E_NCHECK=$((E2E_NCHECK + 1)); E2E_FAILED=$((E2E_FAILED + 1))
    printf 'not ok %d - %s\n' "$E2E_NCHECK" "$1"
}

# Show what the last e2e_run command did; used after a failed check.
_e2e_last_run() {
    [ -n "$E2E_CMD" ] || return 0
    printf '#   last command: %s\n' "$E2E_CMD"
    printf '#   exit status: %s%s\n' "$E2E_RC" \
        "$([ "$E2E_RC" = 124 ] && echo ' (timed out)')"
    _e2e_diag stdout "$E2E_OUT"
    _e2e_diag stderr "$E2E_ERR"
}

# e2e_fatal MSG: setup went wrong, so nothing after it can mean anything.
e2e_fatal() {
    _e2e_notok "FATAL: $*"
    _e2e_last_run
    e2e_finish
}

# e2e_skip MSG: a prerequisite is missing (exit 77, which CTest shows as skip).
e2e_skip() {
    printf '# SKIP %s: %s\n' "$E2E_NAME" "$*"
    E2E_FINISHED=1
    exit 77
}

# ---------------------------------------------------------------------------
# Assertions.  Each prints what was expected and what came back on failure.
# ---------------------------------------------------------------------------

# expect_rc DESC WANT: exit status of the last e2e_run.
expect_rc() {
    local desc=$1 want=$2
    if [ "$E2E_RC" = "$want" ]; then
        _e2e_ok "$desc"
        [ "${KEYWARD_E2E_VERBOSE:-0}" = 1 ] && _e2e_last_run
        return 0
    fi
    _e2e_notok "$desc"
    printf '#   expected exit status %s, got %s\n' "$want" "$E2E_RC"
    _e2e_last_run
    return 1
}

# expect_eq DESC WANT GOT
expect_eq() {
    local desc=$1 want=$2 got=$3
    if [ "$want" = "$got" ]; then
        _e2e_ok "$desc"
        return 0
    fi
    _e2e_notok "$desc"
    _e2e_diag expected "$want"
    _e2e_diag got "$got"
    if [ "$(printf '%s\n' "$want" | wc -l)" -gt 1 ]; then
        _e2e_diag diff "$(diff <(printf '%s\n' "$want") <(printf '%s\n' "$got"))"
    fi
    return 1
}

# expect_contains DESC NEEDLE HAYSTACK: fixed-string search.
expect_contains() {
    local desc=$1 needle=$2 hay=$3
    if printf '%s\n' "$hay" | grep -qF -- "$needle"; then
        _e2e_ok "$desc"
        return 0
    fi
    _e2e_notok "$desc"
    _e2e_diag "expected to contain" "$needle"
    _e2e_diag got "$hay"
    return 1
}

# expect_not_contains DESC NEEDLE HAYSTACK
expect_not_contains() {
    local desc=$1 needle=$2 hay=$3
    if ! printf '%s\n' "$hay" | grep -qF -- "$needle"; then
        _e2e_ok "$desc"
        return 0
    fi
    _e2e_notok "$desc"
    _e2e_diag "expected NOT to contain" "$needle"
    _e2e_diag got "$hay"
    return 1
}

# expect_match DESC ERE HAYSTACK: extended regular expression, any line.
expect_match() {
    local desc=$1 re=$2 hay=$3
    if printf '%s\n' "$hay" | grep -qE -- "$re"; then
        _e2e_ok "$desc"
        return 0
    fi
    _e2e_notok "$desc"
    _e2e_diag "expected a line matching" "$re"
    _e2e_diag got "$hay"
    return 1
}

# check DESC CMD...: passes when CMD exits 0 (for plain conditions such as
# `test -e FILE`; for tools use e2e_run + expect_rc so output is recorded).
check() {
    local desc=$1; shift
    if "$@"; then
        _e2e_ok "$desc"
        return 0
    fi
    _e2e_notok "$desc"
    printf '#   condition failed: %s\n' "$*"
    return 1
}

# ---------------------------------------------------------------------------
# Running commands
# ---------------------------------------------------------------------------

# e2e_run CMD...: run with stdin from /dev/null and a timeout, so a hung agent
# becomes a failed check instead of a hung test.  Sets E2E_RC, E2E_OUT,
# E2E_ERR (trailing newlines stripped) and E2E_CMD.
e2e_run() {
    e2e_run_in /dev/null "$@"
}

# e2e_run_in FILE CMD...: same, with stdin from FILE.
e2e_run_in() {
    local in=$1; shift
    E2E_CMD="$*"
    timeout -k 5 "$E2E_CMD_TIMEOUT" "$@" <"$in" >"$E2E_TMP/.run.out" 2>"$E2E_TMP/.run.err"
    E2E_RC=$?
    E2E_OUT=$(cat "$E2E_TMP/.run.out")
    E2E_ERR=$(cat "$E2E_TMP/.run.err")
}

# e2e_re_escape TEXT: TEXT quoted for use inside an ERE (fingerprints hold
# "+", paths hold "."; "/" needs no quoting and GNU grep warns if quoted).
e2e_re_escape() {
    printf '%s' "$1" | sed 's/[][\\.^$*+?(){}|]/\\&/g'
}

# Number of non-empty lines in a string.
e2e_count_lines() {
    if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | grep -c .; fi
}

# ---------------------------------------------------------------------------
# Setup and teardown
# ---------------------------------------------------------------------------

# e2e_need TOOL...: skip the test when a required program is missing.
e2e_need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || e2e_skip "required program '$t' not found"
    done
}

# e2e_init "$@": parse the AGENT_BINARY argument, make the temp dir and
# install the cleanup trap.  Must be called first by every test.
e2e_init() {
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        echo "usage: $0 AGENT_BINARY   (e.g. $0 /usr/bin/ssh-agent)" >&2
        exit 1
    fi
    case $1 in
        */*) E2E_AGENT=$1 ;;
        *) E2E_AGENT=$(command -v "$1" 2>/dev/null || echo "$1") ;;
    esac
    if [ ! -x "$E2E_AGENT" ] || [ -d "$E2E_AGENT" ]; then
        # Not a skip: the thing under test is missing, which is a failure.
        echo "not ok 1 - FATAL: agent binary '$1' is not an executable file"
        exit 1
    fi
    # Absolute path, because tests cd and sshd sessions run elsewhere.
    E2E_AGENT=$(cd "$(dirname "$E2E_AGENT")" && pwd)/$(basename "$E2E_AGENT")

    if [ -n "${KEYWARD_E2E_OPENSSH:-}" ]; then
        [ -x "$KEYWARD_E2E_OPENSSH/bin/ssh-add" ] || {
            echo "not ok 1 - FATAL: KEYWARD_E2E_OPENSSH=$KEYWARD_E2E_OPENSSH has no bin/ssh-add"
            exit 1
        }
        PATH=$KEYWARD_E2E_OPENSSH/bin:$PATH
        export PATH
    fi
    e2e_need ssh-keygen ssh-add timeout mktemp base64 od
    e2e_log "OpenSSH tools: $(ssh -V 2>&1) ($(command -v ssh-add))"

    # Never talk to the developer's own agent or askpass by accident.
    unset SSH_AUTH_SOCK SSH_AGENT_PID SSH_ASKPASS SSH_ASKPASS_REQUIRE DISPLAY

    # Unix socket paths must fit in sun_path (108 bytes); a deep TMPDIR from a
    # build tree could overflow it, so fall back to /tmp when it is long.
    local base=${TMPDIR:-/tmp}
    [ "${#base}" -le 60 ] && [ -d "$base" ] && [ -w "$base" ] || base=/tmp
    # mktemp gives every (possibly parallel) run its own directory.
    E2E_TMP=$(mktemp -d "$base/kw-e2e-$E2E_NAME.XXXXXX") || {
        echo "not ok 1 - FATAL: mktemp failed"; exit 1; }
    chmod 700 "$E2E_TMP"

    # The tests must not create ~/.ssh. The property is checked in a HOME that
    # this test owns, so that anything else on the machine making the real
    # ~/.ssh meanwhile (another ssh, say) cannot fail it. keyward's programs
    # follow $HOME; OpenSSH's tools take the home from the password database,
    # and the tests give them explicit files and options instead.
    export HOME=$E2E_TMP/home
    mkdir -m 700 "$HOME"

    trap _e2e_cleanup EXIT
    # Turn signals into a normal exit so the EXIT trap cleans up.
    trap 'echo "# interrupted"; exit 1' INT TERM HUP

    e2e_log "test $E2E_NAME, agent $E2E_AGENT, temp dir $E2E_TMP"
}

# Direct children of a pid, read from /proc (no dependency on procps).
_e2e_children() {
    local parent=$1 stat stat_line rest pid ppid
    for stat in /proc/[0-9]*/stat; do
        # (2>/dev/null first: a process may vanish between glob and open)
        read -r stat_line 2>/dev/null <"$stat" || continue
        pid=${stat_line%% *}
        rest=${stat_line##*) }          # skip "pid (comm) " even if comm has spaces
        ppid=$(echo "$rest" | cut -d' ' -f2)
        [ "$ppid" = "$parent" ] && echo "$pid"
    done
}

# Kill a process we started together with everything below it (sshd forks a
# session process per connection that calls setsid, so a process-group kill
# would miss it).  Children first so they are not re-parented away from us.
_e2e_kill_tree() {
    local pid=$1 child
    for child in $(_e2e_children "$pid"); do
        _e2e_kill_tree "$child"
    done
    kill -TERM "$pid" 2>/dev/null || true
}

# Wait up to ~5 s for a pid to go away, then SIGKILL it.
_e2e_reap() {
    local pid=$1 i
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        e2e_log "pid $pid ignored SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    : "$i"
}

_e2e_show_log() {
    local label=$1 file=$2
    [ -n "$file" ] && [ -s "$file" ] || return 0
    printf '# ---- %s (%s), last 150 lines ----\n' "$label" "$file"
    tail -n 150 "$file" | tr -d '\r' | sed 's/^/#  /'
    printf '# ---- end of %s ----\n' "$label"
}

_e2e_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    # A test that died before e2e_finish has failed, whatever $? says, and
    # the only exit codes are 0, 1 and 77.
    if [ "$E2E_FINISHED" != 1 ] && [ "$rc" = 0 ]; then rc=1; fi
    case $rc in 0|1|77) ;; *) rc=1 ;; esac
    if [ "$rc" = 1 ]; then
        _e2e_show_log "agent log" "$E2E_AGENT_LOG"
        _e2e_show_log "sshd log" "$E2E_SSHD_LOG"
    fi
    e2e_stop_sshd
    e2e_stop_agent
    if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
        if [ "${KEYWARD_E2E_KEEP:-0}" = 1 ]; then
            e2e_log "keeping $E2E_TMP"
        else
            rm -rf "$E2E_TMP"
        fi
    fi
    exit "$rc"
}

# 0 when a log holds no AddressSanitizer, LeakSanitizer or UBSan report.
_e2e_no_sanitizer_report() {
    ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1" 2>/dev/null
}

# e2e_finish: final sanity checks, summary line, exit 0 (pass) or 1 (fail).
e2e_finish() {
    # An agent that crashed during the test fails it even if each check was
    # answered (for example by a fallback path in the tools).
    if [ -n "$E2E_AGENT_PID" ]; then
        check "agent process is still running at the end" kill -0 "$E2E_AGENT_PID"
        # Stop it cleanly now, so that a sanitizer build reports leaks and
        # errors at exit into the agent log, where the next check reads them.
        e2e_stop_agent
        check "agent log has no sanitizer report" \
            _e2e_no_sanitizer_report "$E2E_AGENT_LOG"
    fi
    check "test did not create \$HOME/.ssh" test ! -e "$HOME/.ssh"
    if [ "$E2E_NCHECK" = 0 ]; then
        _e2e_notok "no checks were run"
    fi
    local verdict=PASS
    [ "$E2E_FAILED" = 0 ] || verdict=FAIL
    printf '1..%d\n' "$E2E_NCHECK"
    printf '# %s %s: %d passed, %d failed, %d s, agent %s\n' \
        "$verdict" "$E2E_NAME" "$E2E_PASS" "$E2E_FAILED" \
        $((SECONDS - E2E_START)) "$E2E_AGENT"
    E2E_FINISHED=1
    [ "$E2E_FAILED" = 0 ] && exit 0
    exit 1
}

# ---------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------

# Scripts the agent may run through SSH_ASKPASS (confirmation of keys added
# with `ssh-add -c`).  The answer comes from $E2E_TMP/agent-confirm: "yes"
# allows (exit 0), anything else or no file refuses.  Every prompt is logged
# to $E2E_TMP/agent-askpass.log so a test can see that it was asked.
_e2e_write_agent_askpass() {
    cat >"$E2E_TMP/agent-askpass" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$E2E_TMP/agent-askpass.log"
[ "\$(cat "$E2E_TMP/agent-confirm" 2>/dev/null)" = yes ]
EOF
    chmod 700 "$E2E_TMP/agent-askpass"
}

# _e2e_agent_ready: 0 when the socket answers REQUEST_IDENTITIES.
# ssh-add -l exits 0 (keys) or 1 (no keys / refused) once connected, 2 when
# it cannot connect at all.
_e2e_agent_ready() {
    SSH_AUTH_SOCK=$E2E_AGENT_SOCK timeout 5 ssh-add -l </dev/null >/dev/null 2>&1
    local rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 1 ]
}

# _e2e_spawn_agent FLAGS...: start the agent in the background.  The agent
# gets an askpass for confirmations; stderr goes to the agent log.
_e2e_spawn_agent() {
    rm -f "$E2E_AGENT_SOCK"
    SSH_ASKPASS="$E2E_TMP/agent-askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        "$E2E_AGENT" "$@" -a "$E2E_AGENT_SOCK" \
        </dev/null >>"$E2E_AGENT_LOG.stdout" 2>>"$E2E_AGENT_LOG" &
    E2E_AGENT_PID=$!
    printf '%s\n' "== started: $E2E_AGENT $* -a $E2E_AGENT_SOCK (pid $E2E_AGENT_PID)" >>"$E2E_AGENT_LOG.stdout"
}

# _e2e_wait_agent: up to 10 s for the socket; 1 if the agent exited.
_e2e_wait_agent() {
    local i
    for i in $(seq 1 100); do
        if ! kill -0 "$E2E_AGENT_PID" 2>/dev/null; then
            wait "$E2E_AGENT_PID" 2>/dev/null
            return 1
        fi
        [ -S "$E2E_AGENT_SOCK" ] && _e2e_agent_ready && return 0
        sleep 0.1
    done
    : "$i"
    return 2
}

# e2e_start_agent: start $E2E_AGENT as `AGENT -D -a SOCK` and export
# SSH_AUTH_SOCK for the rest of the test. Extra agent flags (keyward-only
# tests) go in E2E_AGENT_EXTRA, e.g. E2E_AGENT_EXTRA="-l $E2E_TMP/audit".
e2e_start_agent() {
    E2E_AGENT_SOCK=$E2E_TMP/agent.sock
    E2E_AGENT_LOG=$E2E_TMP/agent.log
    _e2e_write_agent_askpass
    : >"$E2E_AGENT_LOG"
    local rc
    if [ "${KEYWARD_E2E_DEBUG:-0}" = 1 ]; then
        # shellcheck disable=SC2086  # extra flags are words on purpose
        _e2e_spawn_agent -D -d ${E2E_AGENT_EXTRA:-}
        _e2e_wait_agent; rc=$?
        if [ "$rc" = 1 ]; then
            # OpenSSH's ssh-agent refuses -D together with -d (usage error):
            # its -d already means "foreground with debug output".
            e2e_log "agent refused '-D -d', retrying with '-d' alone"
            _e2e_spawn_agent -d
            _e2e_wait_agent; rc=$?
        fi
    else
        # shellcheck disable=SC2086
        _e2e_spawn_agent -D ${E2E_AGENT_EXTRA:-}
        _e2e_wait_agent; rc=$?
    fi
    case $rc in
        0) ;;
        1) E2E_AGENT_PID=; E2E_CMD=; cat "$E2E_AGENT_LOG.stdout" >>"$E2E_AGENT_LOG"
           e2e_fatal "agent exited during startup" ;;
        *) E2E_CMD=; e2e_fatal "agent socket $E2E_AGENT_SOCK did not answer within 10 s" ;;
    esac
    export SSH_AUTH_SOCK=$E2E_AGENT_SOCK
    e2e_log "agent pid $E2E_AGENT_PID listening on $E2E_AGENT_SOCK"
}

e2e_stop_agent() {
    [ -n "$E2E_AGENT_PID" ] || return 0
    _e2e_kill_tree "$E2E_AGENT_PID"
    _e2e_reap "$E2E_AGENT_PID"
    E2E_AGENT_PID=
}

# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------

# The standard key set: file name -> ssh-keygen type and bits.
E2E_KEY_NAMES="ed25519 ecdsa256 ecdsa384 ecdsa521 rsa2048 rsa4096"

# e2e_keygen NAME TYPE BITS [COMMENT]: $E2E_TMP/NAME and NAME.pub, no
# passphrase.  BITS may be "" for ed25519.
e2e_keygen() {
    local name=$1 type=$2 bits=$3 comment=${4-e2e-$1}
    local args=(-q -t "$type" -N '' -C "$comment" -f "$E2E_TMP/$name")
    [ -n "$bits" ] && args+=(-b "$bits")
    rm -f "$E2E_TMP/$name" "$E2E_TMP/$name.pub"
    e2e_run ssh-keygen "${args[@]}"
    [ "$E2E_RC" = 0 ] || e2e_fatal "ssh-keygen could not make $name ($type $bits)"
}

# Type and bits of a standard key name.
e2e_key_type() {
    case $1 in
        ed25519*) echo "ed25519" ;;
        ecdsa*) echo "ecdsa" ;;
        rsa*) echo "rsa" ;;
        *) return 1 ;;
    esac
}
e2e_key_bits() {
    case $1 in
        ed25519*) echo "" ;;
        ecdsa256|rsa1024|rsa2048|rsa4096|ecdsa384|ecdsa521) echo "${1//[a-z]/}" ;;
        *) return 1 ;;
    esac
}

# The signature algorithm an agent must produce for a key when asked the way
# ssh-keygen -Y sign and ssh (against a modern sshd) ask: RSA with the
# SSH_AGENT_RSA_SHA2_512 flag.
e2e_sig_alg() {
    case $1 in
        ed25519*) echo "ssh-ed25519" ;;
        ecdsa256) echo "ecdsa-sha2-nistp256" ;;
        ecdsa384) echo "ecdsa-sha2-nistp384" ;;
        ecdsa521) echo "ecdsa-sha2-nistp521" ;;
        rsa*) echo "rsa-sha2-512" ;;
        *) return 1 ;;
    esac
}

# e2e_std_keys: generate the standard set once per test (RSA-4096 is the
# slow one, about a second).
e2e_std_keys() {
    local k
    for k in $E2E_KEY_NAMES; do
        e2e_keygen "$k" "$(e2e_key_type "$k")" "$(e2e_key_bits "$k")"
    done
}

# e2e_make_ca NAME: a certificate authority key $E2E_TMP/NAME.
e2e_make_ca() {
    e2e_keygen "$1" ed25519 "" "e2e-test-ca"
}

# e2e_certify KEYNAME ID CA SERIAL: user certificate KEYNAME-cert.pub for
# principal $E2E_USER, signed by CA, valid from 5 minutes ago for an hour.
e2e_certify() {
    local key=$1 id=$2 ca=$3 serial=$4
    e2e_run ssh-keygen -q -s "$E2E_TMP/$ca" -I "$id" -n "$E2E_USER" \
        -z "$serial" -V -5m:+1h "$E2E_TMP/$key.pub"
    if [ "$E2E_RC" != 0 ] || [ ! -s "$E2E_TMP/$key-cert.pub" ]; then
        e2e_fatal "could not certify $key with $ca"
    fi
}

# e2e_fp FILE: SHA256 fingerprint of a public key / certificate file.
e2e_fp() {
    ssh-keygen -lf "$1" 2>/dev/null | awk '{print $2}'
}

# e2e_keypart FILE: "type base64" of a .pub file (the comment dropped).
e2e_keypart() {
    awk '{print $1, $2}' "$1"
}

# e2e_drop_private NAME: remove the private key file so that only the agent
# can produce signatures with it (ssh and ssh-keygen otherwise fall back to
# the file and the test would prove nothing).
e2e_drop_private() {
    rm -f "$E2E_TMP/$1"
    [ ! -e "$E2E_TMP/$1" ] || e2e_fatal "could not remove $E2E_TMP/$1"
}

# ---------------------------------------------------------------------------
# SSHSIG parsing (ssh-keygen -Y sign output), to look inside the signature.
# ---------------------------------------------------------------------------

# e2e_sshsig_fields SIGFILE: prints "field=value" lines:
#   magic, version, pubkey_type, namespace, hashalg, sig_type, sig_len
# Layout (PROTOCOL.sshsig): "SSHSIG" uint32 version, string publickey,
# string namespace, string reserved, string hash_algorithm, string signature;
# signature = string algorithm, string blob.  Returns 1 on malformed input.
e2e_sshsig_fields() {
    local sig=$1 bytes
    # Strip the armor lines and decode; od turns the bytes into decimals,
    # tr puts them on one line for `read -a`.
    bytes=$(sed -e '/^-----/d' "$sig" | base64 -d 2>/dev/null | od -An -v -tu1 | tr -s ' \n' '  ')
    local -a b
    read -r -a b <<<"$bytes"
    local n=${#b[@]} pos=0

    _u32() { # read a big-endian uint32 at $pos into $_v
        [ $((pos + 4)) -le "$n" ] || return 1
        _v=$(( (b[pos] << 24) | (b[pos+1] << 16) | (b[pos+2] << 8) | b[pos+3] ))
        pos=$((pos + 4))
    }
    _str() { # read an SSH string at $pos: start in $_s, length in $_l
        _u32 || return 1
        _l=$_v; _s=$pos
        [ $((pos + _l)) -le "$n" ] || return 1
        pos=$((pos + _l))
    }
    _text() { # bytes [$1, $1+$2) as text
        local i out=
        for ((i = $1; i < $1 + $2; i++)); do out+=$(printf '%b' "\\0$(printf '%03o' "${b[i]}")"); done
        printf '%s' "$out"
    }
    local _v _s _l
    [ "$n" -ge 6 ] || return 1
    echo "magic=$(_text 0 6)"; pos=6
    _u32 || return 1; echo "version=$_v"
    _str || return 1
    local pk_s=$_s pk_end=$pos
    pos=$pk_s; _str || return 1; echo "pubkey_type=$(_text "$_s" "$_l")"; pos=$pk_end
    _str || return 1; echo "namespace=$(_text "$_s" "$_l")"
    _str || return 1                      # reserved
    _str || return 1; echo "hashalg=$(_text "$_s" "$_l")"
    _str || return 1
    local sig_s=$_s sig_end=$pos
    pos=$sig_s; _str || return 1; echo "sig_type=$(_text "$_s" "$_l")"
    _str || return 1; echo "sig_len=$_l"
    [ "$sig_end" = "$n" ] || return 1     # nothing may trail the signature
    return 0
}

# e2e_field NAME TEXT: value of "NAME=value" in TEXT.
e2e_field() {
    printf '%s\n' "$2" | sed -n "s/^$1=//p" | head -n 1
}

# ---------------------------------------------------------------------------
# sshd
# ---------------------------------------------------------------------------

# Is a TCP port in use on this host (any state)?  /proc/net/tcp* show ports
# in hex.  This is only a hint to skip obviously busy ports: the real test is
# whether sshd manages to bind, and a lost race is retried.
_e2e_port_busy() {
    local hex
    hex=$(printf ':%04X ' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2" "}' | grep -qF -- "$hex"
}

_e2e_random_port() {
    # 20000..59999, away from the usual ephemeral range start and well-known
    # ports; RANDOM is 15 bits, so combine two.
    echo $(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
}

# e2e_start_sshd [EXTRA_CONFIG_LINE...]: a private sshd on 127.0.0.1.
# Sets E2E_SSHD_PORT, writes $E2E_TMP/known_hosts and a client config
# $E2E_SSH_CONFIG whose host "e2e-sshd" reaches it.
e2e_start_sshd() {
    local sshd=/usr/sbin/sshd    # sshd re-execs itself: absolute path required
    [ -z "${KEYWARD_E2E_OPENSSH:-}" ] || sshd=$KEYWARD_E2E_OPENSSH/sbin/sshd
    [ -x "$sshd" ] || e2e_skip "$sshd not installed (apt-get install openssh-server)"
    e2e_need ssh
    # Privilege separation directory; sshd refuses to start without it.
    if [ ! -d /run/sshd ]; then
        if [ "$(id -u)" = 0 ]; then
            # (a parallel test may create it at the same moment: that is fine)
            mkdir -m 0755 /run/sshd 2>/dev/null || [ -d /run/sshd ] ||
                e2e_fatal "cannot create /run/sshd"
        else
            e2e_skip "/run/sshd is missing and we are not root to create it"
        fi
    fi

    # Several sshds may run in one test (E2E_SSHD_NAME=host1 e2e_start_sshd):
    # each has its own files; all share authorized_keys and the client config.
    local name=${E2E_SSHD_NAME:-sshd}
    e2e_keygen "${name}_host_ed25519" ed25519 "" "e2e-host-key-$name"
    [ -e "$E2E_TMP/authorized_keys" ] || : >"$E2E_TMP/authorized_keys"
    E2E_SSHD_LOG=$E2E_TMP/$name.log
    E2E_SSHD_CONFIG=$E2E_TMP/${name}_config
    : >"$E2E_SSHD_LOG"

    local attempt port rc=
    for attempt in $(seq 1 20); do
        port=$(_e2e_random_port)
        _e2e_port_busy "$port" && continue
        {
            echo "# generated by $E2E_NAME (attempt $attempt)"
            echo "ListenAddress 127.0.0.1"
            echo "Port $port"
            echo "HostKey $E2E_TMP/${name}_host_ed25519"
            echo "PidFile $E2E_TMP/$name.pid"
            echo "AuthorizedKeysFile $E2E_TMP/authorized_keys"
            echo "StrictModes no"
            echo "PermitRootLogin yes"
            echo "PubkeyAuthentication yes"
            echo "PasswordAuthentication no"
            echo "KbdInteractiveAuthentication no"
            echo "UsePAM no"
            echo "AllowAgentForwarding yes"
            echo "LogLevel VERBOSE"
            echo "UseDNS no"
            echo "PermitUserRC no"
            echo "PermitUserEnvironment no"
            echo "PrintMotd no"
            echo "PrintLastLog no"
            echo "X11Forwarding no"
            echo "LoginGraceTime 30"
            # The same OpenSSH tools in the sessions on the "node".
            [ -z "${KEYWARD_E2E_OPENSSH:-}" ] ||
                echo "SetEnv PATH=$KEYWARD_E2E_OPENSSH/bin:/usr/bin:/bin"
            local line
            for line in "$@"; do echo "$line"; done
        } >"$E2E_SSHD_CONFIG"

        echo "== attempt $attempt, port $port" >>"$E2E_SSHD_LOG"
        "$sshd" -D -e -f "$E2E_SSHD_CONFIG" </dev/null >>"$E2E_SSHD_LOG" 2>&1 &
        E2E_SSHD_PID=$!

        # Ready when it logs that it listens; a bind failure makes it exit.
        rc=
        local i
        for i in $(seq 1 100); do
            if grep -qF "Server listening on 127.0.0.1 port $port." "$E2E_SSHD_LOG"; then
                rc=0; break
            fi
            if ! kill -0 "$E2E_SSHD_PID" 2>/dev/null; then
                wait "$E2E_SSHD_PID" 2>/dev/null
                rc=1; break
            fi
            sleep 0.1
        done
        : "$i"
        [ "$rc" = 0 ] && break
        if [ "$rc" = 1 ] && tail -n 5 "$E2E_SSHD_LOG" | grep -q "Address already in use"; then
            E2E_SSHD_PID=
            continue    # lost a race for the port with someone else: retry
        fi
        [ "$rc" = 1 ] && E2E_SSHD_PID=
        e2e_fatal "sshd did not start (see sshd log)"
    done
    [ "$rc" = 0 ] || e2e_fatal "sshd could not find a free port in 20 attempts"
    # shellcheck disable=SC2034  # read by the tests
    E2E_SSHD_PORT=$port

    # Pin the host key so the client never asks and never writes elsewhere.
    echo "[127.0.0.1]:$port $(e2e_keypart "$E2E_TMP/${name}_host_ed25519.pub")" >>"$E2E_TMP/known_hosts"

    # Client config, usable as `ssh -F $E2E_SSH_CONFIG e2e-sshd`, also from
    # inside an sshd session on the "node" (the same machine), where nothing
    # from our environment is inherited.  -F also stops ssh from reading or
    # creating anything under ~/.ssh.
    E2E_SSH_CONFIG=$E2E_TMP/ssh_config
    E2E_SSHD_PIDS="$E2E_SSHD_PIDS $E2E_SSHD_PID"
    cat >>"$E2E_SSH_CONFIG" <<EOF
Host e2e-$name
    HostName 127.0.0.1
    Port $port
    User $E2E_USER
    UserKnownHostsFile $E2E_TMP/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    BatchMode yes
    ConnectTimeout 10
    IdentitiesOnly yes
    PreferredAuthentications publickey
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    AddKeysToAgent no
    ControlMaster no
    ControlPath none
    ForwardX11 no
    RequestTTY no
EOF
    e2e_log "sshd pid $E2E_SSHD_PID on 127.0.0.1:$port"
}

e2e_stop_sshd() {
    local pid
    for pid in $E2E_SSHD_PIDS $E2E_SSHD_PID; do
        _e2e_kill_tree "$pid"
        _e2e_reap "$pid"
    done
    E2E_SSHD_PID=
    E2E_SSHD_PIDS=
}

# e2e_authorize NAME...: append NAME.pub to the sshd's authorized_keys.
e2e_authorize() {
    local k
    for k in "$@"; do cat "$E2E_TMP/$k.pub" >>"$E2E_TMP/authorized_keys"; done
}

# e2e_ssh ARGS...: ssh through the test agent with the test client config.
# IdentityAgent overrides any SSH_AUTH_SOCK; -F keeps ~/.ssh/config out.
e2e_ssh() {
    e2e_run ssh -F "$E2E_SSH_CONFIG" -o IdentityAgent="$E2E_AGENT_SOCK" "$@"
}

# e2e_sk_logins: the FIDO tests' logins (e2e/sk.sh, sk/openssh_agent.sh).
# ssh logs in to the test sshd through the agent once with each of
# $E2E_TMP/id_ed25519-sk and id_ecdsa-sk (IdentitiesOnly with the .pub:
# only the agent can sign, and the agent must hold both keys); each session
# must run, and sshd's log must name each key as an sk key by its
# fingerprint, so that a login with some other key does not pass.
e2e_sk_logins() {
    local type sshd_log
    for type in ed25519-sk ecdsa-sk; do
        e2e_ssh -o IdentityFile="$E2E_TMP/id_$type.pub" -o IdentitiesOnly=yes e2e-sshd \
            "echo login-ok-$type"
        expect_rc "ssh login with the $type key through the agent" 0
        expect_contains "the session ran ($type)" "login-ok-$type" "$E2E_OUT"
    done
    sshd_log=$(tr -d '\r' <"$E2E_SSHD_LOG")
    expect_contains "sshd accepted the Ed25519 sk key" \
        "ED25519-SK $(e2e_fp "$E2E_TMP/id_ed25519-sk.pub")" "$sshd_log"
    expect_contains "sshd accepted the ECDSA sk key" \
        "ECDSA-SK $(e2e_fp "$E2E_TMP/id_ecdsa-sk.pub")" "$sshd_log"
}
