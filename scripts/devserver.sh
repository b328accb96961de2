#!/usr/bin/env bash
# Start/stop fdfs-devserver in the background for scripts and manual trials.
#
#   scripts/devserver.sh start DATA_DIR [fdfs-devserver options...]
#       builds fdfs-devserver if needed, starts it (ephemeral ports unless given), waits for
#       "ready", and prints its address lines (tracker HOST:PORT / storage GROUP HOST:PORT).
#       The pid goes to DATA_DIR/devserver.pid, the output to DATA_DIR/devserver.log, and it
#       listens for control commands on DATA_DIR/control.sock (unless --control is given).
#   scripts/devserver.sh stop DATA_DIR
#       sends SIGTERM and waits for the clean shutdown.
#   scripts/devserver.sh tracker DATA_DIR
#       prints the tracker's HOST:PORT (for client.conf's tracker_server).
#   scripts/devserver.sh ctl DATA_DIR COMMAND...
#       sends a control command to the server started for DATA_DIR, e.g.
#       `ctl DATA_DIR stop-storage group1/storage1`, `ctl DATA_DIR status` (see fdfs-devserver --help).
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { sed -n '2,15p' "$0"; exit 2; }
shift 2 || true
mkdir -p "$dir"
pidfile="$dir/devserver.pid"; log="$dir/devserver.log"; control="$dir/control.sock"
bin=${FDFS_DEVSERVER:-.build/debug/fdfs-devserver}

case "$cmd" in
start)
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "fdfs-devserver already running for $dir (pid $(cat "$pidfile"))" >&2; exit 1
    fi
    [[ -x "$bin" ]] || swift build --product fdfs-devserver >&2
    args=("$@")
    [[ " ${args[*]-} " == *" --tracker-port "* ]] || args+=(--tracker-port 0)
    [[ " ${args[*]-} " == *" --storage-port "* ]] || args+=(--storage-port 0)
    [[ " ${args[*]-} " == *" --control "* ]] || args+=(--control "$control")
    "$bin" --data "$dir" "${args[@]}" >"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    for _ in $(seq 1 300); do
        if grep -qx ready "$log"; then grep -v '^ready$' "$log"; exit 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then cat "$log" >&2; rm -f "$pidfile"; exit 1; fi
        sleep 0.1
    done
    echo "fdfs-devserver did not become ready; see $log" >&2; exit 1 ;;
stop)
    [[ -f "$pidfile" ]] || exit 0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile" ;;
tracker)
    awk '$1 == "tracker" { print $2 }' "$log" ;;
ctl)
    [[ $# -gt 0 ]] || { echo "usage: $0 ctl DATA_DIR COMMAND..." >&2; exit 2; }
    [[ -x "$bin" ]] || swift build --product fdfs-devserver >&2
    exec "$bin" control "$control" "$@" ;;
*)
    sed -n '2,15p' "$0"; exit 2 ;;
esac
