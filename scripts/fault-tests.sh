#!/usr/bin/env bash
# The fault matrix (issue 9), through a real kernel mount against fdfs-devserver with two
# storages in group1 and replication lag, the devserver behaving like the real V6.16.1 tracker
# and storages (QUERY_UPDATE hands out any writable storage while the source is down, replicas
# lag, replication towards a restarted storage resumes only after a heartbeat delay).
#
# Each scenario runs ROUNDS times (default 2; the source outage 4 times, the table of issue 9):
#   1. the source storage of a file being written stopped for 10 s, then started again;
#   2. the replica stopped mid-write, then started again;
#   3. the source storage stalled (accepts, never answers) for longer than network_timeout;
#   4. the tracker stopped while many files are copied in, then started again;
#   5. fdfsfs killed with SIGKILL mid-copy, then remounted;
#   6. the source storage stopped mid-read of a normal file (the read moves to the replica) and
#      of an appender file (the read must not use the lagging replica: correct bytes or EIO).
# Each asserts: every file whose close returned success (and, once the storage is back, every
# file whose close failed and was retried in the background) is in FastDFS byte for byte on
# EVERY storage of the group once replication has caught up (downloaded from each storage
# directly with `fdfs download --storage`), a failed close says EIO or ENOSPC (never ENOENT),
# and the mount stays up.
# Root and /dev/fuse required (fails otherwise: never skips). Prints PASS/FAIL lines and a final
# "N passed, M failed". DEVSERVER_ARGS=--storage-ids (or --trunk) runs it in that server mode.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then fail "fault tests need root and /dev/fuse"; summary; exit 1; fi
chmod 755 "$WORK"
ROUNDS=${ROUNDS:-2}
OUTAGE_ROUNDS=${OUTAGE_ROUNDS:-4}
T0=$(date +%s); TS=$T0
section() { local now; now=$(date +%s); echo "--- $* (previous section $((now - TS)) s)"; TS=$now; }

start_devserver --storages-per-group 2 --replication-lag 0.5 --sync-resume-delay 2 \
    || { fail "devserver start"; summary; exit 1; }
ctl() { "$DEVSERVER" control "$DEVSERVER_CONTROL" "$@"; }
f() { "$FDFS" --tracker "$TRACKER" "$@"; }
MNT="$WORK/mnt"; STATE="$WORK/state"; mkdir -p "$MNT" "$STATE"
mount_it() {
    "$FDFSFS" "$TRACKER" "$MNT" -o "state_dir=$STATE,attr_timeout=0,entry_timeout=0,fileinfo_cache=0,connect_timeout=2,network_timeout=3,log=$WORK/fdfsfs.log"
}
fs_pid() { cat "$STATE/fdfsfs.pid" 2>/dev/null; }
track_pid() { local p; p=$(fs_pid); [ -n "$p" ] && CLEANUP_PIDS+=("$p"); }
wait_gone() { for _ in $(seq 1 "${2:-300}"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
fid() { getfattr --absolute-names --only-values -n user.fdfs.file_id "$1" 2>/dev/null; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
mount_up() { stat "$MNT/fault" >/dev/null 2>&1 && mountpoint -q "$MNT"; }

# storage_of ID: the devserver name (group1/storageN) of the file's source storage, from the
# source the id carries (IP, or storage id mapped through the devserver's storage-id lines).
storage_of() {
    local src
    src=$(f --json info "$1" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)["source"]
print(s.get("storage_id") or s.get("ip") or "")')
    [ -n "$src" ] || return 1
    awk -v s="$src" '
        $1=="storage" { n[$2]++; split($NF, a, ":"); ip[a[1]] = $2 "/storage" n[$2] }
        $1=="storage-id" { id[$2] = $3 "/storage" (++m[$3]) }
        END { if (s in id) print id[s]; else if (s in ip) print ip[s]; else exit 1 }' "$WORK/devserver.out"
}
# other_storage NAME: the other storage of group1.
other_storage() { [ "$1" = group1/storage1 ] && echo group1/storage2 || echo group1/storage1; }
# every_storage_sha ID: "sha sha" as downloaded from each storage directly.
every_storage_sha() {
    local out=() s
    for s in "${STORAGES[@]}"; do out+=("$(f download "$1" - --storage "$s" 2>/dev/null | sha256sum | cut -d' ' -f1)"); done
    echo "${out[*]}"
}
# wait_drained: until fdfsfs status lists nothing staged (the background retry finished).
wait_drained() {
    for _ in $(seq 1 "${1:-240}"); do
        "$FDFSFS" status "$STATE" 2>/dev/null | grep -q '^no staged writes' && return 0
        sleep 0.5
    done
    "$FDFSFS" status "$STATE" >&2; return 1
}
# expect_everywhere NAME FILE SRC: FILE's id holds SRC's bytes on every storage, and the mount too.
expect_everywhere() {
    local name=$1 file=$2 src=$3 id want got
    want=$(sha "$src")
    id=$(fid "$file")
    if [ -z "$id" ]; then fail "$name: $file has no file id"; return; fi
    ctl wait-replication 180 >/dev/null 2>&1 || fail "$name: replication did not catch up within 180 s"
    got=$(every_storage_sha "$id")
    local all_ok=1 s
    for s in $got; do [ "$s" = "$want" ] || all_ok=0; done
    if [ $all_ok = 1 ]; then pass "$name: $(basename "$file") is byte for byte on every storage (${#STORAGES[@]})"
    else fail "$name: $(basename "$file") ($id) differs on a storage: want $want, got $got"; fi
    drop_caches
    check_eq "$name: $(basename "$file") reads back right through the mount" "$want" "$(sha "$file" 2>/dev/null)"
}
# expect_close_errno NAME RESULT: a writer's result line is "ok" or "error ERRNO_NAME ...".
expect_close_result() {
    local name=$1 result=$2
    case "$result" in
        ok*) pass "$name: close returned success" ;;
        "error EIO"*|"error ENOSPC"*) pass "$name: close failed with a retryable error ($result)" ;;
        *) fail "$name: close ended with '$result' (only success, EIO or ENOSPC are right; never ENOENT)" ;;
    esac
}

