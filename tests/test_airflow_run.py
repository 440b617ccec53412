"""A tiny city through Airflow itself: `airflow dags test` of a feed DAG, publish_gold and publish_credit.

Runs infra/airflow.sh (the same Airflow home set-up as `make demo`) in a temporary GOVLAKE_VAR and
AIRFLOW_HOME: SQLite metadata database migrated on first use, OpenLineage file transport.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest
from deltalake import DeltaTable

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def _dags_test(dag_id: str, env: dict[str, str]) -> None:
    out = subprocess.run(["bash", str(REPO / "infra" / "airflow.sh"), "dags", "test", dag_id, "2026-11-20"],
                         env=env, cwd=REPO, capture_output=True, text=True, check=False, timeout=900)
    log = "\n".join(line for line in (out.stdout + out.stderr).splitlines()
                    if "Skipping registering function" not in line)
    assert out.returncode == 0, f"airflow dags test {dag_id} failed:\n{log[-6000:]}"


def test_feed_and_publish_gold_through_airflow(tmp_path):
    from govlake.generate import generate_city

    var = tmp_path / "var"
    generate_city(var / "city", scale=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVLAKE_", "AIRFLOW", "OPENLINEAGE"))}
    env |= {"GOVLAKE_VAR": str(var), "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1"}

    _dags_test("feed_credit_penalty", env)
    assert DeltaTable.is_deltatable(str(var / "lake" / "silver" / "credit_penalty"))
    assert DeltaTable(str(var / "lake" / "silver" / "credit_penalty")).to_pyarrow_table().num_rows > 0

    _dags_test("publish_gold", env)
    assert DeltaTable.is_deltatable(str(var / "lake" / "gold" / "base" / "legal_entity"))
    _dags_test("publish_credit", env)
    assert (var / "extracts" / "analyst.duckdb").is_file()
    publication = DeltaTable(str(var / "lake" / "gold" / "theme" / "penalty_publication")).to_pyarrow_table()
    assert publication.num_rows > 0 and "deadline_date" in publication.column_names
    # the DAG run's logical date is the business date of the lifecycle
    records = DeltaTable(str(var / "lake" / "gold" / "theme" / "penalty_record")).to_pyarrow_table()
    assert set(records.column("status_as_of").to_pylist()) == {dt.date(2026, 11, 20)}
    assert DeltaTable(str(var / "lake" / "meta" / "kpi_history")).to_pyarrow_table().num_rows > 0

    # OpenLineage: the provider's file transport wrote one JSON event per line, per task start/finish.
    events = [json.loads(line) for line in (var / "lineage" / "airflow.jsonl").read_text().splitlines()]
    completed = {e["job"]["name"] for e in events if e["eventType"] == "COMPLETE"}
    assert {"feed_credit_penalty.ingest", "feed_credit_penalty.process", "publish_gold.gold",
            "publish_credit.credit", "publish_credit.extract", "publish_credit.kpis"} <= completed
    assert {e["job"]["namespace"] for e in events} == {"govlake"}

    # Every event and facet validates against the OpenLineage 2-0-2 schemas (offline): the provider's
    # and govlake's own (govlake.lineage, var/lineage/govlake.jsonl).
    from govlake.lineage import validate_file

    assert validate_file(var / "lineage" / "airflow.jsonl") == {}
    assert validate_file(var / "lineage" / "govlake.jsonl") == {}
    # A govlake job run inside a task names the provider's run of that task as its parent.
    ours = [json.loads(line) for line in (var / "lineage" / "govlake.jsonl").read_text().splitlines()]
    task_runs = {(e["job"]["name"], e["run"]["runId"]) for e in events}
    parents = {e["job"]["name"]: (p["job"]["name"], p["run"]["runId"]) for e in ours
               if e["eventType"] == "COMPLETE" and (p := e["run"]["facets"].get("parent"))}
    for job, task in [("ingest.credit.penalty", "feed_credit_penalty.ingest"),
                      ("process.credit.penalty", "feed_credit_penalty.process"),
                      ("gold", "publish_gold.gold"), ("credit", "publish_credit.credit"),
                      ("extract", "publish_credit.extract")]:
        assert parents[job][0] == task and parents[job] in task_runs, job
