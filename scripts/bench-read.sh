#!/usr/bin/env bash
# Sequential read benchmark (issue 12): `cat` of a large file through the mount against two
# baselines in the same run (this machine is noisy: only ratios mean something):
#   - `fdfs download` of the same file from the same cluster (warm server copy, as for the mount);
#   - libfuse's own passthrough_ll example (Debian's libfuse3-dev ships its source; compiled here)
#     over a local copy of the file (warm local copy), i.e. the cost of FUSE itself.
# Each round drops the page cache, warms the server's and the local copy with an untimed read,
# then times the three reads in an order that rotates from round to round. Prints every round,
# the median ratios and the peak RSS and CPU of fdfsfs.
#   scripts/bench-read.sh [SIZE_MIB]   (default 1024)   ROUNDS=5
#   READ_AHEAD_KB=N: write N to the mount's bdi read_ahead_kb after mounting (compare settings);
#   MOUNT_OPTS=...: extra -o options for fdfsfs; STORAGES_PER_GROUP=2 (replicas to read from).
set -uo pipefail
size_mib=${1:-1024}
ROUNDS=${ROUNDS:-5}
FDFS_BUILD_CONFIG=${FDFS_BUILD_CONFIG:-release}
source "$(dirname "$0")/lib.sh"

# passthrough_ll, built from the example source Debian's libfuse3-dev ships.
pt_src=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
if [ ! -f "$pt_src" ]; then bash "$root/scripts/install-deps.sh" >/dev/null; fi
[ -f "$pt_src" ] || { echo "no $pt_src (libfuse3-dev)"; exit 1; }
cc -O2 -Wall -o "$WORK/passthrough_ll" "$pt_src" $(pkg-config --cflags --libs fuse3) \
    || { echo "cannot build passthrough_ll"; exit 1; }

start_devserver --storages-per-group "${STORAGES_PER_GROUP:-2}" || exit 1
local_dir="$WORK/local"; mkdir -p "$local_dir"
head -c $((size_mib * 1048576)) /dev/urandom >"$local_dir/big.bin"
id=$("$FDFS" --tracker "$TRACKER" upload "$local_dir/big.bin" --ext bin) || exit 1
# Let replication finish (a replica that lags would answer ENOENT and the read moves on).
sleep 2

mnt="$WORK/mnt"; mkdir -p "$mnt"
"$FDFSFS" "$TRACKER" "$mnt" -f -o state_dir="$WORK/state"${MOUNT_OPTS:+,$MOUNT_OPTS} >"$WORK/fdfsfs.log" 2>&1 &
fs_pid=$!; CLEANUP_PIDS+=("$fs_pid")
pt="$WORK/pt"; mkdir -p "$pt"
"$WORK/passthrough_ll" -f -o source="$local_dir" "$pt" >"$WORK/pt.log" 2>&1 &
CLEANUP_PIDS+=("$!")
for _ in $(seq 1 100); do mountpoint -q "$mnt" && mountpoint -q "$pt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { echo "mount failed"; cat "$WORK/fdfsfs.log"; exit 1; }
mountpoint -q "$pt" || { echo "passthrough_ll mount failed"; cat "$WORK/pt.log"; exit 1; }
stat "$mnt" "$pt" >/dev/null   # returns once FUSE_INIT is answered
bdi=/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb
[ -n "${READ_AHEAD_KB:-}" ] && echo "$READ_AHEAD_KB" >"$bdi"
echo "$size_mib MiB file, $ROUNDS rounds; fdfsfs bdi read_ahead_kb $(cat "$bdi" 2>/dev/null || echo '?'), passthrough_ll $(cat "/sys/class/bdi/$(mountpoint -d "$pt")/read_ahead_kb" 2>/dev/null || echo '?')"

now() { date +%s.%N; }
mibps() { python3 -c "print(f'{$size_mib/($2-$1):.1f}')"; }
cpu() { awk '{print $14 + $15}' /proc/$fs_pid/stat; }   # utime + stime, clock ticks
timed() { # NAME: MiB/s of one read
    local t0 t1
    case $1 in
        download) t0=$(now); "$FDFS" --tracker "$TRACKER" download "$id" - >/dev/null; t1=$(now) ;;
        mount) t0=$(now); cat "$mnt/$id" >/dev/null; t1=$(now) ;;
        passthrough) t0=$(now); cat "$pt/big.bin" >/dev/null; t1=$(now) ;;
    esac
    mibps "$t0" "$t1"
}
cpu0=$(cpu)   # only the timed mount reads go through fdfsfs
r_dl=(); r_pt=()
order=(download mount passthrough)
for round in $(seq 1 "$ROUNDS"); do
    # Cold kernel cache for the mounts; the server's and the local copy warm (untimed reads).
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    "$FDFS" --tracker "$TRACKER" download "$id" - >/dev/null
    cat "$local_dir/big.bin" >/dev/null
    declare -A got=()
    for k in 0 1 2; do
        name=${order[$(( (k + round) % 3 ))]}
        got[$name]=$(timed "$name")
    done
    a=$(python3 -c "print(f'{${got[mount]}/${got[download]}:.2f}')")
    b=$(python3 -c "print(f'{${got[mount]}/${got[passthrough]}:.2f}')")
    echo "round $round: mount ${got[mount]} MiB/s, fdfs download ${got[download]} MiB/s (ratio $a), passthrough_ll ${got[passthrough]} MiB/s (ratio $b)"
    r_dl+=("$a"); r_pt+=("$b")
    unset got
done
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
hwm=$(awk '/VmHWM/{print $2}' /proc/$fs_pid/status)
echo "fdfsfs CPU: $(python3 -c "print(f'{($(cpu) - $cpu0) / $(getconf CLK_TCK) / $ROUNDS:.2f}')") s per ${size_mib} MiB read"
echo "median ratio mount / fdfs download (target >= 1): $(median "${r_dl[@]}")"
echo "median ratio mount / passthrough_ll (target >= 1): $(median "${r_pt[@]}")"
echo "fdfsfs peak RSS: $((hwm / 1024)) MiB for a ${size_mib} MiB file"
fusermount3 -u "$mnt"; fusermount3 -u "$pt"
