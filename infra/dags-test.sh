#!/usr/bin/env bash
# Run DAGs one after another with `airflow dags test` in govlake's local Airflow home.
#
#   infra/dags-test.sh feed_credit_penalty publish_gold
#   infra/dags-test.sh $(govlake catalog list --dags) publish_gold publish_credit   # every DAG, as make demo
#   DAGS_TEST_DATE=2024-06-01 infra/dags-test.sh publish_gold     # a fixed logical date (default: now)
#
# One line per DAG with its time; the full Airflow output goes to $AIRFLOW_HOME/dags-test/<dag>.log
# and, when a DAG fails, its last lines are shown and the script stops with status 1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/airflow.sh"
"$here/airflow.sh"   # metadata database ready before the clock starts
logs="$AIRFLOW_HOME/dags-test"
mkdir -p "$logs"

for dag in "$@"; do
    log="$logs/$dag.log"
    start=$SECONDS
    if "$here/airflow.sh" dags test "$dag" ${DAGS_TEST_DATE:+"$DAGS_TEST_DATE"} >"$log" 2>&1; then
        printf 'ok      %-28s %4ss   %s\n' "$dag" "$((SECONDS - start))" "$log"
    else
        printf 'FAILED  %-28s %4ss   %s\n' "$dag" "$((SECONDS - start))" "$log"
        grep -v -e 'Skipping registering function' "$log" | tail -n 40 >&2
        exit 1
    fi
done
