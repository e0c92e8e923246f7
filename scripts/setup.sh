#!/usr/bin/env bash
# Installs what keyward needs to build and test on Debian 12, and nothing
# more: each package only if it is missing, so a prepared machine does no
# network work at all. Run as root (CI and `make` do this for you).
set -euo pipefail

packages=(
    # build
    gcc make cmake pkg-config libssl-dev libuv1-dev
    # the real OpenSSH tools the end-to-end tests drive
    openssh-client openssh-server
    # Windows build and tests; socat runs keyward-relay.exe as README's WSL2
    # recipe does (tests/win/relay_stdio.sh)
    gcc-mingw-w64-x86-64 wine64 socat
    # process tools used by tests: pkill and ps, prlimit and setpriv
    # (util-linux), strace and gdb (hostile-client tests), systemd's
    # systemd-socket-activate, mandoc (manual page lint)
    procps util-linux strace gdb systemd mandoc man-db
    # the unit suite under memcheck (valgrind_unit_* tests)
    valgrind
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run as root, or install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
