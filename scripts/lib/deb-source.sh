# shellcheck shell=bash
# keyward: source packages from another Debian suite (trixie, unstable) on a
# Debian 12 machine, through a private apt state: its own source entries
# (the machine's bookworm URIs and keyrings, scripts/lib/apt-sources.sh), its
# own package lists and cache, so the machine's apt configuration is never
# changed. Sourced, not run, after scripts/lib/build-log.sh, whose run(),
# fail() and say() it uses.
#
# The state and the downloaded source packages are shared by every script
# that uses this (win-deps.sh and pq-deps.sh both build OpenSSL 3.5), in
#   ${KEYWARD_CACHE:-/var/cache/keyward}/debian-sources/
# with apt-SUITE/ (sources entries, package lists) and sources/ (the
# downloads); a lock there lets one script at a time use it.
#
#   debsrc_init SUITE         the private state for SUITE; lists are
#                             downloaded the first time, or when older than a day
#   debsrc_versions PKG       versions apt knows there, newest first
#   debsrc_pick PKG [PREFIX]  download the newest version (whose version
#       starts with PREFIX, if given) whose files the mirror serves into
#       $debsrc_dir, and print it; an index can list a version before the
#       mirror has its files, so older ones are tried in turn
#   debsrc_noepoch VER / debsrc_sanitize VER   for file and directory names

# shellcheck source=scripts/lib/apt-sources.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-sources.sh"

debsrc_opts=()
debsrc_top=${KEYWARD_CACHE:-/var/cache/keyward}/debian-sources
debsrc_dir=$debsrc_top/sources
debsrc_locked=no

debsrc_init() {
    local suite=$1 dir=$debsrc_top/apt-$1
    mkdir -p "$debsrc_dir"
    if [ "$debsrc_locked" = no ]; then
        # Held until the calling script exits.
        exec 8>"$debsrc_top/.lock"
        flock 8
        debsrc_locked=yes
    fi
    mkdir -p "$dir/sources.list.d" "$dir/lists/partial" "$dir/cache/archives/partial"
    # Derived afresh each time (the machine's mirror may have changed), and
    # replaced only if different, so that a change means a new update.
    rm -rf "$dir/new" && mkdir "$dir/new"
    apt_suite_entries deb-src "$dir/new" "keyward-$suite" "$suite" ||
        fail "no bookworm \"deb\" entry in the machine's apt sources to take $suite's URIs from"
    if ! diff -r "$dir/new" "$dir/sources.list.d" >/dev/null 2>&1; then
        rm -rf "$dir/sources.list.d" "$dir/updated"
        mv "$dir/new" "$dir/sources.list.d"
    fi
    rm -rf "$dir/new"
    debsrc_opts=(-o "Dir::Etc::sourcelist=$dir/sources.list.d/none"
        -o "Dir::Etc::sourceparts=$dir/sources.list.d"
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
        -o "Acquire::Check-Valid-Until=false")
    # Check-Valid-Until: unstable's Release file is valid for a week only,
    # and a snapshot mirror (this project's machines have one, and set the
    # same option machine-wide) serves it long expired; a fresh root
    # without that setting then refuses it. The signature is still checked;
    # what is given up is only the freshness check, and the build takes
    # whichever version the mirror serves and names its prefix after it.
    if [ ! -f "$dir/updated" ] || [ -n "$(find "$dir/updated" -mmin +1440)" ]; then
        say "apt-get update ($suite, private lists in $dir)"
        run apt-get "${debsrc_opts[@]}" update
        touch "$dir/updated"
    fi
}

debsrc_noepoch() { echo "${1#*:}"; }
debsrc_sanitize() { echo "${1//[^A-Za-z0-9.+-]/_}"; }

# Newest first, with dpkg's own comparison (sort -V gets '~' wrong).
_debsrc_sort() {
    local sorted=() v i j
    while read -r v; do
        i=${#sorted[@]}
        sorted+=("$v")
        while [ "$i" -gt 0 ] && dpkg --compare-versions "${sorted[i]}" gt "${sorted[i - 1]}"; do
            j=${sorted[i - 1]}
            sorted[i - 1]=${sorted[i]}
            sorted[i]=$j
            i=$((i - 1))
        done
    done
    [ ${#sorted[@]} -eq 0 ] || printf '%s\n' "${sorted[@]}"
}

debsrc_versions() {
    apt-cache "${debsrc_opts[@]}" showsrc --only-source "$1" 2>/dev/null |
        sed -n 's/^Version: //p' | sort -u | _debsrc_sort
}

# The .ok marker is written only after apt-get succeeded, and so after it
# checked every file against the signed Sources index.
# A version the mirror did not serve is not asked for again for a day
# (the .missing marker), so that every build does not retry it.
# shellcheck disable=SC2154  # $log is the caller's
_debsrc_fetch() {
    local ok missing
    ok="$3/$1_$(debsrc_noepoch "$2").ok"
    missing="$3/$1_$(debsrc_noepoch "$2").missing"
    [ -f "$ok" ] && return 0
    [ -f "$missing" ] && [ -z "$(find "$missing" -mmin +1440)" ] && return 1
    echo "+ apt-get source --download-only --only-source $1=$2" >>"$log"
    if (cd "$3" && apt-get "${debsrc_opts[@]}" source --download-only --only-source "$1=$2") >>"$log" 2>&1; then
        rm -f "$missing"
        touch "$ok"
        return 0
    fi
    touch "$missing"
    say "warning: the mirror lists source $1 $2 but does not serve its files; trying older versions (and not this one again for a day)"
    return 1
}

debsrc_pick() {
    local pkg=$1 want=${2:-} v
    for v in $(debsrc_versions "$pkg"); do
        case $(debsrc_noepoch "$v") in "$want"*) ;; *) continue ;; esac
        if _debsrc_fetch "$pkg" "$v" "$debsrc_dir"; then
            echo "$v"
            return 0
        fi
    done
    return 1
}
