#!/usr/bin/env bash
# Write tests for fdfsfs (issue 5), through a real kernel mount against fdfs-devserver:
#  - cp of 0 B, 1 B, 1 MiB and 1 GiB in and out, byte-identical, and the file id (user.fdfs.file_id)
#    downloaded with `fdfs download` and with py3fdfs matches (the data really is in FastDFS);
#  - workloads: log append (`>>` x200), editor-style save (temp file, fsync, rename over), `sed -i`,
#    rsync -a (first copy, update with --delete, --inplace),
#    `tar -x` of a tree (subdirs, symlinks, a few MiB) compared with `diff -r`, a `dd conv=notrunc`
#    4 KiB edit in the middle of a 16 MiB file, ftruncate shrink/grow; truncate -s 1P (EFBIG at
#    once, no memory growth) and dd seek=1T (sparse on the server: only the written bytes sent);
#  - read-your-writes across handles; copy-on-write of normal files (named tree) and EPERM by id; slave files created by id;
#  - a model-based random test (scripts/write-model.py, seeded; WRITE_MODEL_OPS, WRITE_MODEL_SEED)
#    compared step by step, at the end and after an unmount + remount;
#  - faults: the storage stopped mid-write and mid-cp (close must not succeed while it is down;
#    the data ends up complete after it returns; nothing incomplete is shown as complete),
#    fdfsfs killed with SIGKILL during writes then remounted (every acknowledged write recovered,
#    fsynced or not; `fdfsfs status STATE_DIR` runs), a slave whose upload failed surviving a
#    SIGKILL, a full disk on the server (ENOSPC).
# Root and /dev/fuse required (fails otherwise: never skips). Prints PASS/FAIL lines and a final
# "N passed, M failed". BIG_MIB (default 1024) sets the size of the large cp.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then fail "write tests need root and /dev/fuse"; summary; exit 1; fi
chmod 755 "$WORK"
PY="$root/.venv/bin/python"
[ -x "$PY" ] || { fail "py3fdfs venv missing at $root/.venv (run scripts/install-deps.sh)"; PY=python3; }
BIG_MIB=${BIG_MIB:-1024}
T0=$(date +%s); TS=$T0
section() { local now; now=$(date +%s); echo "--- $* (previous section $((now - TS)) s)"; TS=$now; }

