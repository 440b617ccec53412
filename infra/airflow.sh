#!/usr/bin/env bash
# Run the Airflow CLI against govlake's local Airflow home, creating it on first use.
#
#   infra/airflow.sh dags list
#   infra/airflow.sh dags test feed_credit_penalty 2024-06-01
#   infra/airflow.sh                    # only set up: metadata DB migrated, nothing else
#   source infra/airflow.sh             # only export the environment into the current shell
#
# Home: $AIRFLOW_HOME, default $GOVLAKE_VAR/airflow (GOVLAKE_VAR defaults to <repo>/var), with a
# SQLite metadata database; DAGs from <repo>/dags; no example DAGs. OpenLineage events go as JSON
# lines to $GOVLAKE_VAR/lineage/airflow.jsonl (the provider's file transport). Nothing here is
# secret: the local home needs no keys, and every setting below can be overridden from outside.

_govlake_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_govlake_var="${GOVLAKE_VAR:-$_govlake_repo/var}"
mkdir -p "$_govlake_var"
_govlake_var="$(cd "$_govlake_var" && pwd)"

export GOVLAKE_VAR="$_govlake_var"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$_govlake_var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$_govlake_repo/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
# A failed task is retried after this many seconds (production sets its own; 300 by default).
export AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY="${AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY:-5}"
export AIRFLOW__OPENLINEAGE__NAMESPACE="${AIRFLOW__OPENLINEAGE__NAMESPACE:-govlake}"
_govlake_ol='{"type": "file", "log_file_path": "'"$_govlake_var"'/lineage/airflow.jsonl", "append": true}'
export AIRFLOW__OPENLINEAGE__TRANSPORT="${AIRFLOW__OPENLINEAGE__TRANSPORT:-$_govlake_ol}"
mkdir -p "$AIRFLOW_HOME" "$_govlake_var/lineage"

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then  # sourced: the environment only
    unset _govlake_repo _govlake_var _govlake_ol
    return 0
fi

set -euo pipefail

if [[ -x "$_govlake_repo/.venv/bin/airflow" ]]; then
    airflow=("$_govlake_repo/.venv/bin/airflow")
else
    airflow=(uv run --frozen --project "$_govlake_repo" airflow)
fi

# Migrate once per home, and again when uv.lock (so possibly Airflow) changes.
stamp="$AIRFLOW_HOME/.migrated-$(sha256sum "$_govlake_repo/uv.lock" | cut -c1-12)"
if [[ ! -f "$stamp" ]] || [[ "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" == sqlite* && ! -f "$AIRFLOW_HOME/airflow.db" ]]; then
    echo "airflow: migrating the metadata database in $AIRFLOW_HOME" >&2
    "${airflow[@]}" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 \
        || { cat "$AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
    rm -f "$AIRFLOW_HOME"/.migrated-*
    touch "$stamp"
fi

if [[ $# -gt 0 ]]; then
    exec "${airflow[@]}" "$@"
fi
