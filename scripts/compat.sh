#!/bin/bash
#
# scripts/compat.sh: keyward-probe against every SSH agent this machine can
# run, as a Markdown table (docs/compat.md is pasted from its output).
#
#     make build && scripts/compat.sh > compat-table.md
#
# For each agent it starts a throwaway instance on a private socket in a
# temp dir, runs `keyward-probe -a SOCKET --json --timeout MS` (every default
# check, the ones that add keys or lock included: these instances hold no
# keys of anyone's), stops it and removes everything it made (EXIT trap).
#
# Agents, in column order:
#   keyward-agent   KEYWARD_AGENT -D -a SOCKET
#   OpenSSH         /usr/bin/ssh-agent -D -a SOCKET (package openssh-client)
#   newer OpenSSH   DIR/bin/ssh-agent -D -a SOCKET, with --openssh-dir DIR: an
#                   OpenSSH built from a newer Debian source package
#                   (scripts/pq-deps.sh openssh prints its DIR last); without
#                   it the column says "not run"
#   gpg-agent       --enable-ssh-support with a private GNUPGHOME (package
#                   gpg-agent), socket-activated in --supervised mode as
#                   Debian's systemd user units run it, or --daemon when
#                   systemd-socket-activate is missing; a pinentry stub
#                   answers every prompt with OK and an empty passphrase
#   Pageant         pageant --debug (package putty), no X display
#   closing_agent   the repo's test fixture modelling the Windows port of
#                   OpenSSH's agent (build/tests/closing_agent): NOT a product
#
# Run as root, it installs a missing package with apt-get (unless
# --no-install); otherwise an agent that cannot be started is skipped, with a
# note saying why. Progress goes to stderr, the table to stdout.
#
# Options (or environment variables):
#   --probe PATH          keyward-probe (KEYWARD_PROBE, default build/keyward-probe)
#   --agent PATH          keyward-agent (KEYWARD_AGENT, default build/keyward-agent)
#   --closing-agent PATH  the fixture (KEYWARD_CLOSING_AGENT, default
#                         tests/closing_agent beside the keyward-agent binary)
#   --openssh-dir DIR     a newer OpenSSH's install prefix (COMPAT_OPENSSH_DIR)
#   --timeout MS          the probe's per-reply timeout (COMPAT_TIMEOUT_MS, 3000)
#   --no-install          never run apt-get (COMPAT_NO_INSTALL=1)
#   COMPAT_GPG_PINENTRY   gpg-agent's pinentry program instead of the stub
#                         (e.g. /bin/false: no passphrase can be given)
#   COMPAT_GPG_MODE       supervised or daemon (default: supervised if
#                         systemd-socket-activate exists)
#
# Exit status: 0 when every agent was probed, 1 when one could not be
# started or probed (the table still lists it, with a note), 2 on a usage
# error or a missing probe.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROBE=${KEYWARD_PROBE:-$ROOT/build/keyward-probe}
KW_AGENT=${KEYWARD_AGENT:-$ROOT/build/keyward-agent}
CLOSING=${KEYWARD_CLOSING_AGENT:-}
OPENSSH_DIR=${COMPAT_OPENSSH_DIR:-}
TIMEOUT_MS=${COMPAT_TIMEOUT_MS:-3000}
NO_INSTALL=${COMPAT_NO_INSTALL:-0}
# A probe run that takes longer than this is stopped (its finished checks count).
RUN_LIMIT_S=20

usage() {
    sed -n '3,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case $1 in
    --probe) PROBE=${2:?--probe needs a path}; shift 2 ;;
    --agent) KW_AGENT=${2:?--agent needs a path}; shift 2 ;;
    --closing-agent) CLOSING=${2:?--closing-agent needs a path}; shift 2 ;;
    --openssh-dir) OPENSSH_DIR=${2:?--openssh-dir needs a directory}; shift 2 ;;
    --timeout) TIMEOUT_MS=${2:?--timeout needs milliseconds}; shift 2 ;;
    --no-install) NO_INSTALL=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "compat.sh: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$CLOSING" ] || CLOSING=$(dirname "$KW_AGENT")/tests/closing_agent
case $TIMEOUT_MS in
'' | *[!0-9]* | 0) echo "compat.sh: --timeout wants milliseconds (1 or more)" >&2; exit 2 ;;
esac
if [ ! -x "$PROBE" ]; then
    echo "compat.sh: no probe at $PROBE: run \`make build\` first, or give --probe PATH" >&2
    exit 2
