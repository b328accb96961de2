# Shared helpers for the shell test suites (sourced, not run).
# Provides: check/expect helpers with PASS/FAIL counting, start_devserver, start_postgres, summary.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${FDFS_BIN_DIR:-}
if [ -z "$BIN" ]; then
    cfg=${FDFS_BUILD_CONFIG:-debug}
    (cd "$root" && swift build -c "$cfg" >/dev/null 2>&1) || { echo "build failed" >&2; exit 1; }
    BIN=$(cd "$root" && swift build -c "$cfg" --show-bin-path)
fi
FDFS="$BIN/fdfs"; DEVSERVER="$BIN/fdfs-devserver"; FDFSFS="$BIN/fdfsfs"
PASS=0; FAIL=0
WORK=$(mktemp -d /tmp/fdfs-test.XXXXXX)
CLEANUP_PIDS=()
CLEANUP_HOOKS=()   # commands run by cleanup after the unmounts and kills, before $WORK is removed

pass() { PASS=$((PASS + 1)); echo "PASS: $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
# check NAME COMMAND...: passes when the command exits 0.
check() { local name=$1; shift; if "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then pass "$name"; else fail "$name (exit $?: $(head -c 300 "$WORK/last.err"))"; fi; }
# check_fails NAME COMMAND...: passes when the command exits non-zero.
check_fails() { local name=$1; shift; if "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then fail "$name (unexpectedly succeeded)"; else pass "$name"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() { if [ "$2" == "$3" ]; then pass "$1"; else fail "$1 (expected '$2', got '$3')"; fi; }
check_contains() { if printf '%s' "$3" | grep -qF -- "$2"; then pass "$1"; else fail "$1 (expected to contain '$2', got '$(printf '%s' "$3" | head -c 300)')"; fi; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# start_devserver [extra args...]: starts fdfs-devserver on ephemeral ports with a fresh data dir
# and sets TRACKER (host:port), STORAGES (array of host:port), DEVSERVER_PID, DEVSERVER_DATA.
# DEVSERVER_ARGS (e.g. "--storage-ids" or "--trunk") is added to every start, so a whole suite
# runs against that server mode.
# Each storage has its own loopback address (127.0.0.2, ...). The server listens for control
# commands on $DEVSERVER_CONTROL (exported), e.g. to stop a storage in the middle of a test:
#   "$DEVSERVER" control "$DEVSERVER_CONTROL" stop-storage group1/storage1
start_devserver() {
    DEVSERVER_DATA=${DEVSERVER_DATA:-$WORK/devserver-data}
    mkdir -p "$DEVSERVER_DATA"
    local out="$WORK/devserver.out"
    rm -f "$out"  # a previous start's "ready" line must not be mistaken for this one's
    export DEVSERVER_CONTROL="$WORK/devserver.sock"
    # shellcheck disable=SC2086  # DEVSERVER_ARGS is a list of flags
    "$DEVSERVER" --data "$DEVSERVER_DATA" --tracker-port 0 --storage-port 0 --control "$DEVSERVER_CONTROL" ${DEVSERVER_ARGS:-} "$@" \
        >"$out" 2>"$WORK/devserver.err" &
    DEVSERVER_PID=$!
    CLEANUP_PIDS+=("$DEVSERVER_PID")
    for _ in $(seq 1 600); do  # up to 60 s: the machine may be busy compiling
        grep -q '^ready' "$out" 2>/dev/null && break
        kill -0 "$DEVSERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ready' "$out"; then
        local state="exited"; kill -0 "$DEVSERVER_PID" 2>/dev/null && state="still running, no ready line after 60 s"
        echo "fdfs-devserver $* did not start ($state):" >&2; cat "$out" "$WORK/devserver.err" >&2; return 1
    fi
    TRACKER=$(awk '$1=="tracker"{print $NF; exit}' "$out")
    mapfile -t STORAGES < <(awk '$1=="storage"{print $NF}' "$out")
}
stop_devserver() { [ -n "${DEVSERVER_PID:-}" ] && kill "$DEVSERVER_PID" 2>/dev/null && wait "$DEVSERVER_PID" 2>/dev/null; DEVSERVER_PID=; }

# start_postgres, stop_postgres, restart_postgres, pg_psql, ...: see postgres.sh.
source "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

cleanup() {
    for m in $(awk -v w="$WORK" '$2 ~ "^"w {print $2}' /proc/mounts); do fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    for p in "${CLEANUP_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for h in "${CLEANUP_HOOKS[@]}"; do $h; done
    rm -rf "$WORK"
}
trap cleanup EXIT

summary() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; }
