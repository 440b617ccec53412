"""Benchmark: generate N penalty records, run every stage, then one incremental day of 10,000 more.

Usage: uv run python infra/bench.py [--engine duckdb|spark|cluster ...] [N ...]
       (default: DuckDB, 1000000 10000000; `make bench`, `make bench-engines`)

Engines: ``duckdb`` (the default engine), ``spark`` (GOVLAKE_ENGINE=spark on ``local[2]``, a 4g driver) and
``cluster`` (the Spark engine on a standalone master and two one-core workers on loopback, a 2g executor on
each and a 2g driver, started for the run by infra/spark_cluster.py and stopped after it). On Spark a first
stage times the session's start-up. Each run's log is kept in var/bench/<engine>-<rows>.log, with a line per
stage as it ends.

Each (engine, size) runs in its own process, and each stage's peak resident memory is its own: the peak
(VmHWM) is reset before the stage starts (the floor runs in a process of its own); the figures show whether
memory grows with the input. On Spark
the JVMs' peaks are read too (VmHWM of /proc/PID/status): the driver's JVM (local[2]: the executors' threads
run in it) and, on the cluster, the largest of the executors' JVMs. Outputs go to a temporary GOVLAKE_VAR.

The day: 10,000 new penalty records (generated with the next business date and another seed, their
decision numbers moved to a namespace of their own so that they are new decisions) land as one more
export; ingest, process, the credit step and the extract then work incrementally, so their time should
follow the day's records, not N. gold (法人库) is rebuilt in full, from silver's penalties summed per subject (a
summary it brings up to date from the silver files the day changed); its rows are the silver rows it covers.
The day runs three times (DAY_RUNS), each from a copy of the lake as the first run left it, and its steps' figures
are the medians, each run's seconds beside them; the runs must count the same. The sizes' days run in turn (1
million, 10 million, 1 million, …, each size's process waiting for its turn), so that a day's ratio between two
sizes is taken on the same minutes of the machine, whose speed moves by the hour.

The re-sent day: the next day the same decisions arrive again, dated a day later (a department correcting its
export): keys silver and the credit tables hold already, which the tables merge rather than append. Its
stages are shown apart and left out of the pipeline's peak, which it is printed beside.

The operator's day (DuckDB only): 10,000 more new decisions the day after, run as an operator or Airflow runs
them — `govlake ingest credit.penalty`, then `govlake run` (silver to the extract, the themes too), each a
process of its own — so that what every start pays (imports, Great Expectations, parsing the models), which the
days above share with the first run's process, is counted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ENGINES = ("duckdb", "spark", "cluster")
CLUSTER = {"workers": "2", "worker_cores": "1", "worker_memory": "3g", "executor_memory": "2g"}
"""The benchmark's standalone cluster: two workers of one core, one executor of 2 GiB on each."""


def _peak_mib() -> float:
    """This process's peak resident memory since the last :func:`_reset_peak` (VmHWM), else since it started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished children: unlike the wall clock, hardly
    moved by other programs on the machine, so runs on a busy machine still compare."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _reset_peak() -> None:
    """Start this process's peak over from its current resident memory (Linux: ``5`` into clear_refs resets
    VmHWM), so that each stage's peak is its own and not the largest of the stages before it."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _jvm_peaks_mib() -> dict[str, int]:
    """Peak resident memory (VmHWM) of the JVMs of this run: the driver's (a child of this process) and the
    largest executor's (a CoarseGrainedExecutorBackend, on the cluster)."""
    import psutil

    def hwm(proc: psutil.Process) -> int:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0

    out = {}
    drivers = [p for p in psutil.Process().children(recursive=True) if p.name() == "java"]
    if drivers:
        out["driver_jvm"] = max(hwm(p) for p in drivers)
    executors = []
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "java" and any("CoarseGrainedExecutorBackend" in a for a in p.info["cmdline"] or ()):
            executors.append(hwm(p))
    if executors:
        out["executor_jvm"] = max(executors)
    return out


