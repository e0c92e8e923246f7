#!/bin/bash
# Creates the private Wine prefix that the win_* tests share, once:
#   tests/win/wineprefix.sh DIR
# Wine's first start in a new prefix takes about 10 s; tests that each did it
# at once would race. `make win` calls this, and ctest runs it as the setup
# fixture of every win_* test, so a prefix exists before any test starts.
# A second call finds the prefix ready and returns at once. Exit 77 (skip)
# only if Wine is not installed at all.
set -euo pipefail

prefix=${1:?usage: wineprefix.sh DIR}

if ! command -v wine >/dev/null 2>&1; then
    echo "wineprefix: wine is not installed (apt-get install wine wine64)" >&2
    exit 77
fi

mkdir -p "$(dirname "$prefix")"
# Two callers at once (make -j, a ctest fixture beside a manual run) take turns.
exec 9>"$prefix.lock"
flock 9

# The stamp is written only after wineboot finished: a half-made prefix is redone.
stamp="$prefix/.keyward-ready"
if [ -f "$stamp" ]; then
    exit 0
fi
rm -rf "$prefix"
export WINEPREFIX=$prefix WINEDEBUG=-all
# No Mono or Gecko: console programs need neither, and installing them would
# look for a download or prompt.
export WINEDLLOVERRIDES="mscoree=;mshtml="
start=$SECONDS
echo "wineprefix: creating $prefix" >&2
wineboot -i >/dev/null 2>&1
# Let the prefix's wineserver write everything to disk before it is used.
wineserver -w
touch "$stamp"
echo "wineprefix: ready in $((SECONDS - start)) s" >&2