start_devserver || { fail "devserver start"; summary; exit 1; }
f() { "$FDFS" --tracker "$TRACKER" "$@"; }
MNT="$WORK/mnt"; STATE="$WORK/state"; mkdir -p "$MNT" "$STATE"
# FDFS_META=postgres: the named tree in a private PostgreSQL (issue 11).
META_OPTIONS=""
if [ "${FDFS_META:-sqlite}" = postgres ]; then use_postgres_meta || { fail "private PostgreSQL starts"; summary; exit 1; }; fi
mount_it() { "$FDFSFS" "$TRACKER" "$MNT" -o "state_dir=$STATE,attr_timeout=0,entry_timeout=0,groups_cache=0,fileinfo_cache=0${META_OPTIONS:+,$META_OPTIONS}${1:+,$1}"; }
fs_pid() { cat "$STATE/fdfsfs.pid" 2>/dev/null; }
track_pid() { local p; p=$(fs_pid); [ -n "$p" ] && CLEANUP_PIDS+=("$p"); }
wait_gone() { for _ in $(seq 1 "${2:-300}"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
# remount: a clean unmount (fdfsfs finishes its work and exits), then mount again.
remount() {
    local p; p=$(fs_pid)
    umount "$MNT" || { echo "umount failed" >&2; return 1; }
    [ -z "$p" ] || wait_gone "$p" 600 || { echo "fdfsfs $p did not exit after umount" >&2; return 1; }
    mount_it && track_pid
}
fid() { getfattr --absolute-names --only-values -n user.fdfs.file_id "$1" 2>/dev/null; }
dl_sha() { [ -n "$1" ] || { echo "(no file id)"; return; }; f download "$1" - 2>/dev/null | sha256sum | cut -d' ' -f1; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# py_dl_sha ID: sha256 of the file downloaded with py3fdfs (download_to_buffer; ids are bytes there).
py_dl_sha() {
    [ -n "$1" ] || { echo "(no file id)"; return; }
    "$PY" - "${TRACKER%:*}" "${TRACKER##*:}" "$1" <<'PYEOF' 2>&1
import sys, hashlib
from fdfs_client.client import Fdfs_client
c = Fdfs_client({'host_tuple': (sys.argv[1],), 'port': int(sys.argv[2]), 'timeout': 30, 'name': 'Tracker Pool'})
r = c.download_to_buffer(sys.argv[3].encode())
print(hashlib.sha256(r['Content'] or b'').hexdigest())
PYEOF
}
# restart_devserver [extra args]: the devserver again on the same ports and data directory.
restart_devserver() {
    "$DEVSERVER" --data "$DEVSERVER_DATA" --tracker-port "$tracker_port" --storage-port "$storage_port" "$@" >"$WORK/devserver-re.out" 2>&1 &
    DEVSERVER_PID=$!; CLEANUP_PIDS+=("$DEVSERVER_PID")
    for _ in $(seq 1 200); do grep -q '^ready' "$WORK/devserver-re.out" && return 0; kill -0 "$DEVSERVER_PID" 2>/dev/null || break; sleep 0.1; done
    echo "devserver did not restart: $(cat "$WORK/devserver-re.out")" >&2; return 1
}
storage_port=${STORAGES[0]##*:}; tracker_port=${TRACKER##*:}

check "mount against fdfs-devserver (state_dir=...)" mount_it
track_pid

# --- cp in and out: 0 B, 1 B, 1 MiB, 1 GiB --------------------------------------------------------
section "cp in and out: 0 B, 1 B, 1 MiB, 1 GiB"
mkdir -p "$MNT/cp"
for n in 0 1 1048576 $((BIG_MIB << 20)); do
    src="$WORK/src-$n"; head -c "$n" /dev/urandom >"$src"; want=$(sha "$src")
    t=$(date +%s.%N)
    check "cp $n bytes into the mount" cp "$src" "$MNT/cp/f$n.bin"
    secs=$(python3 -c "print(f'{$(date +%s.%N)-$t:.1f}')")
    [ "$n" -lt 1048576 ] || echo "     ($n bytes in ${secs}s)"
    check_eq "size of the $n-byte file" "$n" "$(stat -c %s "$MNT/cp/f$n.bin" 2>&1)"
    drop_caches
    cp "$MNT/cp/f$n.bin" "$WORK/back-$n" 2>"$WORK/cp.err"
    check_eq "cp of the $n-byte file back out is byte-identical (sha256)" "$want" "$(sha "$WORK/back-$n" 2>/dev/null)"
    id=$(fid "$MNT/cp/f$n.bin")
    if [ -n "$id" ]; then pass "the $n-byte file has a file id ($id)"; else fail "the $n-byte file has no user.fdfs.file_id"; fi
    check_eq "fdfs download of the $n-byte file's id matches" "$want" "$(dl_sha "$id")"
    # py3fdfs itself cannot download an empty file (the storage answers its 0-length request
    # with EINVAL, also for files uploaded with `fdfs`), so its check is on 1 B and 1 MiB.
    if [ "$n" -ge 1 ] && [ "$n" -le 1048576 ]; then check_eq "py3fdfs download_to_buffer of the $n-byte file's id matches" "$want" "$(py_dl_sha "$id")"; fi
    rm -f "$WORK/back-$n"
    [ "$n" -le 1048576 ] || { rm -f "$src"; rm -f "$MNT/cp/f$n.bin"; }
done

# --- everyday workloads ------------------------------------------------------------------------------
section "everyday workloads"
W="$MNT/w"; L="$WORK/local-w"; mkdir -p "$W" "$L"
# log append: `>>` in a loop
for i in $(seq 1 200); do echo "log line $i $(printf '%*s' $((i % 37)) | tr ' ' x)" >>"$W/app.log"; echo "log line $i $(printf '%*s' $((i % 37)) | tr ' ' x)" >>"$L/app.log"; done
check_eq "log append: 200 x '>>' gives the same file" "$(sha "$L/app.log")" "$(sha "$W/app.log" 2>/dev/null)"
check_eq "log append: the file id holds the same bytes (fdfs download)" "$(sha "$L/app.log")" "$(dl_sha "$(fid "$W/app.log")")"

# editor-style save: write a temp file, fsync, rename over the original
printf 'original contents\nline 2\n' >"$W/doc.txt"
old_id=$(fid "$W/doc.txt")
save() { python3 - "$1" <<'PYEOF'
import os, sys
path = sys.argv[1]; tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".swp")
fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b"edited contents\n" * 1000); os.fsync(fd); os.close(fd)
os.rename(tmp, path)
dfd = os.open(os.path.dirname(path), os.O_RDONLY); os.fsync(dfd); os.close(dfd)
PYEOF
}
check "editor save: temp file, fsync, rename over the original" save "$W/doc.txt"
save "$L/doc.txt"
check_eq "editor save: new contents through the mount" "$(sha "$L/doc.txt")" "$(sha "$W/doc.txt" 2>/dev/null)"
check_eq "editor save: new contents in FastDFS (fdfs download of the new id)" "$(sha "$L/doc.txt")" "$(dl_sha "$(fid "$W/doc.txt")")"
check_eq "editor save: no temp file left behind" "" "$(ls -A "$W" | grep swp)"

# sed -i (its own temp file + rename)
seq 1 5000 | sed 's/$/ foo bar/' >"$W/sed.txt"; seq 1 5000 | sed 's/$/ foo bar/' >"$L/sed.txt"
check "sed -i on a file in the mount" sed -i 's/foo/FOO/; 3000,3100d' "$W/sed.txt"
sed -i 's/foo/FOO/; 3000,3100d' "$L/sed.txt"
check_eq "sed -i: same result as on a local file" "$(sha "$L/sed.txt")" "$(sha "$W/sed.txt" 2>/dev/null)"

# tar -x of a tree with subdirectories, symlinks and a few MiB of files
T="$WORK/tree"; mkdir -p "$T/a/b/c" "$T/d/empty" "$T/e"
head -c 3000000 /dev/urandom >"$T/a/big1.bin"; head -c 1500000 /dev/urandom >"$T/a/b/big2.bin"
head -c 700000 /dev/urandom >"$T/a/b/c/mid.bin"; : >"$T/e/empty.txt"
for i in $(seq 1 40); do head -c $((i * 97)) /dev/urandom >"$T/d/small-$i.dat"; done
echo "readme" >"$T/README"; ln -s a/big1.bin "$T/link-to-file"; ln -s ../a/b "$T/e/link-to-dir"; ln -s missing "$T/dangling"
chmod 600 "$T/a/b/big2.bin"; chmod 755 "$T/README"
tar -C "$WORK" -cf "$WORK/tree.tar" tree
mkdir -p "$WORK/x-local" "$MNT/x"
tar -C "$WORK/x-local" -xf "$WORK/tree.tar"
check "tar -x of a tree into the mount" tar -C "$MNT/x" -xf "$WORK/tree.tar"
drop_caches
check "tar -x: diff -r against a local extraction" diff -r --no-dereference "$WORK/x-local/tree" "$MNT/x/tree"
listing() { (cd "$1" && find . -printf '%y %m %s %l %p\n' | sed 's/^d [0-7]* [0-9]*/d/' | sort); }
check_eq "tar -x: same types, modes, sizes and link targets" "$(listing "$WORK/x-local/tree")" "$(listing "$MNT/x/tree" 2>&1)"

# rsync -a of the same tree (temp file + rename per file, then times and modes), an update after
# local changes (rsync's delta: a new temp file renamed over), and --inplace (writes into the
# existing files)
check "rsync -a of a tree into the mount" rsync -a "$T/" "$MNT/rs/"
check "rsync -a: diff -r against the source" diff -r --no-dereference "$T" "$MNT/rs"
mtimes() { (cd "$1" && find . ! -type l -printf '%T@ %p\n' | sed 's/\.[0-9]* / /' | sort); }
check_eq "rsync -a: modification times kept" "$(mtimes "$T")" "$(mtimes "$MNT/rs" 2>&1)"
# cp -a sets the times through each file still open, before its close (whose commit must keep them)
check "cp -a of a tree into the mount" cp -a "$T" "$MNT/cpa"
cpa_mtimes=$(mtimes "$T")
check_eq "cp -a: modification times kept" "$cpa_mtimes" "$(mtimes "$MNT/cpa" 2>&1)"
head -c 4096 /dev/urandom | dd of="$T/a/big1.bin" bs=4096 seek=100 conv=notrunc status=none
echo "more" >>"$T/README"; rm "$T/d/small-7.dat"; head -c 5000 /dev/urandom >"$T/d/new.dat"
check "rsync -a --delete: an update after local changes" rsync -a --delete "$T/" "$MNT/rs/"
check "rsync update: diff -r against the source" diff -r --no-dereference "$T" "$MNT/rs"
head -c 4096 /dev/urandom | dd of="$T/a/b/big2.bin" bs=4096 seek=7 conv=notrunc status=none
check "rsync -a --inplace: an update written into the existing files" rsync -a --inplace --no-whole-file "$T/" "$MNT/rs/"
drop_caches
check "rsync --inplace: diff -r against the source" diff -r --no-dereference "$T" "$MNT/rs"
check_eq "rsync --inplace: contents in FastDFS" "$(sha "$T/a/b/big2.bin")" "$(dl_sha "$(fid "$MNT/rs/a/b/big2.bin")")"

# dd conv=notrunc: a 4 KiB edit in the middle of a 16 MiB file
head -c $((16 << 20)) /dev/urandom >"$L/dd.bin"; cp "$L/dd.bin" "$W/dd.bin"
dd_id=$(fid "$W/dd.bin")
head -c 4096 /dev/urandom >"$WORK/patch"
check "dd conv=notrunc of 4 KiB into the middle of a 16 MiB file" dd if="$WORK/patch" of="$W/dd.bin" bs=4096 seek=2048 conv=notrunc status=none
dd if="$WORK/patch" of="$L/dd.bin" bs=4096 seek=2048 conv=notrunc status=none
drop_caches
check_eq "dd edit: contents through the mount" "$(sha "$L/dd.bin")" "$(sha "$W/dd.bin" 2>/dev/null)"
check_eq "dd edit: size unchanged" "$((16 << 20))" "$(stat -c %s "$W/dd.bin")"
if [ "${FDFS_META:-sqlite}" = postgres ]; then
    # A shared tree changes the committed appender in place only past its committed size: another
    # host's writer may be reading it as its base (README, "Sharing one tree"); an edit below makes a copy.
    check "dd edit (shared tree): the edit made a new file, not a change of the shared one" test "$dd_id" != "$(fid "$W/dd.bin")"
    gone=0; for _ in $(seq 1 100); do f info "$dd_id" >/dev/null 2>&1 || { gone=1; break; }; sleep 0.2; done
    check_eq "dd edit (shared tree): the replaced file is deleted afterwards" "1" "$gone"
else
    check_eq "dd edit: the appender file was modified in place (same file id)" "$dd_id" "$(fid "$W/dd.bin")"
fi
check_eq "dd edit: contents in FastDFS" "$(sha "$L/dd.bin")" "$(dl_sha "$(fid "$W/dd.bin")")"

# ftruncate shrink and grow
ftr() { python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.ftruncate(fd, int(sys.argv[2])); os.fsync(fd); os.close(fd)" "$@"; }
check "ftruncate shrink 16 MiB -> 5000000" ftr "$W/dd.bin" 5000000
ftr "$L/dd.bin" 5000000
check_eq "ftruncate shrink: contents" "$(sha "$L/dd.bin")" "$(sha "$W/dd.bin" 2>/dev/null)"
check "ftruncate grow 5000000 -> 7000001" ftr "$W/dd.bin" 7000001
ftr "$L/dd.bin" 7000001
drop_caches
check_eq "ftruncate grow: contents (zeros after the old end)" "$(sha "$L/dd.bin")" "$(sha "$W/dd.bin" 2>/dev/null)"
check_eq "ftruncate: contents in FastDFS" "$(sha "$L/dd.bin")" "$(dl_sha "$(fid "$W/dd.bin")")"

# --- many files at once ----------------------------------------------------------------------------
section "12 files of 48 MiB copied in at once"
mkdir -p "$W/par"
for i in $(seq 1 12); do head -c $((48 << 20)) /dev/urandom >"$WORK/par$i.src"; done
cps=(); for i in $(seq 1 12); do cp "$WORK/par$i.src" "$W/par/$i.bin" & cps+=($!); done; wait "${cps[@]}"
ok=0; for i in $(seq 1 12); do cmp -s "$WORK/par$i.src" "$W/par/$i.bin" && ok=$((ok + 1)); done
check_eq "12 parallel cp: every file byte-identical through the mount" "12" "$ok"
ok=0; for i in $(seq 1 12); do [ "$(dl_sha "$(fid "$W/par/$i.bin")")" = "$(sha "$WORK/par$i.src")" ] && ok=$((ok + 1)); done
check_eq "12 parallel cp: every file complete in FastDFS" "12" "$ok"
hwm=$(( $(awk '/VmHWM/{print $2}' "/proc/$(fs_pid)/status") / 1024 ))
if [ "$hwm" -lt 256 ]; then pass "fdfsfs peak RSS ${hwm} MiB (< 256 MiB) with 12 files written at once (at most max_uploads=4 requests carry data)"
else fail "fdfsfs peak RSS ${hwm} MiB >= 256 MiB with 12 files written at once"; fi
rm -f "$WORK"/par*.src

# --- read-your-writes across handles -------------------------------------------------------------
section "read-your-writes across handles"
ryw() { python3 - "$1" <<'PYEOF'
import os, sys, subprocess
p = sys.argv[1]
a = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
os.write(a, b"hello")
b = os.open(p, os.O_RDWR)
got = os.pread(b, 100, 0); assert got == b"hello", f"second handle read {got!r} after a write through the first"
os.pwrite(b, b"J", 0)
got = os.pread(a, 100, 0); assert got == b"Jello", f"first handle read {got!r} after a write through the second"
big = os.urandom(3 << 20)
os.pwrite(a, big, 5)
assert os.fstat(b).st_size == 5 + len(big), f"size seen through the second handle: {os.fstat(b).st_size}"
got = os.pread(b, 5 + len(big), 0); assert got == b"Jello" + big, "second handle does not see 3 MiB written through the first"
c = os.open(p, os.O_RDONLY)
got = os.pread(c, 100, 1000); assert got == big[995:1095], "a third open does not see the writes"
out = subprocess.run(["cat", p], capture_output=True).stdout
assert out == b"Jello" + big, f"cat while the handles are open sees {len(out)} bytes"
os.ftruncate(a, 3)
assert os.pread(b, 10, 0) == b"Jel", "truncate through one handle not seen through another"
os.close(a); os.close(b); os.close(c)
assert open(p, "rb").read() == b"Jel"
print("ok")
PYEOF
}
check_eq "read-your-writes: write through one handle, read through another before close" "ok" "$(ryw "$MNT/w/ryw.bin" 2>&1 | tail -1)"

# --- copy-on-write of normal files, by-id writes -------------------------------------------------
section "copy-on-write of normal files, by-id writes"
printf 'normal file v1\n' >"$WORK/normal.txt"
nid=$(f upload "$WORK/normal.txt" --ext txt)
touch "$W/normal.txt" && setfattr -n user.fdfs.file_id -v "$nid" "$W/normal.txt"
check "write into a named normal file (copy on write)" sh -c "printf 'NORMAL' | dd of='$W/normal.txt' bs=1 seek=0 conv=notrunc status=none"
check_eq "copy on write: new contents" "NORMAL file v1" "$(cat "$W/normal.txt" 2>&1)"
new_id=$(fid "$W/normal.txt")
if [ -n "$new_id" ] && [ "$new_id" != "$nid" ]; then pass "copy on write: the name has a new file id"; else fail "copy on write: file id '$new_id' (old $nid)"; fi
check_eq "copy on write: the new id is an appender file" "1" "$(getfattr --absolute-names --only-values -n user.fdfs.appender "$W/normal.txt" 2>&1)"
gone=0; for _ in $(seq 1 100); do f info "$nid" >/dev/null 2>&1 || { gone=1; break; }; sleep 0.2; done
check_eq "copy on write: the old file id is deleted afterwards" "1" "$gone"
nid2=$(printf 'immutable' | f upload - --ext txt)
out=$(sh -c "printf x >> '$MNT/$nid2'" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "not permitted"; then pass "by id: writing a normal file is EPERM"; else fail "by id: writing a normal file gave rc $rc: $out"; fi
aid=$(printf 'appender' | f upload - --appender --ext log)
check "by id: an appender file can be written in place" sh -c "printf '!!' >> '$MNT/$aid'"
check_eq "by id: appended bytes are in FastDFS" "appender!!" "$(f download "$aid" - 2>&1)"
# slave files: a new name in the by-id view = master name (up to its extension) + prefix + .ext
mid=$(printf 'master' | f upload - --ext jpg)
mstem=$(python3 -c 'import sys; n=sys.argv[1]; t=len(n)-7; d=n.find(".", t); print(n if d < 0 else n[:d])' "$mid")
sid="${mstem}_150x150.jpg"
check "by id: creating a slave name of a master uploads a slave file" sh -c "printf thumb > '$MNT/$sid'"
check_eq "by id: the slave file is in FastDFS under the created name" "thumb" "$(f download "$sid" - 2>&1)"
pngid=$(printf 'png master' | f upload - --ext png)
pstem=$(python3 -c 'import sys; n=sys.argv[1]; t=len(n)-7; d=n.find(".", t); print(n if d < 0 else n[:d])' "$pngid")
check "by id: a slave with another extension than its master's, master never looked up" sh -c "printf jpgthumb > '$MNT/${pstem}_t.jpg'"
check_eq "by id: that slave file is in FastDFS" "jpgthumb" "$(f download "${pstem}_t.jpg" - 2>&1)"
# the same stem with other random digits: no such master
other=$(python3 -c 'import sys; s=sys.argv[1]; d="999" if s[-3:] != "999" else "998"; print(s[:-3] + d)' "$pstem")
out=$(python3 -c 'import os, sys
try: os.close(os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)); print("created")
except OSError as e: print(os.strerror(e.errno))' "$MNT/${other}_s.jpg" 2>&1)
check_eq "by id: a slave name whose master does not exist is ENOENT" "No such file or directory" "$out"
out=$(sh -c "printf x > '$MNT/${mstem}_1@x.jpg'" 2>&1); rc=$?
if [ $rc -ne 0 ] && ! f download "${mstem}_1@x.jpg" - >/dev/null 2>&1; then pass "by id: a name with a bad slave prefix is refused ($out)"
else fail "by id: a bad slave prefix gave rc $rc: $out"; fi

# --- model-based random test ---------------------------------------------------------------------
section "model-based random test"
out=$(python3 "$root/scripts/write-model.py" run "$MNT/model" "$WORK/model" 2>&1); rc=$?
if [ $rc -eq 0 ]; then pass "$(echo "$out" | tail -1)"; else fail "model-based random test: $(echo "$out" | head -40)"; fi
check "unmount and mount again" remount
out=$(python3 "$root/scripts/write-model.py" verify "$MNT/model" "$WORK/model" 2>&1)
if [ $? -eq 0 ]; then pass "model after remount: $(echo "$out" | tail -1)"; else fail "model after remount: $out"; fi
check_eq "workload files after remount (dd.bin)" "$(sha "$L/dd.bin")" "$(sha "$W/dd.bin" 2>/dev/null)"
check "tar tree after remount" diff -r --no-dereference "$WORK/x-local/tree" "$MNT/x/tree"
check_eq "cp -a: modification times kept after remount (as recorded)" "$cpa_mtimes" "$(mtimes "$MNT/cpa" 2>&1)"

# --- sizes: sparse growth, the 16 TiB limit (issue 9) ----------------------------------------------
section "sizes: sparse growth and EFBIG"
Z="$MNT/sizes"; mkdir -p "$Z"
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$(fs_pid)/status" 2>/dev/null || echo 0; }
data_kb() { du -sk "$DEVSERVER_DATA" | cut -f1; }
echo hi >"$Z/peta.bin"
rss0=$(rss_kb)
t=$(date +%s.%N)
out=$(timeout 20 truncate -s 1P "$Z/peta.bin" 2>&1); rc=$?
secs=$(python3 -c "print(f'{$(date +%s.%N)-$t:.2f}')")
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "File too large"; then pass "truncate -s 1P: EFBIG at once (${secs} s): $out"
else fail "truncate -s 1P: exit $rc after ${secs} s: $out"; fi
check_eq "truncate -s 1P: the file is unchanged" 3 "$(stat -c %s "$Z/peta.bin" 2>&1)"
rss1=$(rss_kb)
check "truncate -s 1P: fdfsfs memory did not grow (RSS $rss0 -> $rss1 KiB)" test "$rss1" -lt $((rss0 + 65536))
"$FDFSFS" status "$STATE" >"$WORK/status-peta.out" 2>&1
check "truncate -s 1P: nothing left staged for the next mount to replay" grep -q '^no staged writes' "$WORK/status-peta.out"
d0=$(data_kb)
t=$(date +%s.%N)
check "dd seek=1T of 4 KiB into a new file" sh -c "head -c 4096 /dev/urandom >'$WORK/tail.src' && timeout 60 dd if='$WORK/tail.src' of='$Z/tera.bin' bs=4096 seek=\$((1 << 28)) conv=fsync status=none"
secs=$(python3 -c "print(f'{$(date +%s.%N)-$t:.2f}')")
check_eq "dd seek=1T: size 1 TiB + 4 KiB (${secs} s)" $(((1 << 40) + 4096)) "$(stat -c %s "$Z/tera.bin" 2>&1)"
d1=$(data_kb)
check "dd seek=1T: the storage's disk grew by less than 16 MiB ($d0 -> $d1 KiB): the hole is sparse on the server" test $((d1 - d0)) -lt 16384
check_eq "dd seek=1T: the last 4 KiB read back" "$(sha "$WORK/tail.src")" "$(tail -c 4096 "$Z/tera.bin" | sha256sum | cut -d' ' -f1)"
check_eq "dd seek=1T: FastDFS has the size" $(((1 << 40) + 4096)) "$(f --json info "$(fid "$Z/tera.bin")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["storage"]["size"])')"
check_eq "dd seek=1T: a hole reads as zeros" "$(head -c 65536 /dev/zero | sha256sum | cut -d' ' -f1)" "$(dd if="$Z/tera.bin" bs=65536 skip=$((1 << 20)) count=1 status=none | sha256sum | cut -d' ' -f1)"
rm -f "$Z/tera.bin"

# --- fault: fdfsfs killed with SIGKILL during writes, remounted ----------------------------------
section "fault: fdfsfs killed with SIGKILL during writes, remounted"
K="$MNT/kill"; mkdir -p "$K"
head -c $((8 << 20)) /dev/urandom >"$WORK/k1.src"; head -c $((4 << 20)) /dev/urandom >"$WORK/k2.src"
head -c $((2 << 20)) /dev/urandom >"$WORK/k3.src"; head -c $((64 << 20)) /dev/urandom >"$WORK/k4.src"
head -c 5000 /dev/urandom >"$WORK/k5.src"; head -c 4096 /dev/urandom >"$WORK/k6.src"; head -c 700 /dev/urandom >"$WORK/k7.src"
python3 - "$WORK" "$K" <<'PYEOF' >"$WORK/killwriter.out" 2>&1 &
import os, sys, time
w, k = sys.argv[1], sys.argv[2]
def src(n): return open(f"{w}/{n}.src", "rb").read()
k1 = os.open(f"{k}/k1.bin", os.O_CREAT | os.O_WRONLY, 0o644); os.write(k1, src("k1")); os.fsync(k1)   # durable, kept open
k2 = os.open(f"{k}/k2.bin", os.O_CREAT | os.O_WRONLY, 0o644); os.write(k2, src("k2"))                 # written, open, no fsync
k3 = os.open(f"{k}/k3.bin", os.O_CREAT | os.O_WRONLY, 0o644); os.write(k3, src("k3")); os.close(k3)   # closed: durable
# Small new files (kept in memory and the write journal until their close):
k5 = os.open(f"{k}/k5.txt", os.O_CREAT | os.O_WRONLY, 0o644); s5 = src("k5"); os.write(k5, s5[:3000]); os.write(k5, s5[3000:])   # open, unsynced
k6 = os.open(f"{k}/k6.txt", os.O_CREAT | os.O_WRONLY, 0o644); os.write(k6, src("k6")); os.close(k6)   # closed right before the kill
k7 = os.open(f"{k}/k7.txt", os.O_CREAT | os.O_WRONLY, 0o644); os.write(k7, src("k7")); os.fsync(k7)   # fsynced, kept open
open(f"{w}/kill.ready", "w").close()
data, acked = src("k4"), 0
try:
    k4 = os.open(f"{k}/k4.bin", os.O_CREAT | os.O_WRONLY, 0o644)
    while acked < len(data):
        acked += os.write(k4, data[acked:acked + (1 << 20)])
        with open(f"{w}/k4.acked", "w") as fh: fh.write(str(acked))
        if acked >= (16 << 20): time.sleep(0.05)
except OSError as e:
    print("k4 stopped:", e)
PYEOF
kw=$!
for _ in $(seq 1 600); do [ "$(cat "$WORK/k4.acked" 2>/dev/null || echo 0)" -ge $((16 << 20)) ] && break; kill -0 $kw 2>/dev/null || break; sleep 0.1; done
if [ -f "$WORK/kill.ready" ]; then pass "writes in progress before the kill (k4: $(cat "$WORK/k4.acked" 2>/dev/null) bytes acked)"; else fail "kill writer did not get going: $(cat "$WORK/killwriter.out")"; fi
kill -9 "$(fs_pid)"
wait_gone $kw 300 || kill -9 $kw
acked=$(cat "$WORK/k4.acked" 2>/dev/null || echo 0)
fusermount3 -uz "$MNT" 2>/dev/null
# Before recovery runs, status reports what recovery will find: the recorded map plus the
# writes logged after it (every acknowledged byte of k4.bin).
"$FDFSFS" status "$STATE" >"$WORK/status-killed.out" 2>&1
k4_status_size=$(awk -F'\t' '$2=="/kill/k4.bin"{sub("size ","",$4); print $4}' "$WORK/status-killed.out")
if [ -n "$k4_status_size" ] && [ "$k4_status_size" -ge "$acked" ]; then pass "SIGKILL: fdfsfs status before the remount counts every acknowledged byte of the file being written ($k4_status_size >= $acked)"
else fail "SIGKILL: fdfsfs status before the remount reports size '${k4_status_size}' for k4.bin, $acked bytes were acknowledged: $(cat "$WORK/status-killed.out")"; fi
killed_journals=$(ls "$STATE/staging" | grep '^journal-')
check "SIGKILL: the killed run left its write journal" test -n "$killed_journals"
# (With the names in PostgreSQL, status cannot name a journaled file: it shows its inode.)
k5_status=$(awk -F'\t' '($2=="/kill/k5.txt" || $2 ~ /^\(journaled, inode/) && $4=="size 5000" {print $1, $4}' "$WORK/status-killed.out")
check_eq "SIGKILL: fdfsfs status before the remount lists the open small file (its bytes only in the write journal)" "pending size 5000" "$k5_status"
check_eq "SIGKILL: fdfsfs status does not list the closed small files" "" "$(awk -F'\t' '$2=="/kill/k6.txt" || $2=="/kill/k7.txt"' "$WORK/status-killed.out")"
check "remount after SIGKILL" mount_it
track_pid
check_eq "SIGKILL: the fsynced file is complete" "$(sha "$WORK/k1.src")" "$(sha "$K/k1.bin" 2>/dev/null)"
check_eq "SIGKILL: the closed file is complete" "$(sha "$WORK/k3.src")" "$(sha "$K/k3.bin" 2>/dev/null)"
check_eq "SIGKILL: a small file closed right before the kill is complete" "$(sha "$WORK/k6.src")" "$(sha "$K/k6.txt" 2>/dev/null)"
check_eq "SIGKILL: a small file fsynced and kept open is complete" "$(sha "$WORK/k7.src")" "$(sha "$K/k7.txt" 2>/dev/null)"
check_eq "SIGKILL: a small file written, open and unsynced is recovered from the write journal" "$(sha "$WORK/k5.src")" "$(sha "$K/k5.txt" 2>/dev/null)"
held5=""; for _ in $(seq 1 60); do held5=$(dl_sha "$(fid "$K/k5.txt")"); [ "$held5" = "$(sha "$WORK/k5.src")" ] && break; sleep 1; done
check_eq "SIGKILL: the recovered small file reaches FastDFS complete" "$(sha "$WORK/k5.src")" "$held5"
left=""; for j in $killed_journals; do [ -e "$STATE/staging/$j" ] && left="$left $j"; done
check_eq "SIGKILL: the killed run's write journal is removed once recovery staged its files" "" "$left"
"$FDFSFS" status "$STATE" >"$WORK/status.out" 2>&1; status_rc=$?
check_eq "fdfsfs status STATE_DIR runs (exit 0)" "0" "$status_rc"
# every acknowledged write is recovered (the write log), fsynced or not
check_eq "SIGKILL: written but unsynced open file recovered complete" "$(sha "$WORK/k2.src")" "$(sha "$K/k2.bin" 2>/dev/null)"
held=""; for _ in $(seq 1 60); do held=$(dl_sha "$(fid "$K/k2.bin")"); [ "$held" = "$(sha "$WORK/k2.src")" ] && break; sleep 1; done
check_eq "SIGKILL: the recovered unsynced file reaches FastDFS complete" "$(sha "$WORK/k2.src")" "$held"
k4_ok=$(python3 - "$K/k4.bin" "$WORK/k4.src" "$acked" <<'PYEOF'
import sys
try: got = open(sys.argv[1], "rb").read()
except OSError as e: print(f"unreadable: {e}"); sys.exit()
src = open(sys.argv[2], "rb").read()
if len(got) >= int(sys.argv[3]) and src[:len(got)] == got: print("ok")
else: print(f"{len(got)} bytes, prefix of the source: {src[:len(got)] == got}")
PYEOF
)
if [ "$k4_ok" = ok ]; then pass "SIGKILL: the file being streamed holds every acknowledged byte ($acked) and nothing else"
else fail "SIGKILL: k4.bin ($acked bytes acknowledged before the kill): $k4_ok"; fi
check "SIGKILL: the remounted fs takes new writes" sh -c "cp '$WORK/k3.src' '$K/after.bin' && cmp '$WORK/k3.src' '$K/after.bin'"

# --- fault: the storage stopped mid-write / mid-cp, then back --------------------------------------
section "fault: the storage stopped mid-write / mid-cp, then back"
# storage_fault NAME FILE SRC: invariants after the storage returns. Polls (≤60 s, then an fsync,
# then ≤30 s) until the file reads complete through the mount; FastDFS must then hold it.
storage_fault_after() {
    local name=$1 file=$2 src=$3 want; want=$(sha "$src")
    local early; early=$(python3 - "$file" "$src" <<'PYEOF'
import sys
try: got = open(sys.argv[1], "rb").read()
except OSError as e: print(f"error {e.errno}"); sys.exit()
src = open(sys.argv[2], "rb").read()
print("ok" if src[:len(got)] == got else f"{len(got)} bytes that are not a prefix of the data written")
PYEOF
)
    case "$early" in ok|"error 5") pass "$name: right after the storage returns the file shows no bytes that were not written ($early)";;
        *) fail "$name: right after the storage returns the mount shows $early";; esac
    local done=0 size; size=$(stat -c %s "$src")
    # complete_within SECONDS: the size is checked every second (cheap), the sha256 once it matches
    complete_within() {
        local end=$(( $(date +%s) + $1 ))
        while [ "$(date +%s)" -lt "$end" ]; do
            [ "$(stat -c %s "$file" 2>/dev/null)" = "$size" ] && [ "$(sha "$file" 2>/dev/null)" = "$want" ] && return 0
            sleep 1
        done; return 1
    }
    if complete_within 60; then done=1
    else
        python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd); os.close(fd)" "$file" 2>/dev/null
        complete_within 30 && done=2
    fi
    case $done in 1) pass "$name: data complete after the storage returned (background retry)";;
        2) pass "$name: data complete after the storage returned (after an fsync)";;
        *) fail "$name: data still incomplete 90 s after the storage returned (size $(stat -c %s "$file" 2>&1) of $(stat -c %s "$src"))";; esac
    # Reads through the mount see staged bytes (read-your-writes) before they reach the cluster:
    # the background retry may still be shipping them, so FastDFS gets up to 60 s more.
    local held=""
    for _ in $(seq 1 60); do held=$(dl_sha "$(fid "$file")"); [ "$held" = "$want" ] && break; sleep 1; done
    check_eq "$name: FastDFS holds the complete file under its file id" "$want" "$held"
}
S="$MNT/storage"; mkdir -p "$S"
head -c $((192 << 20)) /dev/urandom >"$WORK/sa.src"
python3 - "$WORK" "$S/a.bin" <<'PYEOF' >"$WORK/sa.out" 2>&1 &
import os, sys, time
w, path = sys.argv[1], sys.argv[2]
data = open(f"{w}/sa.src", "rb").read(); half = len(data) // 2
fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
for o in range(0, half, 1 << 20): os.write(fd, data[o:o + (1 << 20)])
open(f"{w}/sa.half", "w").close()
for _ in range(1200):
    if os.path.exists(f"{w}/sa.go"): break
    time.sleep(0.1)
