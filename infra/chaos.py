"""Fault injection: kill govlake at every commit boundary and at random moments, run it twice or four
times at once, race ingests of one file — then let the next plain run recover and compare every
table, row by row (content hashes), with a clean serial run.

Usage: uv run python infra/chaos.py [--scale 20000] [--random 40] [--overlap 2 4] [--workdir DIR]
                                    [--only boundaries|random|overlap|races] [--limit N] [--per-label N]
                                    [--seed S] [--jobs N]

1. Generates a city (``govlake generate --scale N``) and runs the baseline serially: ``govlake ingest
   --all`` then ``govlake run``, with GOVLAKE_COMMIT_TRACE listing every commit boundary of both.
2. Boundaries: for each boundary (label and occurrence) a fresh lake (empty for ingest boundaries, the
   baseline's after-ingest lake for run boundaries) runs the command with GOVLAKE_CRASH_AT set, which
   SIGKILLs it right after that commit; then plain ``ingest --all`` + ``run`` must recover by itself.
3. Random: ``ingest --all && run`` killed with SIGKILL after a random delay, then recovery.
4. Overlap: 2 and 4 ``govlake run`` at once; 2 and 4 ``ingest --all`` at once then a run; a run next
   to ``ingest RESOURCE --file`` with its own processing.
5. Races: 4 ``ingest RESOURCE --file F --no-run`` of the same file at once: it lands once.

After each case the lake is compared with the baseline: every bronze, silver, quarantine, gold and
meta/batches table as a multiset of row hashes (run ids, batch ids and wall-clock columns left out),
the analyst extract's tables likewise, the latest reconciliation per resource (balanced), no rule
result recorded twice for one run, and one ``landed`` ingest-log row per delivered source. It prints
one line per case and the totals: kills, rows lost, rows duplicated, unreadable tables, recoveries
that failed (would need --rebuild). Exit code 1 when any case differs.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-20"
VOLATILE = {"run_id", "_run_id", "_batch_id", "_received_at", "_submitted_at", "submission_time", "recorded_at",
            "checked_at", "validated_at", "withdrawn_at", "at", "first_seen", "last_seen", "resolved_at",
            "built_at_utc", "raised_at", "_record_version", "_silver_id", "_silver_version"}
"""Columns that differ between two correct runs (ids, wall-clock times, and the table and version of another table
a table counts: two correct runs may reach the same rows in a different number of commits); not compared."""
COMPARED_LAYERS = ("bronze", "silver", "quarantine", "gold/base", "gold/theme", "gold")
OK_EXITS = (0, 3)
"""govlake run exits 3 when it held a batch (and published everything else)."""


# ---- comparing lakes -----------------------------------------------------------------------------


def _row_hashes(table) -> collections.Counter:
    """Multiset of row hashes of an Arrow table, volatile columns left out."""
    names = sorted(n for n in table.column_names if n not in VOLATILE)
    counter: collections.Counter = collections.Counter()
    for row in table.select(names).to_pylist():
        counter[hashlib.sha256(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False)
                               .encode()).hexdigest()] += 1
    return counter


def lake_digest(var: Path) -> dict[str, collections.Counter]:
    """Per table (``layer/name``; ``extract/<table>``) the multiset of its rows' hashes."""
    from deltalake import DeltaTable

    out: dict[str, collections.Counter] = {}
    lake = var / "lake"
    for layer in (*COMPARED_LAYERS, "meta"):
        folder = lake / layer
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if (p / "_delta_log").is_dir()):
            if layer == "meta" and path.name not in ("batches", "objections", "objections_history"):
                continue
            try:
                out[f"{layer}/{path.name}"] = _row_hashes(DeltaTable(str(path)).to_pyarrow_table())
            except Exception as exc:  # noqa: BLE001 — an unreadable table is a finding, not a crash
                out[f"{layer}/{path.name}"] = collections.Counter({f"UNREADABLE: {exc}": 1})
    extract = var / "extracts" / "analyst.duckdb"
    if extract.exists():
        import duckdb

        con = duckdb.connect(str(extract), read_only=True)
        try:
            for (name,) in con.execute("select table_name from duckdb_tables() where table_name <> "
                                       "'extract_info' order by 1").fetchall():
                out[f"extract/{name}"] = _row_hashes(con.execute(f'select * from "{name}"').to_arrow_table())
        finally:
            con.close()
    return out