fi

AGENTS=(keyward openssh openssh_new gpg pageant closing)
declare -A LABEL=(
    [keyward]="keyward-agent"
    [openssh]="OpenSSH ssh-agent"
    [openssh_new]="newer OpenSSH ssh-agent (from Debian's source)"
    [gpg]="gpg-agent (ssh support)"
    [pageant]="PuTTY Pageant"
    [closing]="closing_agent (test fixture modelling the Windows port, not a product)"
)
declare -A SHORT=(
    [keyward]="keyward-agent"
    [openssh]="OpenSSH ssh-agent"
    [openssh_new]="newer OpenSSH"
    [gpg]="gpg-agent"
    [pageant]="Pageant"
    [closing]="closing_agent (fixture)"
)
declare -A VERSION=() CELL=() RAN=()
CHECKS=()
NOTES=()
FAILS=()
STATUS=0

TMP=
AGENT_PID=
AGENT_KIND=
SOCK=
DIR=
GPG_HOME=
GPG_SOCKETDIR_MADE=0
GPG_RUNDIR=
PAGEANT_SOCK=
WHY_NOT=

log() { printf 'compat: %s\n' "$*" >&2; }
note() { NOTES+=("$*"); }

# ---- processes ----

# stop_pid PID: TERM, up to 5 s, then KILL; reaps it if it is our child.
stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
        alive "$pid" || break
        sleep 0.1
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# Running, and not a zombie (a daemon's orphan is reaped by init, if ever).
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}

stop_agent() {
    case $AGENT_KIND in
    gpg) stop_gpg ;;
    pageant) stop_pid "$AGENT_PID"
        # Pageant removes its socket on TERM; after a KILL, tidy up.
        if [ -n "$PAGEANT_SOCK" ] && [ -S "$PAGEANT_SOCK" ]; then
            rm -f "$PAGEANT_SOCK"
            rmdir "$(dirname "$PAGEANT_SOCK")" 2>/dev/null
        fi
        PAGEANT_SOCK= ;;
    ?*) stop_pid "$AGENT_PID" ;;
    esac
    AGENT_PID=
    AGENT_KIND=
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local rc=$?
    stop_agent
    [ -n "$TMP" ] && [ -d "$TMP" ] && rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# wait_socket PATH PID SECONDS: the socket appears while PID lives.
wait_socket() {
    for _ in $(seq 1 $(($3 * 10))); do
        [ -S "$1" ] && return 0
        alive "$2" || return 1
        sleep 0.1
    done
    return 1
}

# ---- packages ----

pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null; }

APT_UPDATED=0
# need PACKAGE COMMAND: the command exists, installing the package if we may.
need() {
    local pkg=$1 cmd=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ] || [ "$NO_INSTALL" = 1 ]; then
        WHY_NOT="package $pkg is not installed (no $cmd), and only root may install it (and not with --no-install)"
        return 1
    fi
    log "installing $pkg with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "$pkg" >&2; then
        if [ "$APT_UPDATED" = 0 ]; then
            APT_UPDATED=1
            apt-get update >&2 &&
                DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y --no-install-recommends "$pkg" >&2
        fi
    fi
    if command -v "$cmd" >/dev/null 2>&1; then
        note "installed $pkg $(pkg_version "$pkg") with apt-get for this run"
        return 0
    fi
    WHY_NOT="apt-get could not install $pkg (its output is on stderr)"
    return 1
}

# ---- starting each agent: sets SOCK, AGENT_PID, AGENT_KIND; 0 when ready ----

# start_plain KIND PROGRAM: PROGRAM -D -a SOCKET.
start_plain() {
    local kind=$1 prog=$2
    if [ ! -x "$prog" ]; then
        WHY_NOT="no program at $prog (build it with \`make build\`, or see --help)"
        return 1
    fi
    SOCK=$DIR/agent.sock
    "$prog" -D -a "$SOCK" >"$DIR/agent.log" 2>&1 </dev/null &
    AGENT_PID=$!
    AGENT_KIND=$kind
    if ! wait_socket "$SOCK" "$AGENT_PID" 10; then
        WHY_NOT="it did not start: $(tail -n 3 "$DIR/agent.log" | tr '\n' ' ')"
        return 1
    fi
}

start_keyward() {
    VERSION[keyward]=$("$KW_AGENT" --version 2>/dev/null | head -n 1 | awk '{ print $NF }')
    [ -n "${VERSION[keyward]}" ] || VERSION[keyward]="unknown (no --version)"
    start_plain keyward "$KW_AGENT"
}

