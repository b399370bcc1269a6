#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth and a `test` database:
# starts the installed cluster if it is stopped, installs Debian's server if none is installed.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: installing Debian's server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

if ! ready; then
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  conf="/etc/postgresql/${version}/main"
  # trust auth on loopback, as on the developer machines
  if ! grep -qE '^host\s+all\s+all\s+127.0.0.1/32\s+trust' "$conf/pg_hba.conf"; then
    sed -i -E 's/^(local|host)(\s+all\s+all\s+.*)(peer|scram-sha-256|md5)$/\1\2trust/' "$conf/pg_hba.conf"
  fi
  echo "starting PostgreSQL ${version}"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi

ready || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
# the database the tests use: the one DATABASE_URL names (its path, without a query), else test
db="test"
if [ -n "${DATABASE_URL:-}" ]; then
  db="${DATABASE_URL##*/}"
  db="${db%%\?*}"
  [ -n "$db" ] || db="test"
fi
# (psql interpolates :'name' and :"name" only in input it reads, not in -c)
exists="$(echo "select 1 from pg_database where datname = :'name'" \
  | psql -h 127.0.0.1 -U postgres -d postgres -tA -v name="$db")"
if [ "$exists" != "1" ]; then
  echo 'create database :"name"' | psql -h 127.0.0.1 -U postgres -d postgres -q -v name="$db"
fi
echo "PostgreSQL ready on 127.0.0.1:5432 (database ${db})"
