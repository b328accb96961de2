#!/usr/bin/env bash
# Metadata benchmark (issue 11): the rate of create, stat (cold), rename and unlink of empty files
# from 1 process and from 4 processes at once, on a loop-mounted ext4 image, on fdfsfs with the
# default SQLite naming engine, and on fdfsfs with the PostgreSQL engine (-o meta=$PG_URL against
# a private server started here), all in the same run (only ratios mean something on a noisy
# machine); fdfsfs against a local fdfs-devserver.
#   scripts/bench-meta.sh          BENCH_META_N=10000 (files per measurement), FDFS_BUILD_CONFIG=release
# Each measurement handles N files: 1 process in one directory, or 4 processes at once, each in a
# directory of its own with N/4 files, timed from a common start until the last one ends. One
# Python process per worker loops over os.open+os.close / os.stat / os.rename / os.unlink, so
# process starts are not counted. "stat (cold)" follows a remount and a drop of the kernel caches.
# Prints a table in operations per second, the ratios PostgreSQL/SQLite, and whether the targets
# are met: PostgreSQL >= 0.5x SQLite for every operation, >= 1,000 creates/s from 4 processes.
# A benchmark, not a test: a missed target is reported, not an error. Root and /dev/fuse needed.
set -uo pipefail
FDFS_BUILD_CONFIG=${FDFS_BUILD_CONFIG:-release}
source "$(dirname "$0")/lib.sh"
N=${BENCH_META_N:-10000}
PROCS=4
N=$(( (N + PROCS - 1) / PROCS * PROCS ))   # a multiple of 4: the same files in both runs
OPS=(create stat rename unlink)

start_devserver || exit 1
echo "tracker $TRACKER; $N empty files per measurement; $FDFS_BUILD_CONFIG build"

# The per-operation loops: `metaops.py OP ROOT N PROCS` runs PROCS workers (forked, each in
# ROOT/dK with N/PROCS files), releases them together, prints the seconds until the last ends.
cat >"$WORK/metaops.py" <<'PYEOF'
import os, sys, time
op, root, n, procs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
per = n // procs
def work(d):
    if op == "create":
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
        for i in range(per): os.close(os.open(f"{d}/f{i}", flags, 0o644))
    elif op == "stat":
        for i in range(per): os.stat(f"{d}/f{i}")
    elif op == "rename":
        for i in range(per): os.rename(f"{d}/f{i}", f"{d}/r{i}")
    elif op == "unlink":
        for i in range(per): os.unlink(f"{d}/r{i}")
    else:
        raise SystemExit(f"unknown op {op}")
go_r, go_w = os.pipe()
children = []
for k in range(procs):
    d = f"{root}/d{k}"
    os.makedirs(d, exist_ok=True)
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.read(go_r, 1)   # returns when the parent closes its end: all start together
        try:
            work(d); os._exit(0)
        except OSError as e:
            print(f"{op} in {d}: {e}", file=sys.stderr); os._exit(1)
    children.append(pid)
os.close(go_r)
t = time.monotonic()
os.close(go_w)
ok = all(os.waitpid(pid, 0)[1] == 0 for pid in children)
elapsed = time.monotonic() - t
if not ok: raise SystemExit(1)
print(f"{elapsed:.6f}")
PYEOF

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# --- the three sides: mount and remount -----------------------------------------------------------
truncate -s 2G "$WORK/ext4.img" && mkfs.ext4 -q -F "$WORK/ext4.img" && mkdir -p "$WORK/ext4" \
    && mount -o loop "$WORK/ext4.img" "$WORK/ext4" || { echo "cannot mount an ext4 image"; exit 1; }
trap 'umount "$WORK/ext4" 2>/dev/null; cleanup' EXIT

pg_error=""
if ! start_postgres 2>"$WORK/pg.err"; then pg_error="cannot start PostgreSQL: $(head -c 300 "$WORK/pg.err" | tr '\n' ' ')"; fi

# mount_side SIDE: mounts SIDE's file system at $WORK/SIDE; prints an error and fails otherwise.
mount_side() {
    local side=$1 mnt="$WORK/$1" opts
    case $side in
        ext4) mount -o loop "$WORK/ext4.img" "$mnt"; return ;;
        sqlite) opts="state_dir=$WORK/state-sqlite,log=$WORK/fdfsfs-sqlite.log" ;;
        postgres) opts="state_dir=$WORK/state-postgres,log=$WORK/fdfsfs-postgres.log,meta=$PG_URL,meta_password_file=$PG_PASSWORD_FILE" ;;
    esac
    mkdir -p "$mnt"
    "$FDFSFS" "$TRACKER" "$mnt" -o "$opts" 2>"$WORK/mount-$side.err" || { head -1 "$WORK/mount-$side.err"; return 1; }
    CLEANUP_PIDS+=("$(cat "$WORK/state-$side/fdfsfs.pid")")
}
# unmount_side SIDE: unmounts and, for fdfsfs, waits for the daemon to end (its state is saved).
unmount_side() {
    local side=$1 pid=""
    [ "$side" = ext4 ] || pid=$(cat "$WORK/state-$side/fdfsfs.pid" 2>/dev/null)
    umount "$WORK/$side" || return 1
    if [ -n "$pid" ]; then
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}