res = []
try:
    for o in range(half, len(data), 1 << 20): os.write(fd, data[o:o + (1 << 20)])
    res.append("write=ok")
except OSError as e: res.append(f"write=errno{e.errno}")
try: os.close(fd); res.append("close=ok")
except OSError as e: res.append(f"close=errno{e.errno}")
print(" ".join(res))
PYEOF
sw=$!
for _ in $(seq 1 1200); do [ -f "$WORK/sa.half" ] && break; kill -0 $sw 2>/dev/null || break; sleep 0.1; done
check "storage stop: first half of a 192 MiB file written" test -f "$WORK/sa.half"
stop_devserver
touch "$WORK/sa.go"
wait_gone $sw 150; writer_done_while_down=$(kill -0 $sw 2>/dev/null && echo no || echo yes)
down_result=$(cat "$WORK/sa.out")
check "restart the storage (same ports and data)" restart_devserver
wait_gone $sw 1200 || { kill -9 $sw; fail "storage stop: the writer hung for 2 minutes after the storage returned"; }
result=$(cat "$WORK/sa.out")
if [ "$writer_done_while_down" = yes ] && printf '%s' "$down_result" | grep -q "close=ok"; then
    fail "storage stop: close reported success while the storage was down ($down_result)"
else pass "storage stop: close did not report success while the storage was down (writer: ${result:-none}; finished while down: $writer_done_while_down)"; fi
storage_fault_after "storage stop mid-write" "$S/a.bin" "$WORK/sa.src"

