"""DAG integrity: every DAG in dags/ loads, documents itself (doc_md, owner, tags) and follows the catalog."""

from __future__ import annotations

import ast
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.serialization.serialized_objects import DagSerialization

from govlake.catalog import get_catalog

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
CATALOG = get_catalog(REPO / "catalog")
SCHEDULES = {"realtime": "@hourly", "daily": "@daily", "weekly": "@weekly", "monthly": "@monthly",
             "quarterly": "@quarterly", "yearly": "@yearly"}
TOGETHER = {"realtime", "daily"}
FEEDS = {f"feed_{res.slug}": res for res in CATALOG.resources.values()}


def _fill(tmp: Path):
    """(DagBag of dags/ parsed as the DAG processor would — an empty Airflow home, no examples —, seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_HOME", str(tmp))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
        from airflow.dag_processing.dagbag import DagBag

        start = time.perf_counter()
        bag = DagBag(dag_folder=DAGS)  # safe mode, as the DAG processor discovers files
        return bag, time.perf_counter() - start


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    return _fill(tmp_path_factory.mktemp("airflow"))[0]


def _docstring(path: str) -> str | None:
    return ast.get_docstring(ast.parse(Path(path).read_text(encoding="utf-8")), clean=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


OTHERS = {"publish_gold", "publish_credit", "alerts", "maintain"}
"""The DAGs besides the feeds."""


def test_one_feed_dag_per_catalog_resource_and_the_publish_dags(dagbag):
    assert set(dagbag.dag_ids) == set(FEEDS) | OTHERS


def test_every_dag_has_tags_owner_retries_and_its_doc(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert "govlake" in dag.tags, dag_id
        docstring = _docstring(dag.fileloc)
        assert docstring, f"{dag_id}: its file has no docstring"
        if dag_id in FEEDS:  # the catalog's description, then the feeds file's docstring (the tasks)
            res = FEEDS[dag_id]
            assert dag.doc_md.startswith(f"# Feed: {res.code} — {res.name} ({res.name_en})\n"), dag_id
            assert res.summary in dag.doc_md and CATALOG.department(res.provider).name in dag.doc_md, dag_id
            assert dag.doc_md.rstrip().endswith(docstring.strip()), dag_id
        else:
            assert dag.doc_md == docstring, f"{dag_id}: doc_md must be the file's docstring"
        assert not dag.catchup, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: owner not set"
            assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries {task.retries} < 2"


@pytest.mark.parametrize("dag_id", sorted(FEEDS))
def test_feed_dag_follows_the_catalog(dagbag, dag_id):
    res = FEEDS[dag_id]
    dag = dagbag.dags[dag_id]
    assert Path(dag.fileloc).name == "feeds.py"
    assert dag.schedule == SCHEDULES[res.update_cycle], "schedule must come from the catalog update_cycle"
    assert dag.owner == res.provider, "owner must be the providing department"
    assert res.provider in dag.tags and res.update_cycle in dag.tags
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


def _assert_by_update_cycle(condition, resources) -> None:
    """``condition`` is AssetAny(AssetAll(the daily/realtime resources' silver), each slower one's silver)."""
    from airflow.sdk import AssetAll, AssetAny

    assert isinstance(condition, AssetAny)
    assert _leaves(condition) == {f"govlake://silver/{r.slug}" for r in resources}
    (together,) = [c for c in condition.objects if isinstance(c, AssetAll)]
    assert _leaves(together) == {f"govlake://silver/{r.slug}" for r in resources if r.update_cycle in TOGETHER}
    alone = {c.uri for c in condition.objects if not isinstance(c, AssetAll)}
    assert alone == {f"govlake://silver/{r.slug}" for r in resources if r.update_cycle not in TOGETHER}


def test_publish_gold_runs_on_the_daily_feeds_together_or_any_slower_feed(dagbag):
    dag = dagbag.dags["publish_gold"]
    _assert_by_update_cycle(dag.schedule, FEEDS.values())
    produced = {a.uri for feed in FEEDS for a in dagbag.dags[feed].get_task("process").outlets}
    assert _leaves(dag.schedule) == produced, "every Asset publish_gold waits for is produced by a feed DAG"
    gold = dag.get_task("gold")
    assert gold.downstream_task_ids == {"conflicts"}
    assert [a.uri for a in dag.get_task("conflicts").outlets] == ["govlake://gold/conflicts"]
    from govlake.gold import GOLD_TABLES

    assert {a.uri for a in gold.outlets} == {f"govlake://gold/base/{name}" for name in GOLD_TABLES}
    assert dag.owner == "dsj"


def test_every_task_raises_an_alert_when_it_fails(dagbag):
    from govlake.orchestration import on_task_failure

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [
                task.on_failure_callback]
            assert [getattr(c, "func", c) for c in callbacks] == [on_task_failure], f"{dag_id}.{task.task_id}"
        back = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # what the DAG processor stores
        assert all(t.has_on_failure_callback for t in back.tasks), dag_id
        assert not dag.deadline, f"{dag_id}: a deadline without GOVLAKE_FEED_RUN_DEADLINE"


def test_feed_runs_have_an_airflow_deadline_alert_when_configured(tmp_path, monkeypatch):
    """GOVLAKE_FEED_RUN_DEADLINE=90: each feed DAG's runs are due 90 minutes after being queued; the callback
    is stored by its path, with the resource and its department."""
    from airflow.sdk import SyncCallback

    from govlake.orchestration import deadline_missed

    monkeypatch.setenv("GOVLAKE_FEED_RUN_DEADLINE", "90")
    bag, _ = _fill(tmp_path / "airflow")
    assert bag.import_errors == {}
    for dag_id, res in FEEDS.items():
        (deadline,) = bag.dags[dag_id].deadline
        assert deadline.interval == dt.timedelta(minutes=90)
        assert type(deadline.reference).__name__ == "DagRunQueuedAtDeadline"
        assert isinstance(deadline.callback, SyncCallback) and callable(deadline_missed)
        assert deadline.callback.kwargs == {"resource": res.code, "owner": res.provider}
        (stored,) = DagSerialization.to_dict(bag.dags[dag_id])["dag"]["deadline"]
        assert stored["callback"]["__data__"]["path"] == "govlake.orchestration.deadline_missed"
    assert not bag.dags["publish_gold"].deadline


def test_alerts_runs_hourly_and_after_any_feed(dagbag):
    from airflow.sdk import AssetOrTimeSchedule

    dag = dagbag.dags["alerts"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert dag.timetable.timetable.expression == "0 * * * *"
    assert _leaves(dag.timetable.asset_condition) == {f"govlake://silver/{r.slug}" for r in FEEDS.values()}
    assert [t.task_id for t in dag.tasks] == ["check"] and dag.owner == "dsj"


def test_maintain_vacuums_weekly_and_compacts_the_meta_tables(dagbag, env, tmp_path):
    """The weekly vacuum, run for real: a meta table of many one-row commits (as every step appends) is compacted
    into one file, its rows and the steps' transaction stamps as they were."""
    import pyarrow as pa

    from govlake import storage
    from govlake.config import get_settings

    dag = dagbag.dags["maintain"]
    assert dag.timetable.expression == "0 3 * * 0"
    assert [t.task_id for t in dag.tasks] == ["vacuum"] and dag.owner == "dsj"
    log = storage.table_path(get_settings(), "meta", "consumption")
    for i in range(30):
        storage.write_table(log, pa.table({"i": [i]}), mode="append", run_id=f"r{i}", txn=("process", i + 1))
    assert len(storage.open_table(log).file_uris()) == 30

    summary = dag.get_task("vacuum").python_callable()
    assert summary["compacted"] == {"meta/consumption": [30, 1]}
    table = storage.open_table(log)
    assert len(table.file_uris()) == 1 and sorted(table.to_pyarrow_table()["i"].to_pylist()) == list(range(30))
    assert table.transaction_version("process") == 30


def test_publish_credit_runs_after_gold_and_the_feeds_the_credit_step_reads(dagbag):
    from airflow.sdk import AssetAll

    from govlake.credit._build import INPUTS

    dag = dagbag.dags["publish_credit"]
    assert isinstance(dag.schedule, AssetAll)
    legal_entity, feeds = dag.schedule.objects
    assert legal_entity.uri == "govlake://gold/base/legal_entity"
    _assert_by_update_cycle(feeds, [CATALOG.resource(code) for code in INPUTS])
    assert {"govlake://silver/credit_penalty", "govlake://silver/credit_license", "govlake://silver/credit_repair",
            "govlake://silver/court_dishonest"} <= _leaves(feeds)
    produced = {a.uri for d in dagbag.dags.values() for t in d.tasks for a in t.outlets}
    assert _leaves(dag.schedule) <= produced, "every Asset publish_credit waits for is produced by a DAG"
    credit = dag.get_task("credit")
    assert credit.downstream_task_ids == {"extract", "kpis", "open_data", "themes"}
    assert [a.uri for a in dag.get_task("themes").outlets] == ["govlake://gold/theme/market_region_industry"]
    # exactly the tables the credit step writes (the DAG names them without importing the step)
    from govlake.credit import OUTPUTS
    from govlake.layout import gold_path

    assert {a.uri for a in credit.outlets} == {f"govlake://{gold_path(name)}" for name in OUTPUTS}
    assert [a.uri for a in dag.get_task("extract").outlets] == ["govlake://extract/analyst"]
    assert [a.uri for a in dag.get_task("open_data").outlets] == ["govlake://open/catalog"]
    assert dag.owner == "credit"


def test_every_catalog_update_cycle_has_a_schedule():
    from typing import get_args

    from govlake.catalog._models import UpdateCycle
    from govlake.orchestration import SCHEDULES as BUILT

    assert BUILT == SCHEDULES and set(SCHEDULES) == set(get_args(UpdateCycle))


def test_credit_inputs_are_read_from_the_credit_step_without_importing_it():
    from govlake.credit._build import INPUTS
    from govlake.orchestration import credit_inputs

    assert credit_inputs() == INPUTS


def test_catalog_list_names_the_feed_dags(dagbag):
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "catalog", "list", "--dags"], capture_output=True,
                         text=True, check=False, timeout=120,
                         env={k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == sorted(FEEDS)
    assert set(out.stdout.split()) == {d for d in dagbag.dag_ids if d.startswith("feed_")}


NEW_RESOURCE = """\
code: ee.noise_monitoring
name: 噪声自动监测数据
name_en: Noise monitoring
kind: 部门
category: 生态环境/噪声
provider: ee
summary: 市生态环境局功能区噪声自动监测站的小时数据。
format: jsonl
share_type: 无条件共享
share_method: 接口
open_type: 无条件开放
update_cycle: {cycle}
published: 2026-11-01
grain: one row per station and hour
key: [station, hour]
source: {{kind: jsonl, pattern: "ee/noise/*.jsonl"}}
items:
  - {{column: station, name: 监测点位, name_en: Station, required: true}}
  - {{column: hour, name: 监测时间, name_en: Hour, type: timestamp, required: true}}
  - {{column: leq, name: 等效声级, name_en: Equivalent level (dB(A)), type: decimal}}
"""


@pytest.mark.parametrize("cycle", ["realtime", "quarterly"])
def test_a_catalog_resource_is_a_feed_dag_and_a_publish_gold_input_without_code(tmp_path, monkeypatch, cycle):
    """A catalog copy with one more resource (and one unreadable file): its feed DAG, in publish_gold's schedule."""
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", catalog)
    (catalog / "resources" / "ee.noise_monitoring.yml").write_text(NEW_RESOURCE.format(cycle=cycle), encoding="utf-8")
    (catalog / "resources" / "zz.broken.yml").write_text("code: zz.broken\nitems: [\n", encoding="utf-8")
    monkeypatch.setenv("GOVLAKE_CATALOG_DIR", str(catalog))
    bag, _ = _fill(tmp_path / "airflow")
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(FEEDS) | {"feed_ee_noise_monitoring"} | OTHERS
    dag = bag.dags["feed_ee_noise_monitoring"]
    assert dag.schedule == SCHEDULES[cycle] and dag.owner == "ee"
    assert dag.doc_md.startswith("# Feed: ee.noise_monitoring — 噪声自动监测数据 (Noise monitoring)\n")
    assert [a.uri for a in dag.get_task("process").outlets] == ["govlake://silver/ee_noise_monitoring"]
    schedule = bag.dags["publish_gold"].schedule
    assert "govlake://silver/ee_noise_monitoring" in _leaves(schedule)
    (daily,) = [c for c in schedule.objects if hasattr(c, "objects")]
    assert ("govlake://silver/ee_noise_monitoring" in _leaves(daily)) == (cycle == "realtime")
    assert "govlake://silver/ee_noise_monitoring" not in _leaves(bag.dags["publish_credit"].schedule)


def test_a_missing_catalog_is_an_import_error_not_an_empty_set_of_feeds(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVLAKE_CATALOG_DIR", str(tmp_path / "nowhere"))
    bag, _ = _fill(tmp_path / "airflow")
    assert {Path(f).name for f in bag.import_errors} == {"feeds.py", "publish_gold.py", "publish_credit.py",
                                                         "alerts.py"}
    assert all("no catalog here" in e for e in bag.import_errors.values())


def test_parsing_stays_cheap(tmp_path):
    """The DAG processor re-parses dags/ often: every DAG of the catalog in well under a second or two."""
    _fill(tmp_path / "warm")  # Airflow's own first imports are not the DAG files' cost
    bag, seconds = _fill(tmp_path / "airflow")
    assert len(bag.dag_ids) == len(FEEDS) + len(OTHERS)
    assert seconds < 2.0, f"filling the DagBag took {seconds:.2f}s"


def test_parsing_a_dag_file_imports_no_pipeline_code(tmp_path):
    """No DuckDB, Delta, GX or pipeline imports at top level, nor the full catalog loader (it binds SQL in DuckDB)."""
    heavy = ["duckdb", "deltalake", "great_expectations", "pyarrow", "sqlglot", "govlake.pipeline",
             "govlake.catalog", "govlake.ingest", "govlake.quality", "govlake.gold", "govlake.extract",
             "govlake.credit"]
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
