#!/usr/bin/env bash
# Two mounts sharing one named tree through PostgreSQL (issue 11), on the real kernel: two
# fdfsfs daemons with separate state directories (two hosts' worth), one private PostgreSQL
# (start_postgres), fdfs-devserver. The kernel's entry/attribute lifetimes are set to 60 s, so
# a change shows on the other mount within a second only through the change feed's
# invalidations, not by expiry. Prints PASS/FAIL per check and "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then fail "shared tests need root and /dev/fuse"; summary; exit 1; fi
chmod 755 "$WORK"
keep_logs() { mkdir -p /tmp/fdfsfs-shared-logs; cp "$WORK"/state-*/fdfsfs.log /tmp/fdfsfs-shared-logs/ 2>/dev/null; for f in "$WORK"/state-*/fdfsfs.log; do cp "$f" "/tmp/fdfsfs-shared-logs/$(basename "$(dirname "$f")").log"; done 2>/dev/null; }
trap 'keep_logs; cleanup' EXIT

start_postgres || { fail "private PostgreSQL starts"; summary; exit 1; }
start_devserver --groups 1 || { fail "fdfs-devserver starts"; summary; exit 1; }
A="$WORK/a"; B="$WORK/b"
mkdir -p "$A" "$B"
META="meta=$PG_URL,meta_password_file=$PG_PASSWORD_FILE"
OPTS="entry_timeout=60,attr_timeout=60,session_ttl=4,meta_timeout=3"
mount_a() { "$FDFSFS" "$TRACKER" "$A" -o "state_dir=$WORK/state-a,$META,$OPTS${1:+,$1}"; }
mount_b() { "$FDFSFS" "$TRACKER" "$B" -o "state_dir=$WORK/state-b,$META,$OPTS${1:+,$1}"; }
pid_of() { cat "$WORK/state-$1/fdfsfs.pid"; }

# within_1s NAME COMMAND...: the command succeeds within one second (polled every 50 ms).
within_1s() {
    local name=$1; shift
    local end=$(( $(date +%s%N) + 1000000000 ))
    while [ "$(date +%s%N)" -lt "$end" ]; do
        if "$@" >/dev/null 2>&1; then pass "$name"; return; fi
        sleep 0.05
    done
    fail "$name (not within 1 s)"
}

check "mount A (meta=postgres)" mount_a
check "mount B (meta=postgres, its own state dir)" mount_b
check "the password is not on the daemon's command line" bash -c "! grep -q \"$PG_PASSWORD\" /proc/$(pid_of a)/cmdline"
check "the password is not in the log" bash -c "! grep -q \"$PG_PASSWORD\" $WORK/state-a/fdfsfs.log"

# --- namespace changes, seen on the other mount within a second ---------------------------------
ls "$B" >/dev/null; stat "$B/new.txt" >/dev/null 2>&1   # B's kernel caches the miss
echo one > "$A/new.txt"
within_1s "a file created on A shows on B" test -f "$B/new.txt"
check_eq "its content on B" "one" "$(cat "$B/new.txt" 2>&1)"
mkdir "$A/dir"
within_1s "mkdir on A shows on B" test -d "$B/dir"
stat "$B/dir/moved.txt" >/dev/null 2>&1
mv "$A/new.txt" "$A/dir/moved.txt"
within_1s "rename on A: new name on B" test -f "$B/dir/moved.txt"
within_1s "rename on A: old name gone on B" test ! -e "$B/new.txt"
stat -c %a "$B/dir/moved.txt" >/dev/null
chmod 600 "$A/dir/moved.txt"
within_1s "chmod on A shows on B" bash -c "[ \"\$(stat -c %a '$B/dir/moved.txt')\" = 600 ]"
setfattr -n user.color -v blue "$A/dir/moved.txt"
within_1s "an xattr set on A reads on B" bash -c "getfattr --absolute-names --only-values -n user.color '$B/dir/moved.txt' 2>/dev/null | grep -qx blue"
ln -s dir/moved.txt "$A/sym"
within_1s "symlink on A shows on B" bash -c "[ \"\$(readlink '$B/sym')\" = dir/moved.txt ]"
ln "$A/dir/moved.txt" "$A/hard"
within_1s "hard link on A shows on B with 2 links" bash -c "[ \"\$(stat -c %h '$B/hard' 2>/dev/null)\" = 2 ]"
rm "$A/hard"
within_1s "unlink on A shows on B" test ! -e "$B/hard"
stat "$B/dir" >/dev/null
rmdir "$A/dir" 2>/dev/null; check_fails "rmdir of a non-empty directory fails on A" rmdir "$A/dir"