def floor(settings, out: Path) -> int:
    """The floor the pipeline is measured against, on the same exports: pyarrow decodes the GBK/UTF-8 CSV files
    (every column as text, headers matched to the catalog's items), streaming, and one DuckDB SELECT — govlake's
    own standardize model (trim, USCC and code formats, the date formats, decimals, on every item) — writes
    Parquet as the batches come. No rules, no deduplication, no Delta, no bronze. Returns the rows written."""
    import duckdb
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from govlake.catalog import get_catalog
    from govlake.contracts import bronze_schema
    from govlake.ingest._headers import Matcher
    from govlake.quality._process import _reference_tables
    from govlake.transform import DUCKDB, ModelRunner, StagingRenderer

    catalog = get_catalog(settings.catalog_dir)
    resource = catalog.resource("credit.penalty")
    schema, matcher = bronze_schema(resource), Matcher(resource)

    def batches():
        for path in sorted((settings.city / "credit" / "penalty").glob("*.csv")):
            with open(path, "rb") as f:
                encoding = "utf-8-sig" if f.read(3) == b"\xef\xbb\xbf" else "gb18030"
            # quoted fields may hold line breaks; the rows the generator broke on purpose (a wrong number of
            # fields) are skipped: the pipeline quarantines them, the floor has no rules
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 24),
                                    parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                                                     invalid_row_handler=lambda _row: "skip"),
                                    convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False,
                                                                         auto_dict_encode=False))
            names = [matcher.column(h) or h for h in reader.schema.names]
            first = 2
            for decoded in reader:
                decoded = pa.RecordBatch.from_arrays(decoded.columns, names=names)
                n = decoded.num_rows
                columns = []
                for field in schema:
                    if field.name in names:
                        columns.append(decoded.column(field.name).cast(pa.string()))
                    elif field.name == "_row_number":
                        columns.append(pa.array(range(first, first + n), pa.int64()))
                    elif field.name == "_source":
                        columns.append(pa.array([str(path)] * n, pa.string()))
                    else:
                        columns.append(pa.nulls(n, field.type))
                first += n
                yield pa.RecordBatch.from_arrays(columns, schema=schema)

    # DuckDB's buffer pool grows with the rows here; at its default limit (80% of RAM), with pyarrow and Python
    # beside it, the kernel killed the floor at 30 million rows (23 GB resident). Half of RAM: a larger floor
    # spills instead (the 10-million-row floor peaked at 14.2 GB without a limit)
    half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    con = duckdb.connect(config={"memory_limit": f"{half}B"})
    con.execute(f"set temp_directory = '{out.parent}'")
    con.register("bronze_credit_penalty", pa.RecordBatchReader.from_batches(schema, batches()))
    _reference_tables(con, catalog)  # the code lists the model joins, as the process step registers them
    ModelRunner(settings.sql_dir).run(con, "staging/standardize", into="stg", kind="view",
                                      **StagingRenderer(catalog, DUCKDB, settings).context(resource))
    con.execute(f"copy (select * from stg) to '{out}' (format parquet)")
    written = con.execute(f"select count(*) from read_parquet('{out}')").fetchone()[0]
    con.close()
    return written


def _floor_child(workdir: Path) -> dict:
    """Runs in a process of its own (``--floor``), so that its memory is not counted as the pipeline's."""
    os.environ["GOVLAKE_VAR"] = str(workdir / "var")
    os.environ["GOVLAKE_INBOX"] = str(workdir / "city")
    from govlake.config import get_settings

    t, cpu = time.perf_counter(), _cpu_seconds()
    rows = floor(get_settings(), workdir / "floor.parquet")
    return {"rows": rows, "seconds": time.perf_counter() - t, "cpu_seconds": round(_cpu_seconds() - cpu, 2),
            "peak_rss_mib": round(_peak_mib())}


