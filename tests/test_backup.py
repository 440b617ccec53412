"""Backups, restores, the restore drill (灾备演练) and vacuum on a generated city: the commands run as
real processes (killed with SIGKILL, run next to a `govlake run`, on a full disk), and every restored
lake is compared row by row with the lake it should equal (infra/chaos.py's content hashes)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from deltalake import DeltaTable

from govlake import locks, pipeline
from govlake.backup import (
    BackupError,
    closure,
    find,
    pipeline_steps,
    quiet_cut,
    restore_as_of,
    restore_lake,
    restore_tables,
    run_drill,
    take_backup,
    vacuum,
)
from govlake.backup._lake import restorable
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.consumption import consumed_versions
from govlake.generate import generate_city
from govlake.report import build_report
from govlake.report._drills import drill_section

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
import chaos  # noqa: E402
from chaos import lake_digest, latest_reconciliation, meta_findings  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AS_OF = dt.date(2026, 11, 20)
LATER = ("credit/penalty/ee_20261120.csv", "credit/penalty/tax_20261120.csv", "credit/license/trans_20261120.csv")
"""Files the departments deliver on the second day."""


@dataclass
class City:
    root: Path
    inbox: Path
    var: Path
    """The lake after both days (never changed by a test: tests work on copies)."""
    backups: Path
    """Backup 1 (after day one) and backup 2 (after day two)."""
    b1: object
    b2: object
    digest1: dict
    digest2: dict
    relanded2: dict
    """digest2 with submission_time left out (relanded_digest)."""
    recon1: dict
    recon2: dict


def _ingest_all(settings: Settings) -> None:
    for code in get_catalog(settings.catalog_dir).resources:
        pipeline.ingest(code, settings=settings)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> City:
    root = tmp_path_factory.mktemp("backup")
    inbox, later = root / "inbox", root / "later"
    generate_city(inbox, scale=300, seed=7, as_of=AS_OF)
    for name in LATER:
        (later / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).rename(later / name)
    settings = Settings(var=root / "var", inbox=inbox, as_of=AS_OF)
    _ingest_all(settings)
    pipeline.run(settings=settings, run_id="day-1")
    digest1, recon1 = lake_digest(settings.var), latest_reconciliation(settings.var)
    b1 = take_backup(settings, to=root / "backups")
    for name in LATER:
        (later / name).rename(inbox / name)
    _ingest_all(settings)
    pipeline.run(settings=settings, run_id="day-2")
    b2 = take_backup(settings, to=root / "backups")
    return City(root, inbox, settings.var, root / "backups", b1, b2, digest1, lake_digest(settings.var),
                relanded_digest(settings.var), recon1, latest_reconciliation(settings.var))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    shutil.rmtree(dst / "locks", ignore_errors=True)
    return dst


def _settings(city: City, var: Path) -> Settings:
    return Settings(var=var, inbox=city.inbox, as_of=AS_OF)


def _env(city: City, var: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")}
    return env | {"GOVLAKE_VAR": str(var), "GOVLAKE_INBOX": str(city.inbox), "GOVLAKE_AS_OF": AS_OF.isoformat(),
                  "COLUMNS": "1000"} | extra


def govlake(city: City, var: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "govlake.cli", *map(str, args)], env=_env(city, var, **extra),
                          capture_output=True, text=True, timeout=600)


def _start(city: City, var: Path, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "govlake.cli", *args], env=_env(city, var),
                                stdout=subprocess.DEVNULL, stderr=f, text=True)


def _wait_for(path: Path, text: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while text not in path.read_text():
        assert proc.poll() is None, f"exited {proc.returncode} before saying {text!r}: {path.read_text()[-500:]}"
        assert time.monotonic() < deadline, f"never said {text!r}"
        time.sleep(0.1)


def _snapshot(var: Path) -> dict[str, tuple[int, int]]:
    """Every file of the lake and the extract with its size and modification time."""
    return {str(f.relative_to(var)): (f.stat().st_size, f.stat().st_mtime_ns)
            for folder in (var / "lake", var / "extracts") for f in folder.rglob("*") if f.is_file()}


def _same_lake(var: Path, digest: dict, recon: dict, *, relanded: bool = False) -> None:
    got = relanded_digest(var) if relanded else lake_digest(var)
    assert got == digest, [k for k in set(got) | set(digest) if got.get(k) != digest.get(k)]
    assert latest_reconciliation(var) == recon
    assert meta_findings(var) == []


def relanded_digest(var: Path) -> dict:
    """lake_digest for lakes where files were landed again: submission_time (the received time when a row
    has no 报送时间) is then a wall-clock value like the other volatile columns."""
    volatile = chaos.VOLATILE
    chaos.VOLATILE = volatile | {"submission_time"}
    try:
        return lake_digest(var)
    finally:
        chaos.VOLATILE = volatile


# ---- backups ------------------------------------------------------------------------------------


def test_a_second_backup_copies_only_the_new_files(city, tmp_path):
    m1, m2 = city.b1.manifest, city.b2.manifest
    assert city.b1.reused == 0 and city.b1.copied == len(list(m1.files()))
    first = {f.stored for f in m1.files()}
    new = {f.stored for f in m2.files()} - first
    assert city.b2.copied == len(new) and city.b2.reused == len(list(m2.files())) - len(new) > 0
    # a data file both backups need is held once; the manifest lists each table's version and rows at the cut
    shared = [f for f in m2.files() if f.stored in first and f.path.endswith(".parquet")]
    assert shared and all((city.backups / f.stored).stat().st_size == f.size for f in shared)
    for table, entry in m2.tables.items():
        live = DeltaTable(str(city.var / "lake" / table))
        assert (entry.version, entry.rows) == (live.version(), live.to_pyarrow_dataset().count_rows()), table
        names = {f.path.rsplit("/", 1)[-1] for f in entry.files}
        assert f"{entry.version:020d}.json" in names
    # nothing changed since: a third backup copies nothing
    backups = _copy(city.backups, tmp_path / "backups")
    done = govlake(city, _copy(city.var, tmp_path / "var"), "backup", "--to", backups)
    assert done.returncode == 0, done.stderr
    assert "copied 0 files" in done.stdout and f"reused {len(list(m2.files()))} files" in done.stdout


def test_whole_lake_restore_after_rm_then_the_next_run_carries_on(city, tmp_path):
    var = _copy(city.var, tmp_path / "var")
    shutil.rmtree(var / "lake")
    done = govlake(city, var, "restore", "--from", city.backups)
    assert done.returncode == 0, done.stderr
    assert city.b2.manifest.backup_id in done.stdout
    _same_lake(var, city.digest2, city.recon2)
    # back to day one over the live lake: it is set aside, not deleted; the next ingest and run carry on
    settings = _settings(city, var)
    result = restore_lake(settings, source=city.backups, backup_id=city.b1.manifest.backup_id)
    assert result.aside_dir is not None and (result.aside_dir / "silver" / "credit_penalty" / "_delta_log").is_dir()
    assert latest_reconciliation(var) == city.recon1
    landed = pipeline.ingest("credit.penalty", settings=settings)
    assert {Path(b.source).name for b in landed.batches if b.status == "landed"} == {
        Path(n).name for n in LATER if "penalty" in n}
    _ingest_all(settings)
    pipeline.run(settings=settings, run_id="after-restore")
    _same_lake(var, city.relanded2, city.recon2, relanded=True)
    # the lake went on from day one: its new log entries reuse day two's names, and are kept apart
    backups = _copy(city.backups, tmp_path / "backups")
    again = take_backup(settings, to=backups).manifest
    assert any("@" in f.stored and "/_delta_log/" in f.stored for f in again.files())
    shutil.rmtree(var / "lake")
    restore_lake(settings, source=backups)
    _same_lake(var, city.relanded2, city.recon2, relanded=True)


def test_a_corrupted_or_missing_backup_file_fails_the_drill_and_the_restore_naming_it(city, tmp_path):
    backups = _copy(city.backups, tmp_path / "backups")
    var = _copy(city.var, tmp_path / "var")
    settings = _settings(city, var)
    before = _snapshot(var)
    entry = next(f for f in city.b2.manifest.tables["silver/credit_penalty"].files if f.path.endswith(".parquet"))
    damaged = backups / entry.stored
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    drill = govlake(city, var, "drill", "--from", backups)
    assert drill.returncode == 1
    assert f"{damaged}: checksum mismatch" in drill.stderr and "FAILED" in drill.stderr
    recorded = DeltaTable(str(var / "lake" / "meta" / "drills")).to_pyarrow_table().to_pylist()
    assert [r["result"] for r in recorded] == ["failed"] and str(damaged) in recorded[0]["problems"]
    restore = govlake(city, var, "restore", "--from", backups)
    assert restore.returncode == 1 and f"{damaged}: checksum mismatch" in restore.stderr
    assert "the lake is as it was" in restore.stderr and "Traceback" not in restore.stderr
    with pytest.raises(BackupError, match="checksum mismatch.*the lake is as it was"):
        restore_tables(settings, source=backups, tables=["silver/credit_penalty"])
    drills = "lake/meta/drills/"
    assert {k: v for k, v in _snapshot(var).items() if not k.startswith(drills)} == before
    assert not list(var.glob("*lake.*restor*")) and not (var / "locks" / locks.FENCE).exists()
    # a missing file is named too
    other = next(f for f in city.b2.manifest.tables["gold/base/legal_entity"].files if f.path.endswith(".parquet"))
    (backups / other.stored).unlink()
    assert f"{backups / other.stored}: missing" in "\n".join(run_drill(settings, source=backups).problems)
    # a wrong path, an unreadable manifest
    with pytest.raises(BackupError, match="no backups here"):
        restore_lake(settings, source=tmp_path / "nowhere")
    bad = backups / "manifests" / "broken.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(BackupError, match=f"{bad}: not a readable govlake backup manifest"):
        restore_lake(settings, source=backups, backup_id="broken")
    assert {k: v for k, v in _snapshot(var).items() if not k.startswith(drills)} == before


def test_a_backup_killed_midway_leaves_the_previous_backup_valid(city, tmp_path):
    backups = _copy(city.backups, tmp_path / "backups")
    (backups / "manifests" / f"{city.b2.manifest.backup_id}.json").unlink()  # only backup 1 here
    var = _copy(city.var, tmp_path / "var")
    killed = govlake(city, var, "backup", "--to", backups, GOVLAKE_CRASH_AT="backup:file:5")
    assert killed.returncode == -signal.SIGKILL
    assert [p.stem for p in (backups / "manifests").glob("*.json")] == [city.b1.manifest.backup_id]
    settings = _settings(city, var)
    drill = run_drill(settings, source=backups)
    assert drill.passed and drill.manifest.backup_id == city.b1.manifest.backup_id, drill.problems
    again = take_backup(settings, to=backups)
    assert again.copied > 5 and not list(backups.rglob("*.part"))
    assert len(list((backups / "manifests").glob("*.json"))) == 2
    assert run_drill(settings, source=backups).passed


@pytest.mark.disk_mb(10)
def test_a_full_disk_fails_the_backup_cleanly_and_keeps_the_previous_ones(city, tmp_path, small_disk):
    backups = _copy(city.backups, small_disk / "backups")
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - 512 * 1024))
    var = _copy(city.var, tmp_path / "var")
    (var / "extracts" / "analyst.duckdb").write_bytes(os.urandom(2 * 1024 * 1024))  # 2 MB new to copy
    full = govlake(city, var, "backup", "--to", backups)
    assert full.returncode == 1 and "no space left on the device" in full.stderr, full.stderr
    assert "the previous backups are intact" in full.stderr and "Traceback" not in full.stderr
    assert len(list((backups / "manifests").glob("*.json"))) == 2 and not list(backups.rglob("*.part"))
    drill = run_drill(_settings(city, var), source=backups)
    assert drill.passed and drill.manifest.backup_id == city.b2.manifest.backup_id, drill.problems


# ---- restores -----------------------------------------------------------------------------------


def test_restore_table_brings_it_and_downstream_back_and_the_next_run_is_consistent(city, tmp_path):
    var = _copy(city.var, tmp_path / "var")
    settings = _settings(city, var)
    untouched = {t: DeltaTable(str(var / "lake" / t)).version()
                 for t in ("bronze/credit_penalty", "silver/credit_license", "quarantine/credit_license")}
    for table, why in (("meta/consumption", "not restored on its own"), ("silver/nothing", "not in backup")):
        with pytest.raises(BackupError, match=why):
            restore_tables(settings, source=city.backups, tables=[table])
    # killed right after the tables were swapped in: the lake is fenced until the restore is finished
    b1 = city.b1.manifest
    killed = govlake(city, var, "restore", "--from", city.backups, "--backup", b1.backup_id, "--table",
                     "silver/credit_penalty", GOVLAKE_CRASH_AT="restore:swap")
    assert killed.returncode == -signal.SIGKILL
    with pytest.raises(locks.LockBusy, match="run `govlake restore --resume`"):
        pipeline.run(settings=settings, run_id="fenced")
    done = govlake(city, var, "restore", "--resume")
    assert done.returncode == 0, done.stderr
    for table in ("silver/credit_penalty", "quarantine/credit_penalty", "gold/theme/penalty_record",
                  "gold/base/legal_entity"):
        assert DeltaTable(str(var / "lake" / table)).to_pyarrow_dataset().count_rows() == b1.tables[table].rows
    assert {t: DeltaTable(str(var / "lake" / t)).version() for t in untouched} == untouched
    then = find(city.backups, b1.backup_id)
    assert consumed_versions(settings, "process:credit.penalty")["bronze/credit_penalty"] == \
        then.tables["bronze/credit_penalty"].version  # day one's bronze: day two's rows are read again
    pipeline.run(settings=settings, run_id="after-table-restore")
    _same_lake(var, city.digest2, city.recon2)


def test_restore_as_of_a_time_between_two_runs_and_carry_on_with_a_vacuum_waiting(city, tmp_path):
    var = _copy(city.var, tmp_path / "var")
    settings = _settings(city, var)
    assert vacuum(settings).files == 0  # 168 h: every version of the last week stays readable
    between = city.b1.manifest.cut
    done = govlake(city, var, "restore", "--as-of", between)
    assert done.returncode == 0, done.stderr
    _same_lake(var, city.digest1, city.recon1)
    _ingest_all(settings)
    # the next run, with a vacuum started while one of its steps holds the lake: the vacuum waits
    with locks.hold(settings, locks.PUBLISH):
        run = _start(city, var, tmp_path / "run.err", "run")
        _wait_for(tmp_path / "run.err", "waiting for lock publish", run)
        vac = _start(city, var, tmp_path / "vacuum.err", "vacuum", "--retain-hours", "0", "--force")
        _wait_for(tmp_path / "vacuum.err", "waiting for lock lake", vac)
    assert run.wait(timeout=600) in (0, 3), (tmp_path / "run.err").read_text()[-2000:]
    assert vac.wait(timeout=600) == 0, (tmp_path / "vacuum.err").read_text()[-2000:]
    _same_lake(var, city.relanded2, city.recon2, relanded=True)
    # the vacuum removed what day one's versions needed: going back there is refused, saying how far back
    with pytest.raises(BackupError, match="The oldest time that can be restored is"):
        restore_as_of(settings, moment=dt.datetime.fromisoformat(between))


def test_vacuum_keeps_pinned_versions_and_backups_still_restore(city, tmp_path):
    var = _copy(city.var, tmp_path / "var")
    settings = _settings(city, var)
    b1 = city.b1.manifest
    pinned = "gold/base/legal_entity"  # replaced by every run: day one's version needs files day two removed
    old = {t: e.version for t, e in b1.tables.items()}
    assert all(restorable(var / "lake" / t, v) for t, v in old.items())
    intent = {"consumer": "gold", "id": 1, "run_id": "crashed", "state": "open", "versions": {pinned: old[pinned]}}
    (var / "lake" / "_steps" / "gold.json").write_text(json.dumps(intent), encoding="utf-8")
    with pytest.raises(BackupError, match="below the safe minimum"):
        vacuum(settings, retain_hours=1)
    done = govlake(city, var, "vacuum", "--retain-hours", "0", "--force")
    assert done.returncode == 0, done.stderr
    removed = int(done.stdout.rsplit("removed ", 1)[1].split(" files")[0])
    assert removed > 0 and f"{pinned}: kept versions {old[pinned]}" in done.stdout
    assert restorable(var / "lake" / pinned, old[pinned])
    gone = [t for t, v in old.items() if not restorable(var / "lake" / t, v)]
    assert gone and pinned not in gone
    for table, entry in city.b2.manifest.tables.items():  # the current versions are whole
        assert DeltaTable(str(var / "lake" / table)).to_pyarrow_table().num_rows == entry.rows, table
    # backups hold their own copies
    assert run_drill(settings, source=city.backups, backup_id=b1.backup_id).passed
    restore_lake(settings, source=city.backups, backup_id=b1.backup_id)
    _same_lake(var, city.digest1, city.recon1)


# ---- the drill and the report ---------------------------------------------------------------------


def test_a_drill_passes_is_recorded_in_meta_drills_and_shown_in_the_report(city, tmp_path):
    var = _copy(city.var, tmp_path / "var")
    done = govlake(city, var, "drill", "--from", city.backups)
    assert done.returncode == 0 and "passed" in done.stdout, done.stderr
    m2 = city.b2.manifest
    (row,) = DeltaTable(str(var / "lake" / "meta" / "drills")).to_pyarrow_table().to_pylist()
    assert (row["backup_id"], row["result"], row["problems"]) == (m2.backup_id, "passed", None)
    assert (row["tables"], row["rows"], row["files"], row["bytes"]) == (len(m2.tables), m2.rows,
                                                                          len(list(m2.files())), m2.size)
    assert row["seconds"] > 0 and row["actor"] and row["at"] is not None
    site = build_report(_settings(city, var), out=tmp_path / "report", pdf=False)
    html = site.path.read_text(encoding="utf-8")
    assert 'id="drill-last" data-result="passed"' in html and m2.backup_id in html
    # a report with no drill says so
    assert 'id="drill-none"' in drill_section([])


# ---- the pieces -----------------------------------------------------------------------------------


def _event(kind: str, consumer: str, id_: int, second: float) -> dict:
    at = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=second)
    return {"event": kind, "consumer": consumer, "id": id_, "at": at.isoformat()}


def test_the_quiet_cut_is_the_latest_moment_no_intent_was_open():
    events = [_event("begin", "a", 1, 0), _event("begin", "b", 2, 0.4), _event("close", "a", 1, 0.5),
              _event("close", "b", 2, 1.0),
              _event("begin", "c", 3, 2.0),  # killed before its intent file: ended by c's next begin
              _event("begin", "c", 4, 3.0), _event("close", "c", 4, 3.5),
              _event("begin", "d", 5, 5.0)]  # still open
    base = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)

    def cut(second: float) -> float:
        return (quiet_cut(events, base + dt.timedelta(seconds=second)) - base).total_seconds()

    assert cut(1.5) == pytest.approx(1.5)
    assert cut(0.7) == pytest.approx(-0.002, abs=2e-6)  # a and b overlap: before a began
    assert cut(3.2) == pytest.approx(1.998, abs=2e-6)  # c's two spans touch: before the first
    assert cut(9.0) == pytest.approx(4.998, abs=2e-6)  # d never closed
    assert cut(1.0005) < 1.0  # within a millisecond of a close is not quiet (commit times are whole ms)


def test_the_dependency_map_restores_outputs_together_and_everything_downstream(tmp_path):
    steps = pipeline_steps(Settings(var=tmp_path))
    silver = closure(steps, ["silver/credit_penalty"])
    assert {"silver/credit_penalty", "quarantine/credit_penalty", "gold/base/legal_entity", "gold/conflicts",
            "gold/theme/penalty_record", "gold/withdrawal_log", "extracts/analyst.duckdb"} <= silver.tables
    assert not {t for t in silver.tables if t.startswith("bronze/") or t == "silver/credit_license"}
    assert {"process:credit.penalty", "gold", "credit", "themes", "conflicts", "extract"} == set(silver.consumers)
    assert "bronze/credit_penalty" in closure(steps, ["bronze/credit_penalty"]).tables
    assert closure(steps, ["gold/conflicts"]).tables == {"gold/conflicts"}  # nothing reads it but the KPIs
    record = closure(steps, ["gold/theme/penalty_record"])  # the credit step's outputs go together, then the
    # model-built themes and the extract
    assert {"gold/theme/penalty_publication", "gold/theme/enterprise_credit_profile", "gold/withdrawal_log",
            "gold/theme/market_region_industry",
            "extracts/analyst.duckdb"} <= record.tables
    assert not {"gold/base/legal_entity", "gold/conflicts"} & record.tables


def test_an_unlanded_batch_is_landed_again_by_the_next_ingest(tmp_path):
    from govlake.ingest import _log

    settings = Settings(var=tmp_path / "var")
    row = {"resource": "credit.penalty", "source": "a.csv", "source_hash": "h1", "status": "landed", "rows": 3}
    _log.append(settings, [dict(row, batch_id="b1"), dict(row, batch_id="b2", source="b.csv", source_hash="h2")],
                run_id="r1")
    _log.append(settings, [dict(row, batch_id="b1", status=_log.UNLANDED)], run_id="restore")
    bronze = tmp_path / "var" / "lake" / "bronze" / "credit_penalty"
    assert _log.history(settings, "credit.penalty", bronze, run_id="r2").hashes == {"h2"}
    _log.append(settings, [dict(row, batch_id="b3")], run_id="r3")  # landed again, as a new batch
    assert _log.history(settings, "credit.penalty", bronze, run_id="r4").hashes == {"h1", "h2"}
