#!/usr/bin/env bash
# POSIX behaviour of the named tree, side by side with ext4 (issue 10): special files (FIFOs,
# sockets, devices), names as bytes, and the error cases of every call, as root and as other users.
# Mounts fdfsfs (the in-memory store, or FDFS_BACKEND=devserver: fdfs-devserver on free ports) and
# a small ext4 image on a loop device (so the comparison does not depend on what /tmp is), then
#   - checks the special files and byte names by hand with the shell tools a user would use,
#     in the named tree, in the by-id view (EPERM) and across a remount;
#   - runs scripts/posix-compare.py: the same steps on both, every result and errno compared,
#     differences allowed only where README lists them as deliberate.
# Root and /dev/fuse required (fails otherwise: never skips). Prints PASS/FAIL per check and ends
# with exactly "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
    echo "FAIL: posix tests need root and /dev/fuse"
    echo "0 passed, 1 failed"
    exit 1
fi

BIN=${FDFS_BIN_DIR:-}
if [ -z "$BIN" ]; then
    swift build --product fdfsfs >/tmp/fdfsfs-posix-tests-build.log 2>&1 || { tail -30 /tmp/fdfsfs-posix-tests-build.log; echo "0 passed, 1 failed"; exit 1; }
    BIN=$(swift build --show-bin-path)
fi
FDFSFS="$BIN/fdfsfs"

WORK=$(mktemp -d /tmp/fdfsfs-px.XXXXXX); chmod 755 "$WORK"   # other users must reach both trees
MNT="$WORK/mnt"; STATE="$WORK/state"; EXT4="$WORK/ext4"
mkdir -p "$MNT" "$STATE" "$EXT4"
DEVSERVER_PID=""
passed=0; failed=0

