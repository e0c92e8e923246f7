#!/usr/bin/env bash
# make test-deb: keyward's Debian package as a newcomer builds it and as a
# user gets it, each in a brand-new Debian 12 root (scripts/lib/fresh-root.sh,
# the roots that make test-fresh uses too):
#
#   0. The package is built as the README says: the committed HEAD cloned
#      into a fresh root that gets only git and make, and `make deb` there,
#      which installs what it needs itself (scripts/setup.sh deb), builds the
#      package and fails on any lintian error or warning. The package and
#      the logs are copied out to build-deb/fresh/ (or to
#      $KEYWARD_DEB_FRESH_OUT). Given a .deb on the command line, the test
#      takes that package instead and skips this step: quicker, and it tests
#      the working tree that `make deb` built.
#
# Then, in another fresh root:
#   1. In the bare minbase root, `apt-get install --simulate ./keyward_*.deb`:
#      keyward comes from the file, and every other package it would pull
#      comes from Debian's own archives (apt names each one's release:
#      "Debian:12...", "Debian-Security:12...").
#   2. What the test itself drives is added (openssh-client for ssh-keygen
#      and ssh-add, systemd for systemd-analyze) and a normal user, and the
#      root's file list is taken.
#   3. `apt install ./keyward_*.deb`; dpkg -L keyward is exactly the
#      programs in /usr/bin (and the agent's PKCS#11 helper in
#      /usr/libexec/keyward), their manual pages, the systemd user units,
#      and README, docs, copyright and changelog in /usr/share/doc/keyward;
#      keyward-agent --version is the package's version.
#   4. As the normal user: eval $(keyward-agent -s); ssh-add a freshly
#      generated ed25519 key, then delete its private key file, so that
#      `ssh-keygen -Y sign` can only sign through the agent; `ssh-keygen -Y
#      verify` accepts the signature with an allowed_signers file and
#      refuses it for another message; keyward-agent -k, after which the
#      agent is gone and its socket removed.
#   5. The user units: ExecStart names /usr/bin/keyward-agent, the socket
#      listens on %t/keyward/agent.sock, and `systemd-analyze verify --user`
#      accepts them without a word.
#   6. `apt purge keyward`, then `apt autoremove --purge` for the libraries
#      it pulled in: dpkg knows nothing of keyward, no file named keyward is
#      left, the root's file list is exactly the one of step 2, apt's and
#      dpkg's own state apart, and every file in /etc has the contents it
#      had then.
#
#   scripts/test-deb.sh                                      (make test-deb)
#   scripts/test-deb.sh build-deb/keyward_VERSION_ARCH.deb   (after make deb)
#
# Prints "ok N - ..." or "not ok N - ..." for each check and a closing
# "N passed, N failed" line; exits 0 only if every check passed. Run as root.
# KEYWARD_FRESH_KEEP=1 keeps a failed root for a look.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/fresh-root.sh
. "$repo/scripts/lib/fresh-root.sh"
FRESH_NAME=test-deb

say() { fresh_say "$@"; }
die() { fresh_die "$@"; }

[ $# -le 1 ] || die "usage: $0 [KEYWARD_DEB]"
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts)"
export DEBIAN_FRONTEND=noninteractive

# --- 0. the package, built in a fresh root ---------------------------------------

