"""Adding a source is catalog-only: a new department's CSV through Airflow, with no code change.

A copy of catalog/ and expectations/ in tmp_path gets one more resource, ee.discharge_permit
(市生态环境局's 排污许可 list: a GBK CSV keyed by 统一社会信用代码, whose 单位名称 is a copy of the
registry's `name`), and one cross-field rule; the inbox gets a sample file with two bad rows. With
GOVLAKE_CATALOG_DIR and GOVLAKE_EXPECTATIONS_DIR pointing at the copies, infra/airflow.sh (the Airflow
home of `make demo`, SQLite metadata) runs `airflow dags test` of the new feed DAG, publish_gold and
publish_credit. The registry is landed in-process first, so that 法人库 and 一数一源 have an authority.

What a new department resource reaches: its silver, quarantine and reconciliation; its Asset in
publish_gold's schedule (Airflow's own record) and not in publish_credit's (the credit step does not
read it); 法人库, as a copy of the registry's name (its enterprises, `source_departments`), the
一数一源 conflicts, the analyst extract and both lineage files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from _new_resource import CODE, EXPECTATIONS, RESOURCE
from govlake import pipeline
from govlake.catalog import load_catalog
from govlake.config import Settings
from govlake.generate import generate_city
from govlake.identifiers import org_code_check_char, uscc_check_char

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 20)
SLUG = "ee_discharge_permit"



def _uscc(serial: int) -> str:
    """A valid 统一社会信用代码 (with a valid organisation code inside) of an enterprise outside the registry."""
    org = f"MA{serial:06d}"
    first17 = f"91370102{org}{org_code_check_char(org)}"
    return first17 + uscc_check_char(first17)


def _run(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(["bash", str(REPO / "infra" / "airflow.sh"), *args], env=env, cwd=REPO,
                         capture_output=True, text=True, check=False, timeout=900)
    log = "\n".join(line for line in (out.stdout + out.stderr).splitlines()
                    if "Skipping registering function" not in line)
    assert out.returncode == 0, f"airflow {' '.join(args)} failed:\n{log[-6000:]}"
    return out.stdout


def _rows(path: Path) -> list[dict]:
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


def test_a_new_department_csv_reaches_silver_and_gold_through_airflow_without_code(tmp_path):
    catalog_dir, expectations_dir = tmp_path / "catalog", tmp_path / "expectations"
    shutil.copytree(REPO / "catalog", catalog_dir)
    shutil.copytree(REPO / "expectations", expectations_dir)
    (catalog_dir / "resources" / f"{CODE}.yml").write_text(RESOURCE, encoding="utf-8")
    (expectations_dir / f"{CODE}.yml").write_text(EXPECTATIONS, encoding="utf-8")
    var, inbox = tmp_path / "var", tmp_path / "inbox"
    settings = Settings(var=var, inbox=inbox, catalog_dir=catalog_dir, expectations_dir=expectations_dir,
                        as_of=AS_OF)

    # The registry (法人库's authority), landed in-process: the new feed is what goes through Airflow.
    generate_city(inbox, scale=300, seed=3, only="amr.enterprise", catalog=load_catalog(catalog_dir))
    pipeline.ingest("amr.enterprise", settings=settings, run_id="registry")
    pipeline.process("amr.enterprise", settings=settings, run_id="registry")
    registry = {r["uscc"]: r["name"] for r in _rows(var / "lake" / "silver" / "amr_enterprise")}
    (same, same_name), (renamed, registered_name), (later, later_name), (ends, ends_name) = sorted(
        registry.items())[:4]
    outside = next(u for u in map(_uscc, range(1, 100)) if u not in registry)
    broken = outside[:-1] + ("0" if outside[-1] != "0" else "1")   # wrong check character

    header = "统一社会信用代码,单位名称,许可证编号,有效期起,有效期至"
    rows = [
        f"{same},{same_name},鲁环许〔2025〕001号,2025-03-01,2030-02-28",
        f"{renamed},{registered_name}（旧称）,鲁环许〔2025〕002号,2025-04-01,2030-03-31",
        f"{outside},济南泉清环保科技有限公司,鲁环许〔2025〕003号,2025-05-01,2030-04-30",
        f"{later},{later_name},鲁环许〔2026〕004号,2026-06-01,2031-05-31",
        f"{ends},{ends_name},鲁环许〔2025〕005号,2025-07-01,2024-06-30",  # ends before it starts
        f"{broken},某某化工有限公司,鲁环许〔2025〕006号,2025-08-01,2030-07-31",  # bad USCC
    ]
    (inbox / "ee" / "permit").mkdir(parents=True)
    (inbox / "ee" / "permit" / "permits_20261120.csv").write_bytes(
        ("\r\n".join([header, *rows]) + "\r\n").encode("gbk"))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVLAKE_", "AIRFLOW", "OPENLINEAGE"))}
    env |= {"GOVLAKE_VAR": str(var), "GOVLAKE_INBOX": str(inbox), "GOVLAKE_CATALOG_DIR": str(catalog_dir),
            "GOVLAKE_EXPECTATIONS_DIR": str(expectations_dir), "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
            # unpaused, as in production: an Asset event then queues the DAGs scheduled on it
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}

    # The feed DAG exists for the new resource: built from the catalog copy by dags/feeds.py.
    _run(["dags", "test", f"feed_{SLUG}", AS_OF.isoformat()], env)
    silver = {r["uscc"]: r for r in _rows(var / "lake" / "silver" / SLUG)}
    assert set(silver) == {same, renamed, outside, later}
    assert silver[outside]["valid_to"] == dt.date(2030, 4, 30) and silver[outside]["_source"].endswith(".csv")
    quarantined = {r["_row_number"]: r["_failed_rules"] for r in _rows(var / "lake" / "quarantine" / SLUG)}
    assert quarantined == {5: ["EE.valid_period"], 6: ["uscc.uscc"]}
    (recon,) = [r for r in _rows(var / "lake" / "meta" / "reconciliation") if r["resource"] == CODE]
    assert (recon["rows_read"], recon["silver"], recon["quarantined"], recon["balanced"]) == (6, 4, 2, True)

    # Airflow's own record (its metadata database): publish_gold is scheduled on the new silver Asset,
    # which the feed's process task produces; the feed run's Asset event queued publish_gold (it runs
    # once the other daily feeds have published too). publish_credit is not scheduled on it: the
    # credit step does not read it. The alerts DAG is (on any feed's silver, or the hour).
    uri = f"govlake://silver/{SLUG}"
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        def asset_rows(table: str, *columns: str) -> list[tuple]:
            return db.execute(f"select {', '.join(f'r.{c}' for c in columns)} from {table} r "
                              "join asset on asset.id = r.asset_id where asset.uri = ?", [uri]).fetchall()

        assert sorted(asset_rows("dag_schedule_asset_reference", "dag_id")) == [("alerts",), ("publish_gold",)]
        assert asset_rows("task_outlet_asset_reference", "dag_id", "task_id") == [(f"feed_{SLUG}", "process")]
        assert asset_rows("asset_event", "source_dag_id", "source_task_id") == [(f"feed_{SLUG}", "process")]
        assert sorted(asset_rows("asset_dag_run_queue", "target_dag_id")) == [("alerts",), ("publish_gold",)]

    _run(["dags", "test", "publish_gold", AS_OF.isoformat()], env)
    entities = {r["uscc"]: r for r in _rows(var / "lake" / "gold" / "base" / "legal_entity")}
    assert set(registry) <= set(entities) and outside in entities
    # An enterprise only the new department knows: 法人库 takes its name from the copy and flags it.
    assert entities[outside]["name"] == "济南泉清环保科技有限公司"
    assert entities[outside]["attrs_from_non_authority"] == "name"
    assert entities[outside]["source_departments"] == "ee"
    # A registered one: the registry's name stays, and both departments hold it.
    assert entities[renamed]["name"] == registered_name and entities[renamed]["attrs_from_non_authority"] is None
    assert set(entities[renamed]["source_departments"].split(";")) == {"amr", "ee"}
    # 一数一源: the copy that disagrees with the authority is a conflict; the one that agrees is not.
    conflicts = [r for r in _rows(var / "lake" / "gold" / "conflicts") if r["resource"] == CODE]
    assert [(c["entity_key"], c["item"], c["authority_resource"], c["department"], c["other_value"])
            for c in conflicts] == [(renamed, "name", "amr.enterprise", "ee", f"{registered_name}（旧称）")]

    _run(["dags", "test", "publish_credit", AS_OF.isoformat()], env)
    con = duckdb.connect(str(var / "extracts" / "analyst.duckdb"), read_only=True)
    try:
        assert con.execute("select name from legal_entity where uscc = ?", [outside]).fetchall() == [
            ("济南泉清环保科技有限公司",)]
    finally:
        con.close()

    # Lineage: both files validate; the new feed's runs are there, and 法人库 reads its silver table.
    from govlake.lineage import validate_file

    assert validate_file(var / "lineage" / "airflow.jsonl") == {}
    assert validate_file(var / "lineage" / "govlake.jsonl") == {}
    ours = [json.loads(line) for line in (var / "lineage" / "govlake.jsonl").read_text().splitlines()]
    completed = {e["job"]["name"]: e for e in ours if e["eventType"] == "COMPLETE"}
    assert {f"ingest.{CODE}", f"process.{CODE}", "gold.legal_entity", "conflicts", "extract"} <= set(completed)
    assert any(i["name"].endswith(f"/lake/silver/{SLUG}") for i in completed["gold.legal_entity"]["inputs"])