start_openssh() {
    need openssh-client ssh-agent || return 1
    VERSION[openssh]=$(pkg_version openssh-client)
    start_plain openssh /usr/bin/ssh-agent
}

start_openssh_new() {
    if [ -z "$OPENSSH_DIR" ]; then
        WHY_NOT="no --openssh-dir given (scripts/pq-deps.sh openssh builds one)"
        return 1
    fi
    VERSION[openssh_new]=$("$OPENSSH_DIR/bin/ssh" -V 2>&1 | cut -d, -f1)
    start_plain openssh_new "$OPENSSH_DIR/bin/ssh-agent"
}

start_closing() {
    need openssh-client ssh-agent || return 1
    VERSION[closing]="fixture over ssh-agent $(pkg_version openssh-client)"
    start_plain closing "$CLOSING"
}

start_pageant() {
    need putty pageant || return 1
    VERSION[pageant]=$(pkg_version putty)
    # --debug: foreground, log on stdout; its first line names the socket it
    # made (/tmp/pageant.$USER/pageant.PID, whatever TMPDIR says), and
    # --symlink puts a link to it in our dir. No display, no tty to prompt on.
    (
        unset DISPLAY WAYLAND_DISPLAY
        exec stdbuf -oL pageant --debug --symlink "$DIR/agent.sock"
    ) >"$DIR/agent.log" 2>&1 </dev/null &
    AGENT_PID=$!
    AGENT_KIND=pageant
    for _ in $(seq 1 100); do
        PAGEANT_SOCK=$(sed -n 's/^SSH_AUTH_SOCK=\([^;]*\);.*/\1/p' "$DIR/agent.log" | head -n 1)
        [ -n "$PAGEANT_SOCK" ] && [ -S "$PAGEANT_SOCK" ] && break
        alive "$AGENT_PID" || break
        sleep 0.1
    done
    if [ -z "$PAGEANT_SOCK" ] || [ ! -S "$PAGEANT_SOCK" ]; then
        WHY_NOT="it did not start: $(tail -n 3 "$DIR/agent.log" | tr '\n' ' ')"
        return 1
    fi
    SOCK=$PAGEANT_SOCK
    note "${SHORT[pageant]}: \`pageant --debug\` made its socket at $PAGEANT_SOCK (it takes no socket path; --symlink only adds a link)"
}

# The pinentry stub: speaks just enough Assuan to say OK to everything, so
# GETPIN gets an empty passphrase; it logs what gpg-agent asked.
write_pinentry_stub() {
    cat >"$DIR/pinentry" <<EOF
#!/bin/sh
echo "OK pinentry stub for scripts/compat.sh"
while IFS= read -r line; do
    printf '%s\n' "\$line" >>"$DIR/pinentry.log"
    case \$line in
    BYE*) echo OK 2>/dev/null; exit 0 ;;
    *) echo OK 2>/dev/null ;;
    esac
done
EOF
    chmod 700 "$DIR/pinentry"
}

