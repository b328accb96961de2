# A private PostgreSQL server for a shell suite (sourced by lib.sh, or on its own by a suite
# that has its own cleanup: it needs WORK, a temporary directory, and CLEANUP_HOOKS, an array of
# commands the suite's cleanup runs at exit).
CLEANUP_HOOKS=("${CLEANUP_HOOKS[@]}")

# use_postgres_meta: for suites run with FDFS_META=postgres (test.sh runs the mount and write
# suites once that way): starts a private server and sets META_OPTIONS, the -o options that put
# the named tree of the suite's mounts in a namespace of it.
use_postgres_meta() {
    start_postgres || return 1
    META_OPTIONS="meta=$PG_URL&namespace=suite,meta_password_file=$PG_PASSWORD_FILE"
    echo "named tree in PostgreSQL: $PG_URL&namespace=suite"
}

# start_postgres: a private PostgreSQL server for this script (initdb into a fresh temporary
# directory owned by the postgres system user, which runs it when we are root). It listens on
# 127.0.0.1 only, on a free port; its unix socket is in that directory. TCP connections need a
# password (scram-sha-256); the unix socket trusts (setup, pg_psql). It creates the role fdfs
# with a random password and the database fdfs owned by it, waits for pg_isready, and sets:
#   PG_URL            postgres://fdfs@127.0.0.1:PORT/fdfs?sslmode=disable  (no password in it)
#   PG_PASSWORD_FILE  a file holding fdfs's password, mode 0600  (-o meta_password_file=...)
#   PG_PORT, PG_DATA  (exported, with PG_URL and PG_PASSWORD_FILE)
#   PG_PASSWORD, PG_USER=fdfs, PG_DB=fdfs, PG_BIN, PG_BASE (the temporary directory)
# PGPASSWORD is not set. PG_OPTIONS (e.g. "-c fsync=off") is added to the server's options.
# cleanup stops it (immediate) and removes its directory. Needs postgresql (install-deps.sh).
start_postgres() {
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || PG_BIN=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")
    [ -x "$PG_BIN/initdb" ] || { echo "start_postgres: no PostgreSQL server binaries (initdb, pg_ctl): run scripts/install-deps.sh" >&2; return 1; }
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "start_postgres: running as root and there is no postgres user: run scripts/install-deps.sh" >&2; return 1
    fi
    PG_BASE=$(mktemp -d /tmp/fdfs-pg.XXXXXX) || return 1
    CLEANUP_HOOKS+=("_pg_destroy")
    PG_DATA="$PG_BASE/data"; PG_USER=fdfs; PG_DB=fdfs
    PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    PG_PASSWORD_FILE="$WORK/pg-password"
    (umask 077 && echo "$PG_PASSWORD" >"$PG_PASSWORD_FILE")
    local su_password; su_password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && echo "$su_password" >"$PG_BASE/superuser-password")
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$PG_BASE"
    if ! _pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$PG_BASE/superuser-password" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >"$PG_BASE/initdb.log" 2>&1; then
        echo "start_postgres: initdb failed:" >&2; cat "$PG_BASE/initdb.log" >&2; return 1
    fi
    local try
    for try in 1 2 3; do   # another process may take the free port before the server binds it
        PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        _pg_start && break
        [ "$try" = 3 ] && return 1
    done
    pg_psql "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'" >/dev/null || return 1
    pg_psql "CREATE DATABASE $PG_DB OWNER $PG_USER" >/dev/null || return 1
    PG_URL="postgres://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable"
    export PG_URL PG_PORT PG_DATA PG_PASSWORD_FILE
}
# stop_postgres: stops the server at once (pg_ctl stop -m immediate); its data stays.
stop_postgres() { [ -f "$PG_DATA/postmaster.pid" ] || return 0; _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null; }
# restart_postgres: stop_postgres, then starts it again on the same port (fault tests).
restart_postgres() { stop_postgres; _pg_start; }
# pg_psql SQL [DATABASE]: runs SQL as the superuser over the unix socket (database postgres by
# default); prints the result unaligned, without headers; non-zero exit on any SQL error.
pg_psql() {
    _pg_as_owner "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_BASE" -p "$PG_PORT" -U postgres -d "${2:-postgres}" -c "$1"
}
# pg_fdfs_psql SQL [DATABASE]: runs SQL as fdfs over TCP with its password (database fdfs by default).
pg_fdfs_psql() {
    PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -A -t -w -v ON_ERROR_STOP=1 \
        -d "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=${2:-$PG_DB} sslmode=disable" -c "$1"
}
# pg_new_database [PREFIX]: creates an empty database owned by fdfs, prints its name (one per test).
pg_new_database() {
    local name; name="${1:-t}_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    pg_psql "CREATE DATABASE $name OWNER $PG_USER" >/dev/null && echo "$name"
}
# Runs a command as the owner of the server's files: postgres when we are root, else ourselves.
_pg_as_owner() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
_pg_start() {
    # shellcheck disable=SC2086  # PG_OPTIONS is a list of options
    if ! _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_BASE/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_BASE ${PG_OPTIONS:-}" start >/dev/null; then
        echo "start_postgres: the server did not start on 127.0.0.1:$PG_PORT:" >&2; tail -20 "$PG_BASE/postgres.log" >&2; return 1
    fi
    local _
    for _ in $(seq 1 600); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 && return 0; sleep 0.1; done
    echo "start_postgres: 127.0.0.1:$PG_PORT not ready after 60 s" >&2; return 1
}
_pg_destroy() {
    [ -n "${PG_BASE:-}" ] || return 0
    [ -f "$PG_DATA/postmaster.pid" ] && _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$PG_BASE"; PG_BASE=
}