if [ $# -eq 1 ]; then
    deb=$1
    [ -f "$deb" ] || die "$deb not found: make deb builds it"
else
    head_commit=$(git -C "$repo" rev-parse HEAD)
    if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
        say "note: uncommitted changes are not built; building the committed HEAD ${head_commit:0:12}"
    fi
    out=${KEYWARD_DEB_FRESH_OUT:-$repo/build-deb/fresh}
    rm -rf "$out"
    mkdir -p "$out"
    fresh_root_begin
    say "installing git and make in the fresh root"
    in_root apt-get update -qq >&2 || die "apt-get update failed in the fresh root"
    in_root apt-get install -y -qq --no-install-recommends git make >"$out/setup.log" 2>&1 || {
        cat "$out/setup.log" >&2
        die "could not install git and make in the fresh root"
    }
    say "cloning ${head_commit:0:12} into /work/keyward; make deb there"
    mkdir -p "$FRESH_ROOT/work"
    git clone -q --no-hardlinks "$repo" "$FRESH_ROOT/work/keyward"
    git -C "$FRESH_ROOT/work/keyward" checkout -q --detach "$head_commit"
    start=$SECONDS
    if ! in_root bash -c 'cd /work/keyward && make deb' >"$out/make-deb.log" 2>&1; then
        tail -n 40 "$out/make-deb.log" >&2
        die "make deb failed in the fresh root (log: $out/make-deb.log)"
    fi
    say "make deb in the fresh root: $((SECONDS - start)) s (log: $out/make-deb.log)"
    grep '^deb: ' "$out/make-deb.log" >&2 || true
    cp "$FRESH_ROOT"/work/keyward/build-deb/keyward_*.deb "$FRESH_ROOT"/work/keyward/build-deb/*.log "$out/"
    deb=$(ls "$out"/keyward_*.deb)
    fresh_root_end 0 || die "could not clean up the build root"
fi
version=$(dpkg-deb -f "$deb" Version)
[ "$(dpkg-deb -f "$deb" Package)" = keyward ] || die "$deb is not the keyward package"

# --- checks ----------------------------------------------------------------------

passed=0 failed=0
ok() {
    passed=$((passed + 1))
    echo "ok $((passed + failed)) - $1"
}
notok() {
    failed=$((failed + 1))
    echo "not ok $((passed + failed)) - $1"
}
# check DESC CMD...: passes when CMD exits 0.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else notok "$desc"; fi
}
# same DESC EXPECTED ACTUAL: passes when the two texts are equal; else shows
# the difference.
same() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        notok "$1"
        diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/#   /' || true
    fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

# --- the root --------------------------------------------------------------------

fresh_root_begin
root=$FRESH_ROOT

# The package where apt running as root (and its _apt download sandbox)
# can read it.
debdir=/tmp/keyward-deb
debname=$(basename "$deb")
mkdir -m 755 "$root$debdir"
install -m 644 "$deb" "$root$debdir/$debname"

in_root apt-get update -qq >&2 || die "apt-get update failed in the fresh root"

# 1. What apt would pull into the bare root, and from where.
sim=$(in_root apt-get install --simulate "$debdir/$debname" 2>&1) || {
    echo "$sim" >&2
    die "apt-get install --simulate failed"
}
inst=$(grep '^Inst ' <<<"$sim" || true)
say "apt install ./$debname in the bare root would install: $(awk '{ printf "%s ", $2 }' <<<"$inst")"
check "apt would install keyward itself" grep -q '^Inst keyward ' <<<"$inst"
others=$(grep -v '^Inst keyward ' <<<"$inst" || true)
not_debian=$(grep -Ev '^Inst [^ ]+ (\[[^]]*\] )?\([^ ]+ Debian(-Security)?:[^ ]+ ' <<<"$others" || true)
same "every other package apt would pull comes from Debian's archives" "" "$not_debian"

# 2. The test's own tools and user, then the file list to compare against.
in_root apt-get install -y -qq --no-install-recommends openssh-client systemd \
    >"$FRESH_WORK/tools.log" 2>&1 || {
    cat "$FRESH_WORK/tools.log" >&2
    die "could not install openssh-client and systemd in the fresh root"
}
in_root useradd --create-home --shell /bin/bash tester || die "useradd failed"

# Every path in the root with its type, but for the mounted file systems
# and apt's and dpkg's own state (package lists, the download cache, the
# status database and their logs), which installing anything changes.
file_list() {
    (cd "$root" && find . -xdev \
        \( -path ./proc -o -path ./sys -o -path ./dev \
        -o -path ./var/lib/apt -o -path ./var/cache/apt -o -path ./var/lib/dpkg \
        -o -path ./var/log/apt -o -path ./var/log/dpkg.log \) -prune \
        -o -printf '%y %p\n' | LC_ALL=C sort)
}
# The packages dpkg has installed (state "ii").
installed_packages() {
    # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
    in_root dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | LC_ALL=C sort
}
# The contents of /etc: a package script that edits a file there (a shell
# added to /etc/shells, a group) and leaves it edited changes no path.
etc_sums() {
    (cd "$root" && find ./etc -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum)
}
before=$(file_list)
etc_before=$(etc_sums)
packages_before=$(installed_packages)

# 3. The install, as the README says.
if in_root apt install -y -q "$debdir/$debname" >"$FRESH_WORK/install.log" 2>&1; then
    ok "apt install ./$debname"
else
    notok "apt install ./$debname"
    sed 's/^/#   /' "$FRESH_WORK/install.log"
fi
packages_after=$(installed_packages)
pulled=$(LC_ALL=C comm -13 <(echo "$packages_before") <(echo "$packages_after"))
say "installed: $(echo "$pulled" | tr '\n' ' ')"
simulated=$(awk '{ print $2 }' <<<"$inst" | LC_ALL=C sort)
same "everything apt installed was in the simulation's list (keyward and Debian's packages)" "" \
    "$(LC_ALL=C comm -23 <(echo "$pulled") <(echo "$simulated"))"

# Every file of docs/ (debian/keyward.docs ships the folder): the pages and
# what they show, such as the soak run's plot the README links to.
docs=()
for f in "$repo"/docs/*; do
    [ -f "$f" ] || continue
    docs+=("/usr/share/doc/keyward/docs/$(basename "$f")")
done
expected=$(printf '%s\n' \
    /usr/bin/keyward-agent /usr/bin/keyward-probe /usr/bin/keyward-relay \
    /usr/libexec/keyward/keyward-pkcs11-helper /usr/libexec/keyward/keyward-sk-helper \
    /usr/share/man/man1/keyward-agent.1.gz /usr/share/man/man1/keyward-probe.1.gz \
    /usr/share/man/man1/keyward-relay.1.gz \
    /usr/lib/systemd/user/keyward-agent.socket /usr/lib/systemd/user/keyward-agent.service \
    /usr/share/doc/keyward/README.md /usr/share/doc/keyward/copyright \
    /usr/share/doc/keyward/changelog "${docs[@]}" | LC_ALL=C sort)
# The files (not the directories) dpkg installed; dh_compress decides which
# documents are big enough to be gzipped, so .gz is taken off for the
# comparison (the manual pages must be gzipped: their names above say so).
installed=$(in_root dpkg -L keyward | while read -r p; do
    [ -d "$root$p" ] || echo "$p"
done | sed -E 's#^(/usr/share/doc/keyward/.*)\.gz$#\1#' | LC_ALL=C sort || true)
same "dpkg -L keyward: exactly the programs, manual pages, user units and documents" "$expected" "$installed"
for p in keyward-agent keyward-probe keyward-relay; do
    check "/usr/bin/$p is executable" test -x "$root/usr/bin/$p"
done
same "keyward-agent --version is the package's version" "keyward-agent $version" \
    "$(in_root keyward-agent --version 2>&1 | head -n 1)"
check "the copyright file is machine-readable (DEP-5)" \
    grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$' \
    "$root/usr/share/doc/keyward/copyright"

# 4. A session as a normal user: the agent from /usr/bin, the tools from
# openssh-client. The private key is deleted once the agent has it, so the
# signature can only come from the agent.
as_tester() {
    chroot --userspec=tester:tester --groups=tester "$root" /usr/bin/env -i \
        HOME=/home/tester USER=tester LOGNAME=tester SHELL=/bin/bash LANG=C.UTF-8 \
        PATH=/usr/bin:/bin "$@"
}
# shellcheck disable=SC2016 # expanded by the user's shell in the root
session='
set -euo pipefail
trap '\''echo "# failed: $BASH_COMMAND (line $LINENO)"'\'' ERR
work=$(mktemp -d "$HOME/deb-test.XXXXXX")
cd "$work"
eval "$(keyward-agent -s)"
echo "# agent pid $SSH_AGENT_PID, socket $SSH_AUTH_SOCK"
# (the agent makes itself undumpable, so its /proc/PID/exe is root'"'"'s to read)
[ "$(command -v keyward-agent)" = /usr/bin/keyward-agent ]
[ "$(cat "/proc/$SSH_AGENT_PID/comm")" = keyward-agent ]
test -S "$SSH_AUTH_SOCK"
ssh-keygen -q -t ed25519 -N "" -C tester@keyward-deb -f key
ssh-add key 2>&1
ssh-add -l | grep -q " tester@keyward-deb (ED25519)$"
rm key
echo "signed by keyward from the Debian package" >message
ssh-keygen -Y sign -f key.pub -n file message 2>&1
echo "tester@keyward-deb $(cut -d " " -f 1,2 key.pub)" >allowed_signers
ssh-keygen -Y verify -f allowed_signers -I tester@keyward-deb -n file -s message.sig <message
if echo "another message" | ssh-keygen -Y verify -f allowed_signers -I tester@keyward-deb \
        -n file -s message.sig >/dev/null 2>&1; then
    echo "# the signature verified for another message"
    exit 1
fi
pid=$SSH_AGENT_PID sock=$SSH_AUTH_SOCK
eval "$(keyward-agent -k)"
for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
    echo "# the agent still runs after keyward-agent -k"
    exit 1
fi
test ! -e "$sock"
# The socket was a fresh name in ~/.ssh/agent, as OpenSSH 10.1+ puts it;
# the directory stays (other agents share it). The tester had no ~/.ssh:
# it goes again, so that the root is as before the install.
case $sock in "$HOME"/.ssh/agent/s.*) ;; *) echo "# socket $sock is not in ~/.ssh/agent"; exit 1 ;; esac
[ "$(stat -c %a "$HOME/.ssh/agent")" = 700 ]
rm -rf "$HOME/.ssh"
# The units, as the user manager would read them.
mkdir -m 700 xdg
XDG_RUNTIME_DIR=$work/xdg systemd-analyze verify --user --man=no \
    /usr/lib/systemd/user/keyward-agent.socket /usr/lib/systemd/user/keyward-agent.service \
    >units.out 2>&1
if [ -s units.out ]; then
    sed "s/^/# systemd-analyze: /" units.out
    exit 1
fi
cd /
rm -rf "$work"
'
if as_tester bash -c "$session" >"$FRESH_WORK/session.log" 2>&1; then
    ok "as a user: keyward-agent -s, ssh-add, ssh-keygen -Y sign through the agent, -Y verify, keyward-agent -k; systemd-analyze verify --user accepts the units"
else
    notok "as a user: keyward-agent -s, ssh-add, ssh-keygen -Y sign through the agent, -Y verify, keyward-agent -k; systemd-analyze verify --user accepts the units"
fi
sed 's/^/#   /' "$FRESH_WORK/session.log"

# 5. The units' contents.
units=$root/usr/lib/systemd/user
check "keyward-agent.socket is installed" test -f "$units/keyward-agent.socket"
same "keyward-agent.service starts /usr/bin/keyward-agent" "ExecStart=/usr/bin/keyward-agent -D" \
    "$(grep '^ExecStart=' "$units/keyward-agent.service" 2>&1)"
same "keyward-agent.socket listens on %t/keyward/agent.sock" "ListenStream=%t/keyward/agent.sock" \
    "$(grep '^ListenStream=' "$units/keyward-agent.socket" 2>&1)"
check "the units are not enabled for every user (no /etc/systemd/user links)" \
    test -z "$(find "$root/etc/systemd/user" -name 'keyward*' 2>/dev/null)"

# 6. Purge, and the libraries keyward pulled in with it.
if in_root apt purge -y -q keyward >"$FRESH_WORK/purge.log" 2>&1 &&
    in_root apt autoremove --purge -y -q >>"$FRESH_WORK/purge.log" 2>&1; then
    ok "apt purge keyward; apt autoremove --purge"
else
    notok "apt purge keyward; apt autoremove --purge"
    sed 's/^/#   /' "$FRESH_WORK/purge.log"
fi
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
status=$(in_root dpkg-query -W -f='${Status}' keyward 2>/dev/null || true)
case $status in
    "" | *" not-installed") ok "dpkg: keyward is not installed (${status:-unknown})" ;;
    *) notok "dpkg: keyward is not installed (status: $status)" ;;
esac
same "the packages are those before the install" "$packages_before" \
    "$(installed_packages)"
same "no file named keyward is left (but the .deb)" "" \
    "$(cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ".$debdir" \
        -o -path ./var/lib/apt -o -path ./var/cache/apt -o -path ./var/lib/dpkg \) -prune \
        -o -iname '*keyward*' -print)"
same "the root's files are those before the install (apt's and dpkg's state apart)" "$before" "$(file_list)"
same "the files in /etc have the contents they had before the install" "$etc_before" "$(etc_sums)"

finish
