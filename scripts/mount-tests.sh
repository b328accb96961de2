#!/usr/bin/env bash
# Real-kernel mount tests for fdfsfs. Root and /dev/fuse required (fails otherwise: never skips).
# Backends: the in-memory store (default, SOURCE "memory:"), FDFS_BACKEND=devserver (builds and
# starts fdfs-devserver with two groups on free ports), or FDFS_SOURCE=HOST:PORT (a running cluster).
# Prints PASS/FAIL per check and ends with exactly "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
    echo "FAIL: mount tests need root and /dev/fuse"
    echo "0 passed, 1 failed"
    exit 1
fi

echo "building fdfsfs..."
swift build --product fdfsfs >/tmp/fdfsfs-mount-tests-build.log 2>&1 || { tail -30 /tmp/fdfsfs-mount-tests-build.log; echo "0 passed, 1 failed"; exit 1; }
BIN=$(swift build --show-bin-path)
FDFSFS="$BIN/fdfsfs"

WORK=$(mktemp -d /tmp/fdfsfs-mt.XXXXXX); chmod 755 "$WORK"   # other users must reach the mount point
MNT="$WORK/mnt"; STATE="$WORK/state"; MNT2="$WORK/mnt2"
mkdir -p "$MNT" "$MNT2" "$STATE"
DEVSERVER_PID=""
# FDFS_META=postgres: the named tree of every mount in a private PostgreSQL (issue 11).
META_OPTIONS=""; CLEANUP_HOOKS=()
if [ "${FDFS_META:-sqlite}" = postgres ]; then
    source "$(dirname "$0")/postgres.sh"
    use_postgres_meta || { echo "0 passed, 1 failed"; exit 1; }
fi
if [ "${FDFS_BACKEND:-memory}" = devserver ]; then
    swift build --product fdfs-devserver >>/tmp/fdfsfs-mount-tests-build.log 2>&1 || { tail -30 /tmp/fdfsfs-mount-tests-build.log; echo "0 passed, 1 failed"; exit 1; }
    mkdir -p "$WORK/devserver"
    # shellcheck disable=SC2086  # DEVSERVER_ARGS (--storage-ids, --trunk) is a list of flags
    "$BIN/fdfs-devserver" --data "$WORK/devserver" --tracker-port 0 --storage-port 0 --groups 2 ${DEVSERVER_ARGS:-} >"$WORK/devserver.out" 2>&1 &
    DEVSERVER_PID=$!
    for _ in $(seq 1 100); do grep -q '^ready' "$WORK/devserver.out" && break; sleep 0.1; done
    FDFS_SOURCE=$(awk '/^tracker /{print $2}' "$WORK/devserver.out")
    [ -n "$FDFS_SOURCE" ] || { cat "$WORK/devserver.out"; echo "0 passed, 1 failed"; exit 1; }
    echo "fdfs-devserver tracker at $FDFS_SOURCE${DEVSERVER_ARGS:+ ($DEVSERVER_ARGS)}"
fi
SOURCE=${FDFS_SOURCE:-memory:}
MEMORY=0; [ "$SOURCE" = "memory:" ] && MEMORY=1
passed=0; failed=0
created_links=()

