#!/usr/bin/env bash
# Sequential write benchmark: `cp` of a large file into the mount versus `fdfs upload` of the same
# file in the same run (this machine is noisy: only the ratio means something; median of 3 rounds),
# the bytes sent for a 4 KiB in-place edit (dd conv=notrunc,fsync) in the middle of that file, and
# the peak RSS (VmHWM) of fdfsfs.
#   scripts/bench-write.sh [SIZE_MIB]   (default 512; release build, FDFS_BUILD_CONFIG to change)
# Root and /dev/fuse needed. The run re-executes itself in a private network namespace
# (unshare -n) so the loopback counters of /proc/net/dev count only this benchmark's traffic.
set -uo pipefail
size_mib=${1:-512}
if [ -z "${FDFS_BENCH_NETNS:-}" ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
    exec env FDFS_BENCH_NETNS=1 unshare -n -- bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
FDFS_BUILD_CONFIG=${FDFS_BUILD_CONFIG:-release}
source "$(dirname "$0")/lib.sh"
[ -n "${FDFS_BENCH_NETNS:-}" ] && echo "(private network namespace: loopback counters are this benchmark's only)" \
    || echo "(no unshare/ip: loopback counters include other traffic on this machine)"

start_devserver || exit 1
f() { "$FDFS" --tracker "$TRACKER" "$@"; }
head -c $((size_mib * 1048576)) /dev/urandom >"$WORK/big.bin"
mnt="$WORK/mnt"; mkdir -p "$mnt"
"$FDFSFS" "$TRACKER" "$mnt" -f -o state_dir="$WORK/state" >"$WORK/fdfsfs.log" 2>&1 &
fs_pid=$!; CLEANUP_PIDS+=("$fs_pid")
for _ in $(seq 1 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { echo "mount failed"; cat "$WORK/fdfsfs.log"; exit 1; }

now() { date +%s.%N; }
mibps() { python3 -c "print(f'{$size_mib/($2-$1):.1f}')"; }
results=()
for round in 1 2 3; do
    t0=$(now); id=$(f upload "$WORK/big.bin" --ext bin) || { echo "fdfs upload failed"; exit 1; }; t1=$(now)
    f delete "$id" >/dev/null
    rm -f "$mnt/bench.bin"
    t2=$(now); cp "$WORK/big.bin" "$mnt/bench.bin" || { echo "cp into the mount failed"; exit 1; }; t3=$(now)
    base=$(mibps "$t0" "$t1"); ours=$(mibps "$t2" "$t3")
    ratio=$(python3 -c "print(f'{$ours/$base:.2f}')")
    echo "round $round: fdfs upload ${base} MiB/s, cp into the mount ${ours} MiB/s, ratio ${ratio}"
    results+=("$ratio")
done
cmp -s "$WORK/big.bin" "$mnt/bench.bin" || echo "WARNING: the copied file does not read back identical"
echo "median ratio (cp into mount / fdfs upload): $(printf '%s\n' "${results[@]}" | sort -n | sed -n 2p)"

# Bytes sent for a 4 KiB in-place edit: loopback bytes during the edit minus an idle interval.
lo_bytes() { awk -F'[: ]+' '$2=="lo"{print $3}' /proc/net/dev; }
sleep 1
i0=$(lo_bytes); sleep 3; i1=$(lo_bytes); idle=$((i1 - i0))
head -c 4096 /dev/urandom >"$WORK/patch"
mid=$(( size_mib * 256 / 2 ))   # the middle, in 4 KiB blocks
e0=$(lo_bytes); t0=$(now)
dd if="$WORK/patch" of="$mnt/bench.bin" bs=4096 seek="$mid" conv=notrunc,fsync status=none || echo "WARNING: the in-place edit failed"
sleep 2
e1=$(lo_bytes); t1=$(now)
edit=$(python3 -c "print(max(0, round(($e1 - $e0) - $idle * ($t1 - $t0) / 3)))")
dd if="$WORK/patch" of="$WORK/big.bin" bs=4096 seek="$mid" conv=notrunc status=none
cmp -s "$WORK/big.bin" "$mnt/bench.bin" && ok="reads back correctly" || ok="DOES NOT read back correctly"
echo "4 KiB in-place edit of the ${size_mib} MiB file: $edit bytes on loopback (both directions, with TCP/IP headers; idle baseline $idle bytes per 3 s subtracted); the file $ok"

hwm=$(awk '/VmHWM/{print $2}' /proc/$fs_pid/status)
echo "fdfsfs peak RSS: $((hwm / 1024)) MiB after writing a ${size_mib} MiB file 3 times"
fusermount3 -u "$mnt"
