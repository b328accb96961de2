#!/usr/bin/env bash
# Small-file benchmark (issue 12): the per-file cost of create + write + close, read, stat, touch
# through the mount, against the same work done with py3fdfs from one Python process and on a
# local ext4 directory, in the same run (only ratios mean something on a noisy machine).
#   scripts/bench-small.sh [TRACKER HOST:PORT]   (default: a local fdfs-devserver it starts)
#   FILES=1000 SIZE=4096 WRITERS=8 FDFS_BUILD_CONFIG=release
# Prints one line per measurement and the ratios the issue's targets are stated in:
#   cp -r of FILES files of SIZE bytes:  py3fdfs time / fdfsfs time      (target >= 3)
#   cat of them, cold kernel cache:      py3fdfs time / fdfsfs time      (target >= 1)
#   WRITERS writers at once (xargs -P):  1-writer time / WRITERS-writer time (target >= 3)
# Root and /dev/fuse needed.
set -uo pipefail
FDFS_BUILD_CONFIG=${FDFS_BUILD_CONFIG:-release}
source "$(dirname "$0")/lib.sh"
FILES=${FILES:-1000}; SIZE=${SIZE:-4096}; WRITERS=${WRITERS:-8}
PY="$root/.venv/bin/python"
[ -x "$PY" ] || { bash "$root/scripts/install-deps.sh" >/dev/null; }
[ -x "$PY" ] || { echo "py3fdfs venv missing at $root/.venv" >&2; exit 1; }

# Loop-mounted ext4 images (with their journal, as a server's disk would have) for the dev server's
# data and for the ext4 side, so the comparison does not depend on what /tmp is: this VM's root
# ext4 has no journal, and there every file create scans the inodes freed in the last seconds
# (ext4's recently_deleted), which made each dev server upload cost up to a millisecond more.
ext4_mount() { # IMAGE DIR
    truncate -s 2G "$1" && mkfs.ext4 -q -F "$1" && mkdir -p "$2" && mount -o loop "$1" "$2"
}
trap 'umount "$WORK/ext4" "$WORK/server-disk" 2>/dev/null; cleanup' EXIT
if [ -n "${1:-}" ]; then TRACKER=$1; else
    ext4_mount "$WORK/server-disk.img" "$WORK/server-disk" || { echo "cannot mount an ext4 image"; exit 1; }
    DEVSERVER_DATA="$WORK/server-disk/data"
    start_devserver --storages-per-group 2 || exit 1
fi
echo "tracker $TRACKER; $FILES files of $SIZE bytes; $WRITERS writers; $FDFS_BUILD_CONFIG build"
MNT="$WORK/mnt"; STATE="$WORK/state"; mkdir -p "$MNT" "$STATE"
"$FDFSFS" "$TRACKER" "$MNT" -o "state_dir=$STATE,log=$WORK/fdfsfs.log" || { echo "mount failed"; exit 1; }
CLEANUP_PIDS+=("$(cat "$STATE/fdfsfs.pid")")
ext4_mount "$WORK/ext4.img" "$WORK/ext4" || { echo "cannot mount an ext4 image"; exit 1; }

# The py3fdfs baseline with TCP_NODELAY: py3fdfs writes a request's header and body separately,
# and without it each request can wait 40 ms for a delayed ACK; this makes it as fast as it can be.
cat >"$WORK/nodelay.py" <<'PYEOF'
import socket
_create = socket.create_connection
def _nodelay(*a, **k):
    s = _create(*a, **k)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
socket.create_connection = _nodelay
PYEOF
export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
SRC="$WORK/src"; mkdir -p "$SRC"
python3 - "$SRC" "$FILES" "$SIZE" <<'PYEOF'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    with open(f"{d}/f{i:06d}.bin", "wb") as fh: fh.write(os.urandom(size))
PYEOF
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.3f}')"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