# --- atomic across mounts -------------------------------------------------------------------------
ok=0; exists=0
for i in $(seq 1 10); do
    ( set -o noclobber; echo a > "$A/race$i" ) 2>/dev/null & p1=$!
    ( set -o noclobber; echo b > "$B/race$i" ) 2>/dev/null & p2=$!
    wait $p1 && ok=$((ok + 1)) || exists=$((exists + 1))
    wait $p2 && ok=$((ok + 1)) || exists=$((exists + 1))
done
check_eq "10 exclusive creates of one name from both mounts: one wins each time" "10 10" "$ok $exists"
mkdir "$A/x" "$A/y"
within_1s "x and y show on B" test -d "$B/y"
# (Explicit targets: `mv B/y B/x/` renames y to x when A's move already took x away, which is
# no cycle.)
mv -T "$A/x" "$A/y/x" 2>/dev/null & p1=$!
mv -T "$B/y" "$B/x/y" 2>/dev/null & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
[ $((r1 + r2)) -gt 0 ] && [ $r1 -eq 0 -o $r2 -eq 0 ] && pass "directories moved into each other from two mounts: one fails" || fail "cross renames: $r1 $r2"
find "$A" -maxdepth 3 >/dev/null 2>&1 && pass "no cycle: the tree walks" || fail "the tree does not walk"

# --- close-to-open ------------------------------------------------------------------------------
echo first > "$A/c2o.txt"
within_1s "c2o.txt shows on B" test -f "$B/c2o.txt"
check_eq "B reads A's first version" "first" "$(cat "$B/c2o.txt")"
echo "second version, longer" > "$A/c2o.txt"
check_eq "after A's close, B's next open reads A's bytes (not its page cache)" "second version, longer" "$(cat "$B/c2o.txt")"
echo "from B" > "$B/c2o.txt"
check_eq "and the other way round" "from B" "$(cat "$A/c2o.txt")"
# Two writers open at once on the two mounts, closed one after the other: the last close wins
# whole.
exec 5>"$A/last.txt"; exec 6>"$B/last.txt"
echo "A's version, long" >&5; echo "B's" >&6
exec 5>&-; sleep 0.2; exec 6>&-
sleep 0.3
v=$(cat "$A/last.txt"); w=$(cat "$B/last.txt")
check_eq "two mounts writing one file: the last close wins whole (A's view)" "B's" "$v"
check_eq "two mounts writing one file: the last close wins whole (B's view)" "B's" "$w"
# Writers on the two mounts rewriting one existing file at the same instant (open O_TRUNC, write,
# close), 12 rounds: every close succeeds, and both mounts then read one writer's bytes whole.
cat >"$WORK/rewrite.py" <<'PYEOF'
import os, random, sys, time
path, byte, n, go = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), float(sys.argv[4])
time.sleep(max(0.0, go - time.time()))
with open(path, "wb") as f:
    f.write(byte * n)
    time.sleep(random.random() * 0.03)
PYEOF
# bytes.py FILE: its size and the distinct bytes it holds ("65536 a").
printf '%s\n' 'import sys' 'try: d = open(sys.argv[1], "rb").read()' 'except OSError as e: print(e); raise SystemExit' \
    'print(len(d), "".join(sorted(set(d.decode("latin-1")))))' >"$WORK/bytes.py"
printf 'first\n' > "$A/rewrite.txt"
within_1s "rewrite.txt shows on B" test -f "$B/rewrite.txt"
whole=0; bad=""
for i in $(seq 1 12); do
    go=$(python3 -c 'import time; print(time.time() + 0.3)')
    python3 "$WORK/rewrite.py" "$A/rewrite.txt" a 65536 "$go" 2>"$WORK/rw-a.err" & p1=$!
    python3 "$WORK/rewrite.py" "$B/rewrite.txt" b 98304 "$go" 2>"$WORK/rw-b.err" & p2=$!
    wait $p1; r1=$?; wait $p2; r2=$?
    sleep 0.3
    va=$(python3 "$WORK/bytes.py" "$A/rewrite.txt"); vb=$(python3 "$WORK/bytes.py" "$B/rewrite.txt")
    if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ "$va" = "$vb" ] && { [ "$va" = "65536 a" ] || [ "$va" = "98304 b" ]; }; then
        whole=$((whole + 1))
    else
        bad="round $i: closes $r1/$r2 ($(cat "$WORK/rw-a.err" "$WORK/rw-b.err" | tail -2 | tr '\n' ' ')), A [$va], B [$vb]"
    fi
