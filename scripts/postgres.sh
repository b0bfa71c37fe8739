#!/usr/bin/env bash
# Starts the local PostgreSQL 15 cluster (installing it if missing), makes
# sure the `postgres` role has a password, and prints an admin URL that the
# test suites use as SATUSKY_TEST_POSTGRES_URL (each test creates and drops
# its own database through it).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  log "installing postgresql-15"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
fi
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "15 main"; then
  log "creating cluster 15/main"
  pg_createcluster 15 main >&2
fi
if ! pg_lsclusters -h | awk '$1=="15" && $2=="main" {print $4}' | grep -qx online; then
  log "starting cluster 15/main"
  pg_ctlcluster 15 main start >&2
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.2
done
pg_isready -h 127.0.0.1 -p 5432 >&2
su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >&2
echo "postgres://postgres:postgres@127.0.0.1:5432/postgres"