# --- create + write + close: cp -r ----------------------------------------------------------------
drop_caches; t0=$(now); cp -r "$SRC" "$MNT/tree"; t1=$(now); fs_cp=$(secs "$t0" "$t1")
drop_caches; t0=$(now); cp -r "$SRC" "$WORK/ext4/tree"; sync -f "$WORK/ext4/tree"; t1=$(now); ext4_cp=$(secs "$t0" "$t1")
py_up=$("$PY" - "${TRACKER%:*}" "${TRACKER##*:}" "$SRC" "$WORK/py-ids" <<'PYEOF'
import nodelay  # noqa: F401 (see $WORK/nodelay.py)
import os, sys, time
from fdfs_client.client import Fdfs_client
c = Fdfs_client({'host_tuple': (sys.argv[1],), 'port': int(sys.argv[2]), 'timeout': 30, 'name': 'Tracker Pool'})
names = sorted(os.listdir(sys.argv[3]))
t = time.monotonic()
ids = [c.upload_by_filename(os.path.join(sys.argv[3], n))['Remote file_id'] for n in names]
print(f"{time.monotonic() - t:.3f}")
open(sys.argv[4], "wb").write(b"\n".join(ids))
PYEOF
)
# The server's own floor: the same files uploaded over one kept connection with one tracker query
# in all (raw protocol, no client library). No client that waits for each upload before the next,
# as close(2) must, can take less per file than this round trip; py3fdfs's time over it bounds
# the cp -r ratio that any such client can reach against this server.
floor=$("$PY" - "${TRACKER%:*}" "${TRACKER##*:}" "$SRC" <<'PYEOF'
import nodelay  # noqa: F401 (see $WORK/nodelay.py)
import os, socket, struct, sys, time
def recvn(s, k):
    b = b''
    while len(b) < k:
        c = s.recv(k - len(b))
        if not c: raise EOFError
        b += c
    return b
def req(s, cmd, body):
    s.sendall(struct.pack('>QBB', len(body), cmd, 0) + body)
    ln, _, st = struct.unpack('>QBB', recvn(s, 10))
    body = recvn(s, ln)
    if st: sys.exit(f"status {st}")
    return body
t = socket.create_connection((sys.argv[1], int(sys.argv[2])))
b = req(t, 101, b'')   # QUERY_STORE_WITHOUT_GROUP_ONE
ip = b[16:31].rstrip(b'\0').decode(); port = struct.unpack('>Q', b[31:39])[0]; spi = b[39]
s = socket.create_connection((ip, port))
files = [open(os.path.join(sys.argv[3], n), 'rb').read() for n in sorted(os.listdir(sys.argv[3]))]
t0 = time.monotonic()
for d in files: req(s, 11, bytes([spi]) + struct.pack('>Q', len(d)) + b'bin'.ljust(6, b'\0') + d)   # UPLOAD_FILE
print(f"{time.monotonic() - t0:.3f}")
PYEOF
)
diff -r "$SRC" "$MNT/tree" >/dev/null || echo "WARNING: the copied tree differs"
echo "cp -r of $FILES files: fdfsfs ${fs_cp} s ($(python3 -c "print(int($FILES/$fs_cp))") files/s), py3fdfs upload loop ${py_up} s, ext4 ${ext4_cp} s"
echo "  ratio py3fdfs/fdfsfs (target >= 3): $(ratio "$py_up" "$fs_cp");  ext4/fdfsfs: $(ratio "$ext4_cp" "$fs_cp")"
echo "  server floor: the same uploads over one kept connection ${floor} s; so no client waiting for each upload beats py3fdfs by more than $(ratio "$py_up" "$floor")x here"