# the same with a plain cp, the storage stopped once the upload has begun
head -c $((256 << 20)) /dev/urandom >"$WORK/sb.src"
base=$(du -sm "$DEVSERVER_DATA" | cut -f1)
cp "$WORK/sb.src" "$S/b.bin" 2>"$WORK/sb.err" &
cpp=$!
for _ in $(seq 1 1200); do kill -0 $cpp 2>/dev/null || break; [ $(( $(du -sm "$DEVSERVER_DATA" 2>/dev/null | cut -f1) - base )) -ge 32 ] && break; sleep 0.05; done
running=$(kill -0 $cpp 2>/dev/null && echo yes || echo no)
stop_devserver
wait_gone $cpp 150; cp_done_while_down=$(kill -0 $cpp 2>/dev/null && echo no || echo yes)
check "restart the storage again" restart_devserver
wait $cpp; cp_rc=$?
if [ "$cp_done_while_down" = yes ] && [ "$running" = yes ] && [ $cp_rc -eq 0 ]; then
    fail "storage stop mid-cp: cp succeeded while the storage was down"
else pass "storage stop mid-cp: cp exit $cp_rc ($(head -c 100 "$WORK/sb.err")), stopped while cp ran: $running, cp finished while down: $cp_done_while_down"; fi
storage_fault_after "storage stop mid-cp" "$S/b.bin" "$WORK/sb.src"
rm -f "$WORK/sa.src" "$WORK/sb.src"

