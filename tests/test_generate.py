"""The sample-city generator: layout, encodings, determinism, and a manifest that matches the files.

The manifest check re-derives every row's defect from the written files with independent
code (govlake.identifiers, the code lists, chinese_calendar) and compares with the records.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import chinese_calendar
import numpy as np
import pytest
import sqlalchemy as sa

from _new_resource import RESOURCE
from govlake.catalog import get_catalog
from govlake.generate import (
    AS_OF,
    GENERATED,
    DefectKind,
    Manifest,
    _ids,
    _vocab,
    enterprise_rows,
    generate_city,
    load_registry,
)
from govlake.identifiers import (
    is_valid_id_number,
    is_valid_uscc,
    org_code_check_char,
    ric_check_char,
    uscc_check_char,
)

CATALOG = get_catalog()
SCALE, SEED = 1500, 7
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ASCII = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HALF = str.maketrans({chr(ord(c) + 0xFEE0): c for c in _ASCII})


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Path, Manifest]:
    out = tmp_path_factory.mktemp("city")
    return out, generate_city(out, scale=SCALE, seed=SEED)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _files(manifest: Manifest) -> list[tuple[str, object]]:
    return [(code, f) for code, res in manifest.resources.items() for f in res.files]


# ---- reading the files back ------------------------------------------------------------


def _read(out: Path, code: str, info) -> list[dict[str, str]]:
    """Rows of one generated file as {column: raw text} ('' for blank)."""
    res = CATALOG.resource(code)
    by_name = {i.name: i.column for i in res.items}
    path = out / info.path
    if info.encoding == "sqlite":
        with sqlite3.connect(path) as conn:
            cur = conn.execute("select * from amr_enterprise order by rowid")
            names = [d[0] for d in cur.description]
            return [{k: v or "" for k, v in zip(names, row)} for row in cur]
    if info.encoding == "xlsx":
        from python_calamine import CalamineWorkbook

        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(res.source.sheet).to_python()
        header = [by_name[h] for h in rows[0]]
        return [dict(zip(header, (_cell(v) for v in row))) for row in rows[1:]]
    if info.encoding == "utf-8":  # JSON lines
        out_rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            out_rows.append({by_name[k]: "" if v is None else str(v) for k, v in obj.items()})
        return out_rows
    text = path.read_bytes().decode(info.encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [by_name[h] for h in rows[0]]
    assert all(len(r) == len(header) for r in rows[1:]), f"ragged rows in {info.path}"
    return [dict(zip(header, r)) for r in rows[1:]]


def _cell(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


# ---- an independent defect detector ----------------------------------------------------


def _deadline(decision: dt.date) -> dt.date:
    day, left = decision, 7
    while left:
        day += dt.timedelta(days=1)
        left -= chinese_calendar.is_workday(day)
    return day


def _detect(code: str, row: dict[str, str]) -> set[str]:
    """Defect kinds visible in one row (duplicates and disagreements are found elsewhere)."""
    res = CATALOG.resource(code)
    found: set[str] = set()
    for item in res.items:
        v = row.get(item.column)
        if v is None:
            continue
        if v == "":
            if item.required:
                found.add("blank_required")
            continue
        if v != v.strip():
            found.add("whitespace")
            continue
        if v != v.translate(HALF) and item.type in ("uscc", "id_number", "string"):
            found.add("full_width")
            continue
        if item.type == "uscc" and not is_valid_uscc(v):
            found.add("uscc_check")
        if (item.type == "id_number" or (item.column == "id_no" and row.get("id_type") == "身份证")) \
                and not is_valid_id_number(v):
            found.add("id_check")
        if item.type == "date":
            if not ISO.match(v):
                found.add("date_format")
            elif not getattr(item, "future_ok", False) and dt.date.fromisoformat(v) > AS_OF:
                found.add("future_date")
        if item.code_list:
            cl = CATALOG.code_lists[item.code_list]
            for part in re.split("[;；、]", v) if item.multi_value else [v]:
                if part not in cl.values:
                    found.add("code_synonym" if part in cl.synonyms else "unknown_code")
    if code == "credit.penalty" and "罚款" in re.split("[;；、]", row["penalty_category"]) \
            and not row["fine_amount"]:
        found.add("cross_field")
    if code == "credit.license" and ISO.match(row["valid_from"]) and ISO.match(row["valid_to"]) \
            and row["valid_from"] > row["valid_to"]:
        found.add("cross_field")
    if code == "credit.repair" and row.get("submitted_at") and ISO.match(row["repair_date"]) \
            and row["submitted_at"][:10] < row["repair_date"]:
        found.add("cross_field")
    if code == "court.dishonest" and ISO.match(row["filing_date"]) and ISO.match(row["published_date"]) \
            and (row["filing_date"] > row["published_date"]
                 or (ISO.match(row["removed_date"]) and row["removed_date"] < row["published_date"])):
        found.add("cross_field")
    if row.get("submitted_at") and ISO.match(row.get("decision_date", "")):
        decided = dt.date.fromisoformat(row["decision_date"])
        if decided <= AS_OF and dt.date.fromisoformat(row["submitted_at"][:10]) > _deadline(decided):
            found.add("late_submission")
    return found


# ---- tests -------------------------------------------------------------------------------


def test_layout_rows_and_encodings(city):
    out, manifest = city
    # every catalog resource the generator knows is written; one it does not know is skipped with a note
    assert set(manifest.resources) == set(CATALOG.resources) & set(GENERATED)
    assert set(manifest.skipped) == set(CATALOG.resources) - set(GENERATED)
    assert (out / "manifest.json").exists() and (out / "amr_registry.sqlite").exists()
    assert (out / "tax/tax_credit_rating_2025.xlsx").exists()
    assert (out / "hrss/social_insurance_202610.jsonl").exists()
    assert (out / "psb/population_20261120.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    for folder in ("license", "penalty"):
        names = sorted(p.name for p in (out / "credit" / folder).iterdir())
        assert names == sorted(f"{d}_20261120.csv" for d in ("amr", "ee", "trans", "emerg", "housing", "tax"))
    encodings = Counter(f.encoding for _c, f in _files(manifest))
    assert encodings["gbk"] >= 2 and encodings["utf-8-sig"] >= 3
    for code, f in _files(manifest):
        data = (out / f.path).read_bytes()
        if f.encoding == "gbk":
            data.decode("gbk")
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        elif f.encoding == "utf-8-sig":
            assert data.startswith(b"\xef\xbb\xbf")
        assert len(_read(out, code, f)) == f.rows
    total = sum(r.rows for r in manifest.resources.values())
    assert abs(total - SCALE) < SCALE * 0.05


def test_headers_are_catalog_names(city):
    out, manifest = city
    for code, f in _files(manifest):
        res = CATALOG.resource(code)
        if f.encoding == "sqlite":
            assert f.columns == [i.column for i in res.items]
            continue
        names = [i.name for i in res.items]
        assert f.columns == [n for n in names if n in f.columns]  # catalog order, optional ones may be left out
        assert {i.name for i in res.items if i.required} <= set(f.columns)
        if f.encoding in ("gbk", "utf-8-sig"):
            first = (out / f.path).read_bytes().decode(f.encoding).split("\r\n", 1)[0]
            assert first.split(",") == f.columns
    penalty = [f for c, f in _files(manifest) if c == "credit.penalty"]
    assert any("报送时间" in f.columns for f in penalty) and any("报送时间" not in f.columns for f in penalty)


def test_manifest_matches_the_files(city):
    out, manifest = city
    assert manifest.records is not None
    recorded = {(r.file, r.row_number): r for r in manifest.records}
    assert len(recorded) == len(manifest.records), "a row carries at most one defect"
    registry = {r["uscc"]: r for i, r in enumerate(_read(out, "amr.enterprise", _files(manifest)[0][1]), 1)
                if ("amr_registry.sqlite", i) not in recorded}
    disagreements = {(d.file, d.row_number): d for d in manifest.disagreements}
    copied = {"tax.credit_rating": ("name", "address"), "hrss.social_insurance": ("name", "legal_rep")}
    # a 自然人's subject_name is a copy of the population's name for the same 身份证号
    people = {r["id_number"]: r["name"] for c, f in _files(manifest) if c == "psb.population"
              for i, r in enumerate(_read(out, c, f), 1) if (f.path, i) not in recorded}
    for code, f in _files(manifest):
        seen: set[tuple] = set()
        counts: Counter[str] = Counter()
        for n, row in enumerate(_read(out, code, f), 1):
            found = _detect(code, row)
            key = tuple(sorted(row.items()))
            if key in seen:
                found.add("duplicate")
            seen.add(key)
            clean = registry.get(row.get("uscc"))
            for item in copied.get(code, ()):
                if clean and row[item] != clean[item] and row[item].strip() == row[item]:
                    found.add("disagreement")
                    d = disagreements[(f.path, n)]
                    assert (d.item, d.authoritative_value, d.other_value) == (item, clean[item], row[item])
            named = people.get(row.get("id_no")) if row.get("subject_type") == "自然人" else None
            if named and row["subject_name"] != named and row["subject_name"].strip() == row["subject_name"]:
                found.add("disagreement")
                d = disagreements[(f.path, n)]
                assert (d.item, d.id_number, d.authoritative_value, d.other_value) == (
                    "name", row["id_no"], named, row["subject_name"])
            rec = recorded.get((f.path, n))
            assert found == ({rec.defect_kind} if rec else set()), (f.path, n, row, rec)
            counts.update(found)
        assert dict(counts) == f.defects, f.path
    for _code, res in manifest.resources.items():
        assert sum(res.defects.get(k.value, 0) for k in DefectKind if k.invalid) == res.invalid_rows
    kinds = Counter(r.defect_kind for r in manifest.records)
    assert set(kinds) == {k.value for k in DefectKind}, "every kind is injected at this scale"
    assert len(manifest.disagreements) == kinds["disagreement"]


def test_realistic_content(city):
    out, manifest = city
    files = {f.path: (c, f) for c, f in _files(manifest)}
    penalty = [r for p, (c, f) in files.items() if c == "credit.penalty" for r in _read(out, c, f)]
    registry = {r["uscc"] for r in _read(out, *files["amr_registry.sqlite"])}
    natural = [r for r in penalty if r["subject_type"] == "自然人"]
    assert 0.12 < len(natural) / len(penalty) < 0.28
    legal = [r["uscc"] for r in penalty if r["subject_type"] in ("法人及非法人组织", "个体工商户")]
    assert sum(u in registry for u in legal) / len(legal) > 0.85
    assert any(u[:1] in ("A", "N", "Y") and is_valid_uscc(u) for u in registry)
    assert any(r["subject_type"] == "个体工商户" for r in penalty)
    for code, f in _files(manifest):
        if code == "credit.penalty":
            assert "\n" in (out / f.path).read_bytes().decode(f.encoding).split("\r\n", 2)[1]
    licences = [r for p, (c, f) in files.items() if c == "credit.license" for r in _read(out, c, f)]
    assert any(r["valid_to"] == "2099-12-31" for r in licences)
    decisions = [r["decision_date"] for r in penalty if ISO.match(r["decision_date"])]
    assert min(decisions) < "2026-01-01" and max(d for d in decisions if d <= "2026-11-20") <= "2026-11-19"


def test_deterministic_for_a_seed(city, tmp_path):
    out, _manifest = city
    generate_city(tmp_path / "again", scale=SCALE, seed=SEED)
    assert _digest(tmp_path / "again") == _digest(out)
    generate_city(tmp_path / "other", scale=SCALE, seed=SEED + 1, only="credit.penalty")
    other = _digest(tmp_path / "other")
    assert other["credit/penalty/amr_20261120.csv"] != _digest(out)["credit/penalty/amr_20261120.csv"]


def test_only_writes_exactly_the_rows_asked(tmp_path):
    m = generate_city(tmp_path, only="credit.penalty", rows=1234, batch_size=100)
    assert list(m.resources) == ["credit.penalty"] and m.resources["credit.penalty"].rows == 1234
    assert sum(f.rows for f in m.resources["credit.penalty"].files) == 1234
    assert sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.iterdir()) == ["credit", "manifest.json"]
    # more ratings than enterprises: earlier years, each enterprise once per year
    m = generate_city(tmp_path, only="tax.credit_rating", rows=700, scale=2000)
    assert [f.path for f in m.resources["tax.credit_rating"].files] == [
        "tax/tax_credit_rating_2025.xlsx", "tax/tax_credit_rating_2024.xlsx", "tax/tax_credit_rating_2023.xlsx"]
    assert m.resources["tax.credit_rating"].rows == 700
    with pytest.raises(ValueError):
        generate_city(tmp_path, rows=10)
    with pytest.raises(ValueError):
        generate_city(tmp_path, defect_rate=0.2)


def test_a_catalog_resource_without_a_generator_is_skipped_with_a_note(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from govlake.catalog import load_catalog
    from govlake.cli import app

    catalog_dir = tmp_path / "catalog"
    shutil.copytree(Path(__file__).resolve().parents[1] / "catalog", catalog_dir)
    (catalog_dir / "resources" / "ee.discharge_permit.yml").write_text(RESOURCE, encoding="utf-8")
    catalog = load_catalog(catalog_dir)
    out = tmp_path / "city"
    m = generate_city(out, scale=200, only="credit.penalty", rows=30, catalog=catalog)
    assert list(m.resources) == ["credit.penalty"] and m.skipped == {}
    m = generate_city(out, scale=200, only="ee.discharge_permit", catalog=catalog)
    assert m.resources == {}
    note = m.skipped["ee.discharge_permit"]
    assert "no generator" in note and "ee/permit/*.csv" in note
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["skipped"] == {"ee.discharge_permit": note}
    assert Manifest.read(out / "manifest.json").skipped == {"ee.discharge_permit": note}
    assert not (out / "ee").exists()
    with pytest.raises(ValueError, match="unknown resource"):
        generate_city(out, only="ee.not_in_the_catalog", catalog=catalog)
    # the command line says so too, for a whole city (the other resources are written)
    monkeypatch.setenv("GOVLAKE_CATALOG_DIR", str(catalog_dir))
    monkeypatch.setenv("GOVLAKE_VAR", str(tmp_path / "var"))
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "whole"), "--scale", "200"])
    assert result.exit_code == 0, result.output
    assert f"ee.discharge_permit: skipped, {note}" in " ".join(result.output.split())
    whole = Manifest.read(tmp_path / "whole" / "manifest.json")
    assert set(whole.resources) == set(GENERATED) and set(whole.skipped) == {"ee.discharge_permit"}


def test_no_defects_at_rate_zero_and_empty_resources(tmp_path):
    m = generate_city(tmp_path / "clean", scale=300, defect_rate=0)
    assert m.records == [] and m.disagreements == []
    assert all(r.defects == {} and r.invalid_rows == 0 for r in m.resources.values())
    m = generate_city(tmp_path / "empty", only="amr.enterprise", rows=0)
    assert m.resources["amr.enterprise"].rows == 0


def test_xlsx_opens_in_openpyxl(city):
    import openpyxl

    out, manifest = city
    book = openpyxl.load_workbook(out / "tax/tax_credit_rating_2025.xlsx", read_only=True)
    rows = list(book["纳税信用评价"].iter_rows(values_only=True))
    assert list(rows[0]) == [i.name for i in CATALOG.resource("tax.credit_rating").items]
    assert len(rows) - 1 == manifest.resources["tax.credit_rating"].rows


def test_vectorised_identifiers_agree_with_the_reference():
    rng = np.random.default_rng(1)
    org = _ids.org_codes(rng.integers(0, 31**6, 300))
    prefix = np.array(["91", "92", "93", "A1", "N2", "Y1"] * 50)
    codes = _ids.uscc(prefix, np.array(["370102"] * 300), org)
    for code in codes:
        assert is_valid_uscc(code) and code[17] == uscc_check_char(code[:17])
        assert code[16] == org_code_check_char(code[8:16])
        assert not is_valid_uscc(_ids.wrong_uscc_check(code, 5))
    numbers = _ids.ric(np.array(["370112"] * 100), np.array(["19870215"] * 100), np.arange(1, 101))
    for number in numbers:
        assert is_valid_id_number(number) and number[17] == ric_check_char(number[:17])
        assert not is_valid_id_number(_ids.wrong_ric_check(number, 3))


def test_vocabulary_is_gbk_and_csv_safe():
    words = [w for name in dir(_vocab) if name.isupper() for w in _strings(getattr(_vocab, name))]
    for w in words:
        w.encode("gbk")
        if w != _vocab.EVIDENCE:
            assert not set(w) & set(',"\r\n'), w


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def test_enterprise_rows_are_the_registry(city, tmp_path):
    out, _manifest = city
    with sqlite3.connect(out / "amr_registry.sqlite") as conn:
        cur = conn.execute("select * from amr_enterprise order by rowid")
        names = [d[0] for d in cur.description]
        written = [dict(zip(names, r)) for r in cur]
    assert list(enterprise_rows(scale=SCALE, seed=SEED)) == written
    url = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    assert load_registry(url, scale=SCALE, seed=SEED) == len(written)
    with sa.create_engine(url).connect() as conn:
        assert conn.execute(sa.text("select count(*) from amr_enterprise")).scalar() == len(written)


@pytest.mark.postgres
def test_registry_loads_into_postgres(pg_url):
    rows = list(enterprise_rows(scale=400, seed=3))
    assert load_registry(pg_url, scale=400, seed=3, table="amr_enterprise_gen") == len(rows)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            got = [dict(r._mapping) for r in conn.execute(sa.text("select * from amr_enterprise_gen"))]
    finally:
        engine.dispose()
    assert sorted(got, key=lambda r: r["updated_at"]) == sorted(rows, key=lambda r: r["updated_at"])


def test_memory_does_not_grow_with_rows(tmp_path):
    """Peak RSS (KiB) of a fresh process after 3k rows, then after 30k more (records not kept)."""
    code = ("import resource, sys; import govlake.generate._city as c; c.RECORDS_LIMIT = 0\n"
            "for rows in (3000, 30000):\n"
            "    c.generate_city(sys.argv[1], only='credit.penalty', rows=rows, batch_size=1000)\n"
            "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    small, large = (int(v) for v in done.stdout.split())
    assert large < small + 10 * 1024, (small, large)
