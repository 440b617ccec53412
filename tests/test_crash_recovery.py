"""A process step killed with SIGKILL right after any of its commits is finished by the next run:
the tables end as after one clean run — nothing lost, nothing written twice, no --rebuild."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from deltalake import DeltaTable

import _forked as forked
from _bronze import write_bronze
from govlake.config import Settings
from govlake.quality import process_resource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
from chaos import lake_digest, latest_reconciliation, meta_findings  # noqa: E402

from test_quality import BASE, TODAY, _rows  # noqa: E402

pytestmark = pytest.mark.slow


def _day_one(settings: Settings) -> None:
    write_bronze(settings, "credit.penalty", _rows())
    process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    # day two: a resubmission (merge into silver), a re-sent bad row, a new row, and a batch to hold
    write_bronze(settings, "credit.penalty", [dict(BASE, content="罚款2万元", fine_amount="2"),
                                              dict(BASE, decision_no="4号", penalty_category="罚没"),
                                              dict(BASE, decision_no="新1号")], batch="b2", source="day2.csv")
    garbage = [dict(BASE, decision_no=f"g{i}", decision_date="not a date") for i in range(12)]
    write_bronze(settings, "credit.penalty", garbage, batch="b3", source="garbage.csv")


def _run(settings: Settings, run_id: str, **env: str) -> forked.Finished:
    """The process step of credit.penalty in a process of its own (tests/_forked.py), with ``env``."""
    return forked.run(process_resource, "credit.penalty", settings=settings, run_id=run_id, today=TODAY, env=env)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Day one processed, day two landed: the lake every crash case starts from; plus the clean
    result of processing day two once, and the commit boundaries of that run."""
    root = tmp_path_factory.mktemp("crash")
    start = Settings(var=root / "start", inbox=root / "inbox")
    _day_one(start)
    clean = Settings(var=root / "clean", inbox=root / "inbox")
    shutil.copytree(start.var, clean.var)
    trace = root / "trace"
    done = _run(clean, "r2", GOVLAKE_COMMIT_TRACE=str(trace))
    assert done.returncode == 0, done.output
    labels = [line for line in trace.read_text().split() if line.startswith("process:")]
    return start, clean, labels


def test_the_boundaries_are_every_output_of_the_step(prepared):
    _, _, labels = prepared
    step = "process:credit.penalty"
    assert labels == [f"{step}:begin", f"{step}:meta/validation_results", f"{step}:meta/batches",
                      f"{step}:silver/credit_penalty", f"{step}:quarantine/credit_penalty",
                      f"{step}:meta/reconciliation", f"{step}:meta/consumption", f"{step}:done"]


@pytest.mark.parametrize("boundary", range(8))
def test_a_kill_after_any_commit_is_recovered_by_the_next_run(prepared, tmp_path, boundary):
    start, clean, labels = prepared
    label = labels[boundary]
    case = Settings(var=tmp_path / "var", inbox=start.inbox)
    shutil.copytree(start.var, case.var)
    killed = _run(case, "r2", GOVLAKE_CRASH_AT=label)
    assert killed.returncode == -signal.SIGKILL, killed.output
    # the operator's next plain run: it finishes r2 first, then finds nothing new
    result = process_resource("credit.penalty", settings=case, run_id="r3", today=TODAY)
    assert result.run.rows == 0
    assert lake_digest(case.var) == lake_digest(clean.var)
    assert latest_reconciliation(case.var) == latest_reconciliation(clean.var)
    assert meta_findings(case.var) == []
    # the quarantine holds the re-sent bad row once, and the held batch is recorded once
    quarantine = DeltaTable(str(case.lake / "quarantine" / "credit_penalty")).to_pyarrow_table().to_pylist()
    assert sum(1 for r in quarantine if r["decision_no"] == "4号") == 1
    batches = DeltaTable(str(case.lake / "meta" / "batches")).to_pyarrow_table().to_pylist()
    assert [(b["batch_id"], b["status"]) for b in batches] == [("b3", "held")]


RAISE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from govlake.config import Settings
    from govlake.governance import raise_objection
    settings = Settings(var=Path(sys.argv[1]))
    raise_objection(settings=settings, by="王审核", reason="名称以登记为准", resource="amr.enterprise", item="name",
                    entity_key=sys.argv[2], run_id="obj-1")
""")


@pytest.mark.parametrize("label", ["objections:meta/objections_history", "objections:meta/objections"])
def test_an_objection_step_killed_between_its_commits_is_finished_by_the_next_one(settings, label):
    from govlake.governance import detect_conflicts, history, list_objections, transition
    from test_conflicts import write_silver
    from test_objections import AMR, E1, HRSS

    write_silver(settings, "amr.enterprise", AMR)
    write_silver(settings, "hrss.social_insurance", HRSS)
    detect_conflicts(settings=settings, run_id="c1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")} | {"GOVLAKE_CRASH_AT": label}
    killed = subprocess.run([sys.executable, "-c", RAISE, str(settings.var), E1], env=env, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [raised] = history(settings)
    # the next objection command finishes the interrupted one first, then takes its own step
    transition(raised["objection_id"], "accept", settings=settings, by="李科长", reason="受理", run_id="obj-2")
    assert [(h["action"], h["run_id"]) for h in history(settings)] == [("raise", "obj-1"), ("accept", "obj-2")]
    [objection] = list_objections(settings)
    assert (objection.state, objection.steps) == ("accepted", 2)