# --- measurements -----------------------------------------------------------------------------------
declare -A RATE   # RATE[side,op,procs] = ops/s
measure() { # SIDE PROCS: the four phases on SIDE's mount, in a fresh directory
    local side=$1 procs=$2 root="$WORK/$1/p$2" op secs
    mkdir -p "$root"
    for op in "${OPS[@]}"; do
        if [ "$op" = stat ]; then   # cold: a fresh mount and no kernel caches
            unmount_side "$side" && drop_caches && mount_side "$side" >/dev/null || { echo "remount of $side failed" >&2; return 1; }
        fi
        secs=$(python3 "$WORK/metaops.py" "$op" "$root" "$N" "$procs") || { echo "$side: $op from $procs failed" >&2; return 1; }
        RATE[$side,$op,$procs]=$(python3 -c "print(round($N / $secs))")
    done
}

SIDES=(ext4 sqlite postgres)
declare -A UNAVAILABLE
for side in "${SIDES[@]}"; do
    if [ "$side" = postgres ] && [ -n "$pg_error" ]; then UNAVAILABLE[$side]=$pg_error; continue; fi
    if [ "$side" != ext4 ]; then
        if ! mount_side "$side" >"$WORK/mount.msg"; then UNAVAILABLE[$side]="mount failed: $(cat "$WORK/mount.msg")"; continue; fi
    fi
    for procs in 1 "$PROCS"; do measure "$side" "$procs" || UNAVAILABLE[$side]="measurement failed (see above)"; done
    [ "$side" = ext4 ] || unmount_side "$side"
done

# --- report ---------------------------------------------------------------------------------------------
echo
echo "operations per second, $N empty files per measurement (higher is better)"
printf '%-12s %5s %10s %10s %10s %11s\n' operation procs ext4 sqlite postgres "pg/sqlite"
get() { echo "${RATE[$1,$2,$3]:--}"; }
worst=""; worst_ratio=""
for procs in 1 "$PROCS"; do
    for op in "${OPS[@]}"; do
        e=$(get ext4 "$op" "$procs"); s=$(get sqlite "$op" "$procs"); p=$(get postgres "$op" "$procs"); r=-
        if [ "$s" != - ] && [ "$p" != - ]; then
            r=$(python3 -c "print(f'{$p/$s:.2f}')")
            if [ -z "$worst_ratio" ] || python3 -c "import sys; sys.exit(0 if $r < $worst_ratio else 1)"; then worst_ratio=$r; worst="$op from $procs"; fi
        fi
        label=$op; [ "$op" = stat ] && label="stat (cold)"
        printf '%-12s %5s %10s %10s %10s %11s\n' "$label" "$procs" "$e" "$s" "$p" "$r"
    done
done
for side in "${SIDES[@]}"; do
    [ -n "${UNAVAILABLE[$side]:-}" ] && echo "$side: engine not available (${UNAVAILABLE[$side]})"
done
if [ -n "${UNAVAILABLE[postgres]:-}" ] || [ -n "${UNAVAILABLE[sqlite]:-}" ]; then
    echo "target NOT met: PostgreSQL >= 0.5x SQLite for every operation (no measurement to compare)"
elif python3 -c "import sys; sys.exit(0 if $worst_ratio >= 0.5 else 1)"; then
    echo "target met: PostgreSQL >= 0.5x SQLite for every operation (lowest: ${worst_ratio}x, $worst)"
else
    echo "target NOT met: PostgreSQL >= 0.5x SQLite for every operation (lowest: ${worst_ratio}x, $worst)"
fi
pc=$(get postgres create "$PROCS")
if [ "$pc" = - ]; then
    echo "target NOT met: PostgreSQL >= 1,000 creates/s from $PROCS processes (no measurement)"
elif [ "$pc" -ge 1000 ]; then
    echo "target met: PostgreSQL >= 1,000 creates/s from $PROCS processes ($pc/s)"
else
    echo "target NOT met: PostgreSQL >= 1,000 creates/s from $PROCS processes ($pc/s)"
fi