def meta_findings(var: Path) -> list[str]:
    """Invariants of the history tables: balanced reconciliation, nothing recorded twice."""
    import duckdb
    from deltalake import DeltaTable

    problems = []
    meta = var / "lake" / "meta"
    con = duckdb.connect()
    try:
        def table(name):
            path = meta / name
            if not (path / "_delta_log").is_dir():
                return False
            con.register(name, DeltaTable(str(path)).to_pyarrow_dataset())
            return True

        if table("reconciliation"):
            for resource, balanced in con.execute("""select resource, balanced from reconciliation where published
                    qualify row_number() over (partition by resource order by checked_at desc) = 1""").fetchall():
                if not balanced:
                    problems.append(f"reconciliation of {resource} not balanced")
        if table("validation_results"):
            twice = con.execute("""select count(*) from (select run_id, resource, rule_id from validation_results
                                   group by all having count(*) > 1)""").fetchone()[0]
            if twice:
                problems.append(f"{twice} rule results recorded twice for one run")
        if table("ingest_log"):
            # a batch a restore took out of bronze ('unlanded') was landed again: that is not twice
            twice = con.execute("""select count(*) from (select resource, source_hash from ingest_log
                                   where status = 'landed' and batch_id not in (
                                       select batch_id from ingest_log where status = 'unlanded')
                                   group by all having count(*) > 1)""").fetchone()[0]
            if twice:
                problems.append(f"{twice} sources landed twice")
    finally:
        con.close()
    return problems


def latest_reconciliation(var: Path) -> dict[str, tuple]:
    """resource → (rows read, silver, quarantined, duplicates, held, rejected) of its latest published run."""
    import duckdb
    from deltalake import DeltaTable

    path = var / "lake" / "meta" / "reconciliation"
    if not (path / "_delta_log").is_dir():
        return {}
    con = duckdb.connect()
    con.register("r", DeltaTable(str(path)).to_pyarrow_dataset())
    rows = con.execute("""select resource, rows_read, silver, quarantined, duplicates, coalesce(held, 0),
                                 coalesce(rejected, 0) from r where published
                          qualify row_number() over (partition by resource order by checked_at desc) = 1""").fetchall()
    con.close()
    return {r[0]: tuple(r[1:]) for r in rows}


@dataclass
class Diff:
    lost: int = 0
    duplicated: int = 0
    unreadable: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.unreadable or self.notes)


def compare(baseline: dict, got: dict, base_recon: dict, got_recon: dict, findings: list[str]) -> Diff:
    diff = Diff(notes=list(findings))
    for name in sorted(set(baseline) | set(got)):
        want, have = baseline.get(name, collections.Counter()), got.get(name, collections.Counter())
        if any(str(k).startswith("UNREADABLE") for k in have):
            diff.unreadable += 1
            diff.notes.append(f"{name} unreadable")
            continue
        lost = sum((want - have).values())
        extra = sum((have - want).values())
        if lost or extra:
            diff.lost += lost
            diff.duplicated += extra
            diff.notes.append(f"{name}: {lost} rows missing, {extra} rows extra")
    if base_recon != got_recon:
        diff.notes.append(f"reconciliation differs: {got_recon} != {base_recon}")
    return diff


# ---- running govlake -----------------------------------------------------------------------------


