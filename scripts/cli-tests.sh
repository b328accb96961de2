#!/usr/bin/env bash
# End-to-end tests of the `fdfs` command line tool against a local fdfs-devserver:
# every subcommand, pipelines, --json, the error paths (message + exit status), the progress bar,
# timeouts, and a subset of the commands against every --compat layout.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

start_devserver --storages-per-group 1 || { fail "devserver start"; summary; exit 1; }
T=(--tracker "$TRACKER")
f() { "$FDFS" "${T[@]}" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
# check_status NAME EXPECTED_EXIT COMMAND...: passes when the command exits with that status.
check_status() {
    local name=$1 want=$2; shift 2
    "$@" >"$WORK/last.out" 2>"$WORK/last.err"; local got=$?
    if [ "$got" -eq "$want" ]; then pass "$name"; else fail "$name (exit $got, expected $want: $(head -c 300 "$WORK/last.err"))"; fi
}

check_eq "fdfs --version" "fdfs 0.1.0" "$("$FDFS" --version 2>&1)"
check_eq "fdfs-devserver --version" "fdfs-devserver 0.1.0" "$("$DEVSERVER" --version 2>&1)"
check_contains "fdfsfs --version" "fdfsfs 0.1.0 (libfuse low-level API" "$("$FDFSFS" --version 2>&1)"

head -c 1048576 /dev/urandom >"$WORK/a.bin"
printf 'hello fastdfs\n' >"$WORK/small.txt"

# upload / download
id=$(f upload "$WORK/a.bin" --ext bin); check "upload prints a file id" test -n "$id"
check_contains "upload id has group and ext" "group1/M00/" "$id"
check_eq "upload prints only the file id (one line, nothing else)" "1" "$(printf '%s\n' "$id" | grep -cE '^group1/M00/[0-9A-F]{2}/[0-9A-F]{2}/[A-Za-z0-9_-]{27,}\.bin$')"
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
check_contains "--verbose logs each request with its command, server and duration on stderr" "command=QUERY_FILE_INFO duration_us=" "$(f --verbose info "$id" 2>&1 >/dev/null)"
check "--verbose leaves stdout as it was" test "$(f --verbose info "$id" 2>/dev/null)" = "$(f info "$id")"

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
check_fails "truncate of a normal file fails" f truncate "$id2" 1
check_contains "a local check's error names the errno" "is not an appender file (only appender files can be appended to, modified, truncated or regenerated) (EINVAL)" "$(cat "$WORK/last.err")"

# groups / servers
check_contains "groups lists group1" "group1" "$(f groups)"
check_contains "groups GROUP" "group1" "$(f groups group1)"
check_contains "groups --json" "group1" "$(f --json groups)"
check_contains "servers GROUP" "${STORAGES[0]%:*}" "$(f servers group1)"
sid1=$(f --json servers group1 | json 'd["servers"][0]["id"]')   # the IP, or the storage id in ID mode
check_contains "servers --storage ID" "${STORAGES[0]%:*}" "$(f servers group1 --storage "$sid1")"

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
printf 'network_timeout = 30\n' >"$WORK/notracker.conf"
check_eq "--conf without tracker_server plus --tracker" "hello fastdfs" "$("$FDFS" --conf "$WORK/notracker.conf" --tracker "$TRACKER" download "$id3" -)"
check_status "--conf without tracker_server alone fails" 1 "$FDFS" --conf "$WORK/notracker.conf" groups
check_contains "and names the missing key" "notracker.conf: key tracker_server: missing" "$(cat "$WORK/last.err")"
printf 'tracker_server = 127.0.0.1:22122\nconnect_timeout = soon\n' >"$WORK/bad.conf"
check_fails "bad client.conf fails" "$FDFS" --conf "$WORK/bad.conf" groups
check_contains "config error names file and line" "bad.conf:2" "$(cat "$WORK/last.err")"
check_contains "config error names the key" "connect_timeout" "$(cat "$WORK/last.err")"

# README.md's shell example, run as written (fdfs → this build on the dev server; the line aimed
# at a foreign tracker is left out; `convert` is a stand-in that passes the photo through, so
# ImageMagick is not needed), so the README stays true
readme_sh=$(awk '/^## fdfs: the command line/{s=1} s&&/^```sh/{b=1;next} b&&/^```/{exit} b' "$root/README.md" | grep -v '10\.0\.0\.5')
mkdir -p "$WORK/readme"
(
    set -e; cd "$WORK/readme"
    fdfs() { "$FDFS" --tracker "$TRACKER" "$@"; }
    convert() { cat "$1"; }
    { printf '\377\330\377\340\000\020JFIF\000\001\001\000\000\001\000\001\000\000'; head -c 3000 /dev/urandom; } >photo.jpg
    eval "$readme_sh"
    printf '%s\n' "$id" "$thumb" "$log" >ids
) >"$WORK/readme/out" 2>"$WORK/readme/err"
readme_rc=$?
check_eq "README shell example runs $(head -c 200 "$WORK/readme/err")" "0" "$readme_rc"
mapfile -t rids < <(cat "$WORK/readme/ids" 2>/dev/null; echo; echo; echo)
check_contains "README: download | file - sees the JPEG" "JPEG image data" "$(cat "$WORK/readme/out")"
check_contains "README: --json info" "\"file_id\":\"${rids[0]}\"" "$(cat "$WORK/readme/out")"
check_eq "README: metadata after --merge" "$(printf 'author=bob\nheight=600\nwidth=800')" "$(f meta get "${rids[0]}" | sort)"
check_contains "README: the thumbnail is a slave file" "_150x150.jpg" "${rids[1]}"
check_eq "README: appender log" "$(printf 'first line\nsecond line')" "$(f download "${rids[2]}" -)"

# the default configuration file
if [ ! -e /etc/fdfs/client.conf ]; then
    check_status "no --conf/--tracker and no /etc/fdfs/client.conf exits 1" 1 "$FDFS" groups
    check_contains "the message names the default conf and the way out" "/etc/fdfs/client.conf: No such file or directory (use --conf FILE or --tracker HOST:PORT)" "$(cat "$WORK/last.err")"
fi

# pipes given as FILE (/dev/stdin, process substitution) are spooled like -
pid1=$(printf 'via /dev/stdin' | f upload /dev/stdin --ext txt)
check_eq "upload /dev/stdin (a pipe)" "via /dev/stdin" "$(f download "$pid1" -)"
pid2=$(f upload <(printf 'via a process substitution') --ext txt)
check_eq "upload <(command)" "via a process substitution" "$(f download "$pid2" -)"
aid2=$(printf 'a' | f upload - --appender)
f append "$aid2" <(printf 'b') >/dev/null
check_eq "append <(command)" "ab" "$(f download "$aid2" -)"

# stdin is spooled to an already-unlinked file: nothing is left behind even on SIGKILL
mkdir -p "$WORK/spool"
TMPDIR="$WORK/spool" "$FDFS" --tracker "$TRACKER" upload - < <(printf 'partial'; sleep 3) >/dev/null 2>&1 &
spool_pid=$!; sleep 0.5; kill -9 "$spool_pid" 2>/dev/null; wait "$spool_pid" 2>/dev/null
check_eq "killed while reading stdin: no temporary file left" "0" "$(ls -A "$WORK/spool" | wc -l)"
check_eq "TMPDIR is where stdin is spooled" "spooled" "$(printf 'spooled' | TMPDIR="$WORK/spool" f upload - | xargs -I{} "$FDFS" --tracker "$TRACKER" download {} -)"

# global options after the command name
check_eq "--tracker after the command" "hello fastdfs" "$("$FDFS" download "$id3" - --tracker "$TRACKER")"
check_eq "--json after the command" "1048576" "$("$FDFS" info "$id" --tracker "$TRACKER" --json | json 'd["size"]')"
check_eq "--conf=FILE form after the command" "hello fastdfs" "$("$FDFS" download "$id3" - --conf="$WORK/client.conf")"

# --json: one object per command, every file command names the file id
jid2=$(f --json upload "$WORK/small.txt" --appender --ext txt | json 'd["file_id"]')
check_eq "--json upload: size" "14" "$(f --json upload "$WORK/small.txt" | json 'd["size"]')"
check_eq "--json append: file_id and bytes" "$jid2 14" "$(f --json append "$jid2" "$WORK/small.txt" | json 'd["file_id"]+" "+str(d["bytes"])')"
check_eq "--json modify: offset and bytes" "2 14" "$(f --json modify "$jid2" "$WORK/small.txt" --offset 2 | json 'str(d["offset"])+" "+str(d["bytes"])')"
check_eq "--json truncate: size" "5" "$(f --json truncate "$jid2" 5 | json 'd["size"]')"
check_eq "--json download: bytes" "5" "$(f --json download "$jid2" "$WORK/j.out" | json 'd["bytes"]')"
check_eq "--json meta set/get" "v" "$(f --json meta set "$jid2" k=v >/dev/null; f --json meta get "$jid2" | json 'd["metadata"]["k"]')"
check_eq "--json info of an appender: size from the storage" "appender 5" "$(f --json info "$jid2" | json 'd["kind"]+" "+str(d["size"])')"
check_contains "--json regenerate: old and new id" "$jid2" "$(f --json regenerate "$jid2" | json 'd["old_file_id"]')"
check_eq "--json delete" "True" "$(f --json delete "$id3" | json 'd["deleted"]')"
check_eq "--json servers" "${STORAGES[0]}" "$(f --json servers group1 | json 'd["servers"][0]["ip"]+":"+str(d["servers"][0]["port"])')"
check_status "--json download to stdout is a usage error" 2 f --json download "$id" -
check_contains "info shows create time and crc32 like fdfs_file_info" "crc32: " "$(f info "$id")"
# info of a large appender file: the storage is not asked for a CRC (it would read all of it)
bigapp=$(f upload "$WORK/small.txt" --appender --ext log)
f truncate "$bigapp" $((10 << 30)) >/dev/null
check_eq "info of a 10 GiB appender file: size from the storage, no CRC computed" "10737418240 - (not computed; --crc asks the storage)" \
    "$(timeout 20 "$FDFS" --tracker "$TRACKER" info "$bigapp" | awk -F': ' '$1=="size"{s=$2} $1=="crc32"{c=$2} END{print s" "c}')"
f delete "$bigapp" >/dev/null
smallapp=$(f upload "$WORK/small.txt" --appender --ext log)
want_crc=$(python3 -c "import zlib,sys; print(zlib.crc32(open(sys.argv[1],'rb').read()))" "$WORK/small.txt")
check_eq "info --crc of an appender file: the storage's CRC32 of its content" "$want_crc" "$(f --json info "$smallapp" --crc 2>/dev/null | json 'd["crc32"]')"
# download --storage reads that storage only (no fallback to another)
check_eq "download --storage HOST:PORT" "$(sha "$WORK/small.txt")" "$(f download "$smallapp" - --storage "${STORAGES[0]}" | sha256sum | cut -d' ' -f1)"
check_status "download --storage of a storage that is not there fails (no fallback)" 1 f download "$smallapp" - --storage 127.0.0.1:1
check_status "download --storage with a malformed address is a usage error" 2 f download "$smallapp" - --storage "host:notaport"

# local files: missing input, directories, unwritable output
check_status "upload of a missing file exits 1" 1 f upload "$WORK/no-such-file"
check_contains "upload error names the missing path" "$WORK/no-such-file: No such file or directory" "$(cat "$WORK/last.err")"
check_status "upload of a directory exits 1" 1 f upload "$WORK"
check_contains "upload of a directory says so" "Is a directory" "$(cat "$WORK/last.err")"
mkdir -p "$WORK/outdir"
check_status "download to a directory exits 1" 1 f download "$id" "$WORK/outdir"
check_contains "download to a directory names it" "$WORK/outdir: Is a directory" "$(cat "$WORK/last.err")"
check_status "download into a missing directory exits 1" 1 f download "$id" "$WORK/nodir/x"
check_contains "unwritable output is named with the reason" "cannot write $WORK/nodir/x: No such file or directory" "$(cat "$WORK/last.err")"
printf 'keep me' >"$WORK/keep.txt"
check_status "download of an unknown id exits 1" 1 f download "$id2" "$WORK/keep.txt"
check_eq "a failed download leaves an existing OUTPUT untouched" "keep me" "$(cat "$WORK/keep.txt")"

# numbers and KEY=VALUE
check_eq "--offset far past the end gives no bytes" "0" "$(f download "$id" - --offset 9223372036854775807 | wc -c)"
check_eq "--length past the end is clamped" "1048476" "$(f download "$id" - --offset 100 --length 9223372036854775000 | wc -c)"
tid=$(printf 'abc' | f upload - --appender)
check_status "truncate to 2^63-1 fails" 1 f truncate "$tid" 9223372036854775807
check_contains "truncate to 2^63-1: the storage's errno (as ftruncate's)" "EFBIG (File too large)" "$(cat "$WORK/last.err")"
check_status "negative SIZE is a usage error" 2 f truncate "$aid" -5
check_contains "negative SIZE message" "must not be negative" "$(cat "$WORK/last.err")"
check_status "negative --length is a usage error" 2 f download "$id" - --length -1
check_status "negative --offset (= form) is a usage error" 2 f download "$id" - --offset=-1
check_status "meta set without = is a usage error" 2 f meta set "$id" novalue
check_contains "meta set error names the item" "novalue" "$(cat "$WORK/last.err")"
check_status "meta set with an empty key is a usage error" 2 f meta set "$id" =x
long_key=$(printf 'k%.0s' $(seq 65)); long_value=$(printf 'v%.0s' $(seq 257))
check_status "metadata key over 64 bytes is refused" 2 f meta set "$id" "$long_key=1"
check_contains "long key message gives the limit" "at most 64" "$(cat "$WORK/last.err")"
check_status "metadata value over 256 bytes is refused" 2 f upload "$WORK/small.txt" --meta "k=$long_value"
check_contains "long value message gives the limit" "at most 256" "$(cat "$WORK/last.err")"
check_eq "64-byte key and 256-byte value are kept whole" "${long_key:1}=${long_value:1}" \
    "$(f meta set "$id" "${long_key:1}=${long_value:1}" && f meta get "$id")"
check_eq "VALUE may contain =" "a=b=c" "$(f meta set "$id" a=b=c && f meta get "$id")"
check_status "unknown option is a usage error" 2 f groups --no-such-option

# errors name the server and the errno
check_status "dead tracker exits 1" 1 "$FDFS" --tracker 127.0.0.1:1 groups
check_contains "dead tracker: message names it and the errno" "127.0.0.1:1 failed: connect failed: Connection refused (ECONNREFUSED)" "$(cat "$WORK/last.err")"
printf 'tracker_server = 127.0.0.1:1\ntracker_server = 127.0.0.1:2\n' >"$WORK/dead2.conf"
check_status "--conf with only dead trackers exits 1" 1 "$FDFS" --conf "$WORK/dead2.conf" groups
check_contains "every dead tracker is named" "127.0.0.1:1: connect failed" "$(cat "$WORK/last.err")"
check_contains "every dead tracker is named (2)" "127.0.0.1:2: connect failed" "$(cat "$WORK/last.err")"
sid=$(f --json servers group1 | json 'd["servers"][0]["id"]')
check_eq "servers --storage ID lists that storage" "1 $sid" "$(f --json servers group1 --storage "$sid" | json 'str(len(d["servers"]))+" "+d["servers"][0]["id"]')"
check_status "servers --storage of an unknown storage exits 1" 1 f servers group1 --storage 10.9.9.9

# progress bar: on a terminal stderr only, for transfers over 4 MiB
head -c 5000000 /dev/urandom >"$WORK/big.bin"
if command -v script >/dev/null; then
    bar=$(script -qec "$FDFS --tracker $TRACKER upload $WORK/big.bin >$WORK/big.id" /dev/null)
    check_contains "progress bar on a terminal (upload)" "100%" "$bar"
    bar=$(script -qec "$FDFS --tracker $TRACKER download $(cat "$WORK/big.id") $WORK/big.out" /dev/null)
    check_contains "progress bar on a terminal (download)" "100%" "$bar"
    check_eq "download with a progress bar is byte-identical" "$(sha "$WORK/big.bin")" "$(sha "$WORK/big.out")"
    big_id=$(cat "$WORK/big.id")
    bar=$(script -qec "$FDFS --tracker $TRACKER upload-slave $WORK/big.bin --master $big_id --prefix _big >$WORK/bigslave.id" /dev/null)
    check_contains "progress bar on a terminal (upload-slave)" "100%" "$bar"
    check_eq "upload-slave with a progress bar is byte-identical" "$(sha "$WORK/big.bin")" "$(f download "$(cat "$WORK/bigslave.id")" - | sha256sum | cut -d' ' -f1)"
    big_app=$(printf 'x' | f upload - --appender)
    bar=$(script -qec "$FDFS --tracker $TRACKER modify $big_app $WORK/big.bin --offset 1" /dev/null)
    check_contains "progress bar on a terminal (modify)" "100%" "$bar"
    check_eq "modify with a progress bar wrote every byte" "$(( $(wc -c <"$WORK/big.bin") + 1 ))" "$(f download "$big_app" - | wc -c)"
    bar=$(script -qec "$FDFS --tracker $TRACKER append $big_app $WORK/big.bin" /dev/null)
    check_contains "progress bar on a terminal (append)" "100%" "$bar"
    small_id=$(f upload "$WORK/small.txt")
    tty_out=$(script -qec "$FDFS --tracker $TRACKER download $small_id; echo \"exit \$?\"" /dev/null)
    check_contains "download without OUTPUT to a terminal is refused" "standard output is a terminal" "$tty_out"
    check_contains "and exits 2" "exit 2" "$tty_out"
    check_contains "download - to a terminal writes anyway" "hello fastdfs" "$(script -qec "$FDFS --tracker $TRACKER download $small_id -" /dev/null)"
    bar=$(script -qec "$FDFS --tracker $TRACKER upload $WORK/small.txt >/dev/null" /dev/null)
    check_eq "no progress bar for a small file" "" "$bar"
else
    fail "progress bar tests need script(1) (bsdutils)"
fi
f upload "$WORK/big.bin" 2>"$WORK/big.err" >/dev/null
check_eq "no progress bar when stderr is not a terminal" "0" "$(wc -c <"$WORK/big.err")"
stop_devserver

# faults injected from fdfs-devserver's command line: a storage that stops answering (the timeout
# names the server), a command failed with a given errno once, slow replies
DEVSERVER_DATA=$WORK/fault-data start_devserver --groups 2 --fault group2:stall \
    --fault "group1:fail=UPLOAD_FILE:ENOSPC,times=1" --fault group1:delay=50 || fail "devserver --fault start"
T=(--tracker "$TRACKER")
g2=$(awk '$1=="storage" && $2=="group2"{print $NF; exit}' "$WORK/devserver.out")
printf 'tracker_server = %s\nnetwork_timeout = 1\nconnect_timeout = 1\n' "$TRACKER" >"$WORK/stall.conf"
check_status "stalled storage: upload times out with exit 1" 1 "$FDFS" --conf "$WORK/stall.conf" upload "$WORK/small.txt" --group group2
check_contains "timeout message names the storage and network_timeout" "UPLOAD_FILE on $g2 failed: no network progress for 1 s (network_timeout) (ETIMEDOUT)" "$(cat "$WORK/last.err")"
check_status "fail=UPLOAD_FILE:ENOSPC: upload fails with exit 1" 1 f upload "$WORK/small.txt" --group group1
check_contains "the injected errno is named" "UPLOAD_FILE on ${STORAGES[0]} failed: ENOSPC (No space left on device)" "$(cat "$WORK/last.err")"
fid=$(f upload "$WORK/small.txt" --group group1)
check_eq "times=1: the next upload works (through delay=50)" "hello fastdfs" "$(f download "$fid" -)"
stop_devserver

# a download cut off half way (fault drop-after on a restarted server holding the file): the
# partial OUTPUT file is removed, a non-regular OUTPUT such as /dev/stdout is left alone
DEVSERVER_DATA=$WORK/drop-data start_devserver || fail "devserver start (drop)"
drop_id=$("$FDFS" --tracker "$TRACKER" upload "$WORK/a.bin")
stop_devserver
if DEVSERVER_DATA=$WORK/drop-data start_devserver --fault storage:drop-after=100000; then
    check_status "download cut off half way exits 1" 1 "$FDFS" --tracker "$TRACKER" download "$drop_id" "$WORK/partial.bin"
    check_contains "the cut is reported" "the reply was cut short" "$(cat "$WORK/last.err")"
    check "the partial OUTPUT is removed" test ! -e "$WORK/partial.bin"
    "$FDFS" --tracker "$TRACKER" download "$drop_id" /dev/stdout 2>/dev/null | cat >/dev/null
    check "/dev/stdout as OUTPUT is never removed" test -e /dev/stdout
    stop_devserver
else
    fail "devserver --fault storage:drop-after start"
fi

# --listen and --groups from the command line: addresses handed out and embedded in file ids
if DEVSERVER_DATA=$WORK/listen-data start_devserver --listen 127.0.0.2 --groups 2; then
    check_eq "--listen: the tracker listens there" "127.0.0.2" "${TRACKER%:*}"
    lid=$("$FDFS" --tracker "$TRACKER" upload "$WORK/small.txt" --group group2)
    check_contains "--groups 2: upload into group2" "group2/M00/" "$lid"
    # (in ID mode the id carries a storage id; the storage maps it to its IP)
    check_eq "--listen: the file id's source is that address" "127.0.0.2" "$("$FDFS" --tracker "$TRACKER" --json info "$lid" | json 'd["source"].get("ip") or d["storage"]["source_ip"]')"
    check_eq "--groups 2: groups lists both" "group1 group2" "$("$FDFS" --tracker "$TRACKER" --json groups | json '" ".join(g["name"] for g in d["groups"])')"
    stop_devserver
else
    fail "devserver --listen 127.0.0.2 --groups 2 start"
fi

# every compat layout end to end: 5.12 (15-byte IPs, 105-byte group stats, old fetch-all) and 6.11 (45-byte IPs)
for compat in 5 6.11; do
    DEVSERVER_DATA=$WORK/compat-$compat start_devserver --compat "$compat" --storages-per-group 2 || { fail "devserver --compat $compat start"; continue; }
    c() { "$FDFS" --tracker "$TRACKER" "$@"; }
    cid=$(c upload "$WORK/a.bin" --meta k=v)
    check_eq "compat $compat: upload + download" "$(sha "$WORK/a.bin")" "$(c download "$cid" - | sha256sum | cut -d' ' -f1)"
    check_eq "compat $compat: ranged download" "$(tail -c +11 "$WORK/a.bin" | head -c 20 | od -An -tx1)" "$(c download "$cid" - --offset 10 --length 20 | od -An -tx1)"
    check_eq "compat $compat: download past EOF is empty" "0" "$(c download "$cid" - --offset 2000000 | wc -c)"
    check_eq "compat $compat: meta get" "k=v" "$(c meta get "$cid")"
    check_contains "compat $compat: info" "size: 1048576" "$(c info "$cid")"
    cap=$(printf 'abc' | c upload - --appender --ext log); printf 'def' | c append "$cap" - >/dev/null
    check_eq "compat $compat: appender append" "abcdef" "$(c download "$cap" -)"
    check_eq "compat $compat: groups (group stats layout)" "group1 2" "$(c --json groups | json 'd["groups"][0]["name"]+" "+str(d["groups"][0]["storage_count"])')"
    check_eq "compat $compat: servers (storage stats layout)" "2 ${STORAGES[0]%:*}" "$(c --json servers group1 | json 'str(len(d["servers"]))+" "+d["servers"][0]["ip"]')"
    sid=$(c --json servers group1 | json 'd["servers"][1]["id"]')
    check_eq "compat $compat: servers --storage picks one of two" "1 $sid" "$(c --json servers group1 --storage "$sid" | json 'str(len(d["servers"]))+" "+d["servers"][0]["id"]')"
    check "compat $compat: delete" c delete "$cid"
    stop_devserver
done

summary
