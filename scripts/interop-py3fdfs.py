#!/usr/bin/env python3
"""Interop check: the PyPI FastDFS client `py3fdfs` (module fdfs_client) against fdfs-devserver.

Usage: interop-py3fdfs.py TRACKER_HOST:PORT
       interop-py3fdfs.py TRACKER_HOST:PORT put FILE EXT     upload FILE, print the file id
       interop-py3fdfs.py TRACKER_HOST:PORT put-appender FILE EXT
       interop-py3fdfs.py TRACKER_HOST:PORT get FILE_ID OUT  download to a buffer, write OUT
       interop-py3fdfs.py TRACKER_HOST:PORT append FILE_ID FILE
       interop-py3fdfs.py TRACKER_HOST:PORT delete FILE_ID

Without a command: exercises the calls of py3fdfs that work against real servers: upload,
download to buffer, delete, appender upload, append, truncate (its range download, modify,
metadata and list calls are broken upstream and are not used). Exits 0 when every check
passes, 1 otherwise, printing one line per check ("ok   NAME" or "FAIL NAME: detail").
The commands are single py3fdfs calls for cross-client checks (scripts/interop-tests.sh);
they exit non-zero when the call fails.

Setup: python3 -m venv .venv && .venv/bin/pip install py3fdfs
"""
import sys

try:
    from fdfs_client.client import Fdfs_client
except ImportError:
    print("py3fdfs is not installed: python3 -m venv .venv && .venv/bin/pip install py3fdfs", file=sys.stderr)
    sys.exit(2)


def single_call(client, command, args):
    """One py3fdfs call (file ids cross as text; py3fdfs wants them as bytes)."""
    def remote_id(result):
        v = result["Remote file_id"]
        return v.decode() if isinstance(v, bytes) else v

    if command in ("put", "put-appender") and len(args) == 2:
        data = open(args[0], "rb").read()
        upload = client.upload_by_buffer if command == "put" else client.upload_appender_by_buffer
        print(remote_id(upload(data, args[1])))
    elif command == "get" and len(args) == 2:
        open(args[1], "wb").write(client.download_to_buffer(args[0].encode())["Content"])
    elif command == "append" and len(args) == 2:
        client.append_by_buffer(open(args[1], "rb").read(), args[0].encode())
    elif command == "delete" and len(args) == 1:
        client.delete_file(args[0].encode())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


def main():
    if len(sys.argv) < 2 or ":" not in sys.argv[1]:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1].rsplit(":", 1)
    client = Fdfs_client({"host_tuple": (host,), "port": int(port), "timeout": 10, "name": "Tracker Pool"})
    if len(sys.argv) > 2:
        return single_call(client, sys.argv[2], sys.argv[3:])
    failures = []

    def check(name, condition, detail=""):
        print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"))
        if not condition:
            failures.append(name)

    payload = b"hello from py3fdfs " * 1000
    up = client.upload_by_buffer(payload, "txt")
    file_id = up["Remote file_id"]  # py3fdfs works with bytes file ids
    text_id = file_id.decode() if isinstance(file_id, bytes) else file_id
    check("upload", up["Status"] == "Upload successed." and text_id.startswith("group1/M00/"), up)

    down = client.download_to_buffer(file_id)
    check("download to buffer", down["Content"] == payload, f"{len(down['Content'])} bytes")

    deleted = client.delete_file(file_id)
    check("delete", deleted[0] == "Delete file successed.", deleted)
    try:
        client.download_to_buffer(file_id)
        check("download after delete fails", False, "download succeeded")
    except Exception as e:  # py3fdfs raises DataError carrying the status on a non-zero reply
        check("download after delete fails", True)
        print(f"     ({type(e).__name__}: {e})")

    app = client.upload_appender_by_buffer(b"0123456789", "log")
    app_id = app["Remote file_id"]
    check("appender upload", app["Status"] == "Upload successed.", app)

    appended = client.append_by_buffer(b"ABCDE", app_id)
    check("append", appended["Status"] == "Append file successed.", appended)
    check("content after append", client.download_to_buffer(app_id)["Content"] == b"0123456789ABCDE")

    truncated = client.truncate_file(4, app_id)
    check("truncate", truncated["Status"] == "Truncate successed.", truncated)
    check("content after truncate", client.download_to_buffer(app_id)["Content"] == b"0123")

    client.delete_file(app_id)
    print(f"{'FAILED: ' + ', '.join(failures) if failures else 'all py3fdfs checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
