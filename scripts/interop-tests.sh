#!/usr/bin/env bash
# Interoperability with a client nobody here wrote: py3fdfs (PyPI) against fdfs-devserver,
# and files crossing between py3fdfs and our `fdfs` tool in both directions.
# Only the py3fdfs calls that work upstream are used: upload, download to buffer, delete,
# appender upload / append / truncate.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
PY="$root/.venv/bin/python"
[ -x "$PY" ] || { fail "py3fdfs venv missing at $root/.venv (run scripts/install-deps.sh)"; summary; exit 1; }

start_devserver || { fail "devserver start"; summary; exit 1; }
host=${TRACKER%:*}; port=${TRACKER##*:}
head -c 300000 /dev/urandom >"$WORK/py.bin"
head -c 200000 /dev/urandom >"$WORK/ours.bin"

"$FDFS" --tracker "$TRACKER" upload "$WORK/ours.bin" --ext bin >"$WORK/ours.id" 2>"$WORK/ours.err"
check "fdfs upload for py3fdfs" test -s "$WORK/ours.id"

"$PY" - "$host" "$port" "$WORK" "$(cat "$WORK/ours.id")" >"$WORK/py.out" 2>&1 <<'PYEOF'
import sys, hashlib
from fdfs_client.client import Fdfs_client
host, port, work, ours_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = Fdfs_client({'host_tuple': (host,), 'port': port, 'timeout': 30, 'name': 'Tracker Pool'})
def out(k, v): print(f"{k}={v}", flush=True)
def fid(r):  # py3fdfs returns and expects file ids as bytes
    v = r['Remote file_id']; return v if isinstance(v, bytes) else v.encode()
data = open(f"{work}/py.bin", "rb").read()
r = c.upload_by_buffer(data, file_ext_name='bin'); pid = fid(r); out("py_upload", pid.decode())
got = c.download_to_buffer(pid)['Content']; out("py_roundtrip", got == data)
got = c.download_to_buffer(ours_id.encode())['Content']
out("py_reads_ours_sha", hashlib.sha256(got).hexdigest())
r = c.upload_appender_by_buffer(b"hello ", file_ext_name='log'); aid = fid(r); out("py_appender", aid.decode())
c.append_by_buffer(b"world", aid)
out("py_after_append", c.download_to_buffer(aid)['Content'].decode())
c.truncate_file(5, aid)
out("py_after_truncate", c.download_to_buffer(aid)['Content'].decode())
r = c.upload_by_buffer(b"to be deleted", file_ext_name='txt'); did = fid(r)
c.delete_file(did); out("py_deleted", did.decode())
PYEOF
check "py3fdfs session ran" test $? -eq 0
val() { awk -F= -v k="$1" '$1==k{sub(/^[^=]*=/,""); print; exit}' "$WORK/py.out"; }
cat "$WORK/py.out" | head -20
pid=$(val py_upload)
check_contains "py3fdfs upload gives a file id" "group1/M00/" "$pid"
check_eq "py3fdfs upload + download round trip" "True" "$(val py_roundtrip)"
"$FDFS" --tracker "$TRACKER" download "$pid" "$WORK/py.down" >/dev/null 2>&1
check_eq "fdfs downloads the py3fdfs upload byte-identical" "$(sha "$WORK/py.bin")" "$(sha "$WORK/py.down")"
check_eq "py3fdfs downloads the fdfs upload byte-identical" "$(sha "$WORK/ours.bin")" "$(val py_reads_ours_sha)"
check_eq "py3fdfs appender append" "hello world" "$(val py_after_append)"
check_eq "py3fdfs appender truncate" "hello" "$(val py_after_truncate)"
aid=$(val py_appender)
check_eq "fdfs reads the py3fdfs appender" "hello" "$("$FDFS" --tracker "$TRACKER" download "$aid" -)"
printf ' again' | "$FDFS" --tracker "$TRACKER" append "$aid" - >/dev/null 2>&1
check_eq "fdfs appends to the py3fdfs appender" "hello again" "$("$FDFS" --tracker "$TRACKER" download "$aid" -)"
check_fails "py3fdfs delete is seen by fdfs" "$FDFS" --tracker "$TRACKER" download "$(val py_deleted)" -

summary
