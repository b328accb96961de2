#!/usr/bin/env bash
# Sequential read benchmark: `cat` of a large file through the mount versus `fdfs download`
# of the same file in the same run (this machine is noisy: only the ratio means something),
# plus the peak RSS of fdfsfs while reading.
#   scripts/bench-read.sh [SIZE_MIB]   (default 512)
#   READ_AHEAD_KB=N: write N to the mount's bdi read_ahead_kb after mounting (compare settings);
#   MOUNT_OPTS=...: extra -o options for fdfsfs.
set -uo pipefail
size_mib=${1:-512}
FDFS_BUILD_CONFIG=${FDFS_BUILD_CONFIG:-release}
source "$(dirname "$0")/lib.sh"

start_devserver || exit 1
head -c $((size_mib * 1048576)) /dev/urandom >"$WORK/big.bin"
id=$("$FDFS" --tracker "$TRACKER" upload "$WORK/big.bin" --ext bin) || exit 1
rm -f "$WORK/big.bin"
mnt="$WORK/mnt"; mkdir -p "$mnt"
"$FDFSFS" "$TRACKER" "$mnt" -f -o state_dir="$WORK/state"${MOUNT_OPTS:+,$MOUNT_OPTS} >"$WORK/fdfsfs.log" 2>&1 &
fs_pid=$!; CLEANUP_PIDS+=("$fs_pid")
for _ in $(seq 1 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { echo "mount failed"; cat "$WORK/fdfsfs.log"; exit 1; }
stat "$mnt" >/dev/null   # returns once FUSE_INIT is answered
bdi=/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb
[ -n "${READ_AHEAD_KB:-}" ] && echo "$READ_AHEAD_KB" >"$bdi"
echo "bdi read_ahead_kb: $(cat "$bdi" 2>/dev/null || echo '?')"

now() { date +%s.%N; }
mibps() { python3 -c "print(f'{$size_mib/($2-$1):.1f}')"; }
cpu() { awk '{print $14 + $15}' /proc/$fs_pid/stat; }   # utime + stime, clock ticks
cpu0=$(cpu)
results=()
for round in 1 2 3; do
    # Drop the page cache (the mounted file's cached pages, so cat really reads through fdfsfs),
    # then warm the devserver's copy of the file with an untimed download: both timed runs then
    # read from a server whose file is in memory, as the baseline otherwise would be and the
    # mount would not.
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    "$FDFS" --tracker "$TRACKER" download "$id" - >/dev/null
    t0=$(now); "$FDFS" --tracker "$TRACKER" download "$id" - >/dev/null; t1=$(now)
    t2=$(now); cat "$mnt/$id" >/dev/null; t3=$(now)
    base=$(mibps "$t0" "$t1"); ours=$(mibps "$t2" "$t3")
    ratio=$(python3 -c "print(f'{$ours/$base:.2f}')")
    echo "round $round: fdfs download ${base} MiB/s, cat through mount ${ours} MiB/s, ratio ${ratio}"
    results+=("$ratio")
done
hwm=$(awk '/VmHWM/{print $2}' /proc/$fs_pid/status)
echo "fdfsfs CPU: $(python3 -c "print(f'{($(cpu) - $cpu0) / $(getconf CLK_TCK) / 3:.2f}')") s per ${size_mib} MiB read"
echo "median ratio (mount / fdfs download): $(printf '%s\n' "${results[@]}" | sort -n | sed -n 2p)"
echo "fdfsfs peak RSS: $((hwm / 1024)) MiB for a ${size_mib} MiB file"
fusermount3 -u "$mnt"
