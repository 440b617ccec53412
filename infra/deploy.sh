#!/usr/bin/env bash
# govlake's production deployment (Airflow 3 as separate processes on PostgreSQL): infra/deploy.py does
# the work (read it); this picks the project's Python (Airflow, psutil).
#
#   infra/deploy.sh up [--env FILE]     start it (settings: infra/deploy/govlake.env, else the example)
#   infra/deploy.sh status [--json]     processes and health
#   infra/deploy.sh down                stop it
#   infra/deploy.sh airflow dags list   the Airflow CLI against it
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="$here/../.venv/bin/python"
if [[ -x "$python" ]]; then
    exec "$python" "$here/deploy.py" "$@"
fi
exec uv run --frozen --project "$here/.." python "$here/deploy.py" "$@"
