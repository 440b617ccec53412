"""DAG integrity (STYLE.md 2): every DAG in dags/ loads, documents itself and follows the catalog."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from govlake.catalog import get_catalog

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
CATALOG = get_catalog(REPO / "catalog")
SCHEDULES = {"daily": "@daily", "monthly": "@monthly", "yearly": "@yearly"}
FEEDS = {f"feed_{res.slug}": res for res in CATALOG.resources.values()}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    """Every DAG file parsed as the DAG processor would (an empty Airflow home, no examples)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=DAGS, safe_mode=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_feed_dag_per_catalog_resource_and_publish_gold(dagbag):
    assert set(dagbag.dag_ids) == set(FEEDS) | {"publish_gold", "publish_credit"}


def test_every_dag_has_tags_owner_retries_and_its_docstring_as_doc(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert "govlake" in dag.tags, dag_id
        docstring = ast.get_docstring(ast.parse(Path(dag.fileloc).read_text(encoding="utf-8")), clean=False)
        assert docstring and dag.doc_md == docstring, f"{dag_id}: doc_md must be the file's docstring"
        assert not dag.catchup, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: owner not set"
            assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries {task.retries} < 2"


@pytest.mark.parametrize("dag_id", sorted(FEEDS))
def test_feed_dag_follows_the_catalog(dagbag, dag_id):
    res = FEEDS[dag_id]
    dag = dagbag.dags[dag_id]
    assert Path(dag.fileloc).name == f"{dag_id}.py"
    assert dag.schedule == SCHEDULES[res.update_cycle], "schedule must come from the catalog update_cycle"
    assert dag.owner == res.provider, "owner must be the providing department"
    assert res.provider in dag.tags
    ingest, process = dag.get_task("ingest"), dag.get_task("process")
    assert ingest.downstream_task_ids == {"process"}
    assert process.downstream_task_ids == set()
    assert list(ingest.op_args) == [res.code] and list(process.op_args) == [res.code]
    assert ingest.outlets == []
    assert [a.uri for a in process.outlets] == [f"govlake://silver/{res.slug}"]


def _leaves(condition) -> set[str]:
    from airflow.sdk import Asset

    if isinstance(condition, Asset):
        return {condition.uri}
    return set().union(*(_leaves(c) for c in condition.objects))


def test_publish_gold_runs_on_the_daily_feeds_together_or_any_slower_feed(dagbag):
    from airflow.sdk import AssetAll, AssetAny

    dag = dagbag.dags["publish_gold"]
    assert isinstance(dag.schedule, AssetAny)
    silver = _leaves(dag.schedule)
    assert silver == {f"govlake://silver/{res.slug}" for res in FEEDS.values()}
    (daily,) = [c for c in dag.schedule.objects if isinstance(c, AssetAll)]
    assert _leaves(daily) == {f"govlake://silver/{res.slug}" for res in FEEDS.values()
                              if res.update_cycle == "daily"}
    others = {c.uri for c in dag.schedule.objects if not isinstance(c, AssetAll)}
    assert others == {f"govlake://silver/{res.slug}" for res in FEEDS.values() if res.update_cycle != "daily"}
    produced = {a.uri for feed in FEEDS for a in dagbag.dags[feed].get_task("process").outlets}
    assert silver == produced, "every Asset publish_gold waits for is produced by a feed DAG"
    gold = dag.get_task("gold")
    assert gold.downstream_task_ids == {"conflicts"}
    assert [a.uri for a in dag.get_task("conflicts").outlets] == ["govlake://gold/conflicts"]
    assert {a.uri for a in gold.outlets} == {"govlake://gold/legal_entity"}
    assert dag.owner == "dsj"


def test_publish_credit_runs_after_gold_and_the_credit_feeds(dagbag):
    from airflow.sdk import AssetAll

    dag = dagbag.dags["publish_credit"]
    assert isinstance(dag.schedule, AssetAll)
    assert _leaves(dag.schedule) == {"govlake://gold/legal_entity"} | {
        f"govlake://silver/{slug}" for slug in ("credit_license", "credit_penalty", "credit_repair", "court_dishonest")}
    produced = {a.uri for d in dagbag.dags.values() for t in d.tasks for a in t.outlets}
    assert _leaves(dag.schedule) <= produced, "every Asset publish_credit waits for is produced by a DAG"
    credit = dag.get_task("credit")
    assert credit.downstream_task_ids == {"extract", "kpis"}
    assert {"govlake://gold/penalty_publication", "govlake://gold/enterprise_credit_profile",
            "govlake://gold/withdrawal_log"} <= {a.uri for a in credit.outlets}
    assert [a.uri for a in dag.get_task("extract").outlets] == ["govlake://extract/analyst"]
    assert dag.owner == "credit"


def test_parsing_a_dag_file_imports_no_pipeline_code(tmp_path):
    """The DAG processor re-parses dags/ often: no DuckDB, Delta, GX or pipeline imports at top level."""
    heavy = ["duckdb", "deltalake", "great_expectations", "pyarrow", "sqlglot", "govlake.pipeline",
             "govlake.catalog", "govlake.ingest", "govlake.quality", "govlake.gold", "govlake.extract"]
    code = (
        "import runpy, sys\n"
        f"for f in {sorted(str(p) for p in DAGS.glob('*.py'))!r}:\n"
        "    runpy.run_path(f)\n"
        f"print('imported:', ','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVLAKE_", "AIRFLOW"))}
    env |= {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=DAGS,
                         check=False, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = [line for line in out.stdout.splitlines() if line.startswith("imported:")]
    assert imported == ["imported: "], f"imported at parse time: {imported}"
