# shellcheck shell=bash
# Start a throw-away PostgreSQL server on loopback for the knowledge-base tests (tests/kb/test_postgres.py).
# Source it: `. .ci/postgres.sh` — exports INFERSIGHT_TEST_PG_URL (and INFERSIGHT_PG_DATA); the server
# lives in a temp dir; stop it with `infersight_pg_stop`. Installs Debian's postgresql when no server
# binaries (initdb, pg_ctl) are found (apt-get needs root). Leaves the caller's shell options alone.

_infersight_pg_start() {
  local bin="" d port user data
  for d in /usr/local/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then bin="$d"; break; fi
  done
  if [ -z "$bin" ]; then
    echo "==> installing postgresql (apt-get)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1; } \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; } \
      || { echo "postgres.sh: cannot install postgresql" >&2; return 1; }
    for d in /usr/lib/postgresql/*/bin; do bin="$d"; done
  fi
  data="$(mktemp -d /tmp/infersight-pg.XXXXXX)" || return 1
  port="${INFERSIGHT_PG_PORT:-54329}"
  user="$(id -un)"
  if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root: run it as 'postgres'
    id postgres >/dev/null 2>&1 || useradd -r -M postgres || return 1
    chown postgres "$data" || return 1
    user=postgres
  fi
  _infersight_pg_run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
  _infersight_pg_run "'$bin/initdb' -D '$data/data' -U '$user' --auth=trust -E UTF8 >/dev/null" || return 1
  _infersight_pg_run "'$bin/pg_ctl' -D '$data/data' -l '$data/log' -w \
    -o \"-c listen_addresses=127.0.0.1 -p $port -k '$data'\" start >/dev/null" \
    || { cat "$data/log" >&2; return 1; }
  export INFERSIGHT_PG_DATA="$data"
  export INFERSIGHT_TEST_PG_URL="postgresql+psycopg://$user@127.0.0.1:$port/postgres"
  eval "infersight_pg_stop() { _infersight_pg_run \"'$bin/pg_ctl' -D '$data/data' -m fast stop >/dev/null\"; }"
  echo "==> PostgreSQL on 127.0.0.1:$port ($INFERSIGHT_TEST_PG_URL)"
}
_infersight_pg_start
