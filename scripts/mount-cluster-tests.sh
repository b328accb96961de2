#!/usr/bin/env bash
# fdfsfs against a real protocol peer (fdfs-devserver): files uploaded by other clients (`fdfs`,
# py3fdfs) read by file id, a 512 MiB file read through the mount with peak RSS bounded, xattrs
# checked with `fdfs meta get`, df against the tracker's numbers, and a storage that dies during a
# read (EIO, the mount stays up, and recovers when the storage is back).
# Root and /dev/fuse required. Prints PASS/FAIL lines and a final "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then fail "mount tests need root and /dev/fuse"; summary; exit 1; fi
PY="$root/.venv/bin/python"
BIG_MIB=${BIG_MIB:-512}
RSS_BOUND_MIB=${RSS_BOUND_MIB:-200}

start_devserver || { fail "devserver start"; summary; exit 1; }
f() { "$FDFS" --tracker "$TRACKER" "$@"; }
MNT="$WORK/mnt"; STATE="$WORK/state"; mkdir -p "$MNT" "$STATE"
mount_it() { "$FDFSFS" "$TRACKER" "$MNT" -o "state_dir=$STATE,groups_cache=0,fileinfo_cache=0,attr_timeout=0${1:+,$1}"; }
check "mount against fdfs-devserver" mount_it
fs_pid=$(cat "$STATE/fdfsfs.pid" 2>/dev/null); CLEANUP_PIDS+=("$fs_pid")

# --- files uploaded by other clients, read by id -------------------------------------------------
head -c 3000000 /dev/urandom >"$WORK/ours.bin"
id=$(f upload "$WORK/ours.bin" --ext bin --meta origin=fdfs)
check_eq "fdfs upload read by id through the mount (sha256)" "$(sha "$WORK/ours.bin")" "$(sha "$MNT/$id")"
check_eq "size of a normal file by id" "3000000" "$(stat -c %s "$MNT/$id")"
aid=$(printf 'appender data' | f upload - --appender --ext log)
check_eq "appender uploaded by fdfs read by id" "appender data" "$(cat "$MNT/$aid")"
printf ' more' | f append "$aid" - >/dev/null
sid=$(printf 'slave' | f upload-slave - --master "$id" --prefix _s --ext txt)
check_eq "slave file read by id" "slave" "$(cat "$MNT/$sid")"
if [ -x "$PY" ]; then
    head -c 500000 /dev/urandom >"$WORK/py.bin"
    pid=$("$PY" - "${TRACKER%:*}" "${TRACKER##*:}" "$WORK/py.bin" <<'PYEOF'
import sys
from fdfs_client.client import Fdfs_client
c = Fdfs_client({'host_tuple': (sys.argv[1],), 'port': int(sys.argv[2]), 'timeout': 30, 'name': 'Tracker Pool'})
r = c.upload_by_buffer(open(sys.argv[3], 'rb').read(), file_ext_name='bin')
v = r['Remote file_id']; print(v.decode() if isinstance(v, bytes) else v)
PYEOF
)
    check_eq "py3fdfs upload read by id through the mount (sha256)" "$(sha "$WORK/py.bin")" "$(sha "$MNT/$pid")"
else
    fail "py3fdfs venv missing at $root/.venv (run scripts/install-deps.sh)"
fi

# --- xattrs against fdfs meta get ----------------------------------------------------------------
check_eq "getfattr shows metadata set by fdfs" "fdfs" "$(getfattr --absolute-names --only-values -n user.origin "$MNT/$id" 2>&1)"
setfattr -n user.color -v blue "$MNT/$id"
check_eq "setfattr is visible to fdfs meta get (merged)" "$(printf 'color=blue\norigin=fdfs')" "$(f meta get "$id" | sort)"
setfattr -x user.origin "$MNT/$id"
check_eq "setfattr -x is visible to fdfs meta get" "color=blue" "$(f meta get "$id")"
check_contains "getfattr -d lists the metadata" 'user.color="blue"' "$(getfattr -d "$MNT/$id" 2>&1)"
check_eq "user.fdfs.file_id" "$id" "$(getfattr --absolute-names --only-values -n user.fdfs.file_id "$MNT/$id" 2>&1)"
check_fails "oversize xattr value is refused" setfattr -n user.big -v "$(head -c 300 /dev/zero | tr '\0' v)" "$MNT/$id"
check_eq "nothing was stored for the refused value" "color=blue" "$(f meta get "$id")"

