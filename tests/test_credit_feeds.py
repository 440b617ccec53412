"""The two credit-lifecycle input feeds end to end on a small generated city: credit.repair
(信用修复 CSVs) and court.dishonest (失信被执行人 JSON lines), generated, ingested and processed
through govlake.pipeline like every other feed.

Every input row lands in exactly one of silver, quarantine or "dropped as duplicate"; the
quarantine holds exactly the manifest's invalid rows; repairs refer to penalties that are in
silver (with the decision date the manifest records) or, for unknown decisions, to none; the
enterprises silver shows as currently listed are the manifest's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from govlake import pipeline
from govlake.config import Settings
from govlake.generate import REPAIR_OUTCOMES, Manifest, generate_city, plan_rows
from govlake.identifiers import is_valid_id_number, is_valid_uscc

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
SCALE, SEED, RATE = 600, 5, 0.05
REPAIRS, COURT = 60, 40
FEEDS = ("credit.repair", "court.dishonest")


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Settings, dict[str, Manifest], dict]:
    """A 600-row city, then 60 repairs and 40 court entries written on their own (``only``, the same
    arguments, so repairs refer to this city's penalties) at a defect rate high enough for the
    kinds to show; penalties and both feeds processed."""
    root = tmp_path_factory.mktemp("credit-feeds")
    settings = Settings(var=root / "var", inbox=root / "inbox", as_of=AS_OF)
    manifests = {"city": generate_city(settings.city, scale=SCALE, seed=SEED, as_of=AS_OF, defect_rate=RATE)}
    for code, rows in (("credit.repair", REPAIRS), ("court.dishonest", COURT)):
        manifests[code] = generate_city(settings.city, scale=SCALE, seed=SEED, as_of=AS_OF, defect_rate=RATE,
                                        only=code, rows=rows)
    results = {}
    for code in ("credit.penalty", *FEEDS):
        pipeline.ingest(code, settings=settings, run_id="cf-ingest")
        results[code] = pipeline.process(code, settings=settings, run_id="cf-1")
    return settings, manifests, results


def _rows(settings: Settings, layer: str, slug: str) -> list[dict]:
    path = settings.lake / layer / slug
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist() if (path / "_delta_log").exists() else []


def _pairs(rows: list[dict]) -> list[tuple[str, int]]:
    return [(Path(r["_source"]).name, r["_row_number"]) for r in rows]


@pytest.mark.parametrize("code", FEEDS)
def test_every_row_lands_in_exactly_one_place(city, code):
    settings, manifests, results = city
    info = manifests[code].resources[code]
    slug = code.replace(".", "_")
    everything = {(Path(f.path).name, n) for f in info.files for n in range(1, f.rows + 1)}
    silver, quarantine = _pairs(_rows(settings, "silver", slug)), _pairs(_rows(settings, "quarantine", slug))
    assert len(set(silver)) == len(silver) and len(set(quarantine)) == len(quarantine)
    assert not set(silver) & set(quarantine)
    dropped = everything - set(silver) - set(quarantine)
    assert set(silver) | set(quarantine) <= everything
    assert len(dropped) == info.defects.get("duplicate", 0)
    r = results[code]
    assert r.rows_read == info.rows == (REPAIRS if code == "credit.repair" else COURT)
    assert (r.silver, r.quarantined, r.duplicates) == (len(silver), len(quarantine), len(dropped))


@pytest.mark.parametrize("code", FEEDS)
def test_quarantine_is_exactly_the_invalid_injected_rows(city, code):
    settings, manifests, results = city
    manifest = manifests[code]
    expected = {(Path(rec.file).name, rec.row_number) for rec in manifest.invalid_records(code)}
    got = set(_pairs(_rows(settings, "quarantine", code.replace(".", "_"))))
    assert expected, "the test city must inject invalid rows"
    assert got == expected
    assert results[code].quarantined == manifest.resources[code].invalid_rows == len(expected)


def test_generated_defects_cover_the_row_kinds_and_the_cross_field_rules_catch_theirs(city):
    _settings, manifests, results = city
    repair = manifests["credit.repair"].resources["credit.repair"].defects
    court = manifests["court.dishonest"].resources["court.dishonest"].defects
    assert {"cross_field", "duplicate", "uscc_check", "blank_required", "future_date"} <= set(repair) & set(court)
    # each injected cross-field break fails the feed's own rule (expectations/<resource>.yml), and only those
    assert results["credit.repair"].rule_failures.get("CR.submitted_after_repair") == repair["cross_field"]
    assert results["court.dishonest"].rule_failures.get("CD.filed_before_published") == court["cross_field"]
    assert "CD.removed_after_published" not in results["court.dishonest"].rule_failures
    repair, court = set(repair), set(court)
    assert repair <= {"uscc_check", "full_width", "date_format", "blank_required", "whitespace", "cross_field",
                      "future_date", "duplicate"}
    assert court <= {"uscc_check", "id_check", "full_width", "date_format", "blank_required", "unknown_code",
                     "code_synonym", "whitespace", "cross_field", "future_date", "duplicate"}


def test_repair_outcomes_cover_the_three_kinds_with_their_dates(city):
    _settings, manifests, _ = city
    manifest = manifests["credit.repair"]
    repairs = manifest.repairs
    assert len(repairs) == REPAIRS
    counts = Counter(r.outcome for r in repairs)
    # 60 rows: 20% too early (12), 10% unknown (6), the rest accepted (42)
    assert dict(counts) == manifest.resources["credit.repair"].outcomes == {
        "accepted": 42, "too_early": 12, "unknown_decision": 6}
    assert set(counts) == set(REPAIR_OUTCOMES)
    invalid = {(rec.file, rec.row_number) for rec in manifest.invalid_records("credit.repair")}
    for r in repairs:
        assert (r.decision_date is None) == (r.outcome == "unknown_decision"), r
        if (r.file, r.row_number) in invalid:  # e.g. a future repair date: quarantined, never judged
            continue
        repaired = dt.date.fromisoformat(r.repair_date)
        assert repaired < AS_OF, r
        if r.outcome != "unknown_decision":
            days = (repaired - dt.date.fromisoformat(r.decision_date)).days
            # accepted: after 6 months (严重 minimum), within a year (一般 maximum); too early: before 3 months
            assert (190 <= days <= 360) if r.outcome == "accepted" else (7 <= days <= 80), r


def test_repairs_refer_to_penalties_in_silver(city):
    settings, manifests, _ = city
    penalties = {(p["uscc"], p["decision_no"]): p["decision_date"]
                 for p in _rows(settings, "silver", "credit_penalty")}
    decision_numbers = {no for _u, no in penalties}
    repairs = manifests["credit.repair"].repairs
    for r in repairs:
        if r.outcome == "unknown_decision":
            assert r.decision_no not in decision_numbers, r
            assert is_valid_uscc(r.uscc)
        else:
            assert penalties.get((r.uscc, r.decision_no)) == dt.date.fromisoformat(r.decision_date), r
    assert len({(r.uscc, r.decision_no) for r in repairs}) == REPAIRS - Counter(
        rec.defect_kind for rec in manifests["credit.repair"].records)["duplicate"]
    # silver carries each valid repair with the key and date the manifest records
    silver = {(r["uscc"], r["decision_no"]): r["repair_date"] for r in _rows(settings, "silver", "credit_repair")}
    invalid = {(rec.file, rec.row_number) for rec in manifests["credit.repair"].invalid_records("credit.repair")}
    expected = {(r.uscc, r.decision_no): dt.date.fromisoformat(r.repair_date)
                for r in repairs if (r.file, r.row_number) not in invalid}
    assert silver == expected


def test_provincial_platform_leaves_out_the_optional_columns(city):
    settings, manifests, _ = city
    files = {Path(f.path).name: f for f in manifests["credit.repair"].resources["credit.repair"].files}
    assert set(files) == {"xyzg_20261120.csv", "xysd_20261120.csv"}
    assert files["xysd_20261120.csv"].encoding == "gbk"
    assert "处罚机关统一社会信用代码" not in files["xysd_20261120.csv"].columns
    assert "报送时间" in files["xyzg_20261120.csv"].columns
    silver = _rows(settings, "silver", "credit_repair")
    provincial = [r for r in silver if r["_source"].endswith("xysd_20261120.csv")]
    assert provincial and all(r["authority_uscc"] is None and r["submitted_at"] is None for r in provincial)


def test_court_listing_flags_in_silver_match_the_manifest(city):
    settings, manifests, _ = city
    manifest = manifests["court.dishonest"]
    silver = _rows(settings, "silver", "court_dishonest")
    listed = {r["uscc"] for r in silver if r["uscc"] and r["removed_date"] is None}
    assert listed == set(manifest.dishonest_listed)
    assert listed, "some enterprises must be listed"
    removed = {r["uscc"] for r in silver if r["uscc"] and r["removed_date"] is not None}
    assert removed, "some entries must have been removed"
    persons = [r for r in silver if r["subject_type"] == "自然人"]
    assert persons and all(r["uscc"] is None and is_valid_id_number(r["id_no"]) for r in persons)
    assert all(r["published_date"] <= AS_OF and (r["filing_date"] <= r["published_date"]) for r in silver)
    outcomes = manifest.resources["court.dishonest"].outcomes
    assert sum(outcomes.values()) == COURT and set(outcomes) == {"listed", "removed"}


def test_court_entries_name_registry_enterprises(city):
    settings, manifests, _ = city
    from govlake.generate import enterprise_rows

    registry = {r["uscc"] for r in enterprise_rows(scale=SCALE, seed=SEED, as_of=AS_OF)}
    silver = _rows(settings, "silver", "court_dishonest")
    codes = {r["uscc"] for r in silver if r["uscc"]}
    assert codes and codes <= registry


def test_shares_and_determinism(tmp_path):
    # repairs 2% of penalties (35% of scale), court entries 1% of enterprises (15%), at least 20
    assert plan_rows(100_000)["credit.repair"] == 700 and plan_rows(100_000)["court.dishonest"] == 150
    assert plan_rows(2000)["credit.repair"] == 20 and plan_rows(2000)["court.dishonest"] == 20

    def digest(out: Path, seed: int) -> dict[str, str]:
        for code in FEEDS:
            generate_city(out, scale=SCALE, seed=seed, only=code, rows=30)
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*.*")) if p.suffix in (".csv", ".jsonl")}

    first = digest(tmp_path / "a", SEED)
    assert set(first) == {"credit/repair/xyzg_20261120.csv", "credit/repair/xysd_20261120.csv",
                          "court/dishonest_20261120.jsonl"}
    assert digest(tmp_path / "b", SEED) == first
    other = digest(tmp_path / "c", SEED + 1)
    assert all(other[k] != first[k] for k in first)


def test_penalty_decisions_span_four_years(city):
    settings, _, _ = city
    dates = [r["decision_date"] for r in _rows(settings, "silver", "credit_penalty")]
    three_years, one_year = dt.date(2023, 11, 20), dt.date(2025, 11, 20)
    assert min(dates) >= dt.date(2022, 11, 21) and max(dates) < AS_OF
    assert any(d < three_years for d in dates)                 # past a 3-year publicity period
    assert any(three_years <= d < one_year for d in dates)     # past 1 year, within 3
    assert any(d >= one_year for d in dates)                   # within a year
