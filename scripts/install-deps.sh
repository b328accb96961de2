#!/usr/bin/env bash
# Installs everything fdfsfs needs to build, mount and test on a fresh Debian machine.
# Idempotent: safe to run again. Run as root (or with sudo available).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
# postgresql, postgresql-client: the private servers of the PostgreSQL naming-engine tests and
# of scripts/bench-meta.sh (initdb + pg_ctl from /usr/lib/postgresql/N/bin; see start_postgres
# in scripts/lib.sh). The cluster Debian creates is never started or used.
for pkg in libfuse3-dev fuse3 attr pkg-config libsqlite3-dev python3-venv rsync e2fsprogs postgresql postgresql-client; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${need[*]}" >&2
    # No service may start while installing (postgresql's postinst would start its cluster; in a
    # container that fails or leaves a server running): a policy-rc.d refusing every start, for
    # the length of the install, unless the machine has one already.
    policy=/usr/sbin/policy-rc.d; own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy" && own_policy=1
    fi
    $SUDO apt-get update -qq
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; then
        # A postinst that fails (a service that cannot start in a container) leaves the package
        # unconfigured but its files in place: finish what can be finished, then judge by what
        # is installed.
        DEBIAN_FRONTEND=noninteractive $SUDO dpkg --configure -a >/dev/null 2>&1 || true
    fi
    [ "$own_policy" = 1 ] && $SUDO rm -f "$policy"
    missing=()
    for pkg in "${need[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] || { echo "install-deps: could not install ${missing[*]}" >&2; exit 1; }
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || { echo "install-deps: postgresql is installed but no /usr/lib/postgresql/*/bin/initdb" >&2; exit 1; }

# Python venv with the third-party client used for interoperability tests.
if [ "${FDFS_SKIP_PYTHON:-0}" != 1 ]; then
    if [ ! -x "$here/.venv/bin/python" ]; then
        python3 -m venv "$here/.venv"
    fi
    if ! "$here/.venv/bin/python" -c 'import fdfs_client' >/dev/null 2>&1; then
        "$here/.venv/bin/pip" install -q py3fdfs >/dev/null
    fi
fi