# --- df equals the tracker's numbers -------------------------------------------------------------
read -r t_total t_free < <(f --json groups | python3 -c "import json,sys; g=json.load(sys.stdin)['groups']; print(sum(x['total_mb'] for x in g), sum(x['free_mb'] for x in g))")
m_total=$(( $(stat -f -c '%b*%S' "$MNT" | bc) / 1048576 ))
m_free=$(( $(stat -f -c '%f*%S' "$MNT" | bc) / 1048576 ))
check_eq "df total equals the tracker's total_mb" "$t_total" "$m_total"
if [ $(( m_free - t_free )) -le 64 ] && [ $(( t_free - m_free )) -le 64 ]; then pass "df free matches the tracker's free_mb ($m_free vs $t_free MiB)"; else fail "df free $m_free MiB vs tracker $t_free MiB"; fi

# --- 512 MiB through the mount with bounded memory ------------------------------------------------
head -c $((BIG_MIB << 20)) /dev/urandom >"$WORK/big.bin"
big=$(f upload "$WORK/big.bin" --ext bin)
expected=$(sha "$WORK/big.bin"); rm -f "$WORK/big.bin"
sync; echo 3 >/proc/sys/vm/drop_caches
rss_before=$(awk '/VmRSS/{print $2}' "/proc/$fs_pid/status")
check_eq "${BIG_MIB} MiB file read through the mount matches (sha256)" "$expected" "$(sha "$MNT/$big")"
hwm=$(( $(awk '/VmHWM/{print $2}' "/proc/$fs_pid/status") / 1024 ))
if [ "$hwm" -lt "$RSS_BOUND_MIB" ]; then pass "fdfsfs peak RSS ${hwm} MiB < ${RSS_BOUND_MIB} MiB while reading ${BIG_MIB} MiB"; else fail "fdfsfs peak RSS ${hwm} MiB >= ${RSS_BOUND_MIB} MiB (RSS before: $((rss_before / 1024)) MiB)"; fi

# --- a storage that dies during a read ------------------------------------------------------------
storage_port=${STORAGES[0]##*:}; tracker_port=${TRACKER##*:}
"$PY" - "$MNT/$big" >"$WORK/slowread.out" 2>&1 <<'PYEOF' &
import sys, time, errno
try:
    with open(sys.argv[1], 'rb', buffering=0) as fh:
        while fh.read(1 << 20):
            time.sleep(0.05)
    print("completed")
except OSError as e:
    print("errno", e.errno)
PYEOF
reader=$!
sleep 1.5
sync; echo 3 >/proc/sys/vm/drop_caches
stop_devserver
wait "$reader"
check_eq "a read fails with EIO when the storage dies mid-read" "errno 5" "$(cat "$WORK/slowread.out")"
check "the mount stays up with the cluster down" ls "$MNT"
check_fails "reading an uncached file with the cluster down fails" cat "$MNT/$aid"
check_contains "... with EIO, not a hang or a crash" "Input/output error" "$(cat "$WORK/last.err")"
"$DEVSERVER" --data "$DEVSERVER_DATA" --tracker-port "$tracker_port" --storage-port "$storage_port" >"$WORK/devserver2.out" 2>&1 &
DEVSERVER_PID=$!; CLEANUP_PIDS+=("$DEVSERVER_PID")
for _ in $(seq 1 100); do grep -q '^ready' "$WORK/devserver2.out" && break; sleep 0.1; done
check_eq "reads work again once the storage is back" "appender data more" "$(cat "$MNT/$aid")"
check "unmount" umount "$MNT"

summary