start_gpg() {
    local pinentry mode sockdir std ssh
    need gpg-agent gpg-agent || return 1
    need gpgconf gpgconf || return 1
    VERSION[gpg]=$(pkg_version gpg-agent)
    AGENT_KIND=gpg
    # A short private home: the sockets go in it unless /run/user/UID exists.
    GPG_HOME=$DIR/g
    mkdir -m 700 "$GPG_HOME" || return 1
    export GNUPGHOME=$GPG_HOME
    # With /run/user/UID, a non-default home's sockets go in a directory
    # there that must be made first (and is removed afterwards).
    GPG_RUNDIR=
    if [ -d "/run/user/$(id -u)" ]; then
        [ -d "/run/user/$(id -u)/gnupg" ] || GPG_RUNDIR=/run/user/$(id -u)/gnupg
        gpgconf --create-socketdir 2>>"$DIR/agent.log" && GPG_SOCKETDIR_MADE=1
    fi
    sockdir=$(gpgconf --list-dirs socketdir)
    std=$(gpgconf --list-dirs agent-socket)
    ssh=$(gpgconf --list-dirs agent-ssh-socket)
    if [ -z "$ssh" ]; then
        WHY_NOT="gpgconf named no agent-ssh-socket"
        return 1
    fi
    pinentry=${COMPAT_GPG_PINENTRY:-}
    if [ -z "$pinentry" ]; then
        write_pinentry_stub
        pinentry=$DIR/pinentry
    fi
    mode=${COMPAT_GPG_MODE:-}
    if [ -z "$mode" ]; then
        if command -v systemd-socket-activate >/dev/null 2>&1; then mode=supervised; else mode=daemon; fi
    fi
    set -- --homedir "$GPG_HOME" --enable-ssh-support --disable-scdaemon \
        --pinentry-program "$pinentry" --pinentry-timeout 5
    case $mode in
    supervised)
        # Sockets bound for it, as systemd's gpg-agent.socket and
        # gpg-agent-ssh.socket do; it starts at the first connection.
        systemd-socket-activate -E GNUPGHOME="$GPG_HOME" -l "$std" -l "$ssh" --fdname=std:ssh \
            gpg-agent --supervised "$@" >"$DIR/agent.log" 2>&1 </dev/null &
        AGENT_PID=$!
        wait_socket "$ssh" "$AGENT_PID" 10 ;;
    daemon)
        # It forks and its parent exits; its pid comes from the agent itself.
        gpg-agent --daemon "$@" >"$DIR/agent.log" 2>&1 </dev/null ;;
    *)
        WHY_NOT="COMPAT_GPG_MODE must be supervised or daemon"
        return 1 ;;
    esac
    for _ in $(seq 1 50); do
        if [ "$(gpg-connect-agent --no-autostart 'getinfo version' /bye 2>/dev/null | sed -n 's/^D //p')" != "" ]; then
            [ "$mode" = daemon ] &&
                AGENT_PID=$(gpg-connect-agent --no-autostart 'getinfo pid' /bye 2>/dev/null | sed -n 's/^D //p')
            break
        fi
        sleep 0.1
    done
    if [ -z "$AGENT_PID" ] || ! alive "$AGENT_PID" || [ ! -S "$ssh" ]; then
        WHY_NOT="it did not start: $(tail -n 3 "$DIR/agent.log" | tr '\n' ' ')"
        return 1
    fi
    SOCK=$ssh
    note "${SHORT[gpg]}: run as \`gpg-agent --$mode --enable-ssh-support\` with GNUPGHOME=<temp>/g; gpgconf put its ssh socket in ${sockdir/#$DIR/<temp>}; pinentry: ${COMPAT_GPG_PINENTRY:-a stub answering OK with an empty passphrase}"
}

start_agent() {
    case $1 in
    keyward) start_keyward ;;
    openssh) start_openssh ;;
    openssh_new) start_openssh_new ;;
    gpg) start_gpg ;;
    pageant) start_pageant ;;
    closing) start_closing ;;
    esac
}

stop_gpg() {
    [ -n "$GPG_HOME" ] || return 0
    GNUPGHOME=$GPG_HOME gpgconf --kill gpg-agent 2>/dev/null
    stop_pid "$AGENT_PID"
    if [ "$GPG_SOCKETDIR_MADE" = 1 ]; then
        GNUPGHOME=$GPG_HOME gpgconf --remove-socketdir 2>/dev/null
        [ -n "$GPG_RUNDIR" ] && rmdir "$GPG_RUNDIR" 2>/dev/null
        GPG_SOCKETDIR_MADE=0
    fi
    unset GNUPGHOME
    GPG_HOME=
}

# ---- probing ----

# json_field LINE FIELD: a string field of one result line, unescaped.
json_field() {
    printf '%s\n' "$1" | sed -n 's/.*"'"$2"'": "\(\([^"\\]\|\\.\)*\)".*/\1/p' |
        sed 's/\\"/"/g; s/\\\\/\\/g'
}

# shorten TEXT MAX: cut at a word boundary with "...".
shorten() {
    local text=$1 max=$2
    if [ ${#text} -le "$max" ]; then
        printf '%s' "$text"
    else
        text=${text:0:$max}
        printf '%s...' "${text% *}"
    fi
}

cell_of() {
    case $1 in
    pass) echo pass ;;
    fail) echo FAIL ;;
    unsupported) echo "not supported" ;;
    skipped) echo skipped ;;
    *) echo error ;;
    esac
}

