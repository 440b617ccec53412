"""How long `govlake report` takes over a year of daily run history.

Builds a small city (generate + ingest + run, as tests/test_pipeline.py does), then appends 365 daily
runs of history to meta/validation_results, meta/reconciliation and meta/kpi_history, copied from the
city's own first run with the run id, dates and failing counts varied (one Delta commit per run and
table, as the daily DAG runs write them), and times `govlake report` (the CLI, PDF included).

    uv run python infra/bench_report.py [--days 365] [--scale 2000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from govlake import pipeline, storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.generate import generate_city

AS_OF = dt.date(2026, 11, 20)


def _history(settings: Settings, days: int) -> dict[str, int]:
    """Append ``days`` daily runs before AS_OF, each a copy of the first run with varied figures."""
    rng = random.Random(7)
    tables = {name: storage.open_table(storage.table_path(settings, "meta", name)).to_pyarrow_table()
              for name in ("validation_results", "reconciliation", "kpi_history")}
    stamp = {"validation_results": "validated_at", "reconciliation": "checked_at", "kpi_history": "recorded_at"}
    written = dict.fromkeys(tables, 0)
    for day in range(days, 0, -1):
        date = AS_OF - dt.timedelta(days=day)
        at = dt.datetime.combine(date, dt.time(2, 0), tzinfo=dt.UTC)
        run_id = f"bench-{date:%Y%m%d}"
        for name, table in tables.items():
            rows = table.to_pylist()
            for r in rows:
                r["run_id"] = run_id
                r[stamp[name]] = at
                if name == "validation_results" and r["failed"]:
                    r["failed"] = max(0, r["failed"] + rng.randint(-2, 2))
                elif name == "reconciliation":
                    r["new_quarantined"] = max(0, (r["new_quarantined"] or 0) + rng.randint(-3, 3))
                elif name == "kpi_history":
                    r["as_of"] = date
                    if r["period"].startswith("as of "):
                        r["period"] = f"as of {date}"
                    if r["value"] is not None and 0 < r["value"] <= 1:
                        r["value"] = min(1.0, max(0.0, r["value"] + rng.uniform(-0.02, 0.02)))
            storage.write_table(storage.table_path(settings, "meta", name),
                                pa.Table.from_pylist(rows, schema=table.schema), mode="append", run_id=run_id)
            written[name] += len(rows)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scale", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="Build in this folder and keep it (default a temporary one).")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="govlake-bench-report-"))
    settings = Settings(var=root / "var", inbox=root / "inbox", as_of=AS_OF)
    t0 = time.perf_counter()
    generate_city(settings.city, scale=args.scale, seed=5, as_of=AS_OF)
    for code in get_catalog(settings.catalog_dir).resources:
        pipeline.ingest(code, settings=settings)
    pipeline.run(settings=settings, run_id="bench-city")
    print(f"city (scale {args.scale}) built in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    written = _history(settings, args.days)
    print(f"history: {args.days} daily runs appended in {time.perf_counter() - t0:.1f}s: "
          + ", ".join(f"meta/{k} +{v:,} rows" for k, v in written.items()))
    for name in written:
        t = storage.open_table(storage.table_path(settings, "meta", name))
        print(f"  meta/{name}: {t.to_pyarrow_dataset().count_rows():,} rows in {len(t.file_uris())} files")
    env = dict(os.environ, GOVLAKE_VAR=str(settings.var), GOVLAKE_INBOX=str(settings.inbox),
               GOVLAKE_AS_OF=AS_OF.isoformat())
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "govlake.cli", "report"], env=env, check=True)
    seconds = time.perf_counter() - t0
    site = settings.reports / "quality"
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    print(f"govlake report over {args.days} runs of history: {seconds:.1f}s wall (CLI, PDF included); "
          f"{sum(1 for _ in site.rglob('*.html'))} pages, {size / 1e6:.1f} MB in {site}")


if __name__ == "__main__":
    main()