def run_one(rows: int, workdir: Path, engine: str = "duckdb") -> Iterator[str]:
    """Runs inside the child process (its environment chooses the engine): a generator that pauses after the
    first run (``"first"``) and after each of the day's runs (``"day"``), so that the parent can run the days of
    every size in turn (:func:`_engine`); it returns the report."""
    os.environ["GOVLAKE_VAR"] = str(workdir / "var")
    os.environ["GOVLAKE_INBOX"] = str(workdir / "city")
    from govlake import pipeline
    from govlake.config import get_settings
    from govlake.generate import AS_OF, generate_city

    # judged on the exports' own date, as `govlake generate` records it for the demo: on the calendar's date
    # the rows the generator dates after it ("in the future") pass one by one as the days go by, and the counts
    # of two runs a day apart differ (3,333 rows at 10 million between 2026-12-04 and -05)
    settings = dataclasses.replace(get_settings(), as_of=AS_OF)
    stages = []

    def measure(name, fn, n):
        """``fn()`` and its figures as a stage named ``name`` of ``n`` rows."""
        _reset_peak()
        t, cpu = time.perf_counter(), _cpu_seconds()
        out = fn()
        secs = time.perf_counter() - t
        cpu = _cpu_seconds() - cpu
        # each stage's figures in the run's log as it ends: a long run shows where it is, and a run stopped
        # before the end keeps what it measured
        figures = {"stage": name, "rows": n, "seconds": round(secs, 2), "rows_per_s": round(n / secs) if secs else None,
                   "cpu_seconds": round(cpu, 2), "peak_rss_mib": round(_peak_mib()), **_jvm_peaks_mib()}
        print(f"stage done at {dt.datetime.now():%H:%M:%S}: " + json.dumps(figures, ensure_ascii=False),
              file=sys.stderr, flush=True)
        return out, figures

    def stage(name, fn, n):
        out, figures = measure(name, fn, n)
        stages.append(figures)
        return out

    if settings.engine == "spark":
        from govlake.engine import spark_session

        stage("start-up (the Spark session)", lambda: spark_session(settings), 0)
    stage("generate (GBK/UTF-8 CSV)", lambda: generate_city(settings.city, only="credit.penalty", rows=rows), rows)
    if engine == "duckdb":  # in a process of its own: its peak memory is its own
        done = subprocess.run([sys.executable, __file__, "--floor", str(workdir)], stdout=subprocess.PIPE,
                              text=True, check=True)
        f = json.loads(done.stdout.strip().splitlines()[-1])
        stages.append({"stage": "floor: pyarrow + one standardizing SELECT", "rows": rows,
                       "seconds": round(f["seconds"], 2), "rows_per_s": round(rows / f["seconds"]),
                       "cpu_seconds": f["cpu_seconds"],
                       "peak_rss_mib": f["peak_rss_mib"]})
    stage("ingest → bronze", lambda: pipeline.ingest("credit.penalty", settings=settings), rows)
    result = stage("standardize + validate (GX) → silver/quarantine",
                   lambda: pipeline.process("credit.penalty", settings=settings), rows)
    stage("gold", lambda: pipeline.gold(settings=settings), result.silver)
    stage("credit (first run: every record)", lambda: pipeline.credit(settings=settings), result.silver)
    stage("extract", lambda: pipeline.extract(settings=settings), result.silver)

    def a_day(label: str, names: tuple[str, ...], as_of: dt.date, prefix: str, *, export: bool = True):
        """The export of DAY_ROWS on top of the lake (:func:`_day_export`; made unless ``export`` is false) and the
        five stages after it, named ``label: <name>``: the process step's and the credit step's results, and the
        stages' figures."""
        on = dataclasses.replace(settings, as_of=as_of)
        if export:
            _day_export(settings.city, workdir / prefix, DAY_ROWS, as_of, prefix=prefix)
        ingest, process, gold, credit, extract = (f"{label}: {name}" for name in names)
        figures = []

        def step(name, fn, n):
            out, measured = measure(name, fn, n)
            figures.append(measured)
            return out

        step(ingest, lambda: pipeline.ingest("credit.penalty", settings=on), DAY_ROWS)
        processed = step(process, lambda: pipeline.process("credit.penalty", settings=on), DAY_ROWS)
        step(gold, lambda: pipeline.gold(settings=on), processed.silver)
        credited = step(credit, lambda: pipeline.credit(settings=on), DAY_ROWS)
        step(extract, lambda: pipeline.extract(settings=on), DAY_ROWS)
        return processed, credited, figures

    yield "first"
    next_day = settings.today + dt.timedelta(days=1)
    var, before = Path(os.environ["GOVLAKE_VAR"]), workdir / "var-before-the-day"
    if DAY_RUNS > 1:
        shutil.copytree(var, before, symlinks=True)
    runs = []
    for i in range(DAY_RUNS):
        if i:  # the lake as the first run left it, again; the day's export is in the inbox already
            shutil.rmtree(var)
            shutil.copytree(before, var, symlinks=True)
        runs.append(a_day("day", ("ingest → bronze", "standardize + validate → merge into silver",
                                  "gold (法人库; penalties summed)", "credit (incremental merge)",
                                  "extract (the changed gold files)"), next_day, "day2_", export=not i))
        counts, first = _day_counts(*runs[i][:2]), _day_counts(*runs[0][:2])
        if counts != first:
            raise RuntimeError(f"the day's run {i + 1} counted otherwise than its first: {counts} against {first}")
        yield "day"
    shutil.rmtree(before, ignore_errors=True)
    day_result, credit, _ = runs[-1]
    stages.extend(_median_stage([figures[k] for _, _, figures in runs]) for k in range(len(runs[0][2])))
    # the next day a department re-sends the day's decisions, dated a day later: keys the tables hold already
    resent, resent_credit, figures = a_day("re-sent day", ("ingest → bronze", "standardize + validate → silver",
                                                           "gold", "credit", "extract"),
                                           next_day + dt.timedelta(days=1), "resent_")
    stages.extend(figures)
    if engine == "duckdb":
        # a day as the operator runs it: `govlake ingest` and `govlake run`, each a process of its own, as the CLI
        # and Airflow's tasks are, so that what a start pays (imports, Great Expectations, parsing the models) counts
        on = next_day + dt.timedelta(days=2)
        _day_export(settings.city, workdir / "cli_", DAY_ROWS, on, prefix="cli_", mark="罚再〔")
        for name, args in (("govlake ingest credit.penalty", ["ingest", "credit.penalty"]),
                           ("govlake run (silver … extract, themes)", ["run"])):
            stages.append({"stage": f"operator's day: {name}", "rows": DAY_ROWS,
                           **_command(args, {**os.environ, "GOVLAKE_AS_OF": on.isoformat()})})
            print("stage done: " + json.dumps(stages[-1], ensure_ascii=False), file=sys.stderr, flush=True)
    return {"rows": rows, "engine": engine, "silver": result.silver, "quarantined": result.quarantined,
            "duplicates": result.duplicates, "stages": stages,
            "peak_rss_mib": max(s["peak_rss_mib"] for s in stages
                                if not s["stage"].startswith(("generate", "floor", "re-sent", "operator's"))),
            "resent_peak_rss_mib": max(s["peak_rss_mib"] for s in stages if s["stage"].startswith("re-sent")),
            "day": {"rows": DAY_ROWS, "run": dataclasses.asdict(day_result.run), "rederived": credit.rederived,
                    "withdrawn": credit.withdrawn, "credit_seconds": credit.seconds},
            "resent_day": {"run": dataclasses.asdict(resent.run), "rederived": resent_credit.rederived,
                           "withdrawn": resent_credit.withdrawn}}


