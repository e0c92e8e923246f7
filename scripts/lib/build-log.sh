# shellcheck shell=bash
# keyward: how the dependency builds (scripts/win-deps.sh, scripts/pq-deps.sh)
# report and log. Sourced, not run. The caller sets
#   build_log_tag   the name its messages start with ("win-deps")
#   log             the file commands append their output to; it may change
#                   as the build goes on (one log per prefix built)
# and gets
#   say MSG...      a line to stderr
#   fail MSG...     says it failed and why, prints the tail of $log, exits 1
#   run CMD...      runs CMD with its output appended to $log; fail if it fails
#   build_env_clean the caller's build settings dropped: a host CFLAGS would
#                   reach a cross compiler, and under make, MAKEFLAGS carries
#                   command-line variables such as CC=... into the
#                   dependencies' own makes

say() { echo "$build_log_tag: $*" >&2; }

fail() {
    say "FAILED: $*"
    if [ -f "$log" ]; then
        say "last lines of $log:"
        tail -n 40 "$log" >&2
    fi
    exit 1
}

run() {
    echo "+ $*" >>"$log"
    "$@" >>"$log" 2>&1 || fail "$*"
}

build_env_clean() {
    unset CC CXX CPP CFLAGS CPPFLAGS CXXFLAGS LDFLAGS LIBS AR RANLIB RC CROSS_COMPILE
    unset MAKEFLAGS MFLAGS MAKELEVEL MAKEFILES
    export LC_ALL=C
}