probe_agent() {
    local kind=$1 rc line name verdict summary why check n
    log "probing ${LABEL[$kind]} at $SOCK"
    timeout --kill-after=5 "$RUN_LIMIT_S" "$PROBE" -a "$SOCK" --json --timeout "$TIMEOUT_MS" \
        >"$DIR/probe.json" 2>"$DIR/probe.err"
    rc=$?
    RAN[$kind]=1
    while IFS= read -r line; do
        name=$(json_field "$line" name)
        verdict=$(json_field "$line" verdict)
        CELL[$kind/$name]=$(cell_of "$verdict")
        if [ "$verdict" = fail ]; then
            summary=$(json_field "$line" summary)
            why=$(json_field "$line" why)
            FAILS+=("${SHORT[$kind]}, \`$name\`: $(shorten "$summary" 140) - $(shorten "$why" 150)")
        fi
    done < <(grep '^ *{"name": "' "$DIR/probe.json")
    case $rc in
    0 | 1) ;;
    124 | 137)
        note "${SHORT[$kind]}: the probe did not finish within ${RUN_LIMIT_S} s; checks without a result are marked error"
        STATUS=1 ;;
    *)
        note "${SHORT[$kind]}: keyward-probe exited $rc: $(shorten "$(tr '\n' ' ' <"$DIR/probe.err")" 200)"
        STATUS=1 ;;
    esac
    for check in "${CHECKS[@]}"; do
        [ -n "${CELL[$kind/$check]:-}" ] || CELL[$kind/$check]=error
    done
    # The probe removes every key it added; what an agent still lists was
    # answered "removed" (or never removed) by the agent itself.
    if command -v ssh-add >/dev/null 2>&1; then
        n=$(SSH_AUTH_SOCK=$SOCK timeout 10 ssh-add -l 2>/dev/null | grep -c 'keyward-probe throwaway key')
        [ "$n" -gt 0 ] &&
            note "${SHORT[$kind]}: after the run, \`ssh-add -l\` still lists $n of the probe's throwaway keys (the probe removed each one it added, by REMOVE_IDENTITY)"
    fi
    if [ "$kind" = gpg ] && [ -s "$DIR/pinentry.log" ]; then
        n=$(grep -c '^GETPIN' "$DIR/pinentry.log")
        note "${SHORT[gpg]}: the pinentry was asked for $n passphrase(s): \"$(sed -n 's/^SETDESC //p' "$DIR/pinentry.log" | head -n 1 | sed 's/%0A.*//')\""
    fi
}

# ---- main ----

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kw-compat.XXXXXX") || exit 2
if [ ${#TMP} -gt 40 ]; then
    # Unix socket paths are short; gpg-agent's live under its GNUPGHOME.
    rm -rf "$TMP"
    TMP=$(mktemp -d /tmp/kw-compat.XXXXXX) || exit 2
fi
mapfile -t CHECKS < <("$PROBE" --list | awk '!/\[only with --only\]/ { print $1 }')

for kind in "${AGENTS[@]}"; do
    DIR=$TMP/$kind
    mkdir -m 700 "$DIR"
    SOCK=
    WHY_NOT="it did not start"
    log "starting ${LABEL[$kind]}"
    if start_agent "$kind"; then
        probe_agent "$kind"
    else
        note "${SHORT[$kind]}: NOT PROBED (its column says \"not run\"): $WHY_NOT"
        STATUS=1
    fi
    stop_agent
done

# ---- the table ----

printf "keyward-probe %s, \`--timeout %s\`, all default checks; %s, Debian %s (%s).\n\n" \
    "$("$PROBE" --version | awk '{ print $NF }')" "$TIMEOUT_MS" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(cat /etc/debian_version 2>/dev/null || echo '?')" "$(uname -m)"
row="| check |"
sep="|---|"
for kind in "${AGENTS[@]}"; do
    row="$row ${LABEL[$kind]} |"
    sep="$sep---|"
done
printf '%s\n%s\n' "$row" "$sep"
row="| *version* |"
for kind in "${AGENTS[@]}"; do
    row="$row ${VERSION[$kind]:-not installed} |"
done
printf '%s\n' "$row"
for check in "${CHECKS[@]}"; do
    row="| \`$check\` |"
    for kind in "${AGENTS[@]}"; do
        if [ -n "${RAN[$kind]:-}" ]; then
            row="$row ${CELL[$kind/$check]} |"
        else
            row="$row not run |"
        fi
    done
    printf '%s\n' "$row"
done
if [ ${#FAILS[@]} -gt 0 ]; then
    printf '\nWhy each FAIL failed (the probe'"'"'s summary, then why it matters):\n\n'
    printf -- '- %s\n' "${FAILS[@]}"
fi
if [ ${#NOTES[@]} -gt 0 ]; then
    printf '\nNotes:\n\n'
    printf -- '- %s\n' "${NOTES[@]}"
fi
exit "$STATUS"