# writer.py DEST SRC PROGRESS RESULT PACE: writes SRC into DEST 1 MiB at a time (PACE seconds
# between writes), PROGRESS holds the bytes acknowledged, RESULT "ok" or "error ERRNO message"
# after fsync + close.
cat >"$WORK/writer.py" <<'PYEOF'
import errno, os, sys, time
dest, src, progress, result, pace = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
data = open(src, "rb").read()
def say(path, text):
    with open(path + ".tmp", "w") as fh: fh.write(text)
    os.rename(path + ".tmp", path)
acked = 0
try:
    fd = os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    while acked < len(data):
        acked += os.write(fd, data[acked:acked + (1 << 20)])
        say(progress, str(acked))
        time.sleep(pace)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    say(result, "ok")
except OSError as e:
    say(result, f"error {errno.errorcode.get(e.errno, e.errno)} {e.strerror}")
PYEOF
# start_writer NAME DEST SRC PACE: runs writer.py in the background (WRITER_PID, files $WORK/NAME.*).
start_writer() {
    rm -f "$WORK/$1.progress" "$WORK/$1.result"
    python3 "$WORK/writer.py" "$2" "$3" "$WORK/$1.progress" "$WORK/$1.result" "$4" >"$WORK/$1.out" 2>&1 &
    WRITER_PID=$!
}
# wait_progress NAME BYTES: until the writer acknowledged BYTES (or ended).
wait_progress() {
    for _ in $(seq 1 1200); do
        [ "$(cat "$WORK/$1.progress" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
        [ -f "$WORK/$1.result" ] && return 1
        sleep 0.05
    done
    return 1
}
# wait_id FILE: until the file being written has a FastDFS id (its appender was created).
wait_id() { for _ in $(seq 1 600); do [ -n "$(fid "$1")" ] && return 0; sleep 0.05; done; return 1; }
# begin_write SCENARIO TAG DEST SRC PACE BYTES: starts a writer and waits until BYTES are
# acknowledged and the file has an id; sets `src` to its source storage. Fails the scenario and
# returns 1 when that does not happen.
begin_write() {
    start_writer "$2" "$3" "$4" "$5"
    if ! wait_progress "$2" "$6" || ! wait_id "$3"; then
        fail "$1: the writer did not get going: $(cat "$WORK/$2.out" "$WORK/$2.result" 2>/dev/null)"; return 1
    fi
    src=$(storage_of "$(fid "$3")") || { fail "$1: cannot tell the source storage of $(fid "$3")"; return 1; }
}

check "mount against fdfs-devserver with two storages (${DEVSERVER_ARGS:-IP mode})" mount_it
track_pid
mkdir -p "$MNT/fault"
head -c $((200 << 20)) /dev/urandom >"$WORK/big.src"
head -c $((64 << 20)) /dev/urandom >"$WORK/mid.src"

# --- 1. the source storage stopped mid-write for 10 s (the table of issue 9) -------------------------
section "1. source storage stopped mid-write, then started again"
for round in $(seq 1 "$OUTAGE_ROUNDS"); do
    name="source outage $round"; dest="$MNT/fault/outage-$round.bin"
    begin_write "$name" "w$round" "$dest" "$WORK/big.src" 0.01 $((24 << 20)) || continue
    ctl stop-storage "$src" >/dev/null
    sleep 10
    ctl start-storage "$src" >/dev/null
    wait_gone "$WRITER_PID" 1800 || { kill -9 "$WRITER_PID"; fail "$name: the writer hung for 3 minutes after the storage returned"; }
    expect_close_result "$name" "$(cat "$WORK/w$round.result" 2>/dev/null)"
    check "$name: the background retry finishes (nothing left staged)" wait_drained
    expect_everywhere "$name" "$dest" "$WORK/big.src"
    check "$name: the mount is up" mount_up
done

# --- 2. the replica stopped mid-write -----------------------------------------------------------------
section "2. replica stopped mid-write, then started again"
for round in $(seq 1 "$ROUNDS"); do
    name="replica outage $round"; dest="$MNT/fault/replica-$round.bin"
    begin_write "$name" "r$round" "$dest" "$WORK/mid.src" 0.02 $((12 << 20)) || continue
    replica=$(other_storage "$src")
    ctl stop-storage "$replica" >/dev/null
    wait_gone "$WRITER_PID" 1800 || { kill -9 "$WRITER_PID"; fail "$name: the writer hung"; }
    result=$(cat "$WORK/r$round.result" 2>/dev/null)
    case "$result" in ok*) pass "$name: writing to the source went on while the replica was down" ;;
        *) fail "$name: close failed while only the replica was down: $result" ;; esac
    ctl start-storage "$replica" >/dev/null
    check "$name: nothing left staged" wait_drained
    expect_everywhere "$name" "$dest" "$WORK/mid.src"
    check "$name: the mount is up" mount_up