done
check_eq "12 rounds of both mounts rewriting one file at once: closes succeed, one writer's bytes whole on both ${bad:+($bad)}" 12 "$whole"
# Edits in place (no O_TRUNC) on two mounts at once: A opens first and overwrites 5 MiB (a chunk
# goes to the server while A writes); B opens, edits 100 bytes at 7 MiB; A closes, then B. The
# last close (B's) wins whole: the original bytes and B's edit, none of A's.
python3 - "$A/edit.bin" "$B/edit.bin" <<'PYEOF' 2>"$WORK/edit.err"
import os, sys, time
a_path, b_path = sys.argv[1], sys.argv[2]
with open(a_path, "wb") as f: f.write(b"0" * (8 << 20))
for _ in range(50):
    if os.path.exists(b_path) and os.path.getsize(b_path) == 8 << 20: break
    time.sleep(0.05)
a = os.open(a_path, os.O_RDWR)
os.pwrite(a, b"a" * (5 << 20), 0)
time.sleep(1)
b = os.open(b_path, os.O_RDWR)
os.pwrite(b, b"b" * 100, 7 << 20)
os.close(a)
time.sleep(0.3)
os.close(b)
PYEOF
sleep 0.5
want=$(python3 -c 'import hashlib; d = bytearray(b"0" * (8 << 20)); d[7 << 20:(7 << 20) + 100] = b"b" * 100; print(hashlib.sha256(d).hexdigest())')
check_eq "edits in place from two mounts at once: the last close wins whole (A's view) $(head -c 200 "$WORK/edit.err")" "$want" "$(sha256sum <"$A/edit.bin" | cut -d' ' -f1)"
check_eq "edits in place from two mounts at once: the last close wins whole (B's view)" "$want" "$(sha256sum <"$B/edit.bin" | cut -d' ' -f1)"

# --- open on one, unlinked on the other -----------------------------------------------------------
echo "still here" > "$A/held.txt"
fid=$(getfattr --absolute-names --only-values -n user.fdfs.file_id "$A/held.txt" 2>/dev/null)
exec 7<"$A/held.txt"
within_1s "held.txt shows on B" test -f "$B/held.txt"
rm "$B/held.txt"
within_1s "unlinked on B: the name is gone on A" test ! -e "$A/held.txt"
check_eq "still readable through A's open descriptor" "still here" "$(cat <&7)"
check "its FastDFS file still exists while open" "$FDFS" --tracker "$TRACKER" info "$fid"
exec 7<&-
deleted() { ! "$FDFS" --tracker "$TRACKER" info "$fid" >/dev/null 2>&1; }
for _ in $(seq 1 50); do deleted && break; sleep 0.1; done
check "deleted from FastDFS after A's close" deleted

# --- locks across mounts --------------------------------------------------------------------------
echo lock > "$A/lock.txt"
within_1s "lock.txt shows on B" test -f "$B/lock.txt"
flock -x "$A/lock.txt" sleep 3 & holder=$!
sleep 0.5
check_fails "flock -n on B fails while A holds the flock" flock -n -x "$B/lock.txt" true
wait $holder
check "flock -n on B once A released it" flock -n -x "$B/lock.txt" true
python3 -c "
import fcntl, time, sys
f = open('$A/lock.txt', 'r+'); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0); time.sleep(3)" & holder=$!
sleep 0.5
fcntl_try() { python3 -c "
import fcntl, sys
f = open('$1', 'r+')
try: fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, ${2:-10}, ${3:-0})
except OSError: sys.exit(1)"; }
check_fails "fcntl lock on B conflicts with A's range" fcntl_try "$B/lock.txt"
check "fcntl lock of another range on B" fcntl_try "$B/lock.txt" 10 20
wait $holder
check "fcntl lock on B after A's holder exited" fcntl_try "$B/lock.txt"