# a new slave file whose upload fails (cluster down at close) stays staged with its master, is
# listed by `fdfsfs status`, and is uploaded by the next mount after a SIGKILL
smid=$(f upload - --ext jpg <<<"staged master")
slv="$(python3 -c 'import sys; n=sys.argv[1]; t=len(n)-7; d=n.find(".", t); print(n if d < 0 else n[:d])' "$smid")_staged.png"
head -c $((3 << 20)) /dev/urandom >"$WORK/slave.src"
python3 - "$WORK" "$MNT/$slv" <<'PYEOF' >"$WORK/slave.out" 2>&1 &
import os, sys, time
w, path = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, open(f"{w}/slave.src", "rb").read())
open(f"{w}/slave.written", "w").close()
for _ in range(1200):
    if os.path.exists(f"{w}/slave.go"): break
    time.sleep(0.1)
try: os.close(fd); print("close=ok")
except OSError as e: print(f"close=errno{e.errno}")
PYEOF
slp=$!
for _ in $(seq 1 600); do [ -f "$WORK/slave.written" ] && break; kill -0 $slp 2>/dev/null || break; sleep 0.1; done
check "staged slave: 3 MiB written to a new slave name" test -f "$WORK/slave.written"
stop_devserver
touch "$WORK/slave.go"
wait_gone $slp 900 || kill -9 $slp
check_eq "staged slave: close fails with EIO while the cluster is down" "close=errno5" "$(cat "$WORK/slave.out")"
"$FDFSFS" status "$STATE" >"$WORK/status-slave.out" 2>&1
if grep -qF "$slv" "$WORK/status-slave.out"; then pass "staged slave: listed by fdfsfs status"
else fail "staged slave: not in fdfsfs status: $(head -c 300 "$WORK/status-slave.out")"; fi
kill -9 "$(fs_pid)"; sleep 0.5
fusermount3 -uz "$MNT" 2>/dev/null
check "staged slave: restart the cluster" restart_devserver
check "staged slave: mount again after SIGKILL" mount_it
track_pid
want=$(sha "$WORK/slave.src"); got=""
for _ in $(seq 1 60); do got=$(dl_sha "$slv"); [ "$got" = "$want" ] && break; sleep 1; done
check_eq "staged slave: uploaded by the next mount, byte-identical in FastDFS" "$want" "$got"
check_eq "staged slave: a slave file (fdfs info)" "kind: slave" "$(f info "$slv" 2>&1 | grep '^kind:')"
"$FDFSFS" status "$STATE" >"$WORK/status-slave2.out" 2>&1
if grep -qF "$slv" "$WORK/status-slave2.out"; then fail "staged slave: still listed by fdfsfs status after the upload"
else pass "staged slave: no longer listed by fdfsfs status"; fi
rm -f "$WORK/slave.src"

