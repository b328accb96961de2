#!/usr/bin/env bash
# Interoperability with a client nobody here wrote: py3fdfs (PyPI) against fdfs-devserver.
# scripts/interop-py3fdfs.py holds the py3fdfs-only checks (upload, download to buffer, delete,
# appender upload / append / truncate — the py3fdfs calls that work upstream); this script runs
# them and then crosses files between py3fdfs and our `fdfs` tool in both directions.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
PY="$root/.venv/bin/python"
[ -x "$PY" ] || { fail "py3fdfs venv missing at $root/.venv (run scripts/install-deps.sh)"; summary; exit 1; }
py() { "$PY" "$root/scripts/interop-py3fdfs.py" "$TRACKER" "$@"; }
f() { "$FDFS" --tracker "$TRACKER" "$@"; }

start_devserver --storages-per-group 2 || { fail "devserver start"; summary; exit 1; }

# py3fdfs on its own: one PASS/FAIL per check of the python script
py >"$WORK/py.out" 2>&1; status=$?
while read -r word rest; do
    case $word in
        ok) pass "py3fdfs: $rest" ;;
        FAIL) fail "py3fdfs: $rest" ;;
    esac
done <"$WORK/py.out"
check_eq "py3fdfs checks script exits 0" "0" "$status"
grep -q "all py3fdfs checks passed" "$WORK/py.out" || { fail "py3fdfs checks did not complete"; cat "$WORK/py.out"; }

# fdfs → py3fdfs
head -c 300000 /dev/urandom >"$WORK/py.bin"
head -c 200000 /dev/urandom >"$WORK/ours.bin"
ours=$(f upload "$WORK/ours.bin" --ext bin)
check_contains "fdfs upload for py3fdfs" "group1/M00/" "$ours"
py get "$ours" "$WORK/ours.py-down" 2>"$WORK/last.err"
check_eq "py3fdfs downloads the fdfs upload byte-identical" "$(sha "$WORK/ours.bin")" "$(sha "$WORK/ours.py-down" 2>/dev/null)"

# py3fdfs → fdfs
pid=$(py put "$WORK/py.bin" bin)
check_contains "py3fdfs upload gives a file id" "group1/M00/" "$pid"
f download "$pid" "$WORK/py.down" >/dev/null 2>&1
check_eq "fdfs downloads the py3fdfs upload byte-identical" "$(sha "$WORK/py.bin")" "$(sha "$WORK/py.down")"

# an appender file written by both
printf 'hello' >"$WORK/hello.txt"; printf ' world' >"$WORK/world.txt"
aid=$(py put-appender "$WORK/hello.txt" log)
check_eq "fdfs reads the py3fdfs appender" "hello" "$(f download "$aid" -)"
printf ' again' | f append "$aid" - >/dev/null 2>&1
py get "$aid" "$WORK/app.py-down"
check_eq "py3fdfs reads what fdfs appended" "hello again" "$(cat "$WORK/app.py-down")"
fid=$(printf 'abc' | f upload - --appender --ext log)
check "py3fdfs appends to an fdfs appender" py append "$fid" "$WORK/world.txt"
check_eq "fdfs reads what py3fdfs appended" "abc world" "$(f download "$fid" -)"

# deletes seen across clients
check "py3fdfs deletes a file" py delete "$pid"
check_fails "py3fdfs delete is seen by fdfs" f download "$pid" -
check_contains "fdfs says ENOENT for it" "ENOENT" "$(cat "$WORK/last.err")"
check "fdfs deletes a file" f delete "$ours"
check_fails "fdfs delete is seen by py3fdfs" py get "$ours" "$WORK/gone"

summary
