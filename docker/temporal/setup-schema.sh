#!/bin/sh
# One-shot (temporalio/admin-tools): create the Temporal databases and bring both schemas
# to the version of the server image. Safe to re-run: existing databases are kept and
# update-schema only applies missing versions.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT="${DB_PORT:-5432}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${PORT}"
until nc -z "${POSTGRES_SEEDS}" "${PORT}"; do sleep 1; done

for db in temporal temporal_visibility; do
  case "$db" in
    temporal) dir="${SCHEMA_ROOT}/temporal/versioned" ;;
    *) dir="${SCHEMA_ROOT}/visibility/versioned" ;;
  esac
  sql() { temporal-sql-tool --plugin postgres12 --ep "${POSTGRES_SEEDS}" -p "${PORT}" -u "${POSTGRES_USER}" --db "$db" "$@"; }
  sql create || echo "database $db already exists"
  sql setup-schema -v 0.0
  sql update-schema -d "$dir"
done
echo "Temporal schema is up to date"