# --- read back, cold kernel cache ---------------------------------------------------------------------
umount "$MNT" && sleep 1 && "$FDFSFS" "$TRACKER" "$MNT" -o "state_dir=$STATE,log=$WORK/fdfsfs.log" && CLEANUP_PIDS+=("$(cat "$STATE/fdfsfs.pid")")
drop_caches; t0=$(now); cat "$MNT"/tree/* >/dev/null; t1=$(now); fs_cat=$(secs "$t0" "$t1")
drop_caches; t0=$(now); cat "$WORK"/ext4/tree/* >/dev/null; t1=$(now); ext4_cat=$(secs "$t0" "$t1")
py_dl=$("$PY" - "${TRACKER%:*}" "${TRACKER##*:}" "$WORK/py-ids" <<'PYEOF'
import nodelay  # noqa: F401 (see $WORK/nodelay.py)
import sys, time
from fdfs_client.client import Fdfs_client
c = Fdfs_client({'host_tuple': (sys.argv[1],), 'port': int(sys.argv[2]), 'timeout': 30, 'name': 'Tracker Pool'})
ids = open(sys.argv[3], "rb").read().split(b"\n")
t = time.monotonic()
for i in ids: c.download_to_buffer(i)
print(f"{time.monotonic() - t:.3f}")
PYEOF
)
echo "cat of $FILES files (cold): fdfsfs ${fs_cat} s, py3fdfs download loop ${py_dl} s, ext4 ${ext4_cat} s"
echo "  ratio py3fdfs/fdfsfs (target >= 1): $(ratio "$py_dl" "$fs_cat")"

# --- per file from a shell loop: touch, cp, stat (cold) -------------------------------------------------
loop() { # DIR COUNT COMMAND-TEMPLATE: average ms per iteration of a shell loop (process start included)
    local t0 t1
    t0=$(now); for i in $(seq 1 "$2"); do eval "$3"; done; t1=$(now)
    python3 -c "print(f'{($t1-$t0)*1000/$2:.2f}')"
}
mkdir -p "$MNT/loop" "$WORK/ext4/loop"
one="$SRC/f000000.bin"
for side in fdfsfs ext4; do
    d=$MNT/loop; [ $side = ext4 ] && d=$WORK/ext4/loop
    t_touch=$(loop "$d" 200 'touch "$d/t$i"')
    t_cp=$(loop "$d" 200 'cp "$one" "$d/c$i"')
    [ $side = fdfsfs ] && { umount "$MNT" && sleep 1 && "$FDFSFS" "$TRACKER" "$MNT" -o "state_dir=$STATE,log=$WORK/fdfsfs.log" && CLEANUP_PIDS+=("$(cat "$STATE/fdfsfs.pid")"); }
    drop_caches
    t_stat=$(loop "$d" 200 'stat "$d/c$i" >/dev/null')
    echo "shell loop, per file on $side: touch ${t_touch} ms, cp of $SIZE B ${t_cp} ms, stat (cold) ${t_stat} ms"
done
t_true=$(loop "$WORK" 200 '/bin/true')
echo "  (a shell loop pays ${t_true} ms per process start)"

# --- several writers at once ----------------------------------------------------------------------------
par() { # N: seconds for N writers (xargs -P N) copying the FILES files into a fresh directory
    local d="$MNT/par$1"; mkdir -p "$d"
    local t0 t1; t0=$(now)
    ls "$SRC" | xargs -P "$1" -n 25 sh -c 'for f; do cp "'"$SRC"'/$f" "'"$d"'/$f"; done' sh
    t1=$(now); secs "$t0" "$t1"
}
# Busy CPU time of the whole machine (all processes, kernel included), in clock ticks: shows
# whether the writers wait (idle CPUs) or the machine is saturated.
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
util() { python3 -c "print(f'{($2 - $1) / $(getconf CLK_TCK) / ($3 * $(nproc)) * 100:.0f}% of $(nproc) CPUs, {($2 - $1) / $(getconf CLK_TCK) * 1000 / $FILES:.2f} CPU-ms per file')"; }
# CPU of one process in clock ticks (user + system), and the split per file of fdfsfs and the
# dev server (when this script started it): where the machine's CPU goes.
pcpu() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
FSPID=$(cat "$STATE/fdfsfs.pid"); DSPID=${DEVSERVER_PID:-}
split() { python3 -c "t=$(getconf CLK_TCK); print(f'fdfsfs {($2-$1)/t*1000/$FILES:.2f}, dev server {($4-$3)/t*1000/$FILES:.2f} CPU-ms per file')"; }
f0=$(pcpu "$FSPID"); d0=$(pcpu "$DSPID"); b0=$(busy); p1=$(par 1); b1=$(busy); f1=$(pcpu "$FSPID"); d1=$(pcpu "$DSPID")
pn=$(par "$WRITERS"); b2=$(busy); f2=$(pcpu "$FSPID"); d2=$(pcpu "$DSPID")
echo "$FILES files by 1 writer: ${p1} s (machine busy $(util "$b0" "$b1" "$p1")); by $WRITERS writers at once: ${pn} s (busy $(util "$b1" "$b2" "$pn"))"
echo "  of that: 1 writer: $(split "$f0" "$f1" "$d0" "$d1"); $WRITERS writers: $(split "$f1" "$f2" "$d1" "$d2")"
echo "  ratio 1-writer/$WRITERS-writers (target >= 3): $(ratio "$p1" "$pn")"
hwm=$(awk '/VmHWM/{print $2}' "/proc/$(cat "$STATE/fdfsfs.pid")/status")
echo "fdfsfs peak RSS: $((hwm / 1024)) MiB"
umount "$MNT"
