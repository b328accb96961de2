#!/usr/bin/env bash
# Installs everything fdfsfs needs to build, mount and test on a fresh Debian machine.
# Idempotent: safe to run again. Run as root (or with sudo available).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
for pkg in libfuse3-dev fuse3 attr pkg-config libsqlite3-dev python3-venv rsync e2fsprogs; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Python venv with the third-party client used for interoperability tests.
if [ "${FDFS_SKIP_PYTHON:-0}" != 1 ]; then
    if [ ! -x "$here/.venv/bin/python" ]; then
        python3 -m venv "$here/.venv"
    fi
    if ! "$here/.venv/bin/python" -c 'import fdfs_client' >/dev/null 2>&1; then
        "$here/.venv/bin/pip" install -q py3fdfs >/dev/null
    fi
fi
