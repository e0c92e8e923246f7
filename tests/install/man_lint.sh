#!/usr/bin/env bash
# The manual pages must render without a single complaint:
#   - mandoc -Tlint at warning level prints nothing and exits 0;
#   - at style level too, except "referenced manual not found" (whether
#     ssh-agent(1) or socat(1) is installed here says nothing about the page)
#     and notes about this machine's stale mandoc.db;
#   - man(1), that is groff, with all its warnings on, prints nothing.
#
#     tests/install/man_lint.sh doc/man/keyward-agent.1 doc/man/keyward-probe.1 ...
#
# Exit status: 0 all clean, 1 a page has findings (they are printed),
# 77 mandoc or man is not installed (apt-get install mandoc man-db).
set -u

if [ $# -eq 0 ]; then
    echo "usage: $0 PAGE..." >&2
    exit 1
fi
for tool in mandoc man; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "# SKIP man_lint: $tool is not installed"
        exit 77
    fi
done

failed=0
for page in "$@"; do
    name=$(basename "$page")
    if [ ! -f "$page" ]; then
        echo "not ok - $name: no such file: $page"
        failed=1
        continue
    fi
    out=$(mandoc -Tlint -W warning "$page" 2>&1)
    rc=$?
    if [ "$rc" != 0 ] || [ -n "$out" ]; then
        echo "not ok - $name: mandoc -Tlint -W warning (exit $rc)"
        printf '%s\n' "$out" | sed 's/^/#   /'
        failed=1
    else
        echo "ok - $name: mandoc -Tlint -W warning"
    fi
    out=$(mandoc -Tlint -W style "$page" 2>&1 |
        grep -v -e 'STYLE: referenced manual not found' -e 'mandoc\.db')
    if [ -n "$out" ]; then
        echo "not ok - $name: mandoc -Tlint -W style"
        printf '%s\n' "$out" | sed 's/^/#   /'
        failed=1
    else
        echo "ok - $name: mandoc -Tlint -W style"
    fi
    # A path with a slash makes man(1) read that file; --warnings turns on
    # groff's warnings, which go to stderr with the page itself discarded.
    case $page in */*) path=$page ;; *) path=./$page ;; esac
    out=$(MANWIDTH=80 man --warnings "$path" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" != 0 ] || [ -n "$out" ]; then
        echo "not ok - $name: man --warnings (exit $rc)"
        printf '%s\n' "$out" | sed 's/^/#   /'
        failed=1
    else
        echo "ok - $name: man --warnings"
    fi
done
exit "$failed"
