#!/usr/bin/env bash
# A local PostgreSQL server for the tests marked `postgres`.
#
#   infra/pg.sh          start (or reuse) the server; print its SQLAlchemy URL on stdout
#   infra/pg.sh stop     stop it
#   export GOVLAKE_TEST_PG_URL="$(infra/pg.sh)"
#
# When GOVLAKE_TEST_PG_URL is already set and answers, that server is used and nothing starts.
# Otherwise a cluster lives in $GOVLAKE_VAR/pg (default var/pg), listening on 127.0.0.1:$GOVLAKE_PG_PORT
# (default 54329) only, trust authentication, superuser `postgres`, database govlake_test. It is for
# tests: fsync is off. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user
# (runuser). Binaries: the newest /usr/lib/postgresql/*/bin (Debian's `postgresql`; `make setup`
# installs it), else initdb on PATH. Idempotent: a running server is reused. Messages go to stderr.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
var="${GOVLAKE_VAR:-$repo/var}"
port="${GOVLAKE_PG_PORT:-54329}"
db=govlake_test
url="postgresql+psycopg://postgres@127.0.0.1:$port/$db"

say() { echo "pg.sh: $*" >&2; }

reachable() {  # reachable URL: a SQLAlchemy or libpq URL answers within a few seconds
    local libpq="${1/+psycopg/}"
    if [[ -x "$repo/.venv/bin/python" ]]; then
        "$repo/.venv/bin/python" -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()' \
            "$libpq" >/dev/null 2>&1
    elif command -v psql >/dev/null; then
        PGCONNECT_TIMEOUT=3 psql "$libpq" -tAc 'select 1' >/dev/null 2>&1
    else
        return 1
    fi
}

bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$d" && -x "$d/initdb" ]]; then
        echo "$d"
    elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
    else
        return 1
    fi
}

# As root, every server command runs as `postgres`; the data folder must be reachable by that user.
if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || { say "running as root but there is no 'postgres' user to run the server"; exit 1; }
    as_pg() { runuser -u postgres -- "$@"; }
    mkdir -p "$var/pg"
    chown postgres: "$var/pg"
    if ! runuser -u postgres -- test -w "$var/pg"; then
        # e.g. the clone sits under /root (mode 700): keep the cluster where postgres can reach it.
        root="${TMPDIR:-/tmp}/govlake-pg-$(echo "$var" | cksum | cut -d' ' -f1)"
        mkdir -p "$root" && chown postgres: "$root"
        say "postgres cannot write $var/pg; using $root"
    else
        root="$var/pg"
    fi
else
    as_pg() { "$@"; }
    root="$var/pg"
    mkdir -p "$root"
fi
data="$root/data"

case "${1:-start}" in
start) ;;
stop)
    if [[ -f "$data/postmaster.pid" ]] && bin="$(bindir)"; then
        as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >&2
    else
        say "not running ($data)"
    fi
    exit 0
    ;;
*)
    echo "usage: $0 [start|stop]" >&2
    exit 2
    ;;
esac

if [[ -n "${GOVLAKE_TEST_PG_URL:-}" ]]; then
    if reachable "$GOVLAKE_TEST_PG_URL"; then
        echo "$GOVLAKE_TEST_PG_URL"
        exit 0
    fi
    say "GOVLAKE_TEST_PG_URL is set but does not answer; starting a local server instead"
fi

bin="$(bindir)" || {
    say "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin); install Debian's postgresql (make setup does, as root)"
    exit 1
}

if [[ ! -f "$data/PG_VERSION" ]]; then
    say "initialising a cluster in $data ($bin)"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$root/initdb.log" 2>&1 \
        || { cat "$root/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<EOF

# govlake tests (infra/pg.sh): local TCP only, no socket file, durability traded for speed.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
fi

if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "starting PostgreSQL on 127.0.0.1:$port (log: $root/server.log)"
    as_pg "$bin/pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 -o "-p $port" start >/dev/null \
        || { tail -n 20 "$root/server.log" >&2; exit 1; }
fi

psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -tA)
if [[ "$("${psql[@]}" -d postgres -c "select 1 from pg_database where datname = '$db'")" != 1 ]]; then
    "${psql[@]}" -d postgres -c "create database $db" >&2
fi
echo "$url"