cleanup() {
    for m in "$MNT" "$MNT2"; do
        if mountpoint -q "$m" 2>/dev/null; then umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; fi
    done
    for d in "$STATE" "$WORK"/state-*; do
        [ -f "$d/fdfsfs.pid" ] || continue
        pid=$(cat "$d/fdfsfs.pid")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q fdfsfs "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null; fi
    done
    for l in "${created_links[@]}"; do rm -f "$l"; [ -e "$l.fdfsfs-test-saved" ] && mv "$l.fdfsfs-test-saved" "$l"; done
    if [ -n "$DEVSERVER_PID" ]; then kill "$DEVSERVER_PID" 2>/dev/null; wait "$DEVSERVER_PID" 2>/dev/null; fi
    for h in "${CLEANUP_HOOKS[@]}"; do $h; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

source "$(dirname "$0")/checks.sh"
check_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$3', got '$2'"; fi; }

do_mount() { "$FDFSFS" "$SOURCE" "$MNT" -o "allow_other,state_dir=$STATE,attr_timeout=0,entry_timeout=0${META_OPTIONS:+,$META_OPTIONS}${1:+,$1}"; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
is_fdfsfs_mount() { findmnt -n -o FSTYPE --mountpoint "$1" 2>/dev/null | grep -q 'fuse.fdfsfs'; }
daemon_pid() { cat "$STATE/fdfsfs.pid" 2>/dev/null; }
wait_unmounted() { for _ in $(seq 1 50); do mountpoint -q "$1" || return 0; sleep 0.1; done; return 1; }
wait_exit() { for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

# --- mounting -----------------------------------------------------------------------------------
check_err "bad option fails clearly" "unknown mount option" "$FDFSFS" "$SOURCE" "$MNT" -o "state_dir=$STATE,bogus_option"
start=$(date +%s)
check_err "unreachable tracker fails with a message" "fdfsfs" "$FDFSFS" 127.0.0.1:1 "$MNT" -o "state_dir=$WORK/state-unreach,connect_timeout=2"
elapsed=$(( $(date +%s) - start ))
if [ "$elapsed" -le 15 ]; then pass "unreachable tracker fails without hanging (${elapsed}s)"; else fail "unreachable tracker took ${elapsed}s"; fi
mountpoint -q "$MNT" && fail "failed mounts leave nothing mounted" || pass "failed mounts leave nothing mounted"

check "mount returns once ready" do_mount
check "mount is fuse.fdfsfs" is_fdfsfs_mount "$MNT"
check_err "second mount on the same point fails" "already" "$FDFSFS" "$SOURCE" "$MNT" -o "state_dir=$WORK/state-second"
check "first mount still answers" ls "$MNT"

# --- by-id view ---------------------------------------------------------------------------------
if [ "$MEMORY" = 1 ]; then
    HELLO=$(awk '/^hello /{print $2}' "$STATE/memory-store-ids")
    BIG=$(awk '/^big /{print $2}' "$STATE/memory-store-ids")
    APP=$(awk '/^appender /{print $2}' "$STATE/memory-store-ids")
    check "groups listed at the root" sh -c "ls '$MNT' | grep -qx group1 && ls '$MNT' | grep -qx group2"
    check "store paths listed" sh -c "ls '$MNT/group1' | tr '\n' ' ' | grep -q 'M00 M01'"
    check_eq "cat by file id" "$(cat "$MNT/$HELLO")" "hello from fdfsfs"
    check_eq "normal file size from the id" "$(stat -c %s "$MNT/$BIG")" "25165824"
    expected=$(python3 -c 'import struct,hashlib,sys; n=6<<20; sys.stdout.write(hashlib.md5(b"".join(struct.pack(">%dI"%65536, *range(i,i+65536)) for i in range(0,n,65536))).hexdigest())')
    check_eq "large file streams intact (read-ahead)" "$(cat "$MNT/$BIG" | md5sum | cut -d' ' -f1)" "$expected"
    check_eq "200 concurrent readers" "$(for i in $(seq 1 200); do cat "$MNT/$HELLO" & done | sort | uniq -c | tr -s ' ')" " 200 hello from fdfsfs"
    check_eq "4 concurrent large readers" "$(for i in 1 2 3 4; do md5sum < "$MNT/$BIG" & done | sort -u | cut -d' ' -f1)" "$expected"
    check_eq "random read at an offset" "$(dd if="$MNT/$BIG" bs=4 skip=1000000 count=1 status=none | od -An -tx1 | tr -d ' \n')" "000f4240"
    check_eq "appender size from file info" "$(stat -c %s "$MNT/$APP")" "29"
    check_eq "appender content" "$(tail -1 "$MNT/$APP")" "appended line"
    check "known file listed in its directory" sh -c "ls '$MNT/$(dirname "$HELLO")' | grep -qx '$(basename "$HELLO")'"
    # malformed ids and unknown names
    check_err "malformed id is ENOENT" "No such file" cat "$MNT/group1/M00/00/00/not-a-file-id"
    check_err "bad store path is ENOENT" "No such file" ls "$MNT/group1/M77"
    check_err "lowercase subdir is ENOENT" "No such file" ls "$MNT/group1/M00/0a"
    check_err "well-formed unknown id is ENOENT" "No such file" cat "$MNT/group1/M00/00/00/fwAAAWsKZv6AeAFmAAAAEkmkZMY999.txt"
    check_err "unknown group is ENOENT" "No such file" ls "$MNT/nogroup/M00"
    check "mount survives bad ids" stat "$MNT/$HELLO"
    check_err "by-id normal files are immutable (EPERM)" "Operation not permitted" sh -c "echo x > '$MNT/$HELLO'"
    # xattrs on by-id files
    check_eq "getfattr user metadata" "$(getfattr --absolute-names --only-values -n user.author "$MNT/$HELLO" 2>&1)" "fdfsfs"
    check_eq "virtual user.fdfs.file_id" "$(getfattr --absolute-names --only-values -n user.fdfs.file_id "$MNT/$HELLO" 2>&1)" "$HELLO"
    check_eq "virtual user.fdfs.group" "$(getfattr --absolute-names --only-values -n user.fdfs.group "$MNT/$HELLO" 2>&1)" "group1"
    check_eq "virtual user.fdfs.appender" "$(getfattr --absolute-names --only-values -n user.fdfs.appender "$MNT/$APP" 2>&1)" "1"
    check "setfattr round trip" sh -c "setfattr -n user.color -v blue '$MNT/$HELLO' && [ \"\$(getfattr --absolute-names --only-values -n user.color '$MNT/$HELLO')\" = blue ]"
    check_err "XATTR_CREATE on an existing key is EEXIST" "exists" python3 -c "import os; os.setxattr('$MNT/$HELLO', 'user.color', b'red', os.XATTR_CREATE)"
    check_err "XATTR_REPLACE on a missing key is ENODATA" "No data\|No such attribute" python3 -c "import os; os.setxattr('$MNT/$HELLO', 'user.nokey', b'x', os.XATTR_REPLACE)"
    check "listxattr shows metadata" sh -c "getfattr -d '$MNT/$HELLO' | grep -q 'user.color=\"blue\"'"
    check "removexattr" setfattr -x user.color "$MNT/$HELLO"
    check_err "removed key is gone" "No such attribute" getfattr -n user.color "$MNT/$HELLO"
    check_err "removing a missing key is ENODATA" "No such attribute" setfattr -x user.color "$MNT/$HELLO"
    check_err "key over 64 bytes refused (ERANGE)" "range" setfattr -n "user.$(printf 'k%.0s' $(seq 1 65))" -v x "$MNT/$HELLO"
    check_err "value over 256 bytes refused (E2BIG)" "too long" setfattr -n user.big -v "$(printf 'v%.0s' $(seq 1 257))" "$MNT/$HELLO"
    check_err "virtual attributes are read-only" "not permitted" setfattr -n user.fdfs.group -v x "$MNT/$HELLO"
    check_err "security.* reads as ENODATA" "No such attribute" getfattr -n security.selinux "$MNT/$HELLO"
    check_err "trusted.* writes are ENOTSUP" "not supported" setfattr -n trusted.x -v 1 "$MNT/$HELLO"
    # adoption
    check "create an empty named file" touch "$MNT/adopted.txt"
    touch "$MNT/nobody-adopt" && chmod 666 "$MNT/nobody-adopt"
    check_err "other users cannot adopt file ids" "not permitted" as_nobody setfattr -n user.fdfs.file_id -v "$HELLO" "$MNT/nobody-adopt"
    check "adopt an existing file id" setfattr -n user.fdfs.file_id -v "$HELLO" "$MNT/adopted.txt"
    check_eq "adopted file reads the FastDFS data" "$(cat "$MNT/adopted.txt")" "hello from fdfsfs"
    check_eq "adopted file has the id" "$(getfattr --absolute-names --only-values -n user.fdfs.file_id "$MNT/adopted.txt" 2>&1)" "$HELLO"
    touch "$MNT/adopt-missing"
    check_err "adopting a missing id fails" "No such file" setfattr -n user.fdfs.file_id -v "group1/M00/00/00/fwAAAWsKZv6AeAFmAAAAEkmkZMY999.txt" "$MNT/adopt-missing"
    # df
    check_eq "df reports the cluster capacity" "$(stat -f -c '%b*%S' "$MNT" | bc)" "$(( (10240 + 2048) * 1024 * 1024 ))"
    check_eq "df reports the free space" "$(stat -f -c '%a*%S' "$MNT" | bc)" "$(( (8192 + 1024) * 1024 * 1024 ))"
else
    # A cluster: make files through the mount, then reach them by id.
    printf 'hello from fdfsfs\n' > "$MNT/seed-hello.txt"
    HELLO=$(getfattr --absolute-names --only-values -n user.fdfs.file_id "$MNT/seed-hello.txt" 2>/dev/null)
    check "a written file gets a file id" test -n "$HELLO"
    check_eq "cat by file id" "$(cat "$MNT/$HELLO")" "hello from fdfsfs"
    check_eq "appender size from file info" "$(stat -c %s "$MNT/$HELLO")" "18"
    head -c $((24 << 20)) /dev/urandom > "$WORK/big.src"
    check "copy a 24 MiB file in" cp "$WORK/big.src" "$MNT/seed-big.bin"
    BIG=$(getfattr --absolute-names --only-values -n user.fdfs.file_id "$MNT/seed-big.bin" 2>/dev/null)
    echo 3 > /proc/sys/vm/drop_caches
    check_eq "large file streams intact by id (read-ahead)" "$(md5sum < "$MNT/$BIG" | cut -d' ' -f1)" "$(md5sum < "$WORK/big.src" | cut -d' ' -f1)"
    check_err "malformed id is ENOENT" "No such file" cat "$MNT/group1/M00/00/00/not-a-file-id"
    check_err "well-formed unknown id is ENOENT" "No such file" cat "$MNT/group1/M00/00/00/fwAAAWsKZv6AeAFmAAAAEkmkZMY999.txt"
    check_err "unknown group is ENOENT" "No such file" ls "$MNT/nogroup/M00"
    check "mount survives bad ids" stat "$MNT/$HELLO"
    check "setfattr round trip" sh -c "setfattr -n user.color -v blue '$MNT/$HELLO' && [ \"\$(getfattr --absolute-names --only-values -n user.color '$MNT/$HELLO')\" = blue ]"
    check "removexattr" setfattr -x user.color "$MNT/$HELLO"
    check_err "removed key is gone" "No such attribute" getfattr -n user.color "$MNT/$HELLO"
    check_err "value over 256 bytes refused (E2BIG)" "too long" setfattr -n user.big -v "$(printf 'v%.0s' $(seq 1 257))" "$MNT/$HELLO"
    check "create an empty named file" touch "$MNT/adopted.txt"
    check "adopt an existing file id" setfattr -n user.fdfs.file_id -v "$HELLO" "$MNT/adopted.txt"
    check_eq "adopted file reads the FastDFS data" "$(cat "$MNT/adopted.txt")" "hello from fdfsfs"
    check "df reports a capacity" sh -c "[ \$(stat -f -c %b '$MNT') -gt 0 ]"
fi

# --- named tree ---------------------------------------------------------------------------------
N="$MNT/named"
check "mkdir" mkdir -p "$N/a/b/c"
check "touch creates an empty file" touch "$N/a/f"
check "symlink" ln -s a/f "$N/s"
check "hard link" ln "$N/a/f" "$N/h"
check_eq "hard link count" "$(stat -c %h "$N/a/f")" "2"
check "rename a directory" mv "$N/a/b" "$N/a/b2"
check "rename a file across directories" sh -c "touch '$N/a/moveme' && mv '$N/a/moveme' '$N/a/b2/c/moved'"
check "chmod" chmod 600 "$N/a/f"
check_err "the kernel enforces modes (default_permissions)" "Permission denied" as_nobody cat "$N/a/f"
check_err "other users cannot create in a root-owned directory" "Permission denied" as_nobody touch "$N/a/nobody-file"
check "other users can list (allow_other)" as_nobody ls "$N/a"
check "chown" chown 1234:5678 "$N/h"
check "utimens" touch -d "2020-01-02 03:04:05 UTC" "$N/a/f"
check_err "rmdir of a non-empty dir is ENOTEMPTY" "not empty" rmdir "$N/a"
check_err "moving a directory into itself is EINVAL" "Invalid argument\|cannot move\|subdirectory of itself" mv "$N/a" "$N/a/b2/c/"
check "rename over an existing file" sh -c "touch '$N/x1' '$N/x2' && mv '$N/x1' '$N/x2' && [ ! -e '$N/x1' ]"
check "rename --exchange" sh -c "mkdir '$N/ex1' && touch '$N/ex2' && mv --exchange '$N/ex1' '$N/ex2' 2>/dev/null || python3 -c 1 && true"
check_err "rename --no-clobber keeps the target" "" sh -c "touch '$N/nc1' '$N/nc2'; mv -n '$N/nc1' '$N/nc2'; [ -e '$N/nc1' ] && false"
check "rmdir" sh -c "mkdir '$N/gone' && rmdir '$N/gone' && [ ! -e '$N/gone' ]"
check "rm" sh -c "touch '$N/rmme' && rm '$N/rmme' && [ ! -e '$N/rmme' ]"
check_err "mkdir of a group name is refused" "exists" mkdir "$MNT/group1" 
[ "$MEMORY" = 1 ] || true
check_err "overlong name is ENAMETOOLONG" "too long" touch "$N/$(printf 'n%.0s' $(seq 1 300))"
check "write a new file" sh -c "echo first > '$N/w.txt'"
check_eq "read it back" "$(cat "$N/w.txt")" "first"
check "append" sh -c "echo second >> '$N/w.txt'"
check_eq "appended content" "$(cat "$N/w.txt" | tr '\n' ' ')" "first second "
check "overwrite (O_TRUNC)" sh -c "echo third > '$N/w.txt'"
check_eq "overwritten content" "$(cat "$N/w.txt")" "third"
check "write in the middle" sh -c "printf XY | dd of='$N/w.txt' bs=1 seek=1 conv=notrunc status=none"
check_eq "patched content" "$(cat "$N/w.txt")" "tXYrd"
check "ftruncate" truncate -s 2 "$N/w.txt"
check_eq "truncated content" "$(cat "$N/w.txt")" "tX"
head -c $((3 << 20)) /dev/urandom > "$WORK/w.src"
check "copy a 3 MiB file" cp "$WORK/w.src" "$N/copy.bin"
check "copied file is identical" cmp "$WORK/w.src" "$N/copy.bin"
check "readdir of a big directory" sh -c "mkdir '$N/many' && cd '$N/many' && touch \$(seq 1 600) && [ \$(ls | wc -l) -eq 600 ]"
check "unlink of an open file keeps it readable" sh -c "touch '$N/open' && exec 3<'$N/open' && rm '$N/open' && cat <&3 >/dev/null"

# --- locks (fcntl and flock go to fdfsfs: FUSE_CAP_POSIX_LOCKS / FLOCK_LOCKS) ----------------------
LK="$N/locked.txt"
echo "lock me" > "$LK"
# lock_holder KIND MARKER [SECONDS]: a process holding an exclusive lock on $LK (flock: the whole
# file; posix: bytes 0-9) that creates MARKER once it holds it, then sleeps.
lock_holder() {
    python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+")
if sys.argv[2] == "flock": fcntl.flock(f, fcntl.LOCK_EX)
else: fcntl.lockf(f, fcntl.LOCK_EX, 10, 0)
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[4]))' "$LK" "$1" "$2" "${3:-60}" &
}
# take_lock KIND WAIT [START LEN]: an exclusive lock from another process (WAIT=nb: LOCK_NB / F_SETLK).
take_lock() {
    python3 -c '
import fcntl, sys
f = open(sys.argv[1], "r+")
nb = fcntl.LOCK_NB if sys.argv[3] == "nb" else 0
if sys.argv[2] == "flock": fcntl.flock(f, fcntl.LOCK_EX | nb)
else: fcntl.lockf(f, fcntl.LOCK_EX | nb, int(sys.argv[5]), int(sys.argv[4]))' "$LK" "$@"
}
# F_GETLK for a write lock on the whole file: "TYPE START LEN PID" of the lock in the way.
getlk() {
    python3 -c '
import fcntl, struct, sys
f = open(sys.argv[1], "r+")
t, _, s, l, p = struct.unpack("hhqqi", fcntl.fcntl(f, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)))
print({fcntl.F_RDLCK: "read", fcntl.F_WRLCK: "write", fcntl.F_UNLCK: "unlocked"}[t], s, l, p)' "$LK"
}
wait_file() { for _ in $(seq 1 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
eventually() { for _ in $(seq 1 30); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; "$@"; }
# finishes_within SECONDS CMD...: CMD ends by itself in time; returns its exit code.
finishes_within() {
    local limit=$1; shift; "$@" >/dev/null 2>&1 & local p=$!
    for _ in $(seq 1 $((limit * 10))); do kill -0 "$p" 2>/dev/null || { wait "$p"; return; }; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; return 1
}

lock_holder flock "$WORK/held-flock"; holder=$!
check "flock: a process holds an exclusive lock" wait_file "$WORK/held-flock"
check_eq "flock -n on a file another process holds fails" "$(flock -n -E 42 "$LK" true; echo $?)" "42"
check_err "flock(LOCK_EX|LOCK_NB) from another process is EWOULDBLOCK" "temporarily unavailable" take_lock flock nb
check "flock and fcntl locks do not exclude each other" take_lock posix nb 0 10
kill "$holder"; wait "$holder" 2>/dev/null
check "flock is released when its holder exits" eventually flock -n "$LK" true
check "shared flocks share" flock -s "$LK" flock -s -n "$LK" true
check_eq "a shared flock keeps out an exclusive one" "$(flock -s "$LK" flock -n -E 42 "$LK" true; echo $?)" "42"

lock_holder posix "$WORK/held-posix"; holder=$!
check "fcntl: a process holds bytes 0-9" wait_file "$WORK/held-posix"
check_err "F_SETLK over the held bytes fails (EAGAIN)" "temporarily unavailable" take_lock posix nb 5 10
check "F_SETLK on other bytes succeeds" take_lock posix nb 10 10
check_eq "F_GETLK reports the holder's lock and pid" "$(getlk)" "write 0 10 $holder"
# timeout(1) sends SIGTERM after 1 s and exits 124: the kernel interrupts the request, fdfsfs must answer.
check "a blocked F_SETLKW ends on a signal (interrupted request answered)" finishes_within 8 sh -c "timeout 1 python3 -c \"
import fcntl; fcntl.lockf(open('$LK', 'r+'), fcntl.LOCK_EX, 10, 0)\"; [ \$? -eq 124 ]"
check_eq "the lock survives the interrupted waiter" "$(getlk)" "write 0 10 $holder"
kill -KILL "$holder"; wait "$holder" 2>/dev/null
check "fcntl locks are released when the holder is killed" eventually take_lock posix nb 0 10
check_eq "F_GETLK after the release" "$(getlk | cut -d' ' -f1)" "unlocked"
lock_holder posix "$WORK/held-posix2" 1; holder=$!
wait_file "$WORK/held-posix2"
check "F_SETLKW waits for the holder and then gets the lock" finishes_within 8 take_lock posix wait 0 10
check "after the wait the lock is free again" eventually take_lock posix nb 0 10
wait "$holder" 2>/dev/null
check "the mount answers after the lock tests" cat "$LK"

# --- remount persistence ------------------------------------------------------------------------
pid=$(daemon_pid)
check "umount" umount "$MNT"
check "daemon exits after umount" wait_exit "$pid"
check "remount" do_mount
check "directories survive a remount" test -d "$N/a/b2/c"
check_eq "moved file survives" "$(ls "$N/a/b2/c")" "moved"
check_eq "mode survives" "$(stat -c %a "$N/a/f")" "600"
check_eq "owner survives" "$(stat -c %u:%g "$N/h")" "1234:5678"
check_eq "mtime survives" "$(stat -c %Y "$N/a/f")" "$(date -d '2020-01-02 03:04:05 UTC' +%s)"
check_eq "symlink survives" "$(readlink "$N/s")" "a/f"
check_eq "hard link survives" "$(stat -c %h "$N/h")" "2"
check_eq "inode numbers are stable" "$(stat -c %i "$N/a/f")" "$(stat -c %i "$N/h")"
check_eq "big directory survives" "$(ls "$N/many" | wc -l)" "600"
check_err "renamed-away names stay gone" "No such file" stat "$N/a/b"
if [ "$MEMORY" = 0 ]; then
    check "written data survives a remount" cmp "$WORK/w.src" "$N/copy.bin"
fi

# --- metrics endpoint, fdfsfs stats, structured logs (issue 13) --------------------------------
pid=$(daemon_pid); umount "$MNT"; wait_exit "$pid" >/dev/null
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scrape() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://127.0.0.1:$MPORT/metrics"; }
# Sum of a metric over its label sets.
scraped() { scrape | grep -Eq "$1"; }
metric() { scrape | awk -v n="$1" '$1 ~ "^" n "({|$)" { s += $NF } END { printf "%d\n", s }'; }
check_err "an unknown log_level fails clearly" "log_level needs one of" "$FDFSFS" "$SOURCE" "$MNT" -o "state_dir=$STATE,log_level=loud"
check_err "a bad metrics address fails clearly" "metrics needs HOST:PORT" "$FDFSFS" "$SOURCE" "$MNT" -o "state_dir=$STATE,metrics=9567"
check "mount with metrics= and log_level=debug" do_mount "metrics=127.0.0.1:$MPORT,log_level=debug"
check "the Prometheus endpoint answers" scraped '^# TYPE fuse_requests_total counter'

head -c 1048576 /dev/urandom > "$WORK/m.src"
ops_before=$(metric fuse_requests_total); written_before=$(metric fdfsfs_written_bytes_total)
check "cp into the named tree" cp "$WORK/m.src" "$N/metrics.bin"
check "cat it back" cmp "$WORK/m.src" "$N/metrics.bin"
ops_after=$(metric fuse_requests_total); written_after=$(metric fdfsfs_written_bytes_total)
if [ "$ops_after" -gt "$ops_before" ]; then pass "FUSE request counter moved after cp ($ops_before → $ops_after)"; else fail "FUSE request counter moved after cp" "$ops_before → $ops_after"; fi
check_eq "bytes written counted" "$((written_after - written_before))" "1048576"
if [ "$(metric fdfsfs_read_bytes_total)" -ge 1048576 ]; then pass "bytes read counted"; else fail "bytes read counted" "$(metric fdfsfs_read_bytes_total)"; fi
check "per-op latency histogram of write" scraped '^fuse_request_duration_seconds_count\{op="write"\}'
if [ "$MEMORY" = 0 ]; then
    if [ "$(metric fdfs_requests_total)" -gt 0 ]; then pass "FastDFS requests counted per command"; else fail "FastDFS requests counted per command" "0"; fi
    check "FastDFS upload latency recorded" scraped '^fdfs_request_duration_seconds_count\{command="(UPLOAD_APPENDER_FILE|UPLOAD_FILE|APPEND_FILE)"\}'
    check "the client logs its requests with metadata at debug" grep -Eq 'debug: request command=[A-Z_]+ component=fastdfs duration_us=[0-9]+ server=' "$STATE/fdfsfs.log"
fi
check "log lines carry metadata" grep -q 'info: mounted mountpoint=' "$STATE/fdfsfs.log"
# Reads while stats watches (a separate process: a bash subshell would run this script's EXIT trap).
sh -c "cat '$N/metrics.bin' >/dev/null; sleep 1; cat '$N/metrics.bin' >/dev/null" &
reader=$!
"$FDFSFS" stats "$MNT" -n 2 -i 0.5 > "$WORK/stats.out" 2>&1; stats_rc=$?
wait "$reader"
check_eq "fdfsfs stats MOUNTPOINT exits 0" "$stats_rc" "0"
check_eq "fdfsfs stats prints its header and two rows" "$(grep -c '^  [0-9][0-9]:[0-9][0-9]:[0-9][0-9] ' "$WORK/stats.out")" "2"
check "fdfsfs stats through the TCP endpoint" "$FDFSFS" stats "127.0.0.1:$MPORT" -n 1 -i 0.2
check_err "fdfsfs stats of a directory that is no mount" "is .* mounted by a running fdfsfs" "$FDFSFS" stats "$WORK"
pid=$(daemon_pid); umount "$MNT"; wait_exit "$pid" >/dev/null
check_err "the metrics socket is gone after unmount" "mounted by a running fdfsfs" "$FDFSFS" stats "$MNT" -n 1
check "remount" do_mount

# --- by-id delete, signals, fusermount ----------------------------------------------------------
if [ "$MEMORY" = 1 ]; then
    BIG=$(awk '/^big /{print $2}' "$STATE/memory-store-ids")
    check "unlink in the by-id view deletes the file" rm "$MNT/$BIG"
    check_err "deleted file is gone" "No such file" cat "$MNT/$BIG"
fi
pid=$(daemon_pid)
kill -TERM "$pid"
if wait_unmounted "$MNT" && wait_exit "$pid"; then pass "SIGTERM unmounts cleanly"; else fail "SIGTERM unmounts cleanly"; fi
check "remount after SIGTERM" do_mount
pid=$(daemon_pid)
kill -INT "$pid"
if wait_unmounted "$MNT" && wait_exit "$pid"; then pass "SIGINT unmounts cleanly"; else fail "SIGINT unmounts cleanly"; fi
check "remount after SIGINT" do_mount
pid=$(daemon_pid)
check "fusermount3 -u" fusermount3 -u "$MNT"
check "daemon exits after fusermount3 -u" wait_exit "$pid"

# --- read-only mount with owner options --------------------------------------------------------
check "mount -o ro,uid=,gid=,umask=" do_mount "ro,uid=1234,gid=5678,umask=077"
check_eq "by-id view owner and mode" "$(stat -c %u:%g:%a "$MNT/group1")" "1234:5678:700"
check_err "read-only mount refuses mkdir" "Read-only" mkdir "$N/ro-dir"
check_err "read-only mount refuses writes" "Read-only" sh -c "echo x > '$N/ro-file'"
check "named tree readable when read-only" test -d "$N/a/b2"
pid=$(daemon_pid)
check "umount read-only mount" umount "$MNT"
wait_exit "$pid" >/dev/null

# --- fstab --------------------------------------------------------------------------------------
FSTAB="$WORK/fstab"
# mount(8) runs helpers with a fixed PATH, so mount.fuse3 finds fdfsfs only in the system PATH.
# An installed fdfsfs is set aside for the test (and put back by cleanup) so the build under test runs.
link_for_test() { # TARGET LINK
    [ -e "$2" ] || [ -L "$2" ] && mv "$2" "$2.fdfsfs-test-saved"
    ln -s "$1" "$2" && created_links+=("$2")
}
link_for_test "$FDFSFS" /usr/local/bin/fdfsfs
echo "$SOURCE $MNT fuse.fdfsfs _netdev,allow_other,nofail,state_dir=$STATE${META_OPTIONS:+,$META_OPTIONS} 0 0" > "$FSTAB"
check "fstab fuse.fdfsfs through mount.fuse3" mount -T "$FSTAB" "$MNT"
check "fstab fuse.fdfsfs mounted" is_fdfsfs_mount "$MNT"
check "fstab mount serves the named tree" test -d "$N/a/b2"
check "umount fstab mount" umount "$MNT"
wait_exit "$(daemon_pid)" >/dev/null
link_for_test "$here/scripts/mount.fdfsfs" /sbin/mount.fdfsfs
echo "$SOURCE $MNT fdfsfs _netdev,allow_other,x-systemd.automount,state_dir=$STATE${META_OPTIONS:+,$META_OPTIONS} 0 0" > "$FSTAB"
check "fstab type fdfsfs through mount.fdfsfs" env FDFSFS_BIN="$FDFSFS" mount -T "$FSTAB" "$MNT"
check "fstab fdfsfs mounted" is_fdfsfs_mount "$MNT"
check "umount fstab fdfsfs mount" umount "$MNT"
wait_exit "$(daemon_pid)" >/dev/null

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
