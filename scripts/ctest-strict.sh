#!/usr/bin/env bash
# Runs one build directory's CTest suite for make test, and fails it when
# a test was skipped as well as when one failed. A test skips (exit 77) only
# when a tool it needs is absent, and scripts/setup.sh installs and checks
# every such tool: under make test a skip means a missing install step,
# which must not pass for green (issue 14: a missing `wine` did).
#
#   scripts/ctest-strict.sh BUILD_DIR JOBS [CTEST_ARG...]
#       (e.g. -L pq: only the tests with that label)
set -uo pipefail
build=${1:?usage: ctest-strict.sh BUILD_DIR JOBS}
jobs=${2:-2}
shift 2 || shift $#
cd "$build" || exit 1
log=$PWD/ctest-last.log
ctest --output-on-failure -j"$jobs" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
skipped=$(grep -E '\(Skipped\)|\*\*\*Skipped' "$log" | sed 's/^/    /' | sort -u)
if [ -n "$skipped" ]; then
    echo "ctest-strict: tests were skipped in $build, which make test does not allow:" >&2
    echo "$skipped" >&2
    echo "ctest-strict: a skipped test lacks a tool that scripts/setup.sh should install" >&2
    [ "$rc" != 0 ] || rc=1
fi
exit "$rc"
