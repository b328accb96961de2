#!/usr/bin/env bash
# Installs, builds and mounts fdfsfs in one command.
#   scripts/quickstart.sh [SOURCE] [MOUNTPOINT]
# SOURCE: a client.conf path or HOST:PORT[,HOST:PORT...] of trackers. Without it,
# /etc/fdfs/client.conf is used when it exists; otherwise a local fdfs-devserver is started
# (data in /var/lib/fdfsfs/devserver, tracker 127.0.0.1:22122) and mounted.
# MOUNTPOINT defaults to /mnt/fdfs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source_arg=${1:-}
mountpoint=${2:-/mnt/fdfs}

FDFS_SKIP_PYTHON=1 bash "$root/scripts/install-deps.sh"
echo "quickstart: building (release) and installing…" >&2
bash "$root/scripts/install.sh"

if [ -z "$source_arg" ]; then
    if [ -f /etc/fdfs/client.conf ]; then
        source_arg=/etc/fdfs/client.conf
    else
        data=/var/lib/fdfsfs/devserver
        mkdir -p "$data"
        if ! (exec 3<>/dev/tcp/127.0.0.1/22122) 2>/dev/null; then
            echo "quickstart: no /etc/fdfs/client.conf; starting a local fdfs-devserver (data: $data)" >&2
            nohup fdfs-devserver --data "$data" --tracker-port 22122 --storage-port 23000 \
                >/var/log/fdfs-devserver.log 2>&1 &
            for _ in $(seq 1 100); do grep -q '^ready' /var/log/fdfs-devserver.log 2>/dev/null && break; sleep 0.1; done
        fi
        source_arg=127.0.0.1:22122
    fi
fi
mkdir -p "$mountpoint"
fdfsfs "$source_arg" "$mountpoint"
echo "quickstart: $source_arg mounted on $mountpoint (unmount with: umount $mountpoint)" >&2
