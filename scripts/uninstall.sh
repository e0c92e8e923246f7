#!/usr/bin/env bash
# `make uninstall`: removes exactly the files that the last `make install`
# (cmake --install) of this build listed in its install_manifest.txt, under
# $DESTDIR if it is set (the manifest holds the paths without it, so give
# uninstall the DESTDIR that install was given). Directories are left alone.
#
#     DESTDIR=/tmp/stage scripts/uninstall.sh build/install_manifest.txt
#
# Exit status: 0 when every listed file is gone (also when it was already),
# 1 when the manifest is missing or a file could not be removed.
set -u

manifest=${1:-}
if [ -z "$manifest" ] || [ $# -ne 1 ]; then
    echo "usage: $0 INSTALL_MANIFEST" >&2
    exit 1
fi
if [ ! -f "$manifest" ]; then
    echo "uninstall: $manifest not found: nothing was installed from this build" >&2
    exit 1
fi

status=0
while IFS= read -r path || [ -n "$path" ]; do
    [ -n "$path" ] || continue
    case $path in
        /*) ;;
        *)
            echo "uninstall: not an absolute path, left alone: $path" >&2
            status=1
            continue
            ;;
    esac
    target=${DESTDIR:-}$path
    if [ -e "$target" ] || [ -L "$target" ]; then
        if rm -f -- "$target"; then
            echo "-- Removed: $target"
        else
            status=1
        fi
    else
        echo "-- Not installed: $target"
    fi
done <"$manifest"
exit "$status"