cleanup() {
    for m in "$MNT" "$EXT4"; do
        if mountpoint -q "$m" 2>/dev/null; then umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; fi
    done
    if [ -f "$STATE/fdfsfs.pid" ]; then
        pid=$(cat "$STATE/fdfsfs.pid")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q fdfsfs "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null; fi
    fi
    if [ -n "$DEVSERVER_PID" ]; then kill "$DEVSERVER_PID" 2>/dev/null; wait "$DEVSERVER_PID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

source "$(dirname "$0")/checks.sh"
check_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$3', got '$2'"; fi; }

if [ "${FDFS_BACKEND:-memory}" = devserver ]; then
    mkdir -p "$WORK/devserver"
    "$BIN/fdfs-devserver" --data "$WORK/devserver" --tracker-port 0 --storage-port 0 >"$WORK/devserver.out" 2>&1 &
    DEVSERVER_PID=$!
    for _ in $(seq 1 600); do grep -q '^ready' "$WORK/devserver.out" && break; sleep 0.1; done
    SOURCE=$(awk '/^tracker /{print $2}' "$WORK/devserver.out")
    [ -n "$SOURCE" ] || { cat "$WORK/devserver.out"; echo "0 passed, 1 failed"; exit 1; }
    echo "fdfs-devserver tracker at $SOURCE"
else
    SOURCE=memory:
fi
# FDFS_MOUNT_OPTIONS adds -o options (e.g. attr_timeout=0,entry_timeout=0: every stat asks fdfsfs).
do_mount() { "$FDFSFS" "$SOURCE" "$MNT" -o "allow_other,state_dir=$STATE${FDFS_MOUNT_OPTIONS:+,$FDFS_MOUNT_OPTIONS}"; }
daemon_pid() { cat "$STATE/fdfsfs.pid" 2>/dev/null; }
wait_exit() { for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

# The local reference: ext4 on a loop device, mounted nosuid,nodev like the FUSE mount (libfuse's
# default), so device nodes and set-user-ID files behave alike on both.
truncate -s 64M "$WORK/ext4.img"
check "make the ext4 image" mkfs.ext4 -q -F -b 4096 "$WORK/ext4.img"
check "loop-mount ext4 (nosuid,nodev)" mount -o loop,nosuid,nodev "$WORK/ext4.img" "$EXT4"
check "mount fdfsfs" do_mount
check_eq "the FUSE mount is nosuid,nodev" "$(findmnt -n -o OPTIONS --mountpoint "$MNT" | tr ',' '\n' | grep -E '^no(suid|dev)$' | sort | tr '\n' ' ')" "nodev nosuid "
N="$MNT/named"
mkdir -p "$N"; chmod 755 "$N"

# --- special files by hand ---------------------------------------------------------------------------
check "mkfifo in the named tree" mkfifo -m 0640 "$N/fifo"
check_eq "lstat type and mode of the FIFO" "$(stat -c '%F %a' "$N/fifo")" "fifo 640"
check_eq "a FIFO carries data between two processes" "$( (echo through-the-fifo > "$N/fifo" &) ; timeout 10 cat "$N/fifo")" "through-the-fifo"
check "mknod of a character device" mknod -m 0600 "$N/null" c 1 3
check "mknod of a block device" mknod -m 0600 "$N/loop" b 7 200
check_eq "device types and numbers (major,minor)" "$(stat -c '%F %t,%T' "$N/null" "$N/loop" | tr '\n' ';')" "character special file 1,3;block special file 7,c8;"
check_eq "ls -l shows them" "$(ls -l "$N" | awk '/null$|loop$|fifo$/{print substr($1,1,1)}' | sort | tr -d '\n')" "bcp"
check "a unix socket binds and accepts a connection" python3 - "$N/sock" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
if os.fork() == 0:
    c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); c.sendall(b"hi"); os._exit(0)
s.settimeout(10); conn, _ = s.accept(); assert conn.recv(2) == b"hi"
EOF
check_eq "the socket node is a socket" "$(stat -c %F "$N/sock")" "socket"
check "ln, mv, chmod, chown, touch on special files" sh -c "ln '$N/fifo' '$N/fifo2' && mv '$N/sock' '$N/sock2' && chmod 600 '$N/sock2' && chown 1:2 '$N/null' && touch -d @1000000000 '$N/loop'"
check_eq "after ln/mv/chmod/chown/touch" "$(cd "$N" && stat -c '%n %h %a %u:%g' fifo2 sock2 null | tr '\n' ';')$(stat -c %Y "$N/loop")" \
    "fifo2 2 640 0:0;sock2 1 600 0:0;null 1 600 1:2;1000000000"
mkdir "$N/holder" && mkfifo "$N/holder/p"
check_err "rmdir of a directory holding a FIFO is ENOTEMPTY" "not empty" rmdir "$N/holder"
check "mv a regular file over a FIFO" sh -c "echo x > '$N/plain' && mv '$N/plain' '$N/fifo2' && [ -f '$N/fifo2' ]"

# --- names as bytes by hand ------------------------------------------------------------------------
check "two names differing in a non-UTF-8 byte" bash -c "echo ff > '$N/bad'\$'\\xff' && echo fe > '$N/bad'\$'\\xfe'"
check_eq "each keeps its own content" "$(cat "$N/bad"$'\xff') $(cat "$N/bad"$'\xfe')" "ff fe"
check "rm of one leaves the other" bash -c "rm '$N/bad'\$'\\xff' && [ ! -e '$N/bad'\$'\\xff' ] && [ \"\$(cat '$N/bad'\$'\\xfe')\" = fe ]"
check_eq "ls gives the exact bytes back" "$(ls "$N" | grep -a '^bad' | od -An -c | tr -s ' ')" " b a d 376 \n"
check "a 255-byte name of 0xff bytes" touch "$N/$(printf '\xff%.0s' $(seq 1 255))"
check_err "a 256-byte name is ENAMETOOLONG" "too long" touch "$N/$(printf '\xff%.0s' $(seq 1 256))"

# --- the by-id view refuses special files ---------------------------------------------------------
check_err "mkfifo in the by-id view is EPERM" "not permitted" mkfifo "$MNT/group1/M00/00/00/fifo"
check_err "mknod in a by-id group directory is EPERM" "not permitted" mknod "$MNT/group1/dev" c 1 3
check_err "bind() of a socket in the by-id view is EPERM" "not permitted" python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$MNT/group1/M00/00/00/sock"

# --- everything survives a remount (the naming database) -----------------------------------------
before=$(cd "$N" && stat -c '%n|%F|%a|%u:%g|%h|%t,%T' fifo fifo2 sock2 null loop holder/p bad$'\xfe' | od -An -c | tr -s ' ')
pid=$(daemon_pid)
check "unmount" umount "$MNT"
wait_exit "$pid"
check "remount" do_mount
check_eq "special files and byte names after a remount" "$(cd "$N" && stat -c '%n|%F|%a|%u:%g|%h|%t,%T' fifo fifo2 sock2 null loop holder/p bad$'\xfe' | od -An -c | tr -s ' ')" "$before"
check_eq "the FIFO still works after a remount" "$( (echo again > "$N/fifo" &) ; timeout 10 cat "$N/fifo")" "again"

# --- side by side with ext4 ---------------------------------------------------------------------------
mkdir -p "$N/compare" "$EXT4/compare"
chmod 755 "$N/compare" "$EXT4/compare"
python3 "$here/scripts/posix-compare.py" "$N/compare" "$EXT4/compare" --readme "$here/README.md" >"$WORK/compare.out" 2>&1
rc=$?
cat "$WORK/compare.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$WORK/compare.out" | tail -1)
p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then fail "posix-compare.py exited $rc"; fi
check "the mount is still up after the comparison" stat "$N"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
