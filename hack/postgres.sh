#!/usr/bin/env bash
# Prints a DSN of a PostgreSQL server the tests may use, starting one if needed.
# Prefers EDGELINE_PG_DSN, else a running server at 127.0.0.1:5432 (trust auth, database "test"); otherwise
# starts a private throwaway cluster on 127.0.0.1:55432 from Debian's postgresql package
# (installed by 'make setup'), owned by the postgres user, in /tmp/edgeline-pg.
set -euo pipefail
primary=${EDGELINE_PG_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
if psql "$primary" -Atqc 'select 1' >/dev/null 2>&1; then echo "$primary"; exit 0; fi
port=55432
dsn="postgres://postgres@127.0.0.1:$port/test?sslmode=disable"
if psql "$dsn" -Atqc 'select 1' >/dev/null 2>&1; then echo "$dsn"; exit 0; fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "postgres: no PostgreSQL server installed; run 'make setup'" >&2; exit 1; }
dir=/tmp/edgeline-pg
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust >/dev/null
fi
as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
psql "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" -Atqc 'create database test' >/dev/null 2>&1 || true
psql "$dsn" -Atqc 'select 1' >/dev/null
echo "$dsn"