done

# --- 3. the source storage stalled longer than network_timeout (3 s here) ------------------------------
section "3. source storage stalled longer than network_timeout"
for round in $(seq 1 "$ROUNDS"); do
    name="stall $round"; dest="$MNT/fault/stall-$round.bin"
    begin_write "$name" "s$round" "$dest" "$WORK/mid.src" 0.02 $((12 << 20)) || continue
    handle=$(ctl fault "$src:stall")
    sleep 6
    ctl clear-fault "$handle" >/dev/null || ctl clear-faults >/dev/null
    wait_gone "$WRITER_PID" 1800 || { kill -9 "$WRITER_PID"; fail "$name: the writer hung after the stall ended"; }
    expect_close_result "$name" "$(cat "$WORK/s$round.result" 2>/dev/null)"
    check "$name: nothing left staged" wait_drained
    expect_everywhere "$name" "$dest" "$WORK/mid.src"
    check "$name: the mount is up" mount_up
done

# --- 4. the tracker stopped while many files are copied in ----------------------------------------------
section "4. tracker stopped mid-copy of many files"
cat >"$WORK/many.py" <<'PYEOF'
import errno, os, sys, time
srcdir, destdir, log = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(destdir, exist_ok=True)
with open(log, "w") as out:
    for name in sorted(os.listdir(srcdir)):
        data = open(os.path.join(srcdir, name), "rb").read()
        try:
            fd = os.open(os.path.join(destdir, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            out.write(f"{name} ok\n")
        except OSError as e:
            out.write(f"{name} error {errno.errorcode.get(e.errno, e.errno)} {e.strerror}\n")
        out.flush()
        time.sleep(0.05)
PYEOF
mkdir -p "$WORK/many"
for i in $(seq -w 1 40); do head -c $((RANDOM * 8 + 1)) /dev/urandom >"$WORK/many/f$i.bin"; done
head -c $((6 << 20)) /dev/urandom >"$WORK/many/f-big.bin"
for round in $(seq 1 "$ROUNDS"); do
    name="tracker outage $round"; dest="$MNT/fault/many-$round"
    python3 "$WORK/many.py" "$WORK/many" "$dest" "$WORK/many-$round.log" >"$WORK/many-$round.out" 2>&1 &
    mp=$!
    for _ in $(seq 1 600); do [ "$( (wc -l <"$WORK/many-$round.log") 2>/dev/null || echo 0)" -ge 10 ] && break; sleep 0.05; done
    ctl stop-tracker >/dev/null
    sleep 4
    ctl start-tracker >/dev/null
    wait_gone "$mp" 1800 || { kill -9 "$mp"; fail "$name: the copier hung"; }
    bad=$(grep -v ' ok$' "$WORK/many-$round.log" | grep -vE ' error (EIO|ENOSPC) ' || true)
    if [ -z "$bad" ]; then pass "$name: every close succeeded or failed with EIO/ENOSPC ($(grep -c ' error ' "$WORK/many-$round.log") failed while the tracker was down)"
    else fail "$name: closes ended wrongly: $bad"; fi
    check "$name: nothing left staged" wait_drained
    ctl wait-replication 180 >/dev/null 2>&1
    wrong=0
    for s in "$WORK"/many/*; do
        b=$(basename "$s"); id=$(fid "$dest/$b"); want=$(sha "$s")
        for got in $(every_storage_sha "$id"); do [ "$got" = "$want" ] || { wrong=$((wrong + 1)); echo "  $b ($id): $got" >&2; }; done
    done
    check_eq "$name: all $(ls "$WORK/many" | wc -l) files byte for byte on every storage" 0 "$wrong"
    check "$name: the mount is up" mount_up
done

# --- 5. fdfsfs killed with SIGKILL mid-copy -------------------------------------------------------------
section "5. fdfsfs killed with SIGKILL mid-copy, remounted"
for round in $(seq 1 "$ROUNDS"); do
    name="SIGKILL $round"; dest="$MNT/fault/kill-$round.bin"; done_file="$MNT/fault/kill-done-$round.bin"
    cp "$WORK/mid.src" "$done_file"; check "$name: a file closed before the kill" test -s "$done_file"
    start_writer "k$round" "$dest" "$WORK/mid.src" 0.02
    wait_progress "k$round" $((20 << 20)) || fail "$name: the writer did not get going"
    kill -9 "$(fs_pid)"
    wait_gone "$WRITER_PID" 300 || kill -9 "$WRITER_PID"
    acked=$(cat "$WORK/k$round.progress" 2>/dev/null || echo 0)
    fusermount3 -uz "$MNT" 2>/dev/null
    check "$name: remount" mount_it
    track_pid
    check "$name: the staged writes are completed" wait_drained
    expect_everywhere "$name" "$done_file" "$WORK/mid.src"
    ok=$(python3 - "$dest" "$WORK/mid.src" "$acked" <<'PYEOF'
import sys
try: got = open(sys.argv[1], "rb").read()
except OSError as e: print(f"unreadable: {e}"); sys.exit()
src = open(sys.argv[2], "rb").read()
print("ok" if len(got) >= int(sys.argv[3]) and src[:len(got)] == got else f"{len(got)} bytes, prefix: {src[:len(got)] == got}")
PYEOF
)
    check_eq "$name: the file being written holds every acknowledged byte ($acked)" ok "$ok"
    id=$(fid "$dest"); ctl wait-replication 180 >/dev/null 2>&1
    want=$(head -c "$(stat -c %s "$dest")" "$WORK/mid.src" | sha256sum | cut -d' ' -f1)
    same=1; for got in $(every_storage_sha "$id"); do [ "$got" = "$want" ] || same=0; done
    check_eq "$name: ...and every storage holds the same bytes" 1 "$same"
done

# --- 6. the source storage stopped mid-read ---------------------------------------------------------------
section "6. source storage stopped mid-read (normal file: moves to the replica; appender: never the lagging copy)"
cat >"$WORK/reader.py" <<'PYEOF'
import errno, hashlib, os, sys, time
path, progress, result = sys.argv[1], sys.argv[2], sys.argv[3]
h, n = hashlib.sha256(), 0
try:
    with open(path, "rb", buffering=0) as fh:
        while True:
            b = fh.read(1 << 20)
            if not b: break
            h.update(b); n += len(b)
            with open(progress, "w") as p: p.write(str(n))
            time.sleep(0.01)
    open(result, "w").write(f"ok {n} {h.hexdigest()}")
except OSError as e:
    open(result, "w").write(f"error {errno.errorcode.get(e.errno, e.errno)} {n}")
PYEOF
for round in $(seq 1 "$ROUNDS"); do
    name="read failover $round"
    id=$(f upload "$WORK/big.src") || { fail "$name: upload"; continue; }
    ctl wait-replication 180 >/dev/null 2>&1
    src=$(storage_of "$id")
    drop_caches
    rm -f "$WORK/rd$round.progress" "$WORK/rd$round.result"
    t=$(date +%s.%N)
    python3 "$WORK/reader.py" "$MNT/$id" "$WORK/rd$round.progress" "$WORK/rd$round.result" &
    rp=$!
    for _ in $(seq 1 600); do [ "$(cat "$WORK/rd$round.progress" 2>/dev/null || echo 0)" -ge $((16 << 20)) ] && break; sleep 0.05; done
    ctl stop-storage "$src" >/dev/null
    wait_gone "$rp" 1200 || { kill -9 "$rp"; fail "$name: the reader hung"; }
    secs=$(python3 -c "print(f'{$(date +%s.%N)-$t:.1f}')")
    check_eq "$name: a normal file read while its source stops: every byte right (${secs} s)" "ok $((200 << 20)) $(sha "$WORK/big.src")" "$(cat "$WORK/rd$round.result" 2>/dev/null)"
    # Another file, read while that storage is still down (uploaded to the live one): no
    # per-request wait on the dead storage. (No wait-replication here: it cannot finish while
    # a storage is stopped.)
    id2=$(f upload "$WORK/mid.src" 2>/dev/null)
    if [ -n "$id2" ]; then
        t=$(date +%s.%N); got=$(sha "$MNT/$id2"); secs=$(python3 -c "print(f'{$(date +%s.%N)-$t:.1f}')")
        check_eq "$name: another file read after the failover (${secs} s for 64 MiB)" "$(sha "$WORK/mid.src")" "$got"
    fi
    ctl start-storage "$src" >/dev/null
    sleep 1

    # An appender file (written through the mount): with its source down, only correct bytes or EIO.
    dest="$MNT/fault/appender-read-$round.bin"
    cp "$WORK/mid.src" "$dest" && ctl wait-replication 180 >/dev/null 2>&1
    asrc=$(storage_of "$(fid "$dest")")
    drop_caches
    rm -f "$WORK/ra$round.progress" "$WORK/ra$round.result"
    python3 "$WORK/reader.py" "$dest" "$WORK/ra$round.progress" "$WORK/ra$round.result" &
    rp=$!
    for _ in $(seq 1 600); do [ "$(cat "$WORK/ra$round.progress" 2>/dev/null || echo 0)" -ge $((8 << 20)) ] && break; sleep 0.05; done
    ctl stop-storage "$asrc" >/dev/null
    wait_gone "$rp" 1200 || { kill -9 "$rp"; fail "$name: the appender reader hung"; }
    r=$(cat "$WORK/ra$round.result" 2>/dev/null)
    case "$r" in
        "ok $((64 << 20)) $(sha "$WORK/mid.src")") pass "$name: appender file read complete and right (read ahead before the stop)" ;;
        "error EIO "*) pass "$name: appender file read with its source down: EIO, never the replica's copy ($r)" ;;
        *) fail "$name: appender file read with its source down ended with '$r'" ;;
    esac
    ctl start-storage "$asrc" >/dev/null
    check "$name: the mount is up" mount_up
done

echo "fault tests took $(( $(date +%s) - T0 )) s"
summary
