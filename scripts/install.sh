#!/usr/bin/env bash
# Builds (release) and installs fdfsfs, fdfs, fdfs-devserver into /usr/local/bin and the mount
# helper mount.fdfsfs into /sbin (mount(8) looks for helpers there), so both fstab forms work:
#   SOURCE /mnt/fdfs fuse.fdfsfs _netdev,allow_other 0 0   (through mount.fuse3)
#   SOURCE /mnt/fdfs fdfsfs      _netdev,allow_other 0 0   (through mount.fdfsfs)
# Options: PREFIX (default /usr/local), SBIN (default /sbin), CONFIG (default release).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
SBIN=${SBIN:-/sbin}
CONFIG=${CONFIG:-release}
cd "$here"
products=(fdfsfs fdfs fdfs-devserver)
for p in "${products[@]}"; do swift build -c "$CONFIG" --product "$p"; done
bin=$(swift build -c "$CONFIG" --show-bin-path)
install -d "$PREFIX/bin" "$SBIN"
for p in "${products[@]}"; do
    [ -x "$bin/$p" ] && install -m 0755 "$bin/$p" "$PREFIX/bin/$p"
done
install -m 0755 scripts/mount.fdfsfs "$SBIN/mount.fdfsfs"
echo "installed: ${products[*]/#/$PREFIX/bin/} $SBIN/mount.fdfsfs"
