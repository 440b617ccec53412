"""Benchmark: generate N penalty records, run every stage, then one incremental day of 10,000 more.

Usage: uv run python infra/bench.py [N ...]        (default: 1000000 10000000)

Each size runs in its own process so that its peak resident memory (ru_maxrss) is its own;
the figures show whether memory grows with the input. Outputs go to a temporary GOVLAKE_VAR.

The day: 10,000 new penalty records (generated with the next business date and another seed, their
decision numbers moved to a namespace of their own so that they are new decisions) land as one more
export; ingest, process and the credit step then work incrementally, so their time should follow
the day's records, not N. gold (法人库) and the extract are rebuilt in full and are shown apart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(rows: int, workdir: Path) -> dict:
    """Runs inside the child process."""
    os.environ["GOVLAKE_VAR"] = str(workdir / "var")
    os.environ["GOVLAKE_INBOX"] = str(workdir / "city")
    from govlake import pipeline
    from govlake.config import get_settings
    from govlake.generate import generate_city

    settings = get_settings()
    stages = []

    def stage(name, fn, n):
        t = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - t
        stages.append({"stage": name, "rows": n, "seconds": round(secs, 2),
                       "rows_per_s": round(n / secs) if secs else None, "peak_rss_mib": round(_peak_mib())})
        return out

    stage("generate (GBK/UTF-8 CSV)", lambda: generate_city(settings.city, only="credit.penalty", rows=rows), rows)
    stage("ingest → bronze", lambda: pipeline.ingest("credit.penalty", settings=settings), rows)
    result = stage("standardize + validate (GX) → silver/quarantine",
                   lambda: pipeline.process("credit.penalty", settings=settings), rows)
    stage("gold", lambda: pipeline.gold(settings=settings), result.silver)
    stage("credit (first run: every record)", lambda: pipeline.credit(settings=settings), result.silver)
    stage("extract", lambda: pipeline.extract(settings=settings), result.silver)

    day_rows = DAY_ROWS
    next_day = settings.today + dt.timedelta(days=1)
    day = dataclasses.replace(settings, as_of=next_day)
    _day_export(settings.city, workdir / "day", day_rows, next_day)
    stage("day: ingest → bronze", lambda: pipeline.ingest("credit.penalty", settings=day), day_rows)
    day_result = stage("day: standardize + validate → merge into silver",
                       lambda: pipeline.process("credit.penalty", settings=day), day_rows)
    stage("day: gold (法人库 rebuilt in full)", lambda: pipeline.gold(settings=day), day_result.silver)
    credit = stage("day: credit (incremental merge)", lambda: pipeline.credit(settings=day), day_rows)
    stage("day: extract (rebuilt in full)", lambda: pipeline.extract(settings=day), day_result.silver)
    return {"rows": rows, "silver": result.silver, "quarantined": result.quarantined,
            "duplicates": result.duplicates, "stages": stages, "peak_rss_mib": round(_peak_mib()),
            "day": {"rows": day_rows, "run": dataclasses.asdict(day_result.run), "rederived": credit.rederived,
                    "withdrawn": credit.withdrawn, "credit_seconds": credit.seconds}}


DAY_ROWS = 10_000


def _day_export(city: Path, scratch: Path, rows: int, as_of: dt.date) -> None:
    """Generate ``rows`` new penalty records for ``as_of`` and drop them in the inbox as new files."""
    from govlake.generate import generate_city

    generate_city(scratch, only="credit.penalty", rows=rows, seed=4242, as_of=as_of)
    for path in (scratch / "credit" / "penalty").glob("*.csv"):
        data = path.read_bytes()
        encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "gbk"
        text = data.decode(encoding).replace("罚〔", "罚补〔")   # new decisions, not corrections
        (city / "credit" / "penalty" / f"day2_{path.name}").write_bytes(text.encode(encoding))
    shutil.rmtree(scratch)


def main(sizes: list[int]) -> None:
    print(f"govlake benchmark on {os.cpu_count()} cores; sizes: {sizes}")
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="govlake-bench-") as tmp:
            out = subprocess.run([sys.executable, __file__, "--child", str(rows), tmp],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(out.stdout[-2000:], out.stderr[-4000:])
                raise SystemExit(f"benchmark of {rows:,} rows failed")
            report = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\n== {rows:,} penalty records (silver {report['silver']:,}, quarantined "
              f"{report['quarantined']:,}, duplicates {report['duplicates']:,})")
        print(f"{'stage':<50}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MiB':>14}")
        for s in report["stages"]:
            print(f"{s['stage']:<50}{s['rows']:>12,}{s['seconds']:>10}{s['rows_per_s'] or 0:>12,}"
                  f"{s['peak_rss_mib']:>14,}")
        print(f"peak resident memory of the whole run: {report['peak_rss_mib']:,} MiB")
        day = report["day"]
        print(f"day of {day['rows']:,} records: this run {day['run']}; credit re-derived {day['rederived']}; "
              f"withdrawn {day['withdrawn']}; credit seconds per phase {day['credit_seconds']}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(run_one(int(sys.argv[2]), Path(sys.argv[3]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000])