@dataclass
class World:
    workdir: Path
    city: Path

    def env(self, var: Path, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")}
        env.update(GOVLAKE_VAR=str(var), GOVLAKE_INBOX=str(self.city), GOVLAKE_AS_OF=AS_OF,
                   GOVLAKE_LOCK_WAIT="3600", **extra)
        return env


def govlake(world: World, var: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "govlake.cli", *args], env=world.env(var, **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)


def finish(proc: subprocess.Popen, timeout: float = 3600) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def run_cmd(world: World, var: Path, *args: str, **env: str) -> tuple[int, str]:
    return finish(govlake(world, var, *args, **env))


def recover(world: World, var: Path) -> tuple[bool, str]:
    """The operator's plain next run: ingest what is new, run everything; True when both succeed."""
    code, err = run_cmd(world, var, "ingest", "--all")
    if code != 0:
        return False, f"ingest --all exited {code}: {err.strip().splitlines()[-1:] }"
    code, err = run_cmd(world, var, "run")
    if code not in OK_EXITS:
        return False, f"run exited {code}: {err.strip().splitlines()[-1:]}"
    return True, ""


# ---- the cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    kind: str
    name: str
    kills: int = 0
    recovered: bool = True
    diff: Diff = field(default_factory=Diff)
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.recovered and self.diff.clean

    def line(self) -> str:
        status = "ok" if self.ok else "FAIL"
        detail = self.error or "; ".join(self.diff.notes[:3])
        return f"{status:4} {self.kind:10} {self.name:70.70} {self.seconds:6.1f}s {detail}"


class Harness:
    def __init__(self, world: World, baseline_var: Path, after_ingest: Path, ingest_labels: list[str],
                 run_labels: list[str]):
        self.world, self.baseline_var, self.after_ingest = world, baseline_var, after_ingest
        self.ingest_labels, self.run_labels = ingest_labels, run_labels
        self.baseline = lake_digest(baseline_var)
        self.base_recon = latest_reconciliation(baseline_var)
        self.cases: list[Case] = []
        self.counter = 0
        self._lock = threading.Lock()

    def fresh(self, *, ingested: bool) -> Path:
        with self._lock:
            self.counter += 1
            var = self.world.workdir / f"case{self.counter:04d}"
        shutil.rmtree(var, ignore_errors=True)
        if ingested:
            shutil.copytree(self.after_ingest, var, symlinks=True)
            shutil.rmtree(var / "locks", ignore_errors=True)
        else:
            var.mkdir(parents=True)
        return var

    def check(self, case: Case, var: Path, started: float) -> Case:
        if case.recovered:
            case.diff = compare(self.baseline, lake_digest(var), self.base_recon, latest_reconciliation(var),
                                meta_findings(var))
        case.seconds = time.monotonic() - started
        with self._lock:
            self.cases.append(case)
            print(case.line(), flush=True)
        if case.ok:
            shutil.rmtree(var, ignore_errors=True)
        return case

    def boundary(self, phase: str, label: str) -> Case:
        started = time.monotonic()
        var = self.fresh(ingested=phase == "run")
        args = ("ingest", "--all") if phase == "ingest" else ("run",)
        code, err = run_cmd(self.world, var, *args, GOVLAKE_CRASH_AT=label)
        case = Case("boundary", f"{phase} @ {label}")
        if code != -signal.SIGKILL:
            case.recovered, case.error = False, f"expected a kill at {label}, exit {code}: {err[-300:]}"
            return self.check(case, var, started)
        case.kills = 1
        case.recovered, case.error = recover(self.world, var)
        return self.check(case, var, started)

    def random_kill(self, delay: float) -> Case:
        started = time.monotonic()
        var = self.fresh(ingested=False)
        script = f"{sys.executable} -m govlake.cli ingest --all && {sys.executable} -m govlake.cli run"
        proc = subprocess.Popen(["bash", "-c", script], env=self.world.env(var), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        case = Case("random", f"kill -9 after {delay:.1f}s" + ("" if killed else " (had finished)"),
                    kills=int(killed))
        case.recovered, case.error = recover(self.world, var)
        return self.check(case, var, started)

    def overlap(self, n: int, what: str) -> Case:
        started = time.monotonic()
        var = self.fresh(ingested=what == "run")
        if what == "run":
            procs = [govlake(self.world, var, "run") for _ in range(n)]
        elif what == "ingest":
            procs = [govlake(self.world, var, "ingest", "--all") for _ in range(n)]
        else:  # a run next to an ingest of one file with its own processing
            target = sorted((self.world.city / "credit" / "penalty").glob("*.csv"))[0]
            procs = [govlake(self.world, var, "run"),
                     govlake(self.world, var, "ingest", "credit.penalty", "--file", str(target))]
        results = [finish(p) for p in procs]
        case = Case("overlap", f"{n} x {what} at once")
        bad = [(c, e) for c, e in results if c not in OK_EXITS]
        if bad:
            case.recovered, case.error = False, f"exit {bad[0][0]}: {bad[0][1].strip()[-300:]}"
            return self.check(case, var, started)
        case.recovered, case.error = recover(self.world, var)
        return self.check(case, var, started)

    def same_file_race(self, n: int) -> Case:
        started = time.monotonic()
        var = self.fresh(ingested=False)
        target = sorted((self.world.city / "credit" / "penalty").glob("*.csv"))[0]
        procs = [govlake(self.world, var, "ingest", "credit.penalty", "--file", str(target), "--no-run")
                 for _ in range(n)]
        results = [finish(p) for p in procs]
        case = Case("race", f"{n} x ingest of {target.name} at once")
        if any(c != 0 for c, _ in results):
            case.recovered, case.error = False, f"exits {[c for c, _ in results]}"
            return self.check(case, var, started)
        from deltalake import DeltaTable

        bronze = DeltaTable(str(var / "lake" / "bronze" / "credit_penalty")).to_pyarrow_table(columns=["_source"])
        landed = {str(s) for s in bronze.column("_source").to_pylist()}
        times = bronze.num_rows
        expected = sum(1 for _ in _data_rows(self.baseline_var, str(target)))
        if landed != {str(target)} or times != expected:
            case.diff.notes.append(f"bronze holds {times} rows of it, expected {expected} (once)")
            case.diff.duplicated = max(times - expected, 0)
        case.recovered, case.error = recover(self.world, var)
        return self.check(case, var, started)


def _data_rows(var: Path, source: str):
    from deltalake import DeltaTable

    table = DeltaTable(str(var / "lake" / "bronze" / "credit_penalty")).to_pyarrow_table(columns=["_source"])
    return (s for s in table.column("_source").to_pylist() if s == source)


def occurrences(trace: Path) -> list[str]:
    """``label:n`` for every line of a commit trace (the n-th time the label was passed)."""
    seen: collections.Counter = collections.Counter()
    out = []
    for label in trace.read_text(encoding="utf-8").split():
        seen[label] += 1
        out.append(f"{label}:{seen[label]}")
    return out


def prepare(workdir: Path, scale: int, seed: int) -> Harness:
    city = workdir / "city"
    world = World(workdir, city)
    if not city.exists():
        subprocess.run([sys.executable, "-m", "govlake.cli", "generate", "--out", str(city), "--scale", str(scale),
                        "--seed", str(seed)], check=True, env=world.env(workdir / "unused"), cwd=REPO,
                       stdout=subprocess.DEVNULL)
    baseline = workdir / "baseline"
    after_ingest = workdir / "after-ingest"
    for path in (baseline, after_ingest):
        shutil.rmtree(path, ignore_errors=True)
    started = time.monotonic()
    code, err = run_cmd(world, baseline, "ingest", "--all", GOVLAKE_COMMIT_TRACE=str(workdir / "ingest.trace"))
    if code != 0:
        raise SystemExit(f"baseline ingest failed ({code}): {err}")
    ingest_s = time.monotonic() - started
    shutil.copytree(baseline, after_ingest, symlinks=True)
    started = time.monotonic()
    code, err = run_cmd(world, baseline, "run", GOVLAKE_COMMIT_TRACE=str(workdir / "run.trace"))
    if code not in OK_EXITS:
        raise SystemExit(f"baseline run failed ({code}): {err}")
    run_s = time.monotonic() - started
    harness = Harness(world, baseline, after_ingest, occurrences(workdir / "ingest.trace"),
                      occurrences(workdir / "run.trace"))
    rows = sum(r[0] for r in harness.base_recon.values())
    print(f"baseline: {rows:,} rows delivered; ingest --all {ingest_s:.1f}s, run {run_s:.1f}s; "
          f"{len(harness.ingest_labels)} ingest and {len(harness.run_labels)} run commit boundaries", flush=True)
    harness.baseline_seconds = ingest_s + run_s  # type: ignore[attr-defined]
    return harness


def _each(jobs: int, cases: list) -> None:
    """Run the case callables, ``jobs`` at a time."""
    if jobs <= 1:
        for case in cases:
            case()
        return
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for future in [pool.submit(case) for case in cases]:
            future.result()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--random", type=int, default=40, help="random kills")
    ap.add_argument("--overlap", type=int, nargs="*", default=[2, 4])
    ap.add_argument("--only", choices=["boundaries", "random", "overlap", "races"], action="append")
    ap.add_argument("--limit", type=int, default=None, help="at most this many boundaries (spread evenly)")
    ap.add_argument("--per-label", type=int, default=None,
                    help="kill at only the first N occurrences of each boundary label (ingest repeats its three "
                         "labels per file)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=1, help="kill cases run side by side (each on its own lake)")
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="govlake-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    started = time.monotonic()
    harness = prepare(workdir, args.scale, args.seed)
    only = set(args.only or ["boundaries", "random", "overlap", "races"])
    if "boundaries" in only:
        todo = [("ingest", label) for label in harness.ingest_labels] + [("run", label) for label in harness.run_labels]
        if args.per_label:
            todo = [(phase, label) for phase, label in todo if int(label.rsplit(":", 1)[1]) <= args.per_label]
        if args.limit and len(todo) > args.limit:
            step = len(todo) / args.limit
            todo = [todo[int(i * step)] for i in range(args.limit)]
        _each(args.jobs, [lambda p=phase, la=label: harness.boundary(p, la) for phase, label in todo])
    if "random" in only:
        delays = [rng.uniform(0.5, harness.baseline_seconds) for _ in range(args.random)]  # type: ignore[attr-defined]
        _each(args.jobs, [lambda d=d: harness.random_kill(d) for d in delays])
    if "overlap" in only:
        for n in args.overlap:
            harness.overlap(n, "run")
            harness.overlap(n, "ingest")
        harness.overlap(2, "run+ingest --file")
    if "races" in only:
        harness.same_file_race(4)
    cases = harness.cases
    kills = sum(c.kills for c in cases)
    print("\nchaos summary")
    print(f"  cases {len(cases)}: kills {kills} ({sum(c.kills for c in cases if c.kind == 'boundary')} at commit "
          f"boundaries, {sum(c.kills for c in cases if c.kind == 'random')} random), "
          f"{sum(1 for c in cases if c.kind == 'overlap')} overlapping-run cases, "
          f"{sum(1 for c in cases if c.kind == 'race')} same-file races")
    print(f"  rows lost {sum(c.diff.lost for c in cases)}, rows duplicated {sum(c.diff.duplicated for c in cases)}, "
          f"unreadable tables {sum(c.diff.unreadable for c in cases)}, "
          f"recoveries that failed (would need --rebuild) {sum(1 for c in cases if not c.recovered)}")
    print(f"  cases differing from the serial run: {sum(1 for c in cases if not c.ok)}; "
          f"wall time {time.monotonic() - started:.0f}s; workdir {workdir}")
    return 0 if all(c.ok for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