# --- SIGKILL of a mount: its locks go when its session expires ----------------------------------
flock -x "$A/lock.txt" sleep 60 & holder=$!
sleep 0.5
check_fails "B cannot flock while A's process holds it" flock -n -x "$B/lock.txt" true
kill -9 "$(pid_of a)"; kill $holder 2>/dev/null
umount -l "$A" 2>/dev/null
released() { flock -n -x "$B/lock.txt" true; }
for _ in $(seq 1 40); do released && break; sleep 0.5; done
check "after SIGKILL of mount A, its flock is released when its session expires (session_ttl=4)" released
check "mount A again" mount_a
check_eq "A sees the tree again" "from B" "$(cat "$A/c2o.txt" 2>&1)"

# --- PostgreSQL stopped and restarted under both mounts -------------------------------------------
echo keep > "$A/before-outage.txt"
byid=$(getfattr --absolute-names --only-values -n user.fdfs.file_id "$A/before-outage.txt")
stop_postgres
start=$(date +%s)
check_fails "with PostgreSQL down, a create fails" touch "$A/during-outage"
took=$(( $(date +%s) - start ))
[ "$took" -le 10 ] && pass "…within a bounded time (${took}s)" || fail "a create with the database down took ${took}s"
err=$(touch "$B/during-outage" 2>&1)
check_contains "…with EIO" "Input/output error" "$err"
check_eq "the by-id view keeps working" "keep" "$(cat "$A/$byid" 2>&1)"
grep -q " $A fuse" /proc/mounts && grep -q " $B fuse" /proc/mounts && [ -d "$A" ] && pass "both mounts stay up" || fail "a mount went away"
n=$(grep -c "unreachable" "$WORK/state-a/fdfsfs.log")
[ "$n" -le 2 ] && pass "one clear log line per outage, not one per request ($n)" || fail "$n 'unreachable' lines in A's log"
restart_postgres
ok() { touch "$1" 2>/dev/null; }
for _ in $(seq 1 40); do ok "$A/after-outage" && break; sleep 0.5; done
check "after PostgreSQL returns, A creates again" test -f "$A/after-outage"
for _ in $(seq 1 40); do ok "$B/after-outage-b" && break; sleep 0.5; done
check "after PostgreSQL returns, B creates again" test -f "$B/after-outage-b"
within_1s "and B sees A's new file (the change feed reconnected)" test -f "$B/after-outage"
grep -q "reachable again" "$WORK/state-a/fdfsfs.log" && pass "A logs that the database is back" || fail "no 'reachable again' line"

# --- dump / load: SQLite → PostgreSQL ------------------------------------------------------------
umount "$A"; umount "$B"
S="$WORK/sqlite"; mkdir -p "$S"
check "mount with the default SQLite engine" "$FDFSFS" "$TRACKER" "$S" -o "state_dir=$WORK/state-sqlite"
mkdir -p "$S/docs/deep"; echo "migrated bytes" > "$S/docs/deep/file.txt"; ln -s deep/file.txt "$S/docs/link"
setfattr -n user.k -v v "$S/docs/deep/file.txt"; chmod 640 "$S/docs/deep/file.txt"
umount "$S"
check "fdfsfs dump STATE_DIR" bash -c "'$FDFSFS' dump '$WORK/state-sqlite' > '$WORK/dump1.json'"
MIG="$PG_URL&namespace=migrated"
check "fdfsfs load into a new PostgreSQL namespace" bash -c "'$FDFSFS' load '$MIG' --password-file '$PG_PASSWORD_FILE' < '$WORK/dump1.json'"
check "dump of the PostgreSQL namespace" bash -c "'$FDFSFS' dump '$MIG' --password-file '$PG_PASSWORD_FILE' > '$WORK/dump2.json'"
check "dump → load → dump is identical" cmp "$WORK/dump1.json" "$WORK/dump2.json"
check_fails "load into a namespace that is not empty fails" bash -c "'$FDFSFS' load '$MIG' --password-file '$PG_PASSWORD_FILE' < '$WORK/dump1.json'"
check "mount the migrated namespace" "$FDFSFS" "$TRACKER" "$A" -o "state_dir=$WORK/state-mig,meta=$MIG,meta_password_file=$PG_PASSWORD_FILE"
check_eq "the migrated file's bytes" "migrated bytes" "$(cat "$A/docs/deep/file.txt" 2>&1)"
check_eq "its mode" "640" "$(stat -c %a "$A/docs/deep/file.txt")"
check_eq "the symlink" "deep/file.txt" "$(readlink "$A/docs/link")"
check_eq "the xattr" "v" "$(getfattr --absolute-names --only-values -n user.k "$A/docs/deep/file.txt" 2>&1)"
umount "$A"

summary
