"""The whole path on a generated city: every injected defect lands where it should, nothing is lost,
re-runs change no table, an independent Delta reader sees the same rows, no ID number leaks."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from conftest import CITY_RUN
from govlake import objectstore, pipeline
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.generate import INVALID_KINDS
from govlake.identifiers import is_valid_id_number

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def city(built_city, tmp_path_factory) -> tuple[Settings, object, dict]:
    """A copy of the session's city (conftest's built_city: scale 1500, run once): a test here runs again."""
    settings, summary = built_city.copy(tmp_path_factory.mktemp("city") / "var")
    return settings, built_city.manifest, summary


def _load_manifest(settings: Settings) -> dict:
    import json

    return json.loads((settings.city / "manifest.json").read_text(encoding="utf-8"))


def _rows(path: Path) -> list[dict]:
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


def test_every_invalid_injected_row_is_quarantined_and_no_other(city):
    settings, _, _ = city
    manifest = _load_manifest(settings)
    invalid = {k for k, v in manifest["defect_kinds"].items() if v["invalid"]}
    assert invalid == {str(k.value) if hasattr(k, "value") else str(k) for k in INVALID_KINDS}
    catalog = get_catalog(settings.catalog_dir)
    for code, res in catalog.resources.items():
        expected = {(Path(r["file"]).name, r["row_number"]) for r in manifest["records"]
                    if r["resource"] == code and r["defect_kind"] in invalid}
        qpath = settings.lake / "quarantine" / res.slug
        got = {(Path(r["_source"].split("?")[0].removeprefix("db:")).name
                if not r["_source"].startswith("db:") else "amr_registry.sqlite", r["_row_number"])
               for r in _rows(qpath)} if (qpath / "_delta_log").exists() else set()
        assert got == expected, f"{code}: missing {sorted(expected - got)[:5]}, unexpected {sorted(got - expected)[:5]}"


def test_counts_reconcile_and_duplicates_match_the_manifest(city):
    settings, _, summary = city
    manifest = _load_manifest(settings)
    for code, r in summary["resources"].items():
        info = manifest["resources"][code]
        assert r.rows_read == info["rows"], code
        assert r.rows_read == r.silver + r.quarantined + r.duplicates, code
        assert r.quarantined == info["invalid_rows"], code
        assert r.duplicates == info["defects"].get("duplicate", 0), code


def test_second_run_over_the_same_inputs_changes_no_table(city):
    settings, _, _ = city
    def counts():
        out = {}
        for layer in ("bronze", "silver", "quarantine", "gold/base", "gold/theme", "gold"):
            for name in objectstore.delta_tables(settings.lake / layer):
                out[(layer, name)] = DeltaTable(str(settings.lake / layer / name)).to_pyarrow_dataset().count_rows()
        return out
    before = counts()
    for code in get_catalog(settings.catalog_dir).resources:
        result = pipeline.ingest(code, settings=settings)
        assert result.rows == 0, code
    pipeline.run(settings=settings, run_id="it-2")
    assert counts() == before
    runs = Counter(r["run_id"] for r in _rows(settings.lake / "meta" / "reconciliation"))
    resources = len(_load_manifest(settings)["resources"])   # every resource the city has files for
    assert runs[CITY_RUN] == runs["it-2"] == resources   # history grows


def test_an_independent_delta_reader_sees_the_same_rows(city):
    settings, _, _ = city
    import duckdb_extension_delta

    ext = (Path(duckdb_extension_delta.__file__).parent / "extensions" / f"v{duckdb.__version__}"
           / "delta.duckdb_extension")
    con = duckdb.connect()
    con.execute(f"load '{ext}'")
    tables = [p for layer in settings.lake.iterdir() for p in layer.iterdir() if (p / "_delta_log").exists()]
    assert len(tables) >= 18
    for path in tables:
        ours = DeltaTable(str(path)).to_pyarrow_table()
        theirs = con.sql(f"select * from delta_scan('{path}')").to_arrow_table()
        assert theirs.num_rows == ours.num_rows, path
        key = [c for c in ("_batch_id", "_row_number", "run_id", "rule_id", "uscc", "resource")
               if c in ours.column_names]
        if key:
            sort = [(k, "ascending") for k in key]
            assert theirs.select(key).sort_by(sort).to_pylist() == ours.select(key).sort_by(sort).to_pylist(), path


ID_18 = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}[0-9Xx](?![0-9])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def test_no_valid_id_number_or_mobile_unmasked_in_the_extract(city):
    settings, _, summary = city
    con = duckdb.connect(str(summary["extract"]), read_only=True)
    leaks = []
    for (table,) in con.execute("select table_name from duckdb_tables()").fetchall():
        cols = [c for (c, t) in con.execute(
            "select column_name, data_type from duckdb_columns() where table_name = ?", [table]).fetchall()
            if t == "VARCHAR"]
        for col in cols:
            for (value,) in con.execute(f'select "{col}" from "{table}" where "{col}" is not null').fetchall():
                leaks += [(table, col, m) for m in ID_18.findall(value) if is_valid_id_number(m.upper())]
                leaks += [(table, col, m) for m in MOBILE.findall(value)]
    assert leaks == []
    assert con.execute("select count(*) from legal_entity").fetchone()[0] > 100


def test_credit_repairs_end_as_the_manifest_expects(city):
    settings, manifest, _ = city
    quarantined = {(r["_source"], r["_row_number"])
                   for r in _rows(settings.lake / "quarantine" / "credit_repair")}
    reviews = {(r["uscc"], r["decision_no"]): r for r in _rows(settings.table_path("gold", "credit_repair_review"))}
    records = {(r["uscc"], r["decision_no"]): r for r in _rows(settings.table_path("gold", "penalty_record"))}
    checked = Counter()
    for repair in manifest.repairs:
        if (str(settings.city / repair.file), repair.row_number) in quarantined:
            continue
        review = reviews[(repair.uscc, repair.decision_no)]
        expected = "accepted" if repair.outcome == "accepted" else "rejected"
        assert review["outcome"] == expected, (repair, review["reason_en"])
        if repair.outcome == "accepted":
            record = records[(repair.uscc, repair.decision_no)]
            ended_first = record["scheduled_publish_end"] <= dt.date.fromisoformat(repair.repair_date)
            never_published = record["publicity_status"] == "不予公示"   # market regulation's warning-only
            assert never_published or record["publicity_status"] == ("已到期" if ended_first else "已修复")
        checked[repair.outcome] += 1
    assert set(checked) == {"accepted", "too_early", "unknown_decision"}


def test_the_court_list_flags_exactly_the_listed_enterprises(city):
    settings, manifest, _ = city
    profiles = _rows(settings.table_path("gold", "enterprise_credit_profile"))
    flagged = {r["uscc"] for r in profiles if r["court_dishonest"]}
    assert flagged == set(manifest.dishonest_listed)


def test_nothing_withdrawn_is_published(city):
    settings, _, _ = city
    publication = _rows(settings.table_path("gold", "penalty_publication"))
    published = {(r["decision_no"], r["authority_uscc"]) for r in publication}
    records = _rows(settings.table_path("gold", "penalty_record"))
    assert published == {(r["decision_no"], r["authority_uscc"]) for r in records if r["publicity_status"] == "公示中"}
    assert {r["publicity_status"] for r in records} >= {"公示中", "已到期", "已撤销"}


def test_great_expectations_data_docs_hold_no_id_or_mobile_number(city):
    settings, _, _ = city
    pages = list((settings.reports / "gx").rglob("*.html"))
    assert len(pages) > len(get_catalog(settings.catalog_dir).resources)   # a page per validation, and the index
    leaks = [(p.name, m) for p in pages for text in [p.read_text(encoding="utf-8")]
             for m in ID_18.findall(text) + MOBILE.findall(text) if len(m) == 11 or is_valid_id_number(m.upper())]
    assert leaks == []


def test_late_submissions_injected_by_the_generator_are_exactly_the_late_records(city):
    """Rows with a 报送时间 are on time unless the generator made them late (8–40 working days after
    the decision; 1–7 otherwise); rows without one are judged by the batch's received time."""
    settings, _, _ = city
    manifest = _load_manifest(settings)
    checked = 0
    for code, record_table in (("credit.penalty", "penalty_record"), ("credit.license", "license_record")):
        late = {(Path(r["file"]).name, r["row_number"]) for r in manifest["records"]
                if r["resource"] == code and r["defect_kind"] == "late_submission"}
        for r in _rows(settings.table_path("gold", record_table)):
            if r["submitted_at"] is None:
                continue
            made_late = (Path(r["_source"]).name, r["_row_number"]) in late
            if made_late and r["_dept"] == "amr":
                continue   # 8–40 working days late by the 7-day rule; market regulation has 20 days
            assert r["on_time"] is not made_late, (code, r["_source"], r["_row_number"], r["deadline_date"])
            checked += 1
    assert checked > 100
