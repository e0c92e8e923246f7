# shellcheck shell=bash
#
# keyward-probe tests: shared helpers.
#
# Each test script takes AGENT and PROBE paths, starts the agent itself as
# `AGENT -D -a SOCKET` in a private temp dir, runs the probe against it and
# asserts verdicts parsed from `keyward-probe --json` (one result per line,
# so grep and sed are enough). Everything the test started or created is
# removed by an EXIT trap, pass or fail, so tests can run in parallel.
#
# Exit status: 0 pass, 1 fail, 77 skipped (a prerequisite is missing).
# KEYWARD_PROBE_TEST_KEEP=1 keeps the temp dir (its path is printed).

set -u

PT_NAME=$(basename "$0" .sh)
PT_FAILED=0
PT_CHECKS=0
PT_TMP=
PT_AGENT=
PT_PROBE=
PT_AGENT_PID=
PT_SOCK=
PT_OUT=
PT_RC=0
PT_USER_FP=

pt_log() { printf '# %s\n' "$*"; }

pt_ok() {
    PT_CHECKS=$((PT_CHECKS + 1))
    printf 'ok %d - %s\n' "$PT_CHECKS" "$1"
}

pt_not_ok() {
    PT_CHECKS=$((PT_CHECKS + 1))
    PT_FAILED=$((PT_FAILED + 1))
    printf 'not ok %d - %s\n' "$PT_CHECKS" "$1"
    shift
    [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/#   /'
    return 0
}

pt_cleanup() {
    local rc=$?
    pt_stop_agent
    if [ -n "$PT_TMP" ] && [ -d "$PT_TMP" ]; then
        if [ "${KEYWARD_PROBE_TEST_KEEP:-0}" = 1 ]; then
            pt_log "kept $PT_TMP"
        else
            rm -rf "$PT_TMP"
        fi
    fi
    exit "$rc"
}

# pt_init AGENT PROBE: checks the binaries and makes the temp dir.
pt_init() {
    if [ $# -lt 2 ]; then
        echo "usage: $0 AGENT PROBE" >&2
        exit 2
    fi
    PT_AGENT=$1
    PT_PROBE=$2
    if [ ! -x "$PT_AGENT" ]; then
        echo "1..0 # SKIP agent $PT_AGENT not found"
        exit 77
    fi
    if [ ! -x "$PT_PROBE" ]; then
        echo "probe $PT_PROBE not found" >&2
        exit 1
    fi
    trap pt_cleanup EXIT
    trap 'exit 1' INT TERM HUP
    # A Unix socket path must fit in about 100 bytes: fall back to /tmp.
    PT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kw-probe-test.XXXXXX") || exit 1
    if [ ${#PT_TMP} -gt 60 ]; then
        rm -rf "$PT_TMP"
        PT_TMP=$(mktemp -d /tmp/kw-probe-test.XXXXXX) || exit 1
    fi
    pt_log "$PT_NAME: agent $PT_AGENT, probe $PT_PROBE, temp dir $PT_TMP"
}

# pt_start_agent NAME [ARGS...]: starts the agent on $PT_TMP/NAME.sock.
pt_start_agent() {
    local name=$1 i
    shift
    PT_SOCK=$PT_TMP/$name.sock
    "$PT_AGENT" -D -a "$PT_SOCK" "$@" >"$PT_TMP/$name.log" 2>&1 &
    PT_AGENT_PID=$!
    for i in $(seq 1 100); do
        [ -S "$PT_SOCK" ] && return 0
        if ! kill -0 "$PT_AGENT_PID" 2>/dev/null; then
            PT_AGENT_PID=
            break
        fi
        sleep 0.1
    done
    pt_not_ok "agent started on $PT_SOCK" "$(cat "$PT_TMP/$name.log")"
    exit 1
}

pt_stop_agent() {
    if [ -n "$PT_AGENT_PID" ]; then
        kill "$PT_AGENT_PID" 2>/dev/null
        wait "$PT_AGENT_PID" 2>/dev/null
        PT_AGENT_PID=
    fi
}

# pt_run_probe [ARGS...]: runs the probe on the agent; sets PT_OUT, PT_RC.
pt_run_probe() {
    PT_OUT=$("$PT_PROBE" -a "$PT_SOCK" "$@" 2>"$PT_TMP/probe.err")
    PT_RC=$?
    if [ -s "$PT_TMP/probe.err" ]; then
        PT_OUT="$PT_OUT
$(cat "$PT_TMP/probe.err")"
    fi
}

# The --json line of one check ("" if the check is not in the output).
pt_result_line() {
    printf '%s\n' "$PT_OUT" | grep -F "{\"name\": \"$1\","
}

pt_verdict_of() {
    pt_result_line "$1" | sed -n 's/.*"verdict": "\([a-z]*\)".*/\1/p'
}

pt_expect_rc() {
    if [ "$PT_RC" = "$1" ]; then
        pt_ok "$2: exit status $1"
    else
        pt_not_ok "$2: exit status $1" "got exit status $PT_RC; output:" "$PT_OUT"
    fi
}

# pt_expect_verdict NAME VERDICT [TEXT...]: the check's verdict, and
# optionally strings its JSON line must contain.
pt_expect_verdict() {
    local name=$1 want=$2 got line text
    shift 2
    got=$(pt_verdict_of "$name")
    line=$(pt_result_line "$name")
    if [ "$got" != "$want" ]; then
        pt_not_ok "$name is $want" "got \"$got\":" "${line:-(no result line)}"
        return
    fi
    for text in "$@"; do
        if ! printf '%s\n' "$line" | grep -qF -- "$text"; then
            pt_not_ok "$name is $want and mentions \"$text\"" "$line"
            return
        fi
    done
    pt_ok "$name is $want"
}

# pt_expect_output TEXT: the whole output contains TEXT.
pt_expect_output() {
    if printf '%s\n' "$PT_OUT" | grep -qF -- "$1"; then
        pt_ok "output contains \"$1\""
    else
        pt_not_ok "output contains \"$1\"" "$PT_OUT"
    fi
}

# The names of the checks a default run includes, from --list (checks
# marked "[only with --only]" run only when named).
pt_all_checks() {
    "$PT_PROBE" --list | awk '!/\[only with --only\]/ { print $1 }'
}

# pt_expect_table NAME=VERDICT...: exactly these checks, with these verdicts.
pt_expect_table() {
    local pair n_want=0 n_got
    for pair in "$@"; do
        pt_expect_verdict "${pair%%=*}" "${pair#*=}"
        n_want=$((n_want + 1))
    done
    n_got=$(printf '%s\n' "$PT_OUT" | grep -c '^ *{"name": ')
    if [ "$n_got" = "$n_want" ]; then
        pt_ok "$n_want results, no more"
    else
        pt_not_ok "$n_want results, no more" "got $n_got results:" "$PT_OUT"
    fi
}

# pt_expect_openssh_table [--no-modify]: the verdicts of a run against
# Debian's OpenSSH ssh-agent 9.2p1, as recorded in tests/probe/probe_openssh.sh
# (also expected when the probe talks to that agent through keyward-relay).
# With --no-modify the checks that add keys or lock are skipped.
pt_expect_openssh_table() {
    local modifying=pass locked_bind=unsupported what="full run"
    if [ "${1:-}" = --no-modify ]; then
        modifying=skipped
        locked_bind=skipped
        what="--no-modify run"
    fi
    pt_expect_rc 1 "$what"
    pt_expect_table \
        rebind-keeps-connection=pass \
        bind-bad-signature=pass \
        bind-limit=pass \
        unknown-message=pass \
        unknown-extension=pass \
        smartcard-missing-module=pass \
        sk-missing-provider=$modifying \
        empty-message=fail \
        query=unsupported \
        extension-reply-framing=pass \
        lock-unlock=$modifying \
        bind-while-locked=$locked_bind \
        malformed-requests=pass \
        malformed-add=$modifying \
        oversized-frame=pass \
        rsa-sha2-signatures=$modifying \
        concurrent-connections=pass
    pt_expect_verdict rebind-keeps-connection pass "second bind refused with 5 (SSH_AGENT_FAILURE)"
    pt_expect_verdict bind-bad-signature pass "refused with 5 (SSH_AGENT_FAILURE)"
    pt_expect_verdict bind-limit pass "the 17th refused with 5 (SSH_AGENT_FAILURE)"
    pt_expect_verdict query unsupported "answered 5 (SSH_AGENT_FAILURE)"
    pt_expect_verdict empty-message fail '"sent": "empty message (frame length 0): 00000000"' \
        "no reply within"
    [ "$modifying" = pass ] && pt_expect_verdict lock-unlock pass "hidden while locked"
    # 9.2 refuses every extension while locked; OpenSSH 10.5 accepts session-bind.
    [ "$modifying" = pass ] &&
        pt_expect_verdict bind-while-locked unsupported "refused while locked with 5 (SSH_AGENT_FAILURE)"
    return 0
}

# pt_add_user_key: gives the agent a key of "the user's", which the probe
# must leave alone. Skips the test if the OpenSSH client tools are missing.
pt_add_user_key() {
    local out
    if ! command -v ssh-keygen >/dev/null || ! command -v ssh-add >/dev/null; then
        echo "1..0 # SKIP ssh-keygen or ssh-add not found"
        exit 77
    fi
    ssh-keygen -q -t ed25519 -N '' -C probe-test-user-key -f "$PT_TMP/userkey" || exit 1
    PT_USER_FP=$(ssh-keygen -l -f "$PT_TMP/userkey.pub" | awk '{ print $2 }')
    if out=$(SSH_AUTH_SOCK=$PT_SOCK ssh-add "$PT_TMP/userkey" 2>&1); then
        pt_ok "user key added with ssh-add"
    else
        pt_not_ok "user key added with ssh-add" "$out"
    fi
}

# pt_expect_user_key_only: the agent holds exactly the user's key: the
# probe removed its throwaway keys and nothing else.
pt_expect_user_key_only() {
    local out
    out=$(SSH_AUTH_SOCK=$PT_SOCK ssh-add -l 2>&1)
    if [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] &&
        printf '%s\n' "$out" | grep -qF -- "$PT_USER_FP"; then
        pt_ok "the agent holds the user's key and nothing else"
    else
        pt_not_ok "the agent holds the user's key and nothing else" "ssh-add -l:" "$out"
    fi
}

pt_finish() {
    if [ "$PT_FAILED" -eq 0 ]; then
        printf '# %s: all %d checks passed\n' "$PT_NAME" "$PT_CHECKS"
        exit 0
    fi
    printf '# %s: %d of %d checks FAILED\n' "$PT_NAME" "$PT_FAILED" "$PT_CHECKS"
    exit 1
}
