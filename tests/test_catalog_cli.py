"""`govlake catalog search|show|lineage` on hand-made lake tables and lineage events."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from govlake import gold, lineage, quality, storage
from govlake.cli import app
from govlake.config import Settings
from govlake.ingest._log import SCHEMA as INGEST_LOG_SCHEMA
from govlake.lineage import Dataset, JobPlan
from govlake.quality._meta import VALIDATION_SCHEMA

NOW = dt.datetime.now(dt.UTC)
CONFLICTS = pa.schema([("item", pa.string()), ("entity_key", pa.string()), ("resource", pa.string()),
                       ("authority_department", pa.string()), ("authority_resource", pa.string()),
                       ("department", pa.string()), ("first_seen", pa.timestamp("us", tz="UTC")),
                       ("last_seen", pa.timestamp("us", tz="UTC")), ("status", pa.string())])


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Settings:
    """Events of an ingest (registry table → bronze), the real process and gold plans, meta rows, conflicts."""
    monkeypatch.setenv("GOVLAKE_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("GOVLAKE_INBOX", str(tmp_path / "inbox"))
    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox")
    registry = lineage.db_table(settings.db_url, "amr_enterprise")
    bronze = lineage.lake_table(settings, "bronze", "amr_enterprise")
    ingest = JobPlan(name="ingest.amr.enterprise", description="land the registry", inputs=[Dataset(registry)],
                     outputs=[Dataset(bronze, lineage={"address": {(registry, "address"): ("DIRECT", "IDENTITY",
                                                                                             False)}})])
    for plan in (ingest, quality.lineage_plan(settings, "amr.enterprise"), gold.lineage_plan(settings)):
        with lineage.job_run(plan, settings=settings, run_id="t-1"):
            pass
    storage.write_table(settings.table_path("meta", "ingest_log"), pa.Table.from_pylist([
        {"run_id": "t-1", "resource": "amr.enterprise", "source": "db:amr_enterprise?updated_at in (-inf, x]",
         "rows": 3, "status": "landed", "received_at": NOW - dt.timedelta(days=2)},
        {"run_id": "t-2", "resource": "amr.enterprise", "source": "db:amr_enterprise?updated_at in (x, x]",
         "rows": 0, "status": "skipped_already_ingested", "received_at": NOW}], schema=INGEST_LOG_SCHEMA),
        mode="append", run_id="t-1")
    rule = {"resource": "amr.enterprise", "severity": "row", "description_zh": "统一社会信用代码为必填项",
            "description_en": "uscc is required", "rows_checked": 3, "gx_unexpected": 0, "gx_success": True}
    storage.write_table(settings.table_path("meta", "validation_results"), pa.Table.from_pylist([
        dict(rule, run_id="old", rule_id="required.uscc", failed=2, success=False, validated_at=NOW - dt.timedelta(1)),
        dict(rule, run_id="new", rule_id="required.uscc", failed=0, success=True, validated_at=NOW),
        dict(rule, run_id="new", rule_id="required.name", failed=1, success=False, validated_at=NOW),
    ], schema=VALIDATION_SCHEMA), mode="append", run_id="t-1")
    seen = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    storage.write_table(settings.table_path("gold", "conflicts"), pa.Table.from_pylist([
        {"item": "address", "entity_key": "91370100MA0000001X", "resource": "tax.credit_rating",
         "authority_department": "amr", "authority_resource": "amr.enterprise", "department": "tax",
         "first_seen": seen[0], "last_seen": seen[1], "status": "open"},
        {"item": "address", "entity_key": "91370100MA0000002Y", "resource": "tax.credit_rating",
         "authority_department": "amr", "authority_resource": "amr.enterprise", "department": "tax",
         "first_seen": seen[1], "last_seen": seen[1], "status": "open"},
        {"item": "address", "entity_key": "370102199001011234", "resource": "hrss.social_insurance",
         "authority_department": "psb", "authority_resource": "psb.population", "department": "hrss",
         "first_seen": seen[0], "last_seen": seen[1], "status": "open"},
    ], schema=CONFLICTS), mode="overwrite", run_id="t-1")
    return settings


def _json(args: list[str]) -> dict | list:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_lineage_of_the_legal_entity_address_upstream(lake):
    out = _json(["catalog", "lineage", "gold.legal_entity.address", "--upstream", "--json"])
    assert out["target"]["dataset"] == "gold.legal_entity" and out["target"]["column"] == "address"
    assert "downstream" not in out
    nodes = {(n["dataset"], n["column"], n["depth"]) for n in out["upstream"]["nodes"]}
    assert nodes == {("silver.amr_enterprise", "address", 1), ("silver.tax_credit_rating", "address", 1),
                     ("bronze.amr_enterprise", "address", 2), ("db:amr_enterprise", "address", 3)}
    db = next(n for n in out["upstream"]["nodes"] if n["kind"] == "db")
    assert db["namespace"] == f"sqlite://{(lake.city / 'amr_registry.sqlite').resolve()}"
    assert db["name"] == "main.amr_enterprise"
    jobs = {(e["from"]["dataset"], e["to"]["dataset"], e["job"]) for e in out["upstream"]["edges"]}
    assert ("db:amr_enterprise", "bronze.amr_enterprise", "ingest.amr.enterprise") in jobs
    # Only disagreements with the authorities feeding the column: psb's person addresses are not listed.
    groups = out["conflicts"]["groups"]
    assert [(g["department"], g["authority"], g["entities"], g["first_seen"][:10]) for g in groups] == [
        ("tax", "amr", 2, "2026-11-01")]


def test_lineage_downstream_of_a_resource_column_and_text_output(lake):
    out = _json(["catalog", "lineage", "amr.enterprise.address", "--downstream", "--json"])
    assert out["target"]["dataset"] == "silver.amr_enterprise"
    assert [(n["dataset"], n["column"]) for n in out["downstream"]["nodes"]] == [("gold.legal_entity", "address")]
    text = CliRunner().invoke(app, ["catalog", "lineage", "legal_entity.address"]).output
    assert "db:amr_enterprise" in text and "ingest.amr.enterprise" in text
    assert "departments disagreeing on address" in text


def test_table_lineage(lake):
    out = _json(["catalog", "lineage", "bronze/amr_enterprise", "--json"])
    assert [n["dataset"] for n in out["upstream"]["nodes"]] == ["db:amr_enterprise"]
    # the registry's 法定代表人 is a copy of a person's name: the 人口库 and 一人一档 read it too
    assert {n["dataset"] for n in out["downstream"]["nodes"]} == {
        "silver.amr_enterprise", "quarantine.amr_enterprise", "gold.legal_entity", "gold.population",
        "gold.person_profile"}


def test_unknown_table_fails_with_a_hint(lake):
    result = CliRunner().invoke(app, ["catalog", "lineage", "nowhere.table"])
    assert result.exit_code == 1
    assert "no table 'nowhere.table'" in result.output


def test_search(lake):
    hits = _json(["catalog", "search", "住所", "--json"])
    assert [(h["kind"], h["code"], h["authority"]) for h in hits] == [("item", "amr.enterprise.address", "amr")]
    departments = [h for h in _json(["catalog", "search", "market regulation", "--json"]) if h["kind"] == "department"]
    assert [(h["code"], h["resources"]) for h in departments] == [("amr", ["amr.enterprise"])]


def test_show(lake):
    info = _json(["catalog", "show", "amr.enterprise", "--json"])
    assert info["share_type"] == "有条件共享" and info["update_cycle"] == "daily"
    address = next(i for i in info["items"] if i["column"] == "address")
    assert (address["name"], address["level"], address["authority"]) == ("住所", "L1", "amr")
    legal_rep_id = next(i for i in info["items"] if i["column"] == "legal_rep_id")
    assert (legal_rep_id["level"], legal_rep_id["pii"]) == ("L4", "id_number")
    assert info["freshness"]["status"] == "late" and info["freshness"]["last_rows"] == 3
    assert 1.9 < info["freshness"]["age_days"] < 2.1
    assert info["quality"]["run_id"] == "new"
    assert {(r["rule_id"], r["failed"]) for r in info["quality"]["rules"]} == {("required.uscc", 0),
                                                                               ("required.name", 1)}
    assert info["lineage"]["upstream"] == ["db:amr_enterprise"]
    assert set(info["lineage"]["downstream"]) == {"gold.legal_entity", "gold.population", "gold.person_profile"}
    assert [(g["item"], g["department"], g["entities"]) for g in info["conflicts"]["groups"]] == [
        ("address", "tax", 2)]
    text = CliRunner().invoke(app, ["catalog", "show", "amr.enterprise"]).output
    assert "freshness: late" in text and "required.name" in text


def test_show_unknown_resource(lake):
    result = CliRunner().invoke(app, ["catalog", "show", "amr.nothing"])
    assert result.exit_code == 1 and "no resource 'amr.nothing'" in result.output


# ---- govlake catalog validate -------------------------------------------------------------


def _broken_catalog(tmp_path) -> tuple[dict[str, str], list[tuple[str, int, str]]]:
    """A copy of the catalog and expectations with a mistake in a resource, in credit_rules.yml and in
    an expectations file: (env, [(file, line, text)])."""
    import shutil

    from govlake.config import REPO_ROOT

    cat, exp = tmp_path / "catalog", tmp_path / "expectations"
    shutil.copytree(REPO_ROOT / "catalog", cat)
    shutil.copytree(REPO_ROOT / "expectations", exp)
    expected = []
    for path, old, new, needle, problem in [
        (cat / "resources" / "credit.penalty.yml", "key: [decision_no, authority_uscc]\n",
         "key: [decision_no, authority_uscc]\nkey: [remark]\n", "key: [remark]", "duplicate key 'key'"),
        (cat / "credit_rules.yml", "  working_days: 7\n", "  working_days: 7\n  working_day: 5\n", "working_day: 5",
         "Extra inputs are not permitted"),
        (exp / "court.dishonest.yml", "severity: warning", "severity: fatal", "fatal", "severity 'fatal'"),
    ]:
        text = path.read_text(encoding="utf-8").replace(old, new)
        path.write_text(text, encoding="utf-8")
        expected.append((str(path), next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln), problem))
    env = {"GOVLAKE_CATALOG_DIR": str(cat), "GOVLAKE_EXPECTATIONS_DIR": str(exp), "GOVLAKE_VAR": str(tmp_path / "var")}
    return env, expected


def test_validate_reports_every_problem_with_file_and_line(tmp_path, monkeypatch):
    env, expected = _broken_catalog(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(app, ["catalog", "validate"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    for path, line, text in expected:
        assert any(ln.startswith(f"{path}:{line}:") and text in ln for ln in lines), (path, line, text, lines)
    assert lines[-1] == "3 problems in the catalog" and len(lines) == 4, lines


def test_validate_as_a_user_runs_it_exits_1_without_a_traceback(tmp_path):
    env, expected = _broken_catalog(tmp_path)
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "catalog", "validate"], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert [ln.split(":")[0] for ln in out.stderr.splitlines()[:-1]] == [p for p, _, _ in expected]


def test_validate_a_good_catalog(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVLAKE_VAR", str(tmp_path / "var"))
    result = CliRunner().invoke(app, ["catalog", "validate"])
    assert result.exit_code == 0, result.output
    from govlake.catalog import get_catalog

    n = len(get_catalog().resources)
    assert f"catalog ok: {n} resources" in result.stdout and "expectations ok" in result.stdout