# --- fault: full disk on the server (ENOSPC) ---------------------------------------------------------
section "fault: full disk on the server (ENOSPC)"
free_mb() { df -m --output=avail "$DEVSERVER_DATA" | tail -1 | tr -d ' '; }
stop_devserver
check "devserver with reserved space above the free space" restart_devserver --reserved-space $(( $(free_mb) + 512 ))
head -c $((1 << 20)) /dev/urandom >"$WORK/nospace.src"
out=$(cp "$WORK/nospace.src" "$MNT/w/nospace1.bin" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "No space left on device"; then pass "full cluster (tracker has no space): cp fails with 'No space left on device'"
else fail "full cluster: cp exit $rc: $out"; fi
stop_devserver
head -c $((128 << 20)) /dev/urandom >"$WORK/nospace2.src"
check "devserver with reserved space just below the free space" restart_devserver --reserved-space $(( $(free_mb) - 24 ))
out=$(cp "$WORK/nospace2.src" "$MNT/w/nospace2.bin" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "No space left on device"; then pass "storage runs out of space during a 128 MiB cp: cp fails with 'No space left on device'"
else fail "storage out of space mid-cp: cp exit $rc: $out"; fi
stop_devserver
check "devserver with normal reserved space" restart_devserver
check "cp works again once there is space" sh -c "cp '$WORK/nospace.src' '$MNT/w/space-again.bin' && cmp '$WORK/nospace.src' '$MNT/w/space-again.bin'"

check "clean unmount at the end" umount "$MNT"
section "end"
echo "write-tests took $(( $(date +%s) - T0 )) s"
summary
