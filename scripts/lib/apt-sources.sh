# keyward: the machine's own apt entries for Debian 12 (bookworm), for the
# scripts that need more of Debian than the machine's apt lists give: source
# packages (win-deps.sh) and a fresh root's sources (fresh-root.sh, for
# test-fresh.sh and test-deb.sh). Sourced, not run. Nothing here names a
# host: every URI, component and keyring comes from the machine's entries,
# so a configured mirror is honoured.
#
#   apt_bookworm_entries TYPE DIR NAME   write the machine's bookworm "deb"
#       entries, as TYPE ("deb" or "deb-src"), to DIR/NAME.sources (from
#       deb822 stanzas) and/or DIR/NAME.list (from one-line entries);
#       returns 1 if the machine has none
#   apt_bookworm_mirror            print the first URI that serves the
#       suite "bookworm" itself (for debootstrap)

_apt_entry_files() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        # deb-src entries (ours among them) never match: only "deb" is read.
        [ -f "$f" ] && echo "$f"
    done
}

# deb822 stanzas (blank-line separated) whose Types has "deb" and whose
# Suites name a bookworm suite, comments dropped, Types set to $1.
_apt_deb822_bookworm() {
    awk -v RS= -v ORS='\n\n' -v type="$1" '
        tolower($0) ~ /(^|\n)types:[^\n]*[[:space:]]deb([[:space:]]|$)/ &&
        $0 ~ /(^|\n)[Ss]uites:[^\n]*bookworm/ {
            gsub(/(^|\n)#[^\n]*/, "")
            sub(/(^|\n)[Tt]ypes:[^\n]*/, "\nTypes: " type)
            sub(/^\n/, "")
            print
        }' "$2"
}

# One-line "deb [options] URI SUITE COMPONENTS" entries for a bookworm suite,
# as $1.
_apt_oneline_bookworm() {
    sed -nE "s/^[[:space:]]*deb[[:space:]]+(.*[[:space:]]bookworm(-updates|-security)?[[:space:]].*)\$/$1 \\1/p" "$2"
}

apt_bookworm_entries() {
    local type=$1 dir=$2 name=$3 f stanzas="" lines=""
    local header="# Written by keyward's scripts: the machine's own bookworm \"deb\" entries, as \"$type\"."
    while read -r f; do
        case $f in
            *.sources) stanzas+=$(_apt_deb822_bookworm "$type" "$f")$'\n\n' ;;
            *) lines+=$(_apt_oneline_bookworm "$type" "$f")$'\n' ;;
        esac
    done < <(_apt_entry_files)
    local wrote=1
    if [ -n "${stanzas//[[:space:]]/}" ]; then
        { echo "$header"; printf '%s' "$stanzas" | cat -s; } >"$dir/$name.sources"
        wrote=0
    fi
    if [ -n "${lines//[[:space:]]/}" ]; then
        { echo "$header"; printf '%s\n' "$lines" | sed '/^$/d'; } >"$dir/$name.list"
        wrote=0
    fi
    return $wrote
}

apt_bookworm_mirror() {
    local f
    while read -r f; do
        case $f in
            *.sources)
                _apt_deb822_bookworm deb "$f" | awk -v RS= '
                    $0 ~ /(^|\n)[Ss]uites:([^\n]*[[:space:]])?bookworm([[:space:]]|\n|$)/ {
                        if (match($0, /(^|\n)URIs:[[:space:]]*[^[:space:]]+/)) {
                            u = substr($0, RSTART, RLENGTH)
                            sub(/^\n?URIs:[[:space:]]*/, "", u)
                            print u
                        }
                    }'
                ;;
            *)
                _apt_oneline_bookworm deb "$f" |
                    sed -nE 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+bookworm[[:space:]].*/\2/p'
                ;;
        esac
    done < <(_apt_entry_files) | head -n 1
}

# Another Debian suite from the same archives: the machine's bookworm "deb"
# entries with their suite names changed, for a private apt state (below), so
# that a newer source package can be fetched without touching the machine's
# apt configuration.
#
#   apt_suite_entries TYPE DIR NAME SUITE   as apt_bookworm_entries, with
#       bookworm, bookworm-updates and bookworm-security renamed to SUITE,
#       SUITE-updates and SUITE-security; for "unstable" (which has neither
#       -updates nor -security) only the bookworm suite itself is kept.
#       Returns 1 if the machine has no bookworm entry.

# Rename the bookworm suites in one Suites: value or one-line suite field
# (space separated); prints nothing if none is left.
_apt_rename_suites() {
    local suite=$1 s out=""
    for s in $2; do
        case $s in
            bookworm) out+=" $suite" ;;
            bookworm-updates | bookworm-security)
                [ "$suite" = unstable ] || out+=" $suite-${s#bookworm-}"
                ;;
        esac
    done
    echo "${out# }"
}

apt_suite_entries() {
    local type=$1 dir=$2 name=$3 suite=$4 f line stanza suites renamed
    local stanzas="" lines=""
    local header="# Written by keyward's scripts: the machine's own bookworm \"deb\" entries, as \"$type\" for $suite."
    while read -r f; do
        case $f in
            *.sources)
                # One stanza per NUL-separated record, Suites renamed.
                while IFS= read -r -d '' stanza; do
                    suites=$(printf '%s\n' "$stanza" | sed -n 's/^[Ss]uites:[[:space:]]*//p')
                    renamed=$(_apt_rename_suites "$suite" "$suites")
                    [ -n "$renamed" ] || continue
                    stanzas+=$(printf '%s\n' "$stanza" | sed "s/^[Ss]uites:.*/Suites: $renamed/")$'\n\n'
                done < <(_apt_deb822_bookworm "$type" "$f" | awk -v RS= -v ORS='\0' '{ print }')
                ;;
            *)
                while read -r line; do
                    # TYPE [options] URI SUITE COMPONENTS...
                    local -a w
                    read -r -a w <<<"$line"
                    # Skip "[options]", which may span words, to the URI.
                    local i=1
                    if [ "${w[1]:0:1}" = "[" ]; then
                        while [ "${w[i]: -1}" != "]" ]; do i=$((i + 1)); done
                        i=$((i + 1))
                    fi
                    renamed=$(_apt_rename_suites "$suite" "${w[i + 1]}")
                    [ -n "$renamed" ] || continue
                    w[i + 1]=$renamed
                    lines+="${w[*]}"$'\n'
                done < <(_apt_oneline_bookworm "$type" "$f")
                ;;
        esac
    done < <(_apt_entry_files)
    local wrote=1
    if [ -n "${stanzas//[[:space:]]/}" ]; then
        { echo "$header"; printf '%s' "$stanzas" | cat -s; } >"$dir/$name.sources"
        wrote=0
    fi
    if [ -n "${lines//[[:space:]]/}" ]; then
        { echo "$header"; printf '%s' "$lines"; } >"$dir/$name.list"
        wrote=0
    fi
    return $wrote
}
