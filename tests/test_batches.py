"""Held batches: a bad file is held with its rules and counts, the other batches and resources go on;
`govlake batches reject|release` decide it, recorded with who, when and why; the reconciliation
accounts for every row (silver + quarantine + duplicates + held + rejected)."""

from __future__ import annotations

import shutil

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from _bronze import write_bronze
from govlake.cli import HELD_EXIT, app
from govlake.config import Settings
from govlake.quality import process_resource
from test_quality import BASE, TODAY, _rows

runner = CliRunner()


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def held(tmp_path_factory) -> Settings:
    """Day one published; day two: a good file and a garbage file (12 rows, every one quarantined).
    Built once: each test works on a copy (``lake``)."""
    root = tmp_path_factory.mktemp("held")
    settings = Settings(var=root / "var", inbox=root / "inbox")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _environment(monkeypatch, settings)
        write_bronze(settings, "credit.penalty", _rows())
        process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
        garbage = [dict(BASE, decision_no=f"g{i}", decision_date="2026-13-45" if i % 3 else "2026-10-01")
                   for i in range(12)]
        write_bronze(settings, "credit.penalty", garbage, batch="b-garbage", source="inbox/garbage.csv")
        write_bronze(settings, "credit.penalty", [dict(BASE, decision_no="新1号")], batch="b-good", source="good.csv")
        r = process_resource("credit.penalty", settings=settings, run_id="r2", today=TODAY)
    assert [h.batch_id for h in r.held_batches] == ["b-garbage"]
    return settings


