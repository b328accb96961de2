#!/usr/bin/env bash
# End-to-end tests of the `fdfs` command line tool against a local fdfs-devserver:
# every subcommand, pipelines, --json, and the error path (message + exit status).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

start_devserver --storages-per-group 1 || { fail "devserver start"; summary; exit 1; }
T=(--tracker "$TRACKER")
f() { "$FDFS" "${T[@]}" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

head -c 1048576 /dev/urandom >"$WORK/a.bin"
printf 'hello fastdfs\n' >"$WORK/small.txt"

# upload / download
id=$(f upload "$WORK/a.bin" --ext bin); check "upload prints a file id" test -n "$id"
check_contains "upload id has group and ext" "group1/M00/" "$id"
f download "$id" "$WORK/a.out" >/dev/null 2>&1
check_eq "download to file is byte-identical" "$(sha "$WORK/a.bin")" "$(sha "$WORK/a.out")"
check_eq "download to stdout (-) is byte-identical" "$(sha "$WORK/a.bin")" "$(f download "$id" - | sha256sum | cut -d' ' -f1)"
check_eq "download --offset --length" "$(tail -c +101 "$WORK/a.bin" | head -c 50 | od -An -tx1)" "$(f download "$id" - --offset 100 --length 50 | od -An -tx1)"
id2=$(printf 'from stdin' | f upload - --ext txt)
check_eq "upload from stdin (-)" "from stdin" "$(f download "$id2" -)"
id3=$(f upload "$WORK/small.txt" --group group1 --meta color=red --meta size=10)
check_contains "upload --group --meta" "group1/" "$id3"
check_eq "meta get after upload" "$(printf 'color=red\nsize=10')" "$(f meta get "$id3" | sort)"
jid=$(f --json upload "$WORK/small.txt" | json 'd["file_id"] if "file_id" in d else d["fileID"]')
check_contains "--json upload has the file id" "group1/M00/" "$jid"

# meta set merge / overwrite
f meta set "$id3" color=blue extra=1 --merge >/dev/null
check_eq "meta set --merge" "$(printf 'color=blue\nextra=1\nsize=10')" "$(f meta get "$id3" | sort)"
f meta set "$id3" only=1 --overwrite >/dev/null
check_eq "meta set --overwrite" "only=1" "$(f meta get "$id3")"

# info
info=$(f info "$id"); check_contains "info shows the size" "1048576" "$info"
check_contains "info --json is JSON" "{" "$(f --json info "$id")"

# slave
sid=$(printf 'thumb' | f upload-slave - --master "$id" --prefix _150x150 --ext jpg)
check_contains "upload-slave id carries the prefix" "_150x150.jpg" "$sid"
check_eq "slave download" "thumb" "$(f download "$sid" -)"

# appender: append, modify, truncate, regenerate
aid=$(printf 'abc' | f upload - --appender --ext log)
printf 'def' | f append "$aid" - >/dev/null
check_eq "append" "abcdef" "$(f download "$aid" -)"
printf 'XY' | f modify "$aid" - --offset 1 >/dev/null
check_eq "modify --offset" "aXYdef" "$(f download "$aid" -)"
f truncate "$aid" 4 >/dev/null
check_eq "truncate shrink" "aXYd" "$(f download "$aid" -)"
f truncate "$aid" 6 >/dev/null
check_eq "truncate grow zero-fills" "6" "$(f download "$aid" - | wc -c)"
printf 'ok' >"$WORK/app.txt"; f append "$aid" "$WORK/app.txt" >/dev/null
check_eq "append from file" "8" "$(f download "$aid" - | wc -c)"
rid=$(f regenerate "$aid"); check_contains "regenerate gives a new id" "group1/M00/" "$rid"
check_eq "regenerated file keeps content" "8" "$(f download "$rid" - | wc -c)"
check_fails "append to a normal file fails" f append "$id2" "$WORK/app.txt"
check_contains "error says it is not an appender file" "appender" "$(cat "$WORK/last.err")"

# groups / servers
check_contains "groups lists group1" "group1" "$(f groups)"
check_contains "groups GROUP" "group1" "$(f groups group1)"
check_contains "groups --json" "group1" "$(f --json groups)"
check_contains "servers GROUP" "${STORAGES[0]%:*}" "$(f servers group1)"
check_contains "servers --storage" "${STORAGES[0]%:*}" "$(f servers group1 --storage "${STORAGES[0]%:*}")"

# delete and the error path
check "delete" f delete "$id2"
check_fails "download after delete fails" f download "$id2" -
err=$(cat "$WORK/last.err")
check_contains "error message names ENOENT" "ENOENT" "$err"
check_eq "error message is one line" "1" "$(printf '%s\n' "$err" | grep -c .)"
check_fails "malformed file id is rejected" f info "not-a-file-id"
check_fails "dead tracker fails" "$FDFS" --tracker 127.0.0.1:1 groups
check_fails "unknown group fails" f groups nosuchgroup

# client.conf
cat >"$WORK/client.conf" <<CONF
connect_timeout = 5
network_timeout = 30
base_path = /tmp
tracker_server = 127.0.0.1:1
tracker_server = $TRACKER
use_connection_pool = true
CONF
check_eq "--conf with a dead tracker listed first (failover)" "hello fastdfs" "$("$FDFS" --conf "$WORK/client.conf" download "$id3" -)"
printf 'tracker_server = 127.0.0.1:22122\nconnect_timeout = soon\n' >"$WORK/bad.conf"
check_fails "bad client.conf fails" "$FDFS" --conf "$WORK/bad.conf" groups
check_contains "config error names file and line" "bad.conf:2" "$(cat "$WORK/last.err")"
check_contains "config error names the key" "connect_timeout" "$(cat "$WORK/last.err")"

summary