DAY_ROWS = 10_000
DAY_RUNS = 3
"""How many times the day runs, each from the lake as the first run left it (a copy; the last run's lake goes on to
the re-sent day): its steps' figures are their medians, their range beside them. A step of a second or two moved by
±30% from one run to the next on this machine — more than the ratios a day is judged by."""


def _day_counts(processed, credited) -> tuple:
    """What a day's run counted: the same in every run of the day (:data:`DAY_RUNS`)."""
    return (dataclasses.asdict(processed.run), credited.rederived, credited.withdrawn)


def _median_stage(runs: list[dict]) -> dict:
    """One stage's figures over the day's runs: the median seconds and CPU seconds, the largest peak, and every
    run's seconds (``runs``)."""
    seconds = statistics.median(r["seconds"] for r in runs)
    figures = {**runs[0], "seconds": round(seconds, 2),
               "rows_per_s": round(runs[0]["rows"] / seconds) if seconds else None,
               "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
               "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)}
    if len(runs) > 1:
        figures["runs"] = [r["seconds"] for r in runs]
    return figures


def _command(args: list[str], env: dict[str, str]) -> dict:
    """``govlake <args>`` in a process of its own: its seconds, CPU seconds and peak resident memory; an error
    when it fails. Started by a small Python process that reports its child's usage: a child forked from this
    process would count this process's resident memory at the fork (Linux keeps the larger peak across exec)."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURED, sys.executable, "-m", "govlake.cli", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    secs = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"govlake {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}")
    usage = json.loads(done.stderr.strip().splitlines()[-1])
    return {"seconds": round(secs, 2), "rows_per_s": round(DAY_ROWS / secs), "cpu_seconds": usage["cpu"],
            "peak_rss_mib": round(usage["maxrss_kib"] / 1024)}


_MEASURED = """import json, resource, subprocess, sys
code = subprocess.run(sys.argv[1:], check=False).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"cpu": round(usage.ru_utime + usage.ru_stime, 2), "maxrss_kib": usage.ru_maxrss}), file=sys.stderr)
sys.exit(code)"""


def _day_export(city: Path, scratch: Path, rows: int, as_of: dt.date, *, prefix: str = "day2_",
                mark: str = "罚补〔") -> None:
    """Generate ``rows`` new penalty records for ``as_of`` and drop them in the inbox as new files (named
    ``prefix`` + the generator's name; the decision numbers' 罚〔 made ``mark``, so that they are new decisions).
    The decisions are the same whatever ``as_of`` (one seed): a second call with another date and the same mark
    re-sends them, dated differently."""
    from govlake.generate import generate_city

    generate_city(scratch, only="credit.penalty", rows=rows, seed=4242, as_of=as_of)
    for path in (scratch / "credit" / "penalty").glob("*.csv"):
        data = path.read_bytes()
        encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "gbk"
        text = data.decode(encoding).replace("罚〔", mark)   # new decisions, not corrections
        (city / "credit" / "penalty" / f"{prefix}{path.name}").write_bytes(text.encode(encoding))
    shutil.rmtree(scratch)


def _engine_env(engine: str, tmp: Path) -> dict[str, str]:
    """The child's environment for ``engine``; on ``cluster``, starts the cluster (stopped by :func:`main`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_SPARK_") and k != "GOVLAKE_ENGINE"}
    if engine == "duckdb":
        return env
    # local[2] runs its tasks in the driver's JVM: Spark's default 1g is too small for 1M rows
    env |= {"GOVLAKE_ENGINE": "spark", "GOVLAKE_SPARK_MASTER": "local[2]", "GOVLAKE_SPARK_DRIVER_MEMORY": "4g"}
    if engine == "cluster":
        started = subprocess.run(
            [sys.executable, str(REPO / "infra" / "spark_cluster.py"), "start", "--dir", str(tmp / "cluster"),
             "--workers", CLUSTER["workers"], "--worker-cores", CLUSTER["worker_cores"],
             "--worker-memory", CLUSTER["worker_memory"], "--master-port", _free_port(), "--ui-port", _free_port(),
             "--worker-ui-port", "0", "--stop-with", str(os.getpid())],
            capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise SystemExit(f"the benchmark's Spark cluster did not start:\n{started.stderr[-3000:]}")
        env |= {"GOVLAKE_SPARK_MASTER": started.stdout.strip().splitlines()[-1], "GOVLAKE_SPARK_DRIVER_MEMORY": "2g",
                "GOVLAKE_SPARK_EXECUTOR_MEMORY": CLUSTER["executor_memory"], "GOVLAKE_SPARK_EXECUTOR_CORES": "1",
                "GOVLAKE_SPARK_CORES_MAX": CLUSTER["workers"]}
    return env


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _stop_cluster(tmp: Path) -> None:
    if (tmp / "cluster").exists():
        subprocess.run([sys.executable, str(REPO / "infra" / "spark_cluster.py"), "stop",
                        "--dir", str(tmp / "cluster")], capture_output=True, check=False)


REPO = Path(__file__).resolve().parent.parent
LOGS = REPO / "var" / "bench"
"""Each run's stderr (the pipeline's log, Spark's), kept: var/bench/<engine>-<rows>.log."""


def main(engines: list[str], sizes: list[int]) -> None:
    print(f"govlake benchmark on {os.cpu_count()} cores; engines: {engines}; sizes: {sizes}")
    reports = {(engine, rows): report for engine in engines for rows, report in _engine(engine, sizes).items()}
    if len(engines) > 1:
        for rows in sizes:
            _compare(engines, rows, {e: reports[(e, rows)] for e in engines})


def _compare(engines: list[str], rows: int, reports: dict[str, dict]) -> None:
    """Seconds per stage on each engine at ``rows``, and each engine's time as a multiple of the first's."""
    first = engines[0]
    print(f"\n== {rows:,} penalty records: seconds per stage, and × {first}")
    print(f"{'stage':<50}" + "".join(f"{e:>18}" for e in engines))
    times = {e: {s["stage"]: s["seconds"] for s in reports[e]["stages"]} for e in engines}
    for stage in dict.fromkeys(name for e in engines for name in times[e]):
        cells = []
        for e in engines:
            secs, base = times[e].get(stage), times[first].get(stage)
            ratio = f" ({secs / base:.1f}×)" if e != first and secs is not None and base else ""
            cells.append(f"{'-' if secs is None else secs}{ratio}")
        print(f"{stage:<50}" + "".join(f"{c:>18}" for c in cells))
    totals = {e: _pipeline_seconds(reports[e]) for e in engines}
    print(f"{'ingest → extract (the first run)':<50}" + "".join(
        f"{f'{totals[e]:.1f}' + (f' ({totals[e] / totals[first]:.1f}×)' if e != first else ''):>18}" for e in engines))


def _pipeline_seconds(report: dict) -> float:
    """Seconds of the first run's pipeline stages: ingest to extract (not generate, the floor, Spark's start-up,
    the days)."""
    return sum(s["seconds"] for s in report["stages"]
               if not s["stage"].startswith(("generate", "start-up", "floor", "day:", "re-sent day:", "operator's")))


REPLY = "govlake-bench: "
"""How a child's line to its parent begins (:func:`_child`): what the pipeline prints on standard output is not
one."""


def _child(steps: Iterator[str]) -> None:
    """The child's side of :func:`_engine`: each line on standard input runs ``steps`` to its next pause, answered
    by a line ``REPLY {"done": <pause>}``, and to its end by ``REPLY <the report>``."""
    for _command in sys.stdin:
        try:
            reply = {"done": next(steps)}
        except StopIteration as end:
            print(REPLY + json.dumps(end.value), flush=True)
            return
        print(REPLY + json.dumps(reply), flush=True)


class _Size:
    """One size's child process (:func:`run_one` behind :func:`_child`), its log in var/bench/."""

    def __init__(self, engine: str, rows: int, stack: contextlib.ExitStack):
        self.engine, self.rows = engine, rows
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="govlake-bench-")))
        self.log = LOGS / f"{engine}-{rows}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        stack.callback(_stop_cluster, self.tmp)
        env = _engine_env(engine, self.tmp)
        err = stack.enter_context(open(self.log, "w"))  # noqa: SIM115 - closed by the stack
        self.proc = stack.enter_context(subprocess.Popen(
            [sys.executable, __file__, "--child", str(rows), str(self.tmp), engine], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=err, text=True, env=env))
        stack.callback(self.proc.kill)

    def step(self) -> dict:
        """Run the child to its next pause (or its end: the report)."""
        self.proc.stdin.write("next\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        code = self.proc.wait()
        # the Python traceback and the JVM's messages, not the JVM's stack frames
        lines = [x for x in self.log.read_text(errors="replace").splitlines() if not x.startswith(("\tat ", "\t..."))]
        print("\n".join(lines[-60:]))
        raise SystemExit(f"benchmark of {self.rows:,} rows on {self.engine} failed (exit {code}); its log: {self.log}")


def _engine(engine: str, sizes: list[int]) -> dict[int, dict]:
    """Every size on ``engine``, each in a process of its own (its memory its own): the first runs one after the
    other, then the day's runs of the sizes in turn (1 million, 10 million, 1 million, …), so that the day at
    each size is measured on the same minutes of the machine, whose speed moves by the hour; then each size's
    re-sent and operator's days. Prints each size's figures; returns the reports by size."""
    with contextlib.ExitStack() as stack:
        children = [_Size(engine, rows, stack) for rows in sizes]
        for child in children:
            child.step()  # the first run
        for _ in range(DAY_RUNS):
            for child in children:
                child.step()  # one run of the day
        reports = {child.rows: child.step() for child in children}
    for rows, report in reports.items():
        _print(engine, rows, report)
    return reports


def _print(engine: str, rows: int, report: dict) -> None:
    print(f"\n== {engine}: {rows:,} penalty records (silver {report['silver']:,}, quarantined "
          f"{report['quarantined']:,}, duplicates {report['duplicates']:,})")
    jvm = engine != "duckdb"
    floor_s = next((s["seconds"] for s in report["stages"] if s["stage"].startswith("floor")), None)
    print(f"{'stage':<50}{'rows':>12}{'seconds':>10}{'× floor':>9}{'rows/s':>12}{'CPU s':>9}{'peak RSS MiB':>14}"
          + (f"{'driver JVM':>12}{'executor':>10}" if jvm else ""))
    for s in report["stages"]:
        ratio = f"{s['seconds'] / floor_s:.2f}" if floor_s else "-"
        jvms = f"{s.get('driver_jvm', 0):>12,}{s.get('executor_jvm', 0):>10,}" if jvm else ""
        runs = f"   median of {len(s['runs'])}: {' / '.join(map(str, s['runs']))}" if "runs" in s else ""
        print(f"{s['stage']:<50}{s['rows']:>12,}{s['seconds']:>10}{ratio:>9}{s['rows_per_s'] or 0:>12,}"
              f"{s.get('cpu_seconds', 0):>9}{s['peak_rss_mib']:>14,}{jvms}{runs}")
    print(f"peak resident memory of the pipeline's stages: {report['peak_rss_mib']:,} MiB (Python); "
          f"of the re-sent day's: {report['resent_peak_rss_mib']:,} MiB")
    if floor_s:
        print(f"end to end (ingest → extract) {_pipeline_seconds(report):.1f} s = "
              f"{_pipeline_seconds(report) / floor_s:.1f}× the floor ({floor_s} s)")
    day = report["day"]
    print(f"day of {day['rows']:,} records: this run {day['run']}; credit re-derived {day['rederived']}; "
              f"withdrawn {day['withdrawn']}; credit seconds per phase {day['credit_seconds']}")
    resent = report["resent_day"]
    print(f"re-sent day (the day's decisions again, dated a day later): {resent['run']}; credit re-derived "
          f"{resent['rederived']}; withdrawn {resent['withdrawn']}")
    cli = [s for s in report["stages"] if s["stage"].startswith("operator's")]
    if cli:
        print(f"operator's day (new decisions; govlake ingest, then govlake run, a process each): "
              f"{' + '.join(str(s['seconds']) for s in cli)} = {sum(s['seconds'] for s in cli):.1f} s, "
              f"peak {max(s['peak_rss_mib'] for s in cli):,} MiB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(run_one(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--floor":
        print(json.dumps(_floor_child(Path(sys.argv[2]))))
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--engine", action="append", choices=ENGINES,
                            help="duckdb (default), spark (local[2]) or cluster; repeat for several")
        parser.add_argument("sizes", nargs="*", type=int, help="penalty records (default 1000000 10000000)")
        args = parser.parse_args()
        main(args.engine or ["duckdb"], args.sizes or [1_000_000, 10_000_000])
