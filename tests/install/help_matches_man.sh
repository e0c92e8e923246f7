#!/usr/bin/env bash
# A program's --help and its manual page must name the same options:
#   - every option --help shows (in its usage lines or its option list) is in
#     the page's SYNOPSIS and has an entry in the page's option list;
#   - every entry of the page's option list is an option --help shows.
# Then it checks that this check can fail: a page missing one option's entry,
# and a --help with an option the page lacks, must both be caught.
#
#     tests/install/help_matches_man.sh PROGRAM PAGE [PROGRAM PAGE]...
#
# An empty PROGRAM skips its pair (keyward-relay before it is built).
# The page is rendered with mandoc; its option list is the tagged list whose
# items start at the section indent with "-" (".It Fl x" in mdoc).
# Exit status: 0 they agree, 1 they do not (what differs is printed),
# 77 mandoc is not installed.
set -u

if [ $# -eq 0 ] || [ $(($# % 2)) != 0 ]; then
    echo "usage: $0 PROGRAM PAGE [PROGRAM PAGE]..." >&2
    exit 1
fi
if ! command -v mandoc >/dev/null 2>&1; then
    echo "# SKIP help_matches_man: mandoc is not installed"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kw-help-man.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# Option words in text: "-a", "-Dd" (split into -D and -d), "--only"; only
# where an option can start (line start, blank, "[", "|"), so that the
# hyphens of "keyward-agent" or "bind-address" are not taken for options.
options_in() {
    grep -oE '(^|[][[:space:]|])--?[A-Za-z][A-Za-z0-9-]*' |
        sed -E 's/^[][[:space:]|]//' |
        while read -r word; do
            case $word in
                --*) printf '%s\n' "$word" ;;
                -*)
                    word=${word#-}
                    while [ -n "$word" ]; do
                        printf -- '-%s\n' "${word:0:1}" # not echo: echo -E or -n is an option to echo
                        word=${word:1}
                    done
                    ;;
            esac
        done | sort -u
}

# help_options PROGRAM: options in the usage lines (up to the first blank
# line) and the first word of every indented line that starts with "-".
help_options() {
    local help
    help=$("$1" --help 2>&1) || return 1
    {
        printf '%s\n' "$help" | sed '/^[[:space:]]*$/q' | options_in
        printf '%s\n' "$help" | sed -nE 's/^[[:space:]]+(--?[A-Za-z][A-Za-z0-9-]*).*/\1/p'
    } | sort -u
}

# page_text PAGE: the page rendered as plain text.
page_text() {
    mandoc -Tascii -Owidth=200 "$1" | col -bx
}

# section NAME: the lines of one section (from its header to the next one).
section() {
    awk -v name="$1" '/^[A-Z]/ { on = ($0 == name); next } on'
}

# page_synopsis_options PAGE, page_list_options PAGE
page_synopsis_options() {
    page_text "$1" | section SYNOPSIS | options_in
}
page_list_options() {
    page_text "$1" | awk '/^[A-Z]/ { on = ($0 == "DESCRIPTION" || $0 == "OPTIONS"); next } on' |
        sed -nE 's/^     (--?[A-Za-z][A-Za-z0-9-]*)([[:space:]].*)?$/\1/p' | sort -u
}

# compare LABEL HELP_OPTIONS_FILE PAGE: prints each difference, returns 1 if any.
compare() {
    local label=$1 helpfile=$2 page=$3 bad=0 opt
    page_synopsis_options "$page" >"$tmp/synopsis"
    page_list_options "$page" >"$tmp/list"
    if [ ! -s "$helpfile" ]; then
        echo "#   $label: --help shows no options at all"
        return 1
    fi
    while read -r opt; do
        if ! grep -qxF -- "$opt" "$tmp/synopsis"; then
            echo "#   $label: $opt is in --help but not in the page's SYNOPSIS"
            bad=1
        fi
        if ! grep -qxF -- "$opt" "$tmp/list"; then
            echo "#   $label: $opt is in --help but has no entry in the page's option list"
            bad=1
        fi
    done <"$helpfile"
    while read -r opt; do
        if ! grep -qxF -- "$opt" "$helpfile"; then
            echo "#   $label: $opt has an entry in the page but is not in --help"
            bad=1
        fi
    done <"$tmp/list"
    return "$bad"
}

failed=0
first_prog='' first_page=''
while [ $# -gt 0 ]; do
    prog=$1 page=$2
    shift 2
    name=$(basename "$page")
    if [ -z "$prog" ]; then
        echo "ok - $name # SKIP its program is not built"
        continue
    fi
    if ! help_options "$prog" >"$tmp/help"; then
        echo "not ok - $name: $prog --help failed"
        failed=1
        continue
    fi
    if out=$(compare "$(basename "$prog")" "$tmp/help" "$page"); then
        echo "ok - $name agrees with $(basename "$prog") --help ($(wc -l <"$tmp/help") options)"
    else
        echo "not ok - $name and $(basename "$prog") --help disagree"
        printf '%s\n' "$out"
        failed=1
    fi
    if [ -z "$first_prog" ]; then first_prog=$prog first_page=$page; fi
done

# The check must be able to fail. 1: the page loses the entry of the first
# option in its list (the ".It Fl x" line and what follows it up to the next
# item stay in the text, but not as an entry).
if [ -n "$first_prog" ]; then
    help_options "$first_prog" >"$tmp/help"
    victim=$(page_list_options "$first_page" | head -n 1)
    awk -v v="${victim#-}" '$0 == ".It Fl " v || index($0, ".It Fl " v " ") == 1 { $0 = ".It Ar not-an-option" } 1' \
        "$first_page" >"$tmp/mutant.1"
    if compare mutant "$tmp/help" "$tmp/mutant.1" >/dev/null; then
        echo "not ok - self-test: a page without an entry for $victim was not caught"
        failed=1
    else
        echo "ok - self-test: a page without an entry for $victim is caught"
    fi
    # 2: --help shows an option that the page does not have.
    { cat "$tmp/help"; echo "--not-in-the-page"; } >"$tmp/help.mutant"
    if compare mutant "$tmp/help.mutant" "$first_page" >/dev/null; then
        echo "not ok - self-test: an option missing from the page was not caught"
        failed=1
    else
        echo "ok - self-test: an option missing from the page is caught"
    fi
fi
exit "$failed"