def _environment(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("GOVLAKE_VAR", str(settings.var))
    monkeypatch.setenv("GOVLAKE_INBOX", str(settings.inbox))
    monkeypatch.setenv("GOVLAKE_AS_OF", TODAY.isoformat())
    monkeypatch.setenv("GOVLAKE_ACTOR", "李审核")


@pytest.fixture
def lake(held: Settings, settings: Settings, monkeypatch) -> Settings:
    """A copy of the ``held`` lake, for one test, in its GOVLAKE_ environment."""
    shutil.copytree(held.var, settings.var, symlinks=True)
    _environment(monkeypatch, settings)
    return settings


def _rows_of(settings: Settings, layer: str) -> list[dict]:
    return DeltaTable(str(settings.lake / layer / "credit_penalty")).to_pyarrow_table().to_pylist()


def _latest_reconciliation(settings: Settings) -> dict:
    rows = DeltaTable(str(settings.lake / "meta" / "reconciliation")).to_pyarrow_table().to_pylist()
    return max(rows, key=lambda r: r["checked_at"])


def test_batches_lists_the_held_file_with_its_rules(lake):
    out = runner.invoke(app, ["batches"])
    assert out.exit_code == 0, out.output
    assert "b-garbage" in out.output and "inbox/garbage.csv" in out.output
    assert "rule format.decision_date: 8 rows (first: row 2)" in out.output and "held" in out.output
    assert "b-good" not in out.output  # published normally: never held
    status = runner.invoke(app, ["status"])
    assert "held 12" in status.output and "garbage.csv" in status.output


def test_reject_accounts_for_the_rows_as_rejected_and_keeps_bronze(lake):
    out = runner.invoke(app, ["batches", "reject", "b-garb", "--reason", "部门确认导出错误，将重新报送"])
    assert out.exit_code == 0, out.output
    assert "b-garbage" in out.output and "rejected by 李审核" in out.output
    latest = _latest_reconciliation(lake)
    assert (latest["held"], latest["rejected"], latest["balanced"]) == (0, 12, True)
    assert latest["rows_read"] == latest["silver"] + latest["quarantined"] + latest["duplicates"] + 12
    history = DeltaTable(str(lake.lake / "meta" / "batches")).to_pyarrow_table().to_pylist()
    decision = max(history, key=lambda r: r["at"])
    assert (decision["status"], decision["actor"], decision["reason"]) == ("rejected", "李审核",
                                                                             "部门确认导出错误，将重新报送")
    assert sum(1 for r in _rows_of(lake, "bronze") if r["_batch_id"] == "b-garbage") == 12
    # the next run leaves it out, and a second decision is refused
    again = process_resource("credit.penalty", settings=lake, run_id="r3", today=TODAY)
    assert (again.run.rows, again.rejected, again.held) == (0, 12, 0)
    refused = runner.invoke(app, ["batches", "release", "b-garbage", "--reason", "x"])
    assert refused.exit_code == 1 and "is rejected, not held" in refused.output


def test_release_publishes_the_batch_on_the_next_run_without_judging_it_again(lake):
    out = runner.invoke(app, ["batches", "release", "b-garbage", "--reason", "日期列由部门确认，按原样公示隔离",
                              "--by", "王主任"])
    assert out.exit_code == 0, out.output
    assert _latest_reconciliation(lake)["held"] == 12  # still held until a run publishes it
    r = process_resource("credit.penalty", settings=lake, run_id="r3", today=TODAY)
    assert (r.run.rows, r.run.quarantined, r.run.silver, r.run.held, r.held) == (12, 8, 4, 0, 0)
    assert sum(1 for q in _rows_of(lake, "quarantine") if q["_batch_id"] == "b-garbage") == 8
    assert sum(1 for s in _rows_of(lake, "silver") if s["_batch_id"] == "b-garbage") == 4
    latest = _latest_reconciliation(lake)
    assert latest["balanced"] and (latest["held"], latest["rejected"]) == (0, 0)
    states = [(b["status"], b["actor"]) for b in
              sorted(DeltaTable(str(lake.lake / "meta" / "batches")).to_pyarrow_table().to_pylist(),
                     key=lambda b: b["at"])]
    assert states == [("held", "govlake"), ("released", "王主任"), ("published", "govlake")]
    # published once: another run reads nothing
    assert process_resource("credit.penalty", settings=lake, run_id="r4", today=TODAY).run.rows == 0


def test_bad_decisions_are_refused_with_a_clear_message(lake):
    unknown = runner.invoke(app, ["batches", "reject", "nope", "--reason", "x"])
    assert unknown.exit_code == 1 and "no held batch 'nope'" in unknown.output
    blank = runner.invoke(app, ["batches", "reject", "b-garbage", "--reason", "  "])
    assert blank.exit_code == 1 and "--reason is required" in blank.output
    assert "Traceback" not in unknown.output + blank.output


def test_run_exits_3_when_a_batch_is_held_and_publishes_the_rest(lake):
    write_bronze(lake, "credit.penalty", [dict(BASE, decision_no=f"h{i}", penalty_category="罚没") for i in range(5)],
                 batch="b-bad2", source="bad2.csv")
    out = runner.invoke(app, ["run"])
    assert out.exit_code == HELD_EXIT, out.output
    assert "batch b-bad2 (bad2.csv) held: 5 of 5 rows quarantined" in out.output
    assert "1 batch(es) held" in out.output
    assert (lake.extracts / "analyst.duckdb").exists()  # gold, credit and the extract went on


def test_a_rebuild_leaves_held_batches_out_and_reads_a_released_one_once(lake):
    runner.invoke(app, ["batches", "release", "b-garbage", "--reason", "按原样处理"])
    r = process_resource("credit.penalty", settings=lake, run_id="r3", today=TODAY, rebuild=True)
    assert sum(1 for q in _rows_of(lake, "quarantine") if q["_batch_id"] == "b-garbage") == 8
    assert sum(1 for s in _rows_of(lake, "silver") if s["_batch_id"] == "b-garbage") == 4
    assert (r.held, r.rejected) == (0, 0) and _latest_reconciliation(lake)["balanced"]
    bronze = len(_rows_of(lake, "bronze"))
    assert r.rows_read == bronze == r.silver + r.quarantined + r.duplicates


def test_a_run_whose_only_batch_is_held_records_the_blocking_result(lake):
    write_bronze(lake, "credit.penalty", [dict(BASE, decision_no=f"z{i}", uscc="bad") for i in range(4)],
                 batch="b-only", source="only.csv")
    r = process_resource("credit.penalty", settings=lake, run_id="r3", today=TODAY)
    assert (r.run.rows, r.run.held, [h.batch_id for h in r.held_batches]) == (4, 4, ["b-only"])
    results = DeltaTable(str(lake.lake / "meta" / "validation_results")).to_pyarrow_table().to_pylist()
    mine = [x for x in results if x["run_id"] == "r3"]
    assert [(x["rule_id"], x["rows_checked"], x["failed"], x["success"]) for x in mine] == [
        ("blocking.quarantine_rate", 4, 4, False)]
