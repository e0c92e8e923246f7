#!/bin/bash
# A unit test program cross-built for Windows, run under Wine:
#   tests/win/unit.sh WIN_BUILD_DIR NAME     (runs tests/test_NAME.exe)
# The same source as the Linux unit test of that name; it must pass on both.
. "$(dirname "$0")/lib.sh" "$1"

exe=$WIN_BUILD/tests/test_${2:?usage: unit.sh WIN_BUILD_DIR NAME}.exe
[ -f "$exe" ] || fail "$exe is not built (make win)"
# Run from the scratch directory: a test that writes files writes them there.
cd "$work"
wine_run "$exe"
