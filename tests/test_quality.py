"""Validation: every row ends in silver, quarantine or 'duplicate'; GX agrees with DuckDB;
blocking rules stop publication."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from _bronze import write_bronze
from govlake.catalog import get_catalog
from govlake.identifiers import uscc_check_char
from govlake.quality import process_resource, rules_for
from govlake.quality._process import Totals
from govlake.transform import DUCKDB

TODAY = dt.date(2026, 11, 20)
USCC = "91370100MA3C0000X" + uscc_check_char("91370100MA3C0000X")
BASE = dict(subject_name="济南星辰科技有限公司", subject_type="法人及非法人组织", uscc=USCC,
            decision_no="济市监罚〔2026〕1号", violation_type="虚假宣传", facts="发布虚假广告\n第二行",
            basis="广告法第五十五条", penalty_category="罚款", content="罚款1万元", fine_amount="1",
            decision_date="2026-10-09", valid_until="2027-10-09", authority="市市场监督管理局",
            authority_uscc="11370100MB0000001A", source_dept="市市场监督管理局",
            source_dept_uscc="11370100MB0000001A")


def _rows():
    return [
        dict(BASE),                                                     # 1 valid
        dict(BASE, decision_no="2号", decision_date="2026年10月9日"),    # 2 valid
        dict(BASE, decision_no="3号", uscc=USCC[:-1] + ("0" if USCC[-1] != "0" else "1")),  # 3 check char
        dict(BASE, decision_no="4号", penalty_category="罚没"),          # 4 code list
        dict(BASE, decision_no="5号", fine_amount=None),                # 5 cross-field
        dict(BASE, decision_no="6号", decision_date="2027-01-01"),      # 6 future
        dict(BASE),                                                     # 7 duplicate of 1 (newer)
        dict(BASE, decision_no="8号", _parse_error="expected 32 fields, got 30"),  # 8 short row
        dict(BASE, decision_no="9号", violation_type=None, decision_date="昨天"),  # 9 two rules
        dict(BASE, decision_no="10号", subject_type="自然人", subject_name="张三", uscc=None,
             id_type="身份证", id_no="11010519491231002X"),              # 10 valid natural person
    ] + [dict(BASE, decision_no=f"{n}号") for n in range(11, 17)]     # 11-16 valid


def _table(settings, layer, slug="credit_penalty"):
    return DeltaTable(str(settings.lake / layer / slug)).to_pyarrow_table().to_pylist()


def test_rows_split_with_reasons_and_counts_reconcile(settings):
    write_bronze(settings, "credit.penalty", _rows())
    r = process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    assert (r.rows_read, r.silver, r.quarantined, r.duplicates) == (16, 9, 6, 1)
    quarantine = {row["_row_number"]: sorted(row["_failed_rules"]) for row in _table(settings, "quarantine")}
    assert quarantine == {
        3: ["uscc.uscc"], 4: ["code.penalty_category"], 5: ["SGS.fine_amount"],
        6: ["not_future.decision_date"], 8: ["parse.row"],
        9: ["format.decision_date", "required.violation_type"],
    }
    silver = {row["decision_no"]: row for row in _table(settings, "silver")}
    assert set(silver) == {"济市监罚〔2026〕1号", "2号", "10号"} | {f"{n}号" for n in range(11, 17)}
    # the later submission of the duplicated decision wins and keeps its lineage
    assert silver["济市监罚〔2026〕1号"]["_row_number"] == 7
    assert all(row["_source"] == "test.csv" for row in silver.values())
    (recon,) = DeltaTable(str(settings.lake / "meta" / "reconciliation")).to_pyarrow_table().to_pylist()
    assert recon["balanced"] and recon["rows_read"] == 16


def test_flagged_rows_joined_in_parts_give_the_same_quarantine_and_great_expectations_counts(settings, monkeypatch):
    """Beyond ``join_rows`` flagged rows, the join of the flagged rows with their bronze rows runs a range of rows of
    a batch at a time: the same quarantine (rows as sent, rules, hashes), silver and GX counts as one join."""
    from govlake.compute import DuckCompute
    from govlake.quality import _process

    write_bronze(settings, "credit.penalty", _rows())
    second = [dict(BASE, decision_no=f"b2-{n}号", penalty_category="罚款" if n % 3 else "罚没") for n in range(1, 12)]
    write_bronze(settings, "credit.penalty", second, batch="b2")
    monkeypatch.setattr(DuckCompute, "JOIN_ROWS", 3)
    monkeypatch.setattr(_process, "FLAGGED_BUCKET_ROWS", 4)
    parts = []
    cut = _process._flagged_parts
    monkeypatch.setattr(_process, "_flagged_parts", lambda con, every: parts.extend(cut(con, every)) or parts)
    r = process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    assert len(parts) >= 4 and len(set(parts)) == len(parts)
    assert (r.rows_read, r.silver, r.quarantined, r.duplicates) == (27, 17, 9, 1)
    quarantine = {(row["_batch_id"], row["_row_number"]): sorted(row["_failed_rules"])
                  for row in _table(settings, "quarantine")}
    assert {k: v for k, v in quarantine.items() if k[0] == "b1"} == {
        ("b1", 3): ["uscc.uscc"], ("b1", 4): ["code.penalty_category"], ("b1", 5): ["SGS.fine_amount"],
        ("b1", 6): ["not_future.decision_date"], ("b1", 8): ["parse.row"],
        ("b1", 9): ["format.decision_date", "required.violation_type"]}
    assert {k[1] for k in quarantine if k[0] == "b2"} == {3, 6, 9}
    assert all(r["_row_hash"] and r["subject_name"] == BASE["subject_name"] for r in _table(settings, "quarantine"))
    results = DeltaTable(str(settings.lake / "meta" / "validation_results")).to_pyarrow_table().to_pylist()
    assert all(x["gx_unexpected"] == x["failed"] for x in results if x["severity"] == "row")
    assert {x["rule_id"]: x["failed"] for x in results if x["failed"]}["code.penalty_category"] == 4


def test_great_expectations_counts_equal_duckdb_counts(settings):
    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    results = DeltaTable(str(settings.lake / "meta" / "validation_results")).to_pyarrow_table().to_pylist()
    row_rules = [x for x in results if x["severity"] == "row"]
    assert len(row_rules) > 30
    assert all(x["gx_unexpected"] == x["failed"] for x in row_rules)
    failing = {x["rule_id"]: x["failed"] for x in row_rules if x["failed"]}
    assert failing["uscc.uscc"] == 1 and failing["required.violation_type"] == 1
    assert all(not x["gx_success"] for x in row_rules if x["failed"])


def test_each_distinct_code_is_checked_once_and_every_row_gets_the_rule_s_answer(settings, tmp_path, monkeypatch):
    """The process step checks each distinct 统一社会信用代码 of a run once and the rules look up the passing ones
    (_run_codes) instead of computing check characters on every row: whatever a department sent — blanks, lower
    case, full-width forms, a wrong check character, a GB 11714 organisation code that fails, garbage — every row
    gets the answers it gets with each code checked on its row, and only codes that pass are looked up."""
    import dataclasses

    from govlake.identifiers import org_code_check_char
    from govlake.quality import _process

    def code(body: str, org: str | None = None) -> str:
        c17 = body + (org or org_code_check_char(body[8:16]))
        return c17 + uscc_check_char(c17)

    good = code("91370100MA3C0002")
    wrong_org = code("91370100MA3C0003", "1" if org_code_check_char("MA3C0003") != "1" else "2")
    sent = [good, f" {good.lower()} ", good.translate({ord(c): ord(c) + 0xFEE0 for c in good}), good[:-1] + "Z",
            wrong_org, wrong_org.lower(), "abc", "", None, good, good]
    rows = [dict(BASE, decision_no=f"{n}号", uscc=u, authority_uscc=a)
            for n, (u, a) in enumerate(zip(sent, [*sent[3:], *sent[:3]], strict=True))]
    rows += [dict(BASE, decision_no=f"{n}号", uscc=good) for n in range(20, 60)]  # the batch is not held

    looked_up = []
    run_codes = _process._run_codes

    def spy(con, *args):
        run_codes(con, *args)
        looked_up.append({r[0] for r in con.rows("select code from ref_uscc_valid")})

    outcomes = []
    for name, patch in (("looked_up", spy), ("on_every_row", lambda *args: None)):
        monkeypatch.setattr(_process, "_run_codes", patch)
        lake = dataclasses.replace(settings, var=tmp_path / name)
        write_bronze(lake, "credit.penalty", rows)
        r = process_resource("credit.penalty", settings=lake, run_id="r1", today=TODAY)
        quarantined = {row["decision_no"]: sorted(row["_failed_rules"]) for row in _table(lake, "quarantine")}
        outcomes.append((r.rule_failures, r.warnings, quarantined))
    assert outcomes[0] == outcomes[1]
    failures, warnings, quarantined = outcomes[0]
    assert failures["uscc.uscc"] == 2 and warnings["uscc_org.uscc"] >= 1  # the cases are there
    assert good in looked_up[0] and wrong_org in looked_up[0]  # a code failing only GB 11714 passes the USCC check
    assert not {"abc", good[:-1] + "Z"} & looked_up[0]


def test_rerun_over_the_same_bronze_changes_no_counts(settings):
    write_bronze(settings, "credit.penalty", _rows())
    first = process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    second = process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    assert (first.silver, first.quarantined, first.duplicates) == (second.silver, second.quarantined,
                                                                   second.duplicates)
    assert len(_table(settings, "silver")) == first.silver
    history = DeltaTable(str(settings.lake / "meta" / "reconciliation")).to_pyarrow_table()
    assert history.num_rows == 2   # history grows, tables do not


@pytest.mark.slow
def test_a_batch_over_its_blocking_limit_is_held_and_the_other_batches_go_on(settings):
    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    garbage = [dict(BASE, decision_no=f"g{i}", decision_date="not a date") for i in range(30)]
    write_bronze(settings, "credit.penalty", garbage, batch="b2", source="garbage.csv")
    write_bronze(settings, "credit.penalty", [dict(BASE, decision_no="新1号")], batch="b3", source="good.csv")
    r = process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    [held] = r.held_batches
    assert (held.batch_id, held.source, held.rows, held.quarantined) == ("b2", "garbage.csv", 30, 30)
    assert held.rules[0] == {"rule": "format.decision_date", "rows": 30, "first_row": 1}
    assert "garbage.csv" in held.describe() and "30 of 30 rows" in held.describe()
    silver = {row["decision_no"] for row in _table(settings, "silver")}
    assert "新1号" in silver and not any(no.startswith("g") for no in silver)
    assert not any(row["_batch_id"] == "b2" for row in _table(settings, "quarantine"))
    assert (r.run.rows, r.run.silver, r.run.held) == (31, 1, 30)
    assert (r.rows_read, r.held) == (16 + 31, 30)
    recon = DeltaTable(str(settings.lake / "meta" / "reconciliation")).to_pyarrow_table().to_pylist()
    latest = max(recon, key=lambda x: x["checked_at"])
    assert latest["run_id"] == "r2" and latest["published"] and latest["balanced"]
    assert (latest["held"], latest["new_held"]) == (30, 30)
    assert "garbage.csv" in latest["note"]
    # the next run leaves the held batch where it is
    r3 = process_resource("credit.penalty", settings=settings, run_id="r3", today=TODAY)
    assert (r3.run.rows, r3.held) == (0, 30)


def test_every_rule_has_bilingual_description_and_severity(settings):
    catalog = get_catalog(settings.catalog_dir)
    for code, res in catalog.resources.items():
        rs = rules_for(res, catalog, DUCKDB, settings.expectations_dir)
        for rule in rs.rules:
            assert rule.zh and rule.en and rule.severity in ("row", "warning"), (code, rule.id)
    penalty = rules_for(catalog.resource("credit.penalty"), catalog, DUCKDB, settings.expectations_dir)
    assert {"SGS.fine_amount", "SGS.subject_code", "uscc.uscc", "parse.row"} <= {r.id for r in penalty.rules}
    assert penalty.max_quarantine_rate == 0.5


@pytest.mark.slow
def test_a_new_batch_is_merged_into_silver_and_only_new_rows_are_checked(settings):
    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    # day 2: a corrected resubmission of 1号, a new decision, a quarantined row, an in-batch duplicate
    write_bronze(settings, "credit.penalty", [
        dict(BASE, content="罚款2万元", fine_amount="2"),
        dict(BASE, decision_no="20号"),
        dict(BASE, decision_no="21号", penalty_category="罚没"),
        dict(BASE, decision_no="20号"),
    ], batch="b2")
    r = process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    # this run: 4 read = 1 new key + 1 quarantined + 2 duplicates (old 1号 replaced, 20号 twice)
    assert r.run == Totals(4, 1, 1, 2)
    # the tables: 20 read = 10 silver + 7 quarantined + 3 duplicates
    assert (r.rows_read, r.silver, r.quarantined, r.duplicates) == (20, 10, 7, 3)
    silver = {row["decision_no"]: row for row in _table(settings, "silver")}
    assert silver["济市监罚〔2026〕1号"]["content"] == "罚款2万元"
    assert silver["济市监罚〔2026〕1号"]["_batch_id"] == "b2"
    assert silver["20号"]["_row_number"] == 4
    results = DeltaTable(str(settings.lake / "meta" / "validation_results")).to_pyarrow_table().to_pylist()
    assert {row["rows_checked"] for row in results if row["run_id"] == "r2"} == {4}
    # a third run finds nothing new and changes nothing
    version = DeltaTable(str(settings.lake / "silver" / "credit_penalty")).version()
    r3 = process_resource("credit.penalty", settings=settings, run_id="r3", today=TODAY)
    assert r3.run == Totals(0, 0, 0, 0) and r3.silver == 10
    assert DeltaTable(str(settings.lake / "silver" / "credit_penalty")).version() == version
    # a rebuild reprocesses all of bronze and ends in the same tables
    r4 = process_resource("credit.penalty", settings=settings, run_id="r4", today=TODAY, rebuild=True)
    assert (r4.rows_read, r4.silver, r4.quarantined, r4.duplicates) == (20, 10, 7, 3)
    assert {row["decision_no"]: row["content"] for row in _table(settings, "silver")} == {
        k: v["content"] for k, v in silver.items()}


def test_a_bad_row_re_sent_is_a_duplicate_also_against_rows_quarantined_before_their_hash_was_kept(settings):
    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    # the quarantine as a lake from before the content hash was kept has it: no hash on any row
    path = str(settings.lake / "quarantine" / "credit_penalty")
    old = DeltaTable(path).to_pyarrow_table()
    old = old.set_column(old.schema.get_field_index("_row_hash"), "_row_hash",
                         pa.nulls(old.num_rows, old.schema.field("_row_hash").type))
    write_deltalake(path, old, mode="overwrite")
    bad = [dict(BASE, decision_no="4号", penalty_category="罚没"),
           dict(BASE, decision_no="22号", penalty_category="罚没")]
    # day 2: 4号 re-sent as it was (a duplicate), 22号 failing for the first time, ten new decisions
    write_bronze(settings, "credit.penalty", bad + [dict(BASE, decision_no=f"{n}号") for n in range(30, 40)],
                 batch="b2")
    r2 = process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    assert r2.run == Totals(12, 10, 1, 1)
    # day 3: both re-sent, one against a row without a hash, one against a row with it
    write_bronze(settings, "credit.penalty", bad + [dict(BASE, decision_no=f"{n}号") for n in range(40, 50)],
                 batch="b3")
    r3 = process_resource("credit.penalty", settings=settings, run_id="r3", today=TODAY)
    assert r3.run == Totals(12, 10, 0, 2)
    quarantine = _table(settings, "quarantine")
    assert sorted(r["decision_no"] for r in quarantine if r["decision_no"] in ("4号", "22号")) == ["22号", "4号"]
    assert (r3.rows_read, r3.silver, r3.quarantined, r3.duplicates) == (40, 29, 7, 4)


def test_silver_keeps_each_key_s_hash_and_a_key_it_holds_is_contested_also_in_rows_written_without_it(
        settings, monkeypatch):
    import duckdb

    from govlake import storage
    from govlake.quality import _process

    looked_up = []
    may_hold = _process._silver_may_hold
    monkeypatch.setattr(_process, "_silver_may_hold", lambda con, res: looked_up.append(may_hold(con, res))
                        or looked_up[-1])
    path = settings.lake / "silver" / "credit_penalty"

    def silver():
        rows = _table(settings, "silver")
        keys = [(r["decision_no"], r["authority_uscc"]) for r in rows]
        assert len(keys) == len(set(keys)), "a key twice in silver"
        return {r["decision_no"]: r for r in rows}

    def hashes_right():
        con = duckdb.connect()
        con.register("s", DeltaTable(str(path)).to_pyarrow_table())
        return con.sql(f"select count(*) from s where _key_hash is distinct from "
                       f"{storage.key_hash_sql(['decision_no', 'authority_uscc'])}").fetchone()[0] == 0

    def day(batch, rows, run_id):
        write_bronze(settings, "credit.penalty", rows, batch=batch)
        return process_resource("credit.penalty", settings=settings, run_id=run_id, today=TODAY)

    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    assert hashes_right() and len(silver()) == 9
    # only new keys: silver's hashes hold none of them, its keys are not compared
    assert day("b2", [dict(BASE, decision_no="20号"), dict(BASE, decision_no="21号")], "r2").run == Totals(2, 2, 0, 0)
    assert looked_up[-1] is False and hashes_right() and len(silver()) == 11
    # a corrected decision silver holds: found by its hash, it replaces the row
    assert day("b3", [dict(BASE, content="罚款3万元", fine_amount="3")], "r3").run == Totals(1, 0, 0, 1)
    assert looked_up[-1] is True and hashes_right()
    assert silver()["济市监罚〔2026〕1号"]["content"] == "罚款3万元"
    # silver as a lake from before the hash was kept: the column on no row, then null on every row
    old = DeltaTable(str(path)).to_pyarrow_table().drop_columns(["_key_hash"])
    write_deltalake(str(path), old, mode="overwrite", schema_mode="overwrite")
    assert day("b4", [dict(BASE, decision_no="20号", content="改正一")], "r4").run == Totals(1, 0, 0, 1)
    assert looked_up[-1] is True and silver()["20号"]["content"] == "改正一"
    unhashed = DeltaTable(str(path)).to_pyarrow_table()
    unhashed = unhashed.set_column(unhashed.schema.get_field_index("_key_hash"), "_key_hash",
                                   pa.nulls(unhashed.num_rows, pa.int64()))
    write_deltalake(str(path), unhashed, mode="overwrite")
    assert day("b5", [dict(BASE, decision_no="21号", content="改正二")], "r5").run == Totals(1, 0, 0, 1)
    assert looked_up[-1] is True and silver()["21号"]["content"] == "改正二"
    assert len(silver()) == 11


def test_great_expectations_data_docs_per_run_hold_no_personal_data(settings):
    from govlake.quality._process import gx_validation_page

    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    page = gx_validation_page(settings, "credit_penalty", "r1")
    assert page is not None and page.is_file()
    html = page.read_text(encoding="utf-8")
    assert "uscc.uscc" in html and "SGS.fine_amount" in html   # the rule ids travel in the expectations' meta
    for path in (settings.reports / "gx").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert "11010519491231002X" not in text and "张三" not in text, path


@pytest.mark.slow
def test_a_new_row_older_than_the_one_in_silver_is_the_duplicate(settings):
    write_bronze(settings, "credit.penalty", [dict(BASE, content="罚款1万元")], batch="b5")
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    # same received time, an earlier batch id: it sorts before the row already in silver
    write_bronze(settings, "credit.penalty", [dict(BASE, content="旧版本"), dict(BASE, decision_no="2号")],
                 batch="b4")
    r = process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    assert r.run == Totals(2, 1, 0, 1)
    silver = {row["decision_no"]: row for row in _table(settings, "silver")}
    kept = silver["济市监罚〔2026〕1号"]
    assert (kept["content"], kept["_batch_id"]) == ("罚款1万元", "b5")
    assert (r.rows_read, r.silver, r.duplicates) == (3, 2, 1)


def _defective_flags(monkeypatch, rule_ids: tuple[str, ...], fail_when=None) -> None:
    """The checked model's flags with a defect: ``rule_ids``' flags dropped, or their conditions changed by
    ``fail_when(condition)``."""
    import dataclasses

    from govlake.quality import _process

    real = _process._flags

    def flags(rules):
        if fail_when is None:
            return real([r for r in rules if r.id not in rule_ids])
        return real([dataclasses.replace(r, fail_when=fail_when(r.fail_when)) if r.id in rule_ids else r
                     for r in rules])

    monkeypatch.setattr(_process, "_flags", flags)


@pytest.mark.parametrize("rule_ids, fail_when, mismatch", [
    # row 9 fails two rules: without this flag it is still flagged, and GX finds the failure there
    (("required.violation_type",), None, "required.violation_type: DuckDB 0, GX 1"),
    # row 4 fails one rule and one warning: without their flags nothing flags it, and GX finds it in the sample
    (("code.penalty_category", "uscc_org.uscc"), None, "code.penalty_category: DuckDB 0, GX 1"),
    # a flag on a row that passes the rule: GX counts one failure fewer
    (("uscc.uscc",), lambda sql: f"({sql}) or decision_no = '2号'", "uscc.uscc: DuckDB 2, GX 1"),
])
def test_a_wrong_flag_of_the_one_pass_is_caught_by_great_expectations_and_nothing_is_published(
        settings, monkeypatch, rule_ids, fail_when, mismatch):
    from govlake.quality._process import ValidationMismatch

    write_bronze(settings, "credit.penalty", _rows())
    _defective_flags(monkeypatch, rule_ids, fail_when)
    with pytest.raises(ValidationMismatch, match=mismatch):
        process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    assert not (settings.lake / "silver" / "credit_penalty").exists()
    (recon,) = DeltaTable(str(settings.lake / "meta" / "reconciliation")).to_pyarrow_table().to_pylist()
    assert not recon["published"] and mismatch in recon["note"]


def test_great_expectations_failing_on_its_thread_fails_the_step_and_publishes_nothing(settings, monkeypatch):
    """GX validates on a thread of its own while the engine decides the contest: its error is the step's, raised
    before anything is published, and the next run publishes as a clean one."""
    import threading

    from govlake.quality import _gx

    real, threads = _gx.validate_with_gx, []

    def broken(*args, **kwargs):
        threads.append(threading.current_thread().name)
        raise RuntimeError("GX broke")

    write_bronze(settings, "credit.penalty", _rows())
    monkeypatch.setattr(_gx, "validate_with_gx", broken)
    with pytest.raises(RuntimeError, match="GX broke"):
        process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    assert threads == ["great_expectations validation"]
    assert not (settings.lake / "silver" / "credit_penalty").exists()
    assert not (settings.lake / "quarantine" / "credit_penalty").exists()

    monkeypatch.setattr(_gx, "validate_with_gx", real)
    r = process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    assert (r.rows_read, r.silver, r.quarantined, r.duplicates) == (16, 9, 6, 1)
