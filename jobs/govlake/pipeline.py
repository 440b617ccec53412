"""The functions both the CLI and the Airflow DAGs call: one code path for every run.

Each job runs inside ``govlake.lineage.job_run`` with its lineage plan, which emits the OpenLineage
START and COMPLETE/FAIL events (docs/lineage.md); a new job does the same with its own plan.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from govlake.config import Settings, get_settings

OnStep = Callable[[str, bool], None]
"""``on_step(step, done)``: told before (``done`` False) and after (True) each step of :func:`run`."""
OnSource = Callable[[str, object], None]
"""``on_source(source, result)``: told before an ingest reads a file or database window (``result``
None) and after (its ``BatchResult``)."""


def _settings(settings: Settings | None) -> Settings:
    """The settings (from the environment when None), refused (govlake.config.SettingsError, before any
    lock or write) when their engine cannot run here."""
    from govlake.engine import get_engine

    settings = settings or get_settings()
    get_engine(settings)
    return settings


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def ingest(resource: str, *, files: list[Path] | None = None, settings: Settings | None = None,
           run_id: str | None = None, full_scan: bool = False, on_source: OnSource | None = None):
    """Land one resource in bronze: the given files, or everything new in its source (``full_scan``:
    a database source's whole table, deduplicated against bronze). ``on_source`` follows each source.

    Under lock ``ingest:<resource>`` (govlake.locks): two ingests of one resource run one after the
    other, so a file delivered twice at once lands once."""
    from govlake import locks
    from govlake.ingest import ingest_resource
    from govlake.ingest import lineage_plan as ingest_lineage

    settings = _settings(settings)
    run_id = run_id or new_run_id("ingest")
    plan = lambda: ingest_lineage(settings, resource, files)  # noqa: E731
    with locks.hold(settings, f"ingest:{resource}"), \
            _job(plan, settings=settings, run_id=run_id, name=f"ingest.{resource}") as job:
        job.result = ingest_resource(resource, files=files, settings=settings, run_id=run_id, full_scan=full_scan,
                                     on_source=on_source)
    return job.result


def process(resource: str, *, settings: Settings | None = None, run_id: str | None = None,
            as_of: dt.date | None = None, rebuild: bool = False):
    """Standardize and validate one resource: new bronze rows → silver + quarantine, reconciled.

    ``as_of`` is the business date (dates after it are in the future); default the settings'.
    ``rebuild`` reprocesses all of bronze instead of what is new since the last run.
    """
    from govlake import quality
    from govlake.quality import process_resource

    settings = _settings(settings)
    if as_of is not None:
        settings = dataclasses.replace(settings, as_of=as_of)
    run_id = run_id or new_run_id("process")
    with _job(lambda: quality.lineage_plan(settings, resource, rebuild=rebuild), settings=settings,
              run_id=run_id, name=f"process.{resource}") as job:
        job.result = process_resource(resource, settings=settings, run_id=run_id, rebuild=rebuild)
    return job.result


def gold(*, settings: Settings | None = None, run_id: str | None = None) -> dict[str, int]:
    """Build the gold tables from silver; returns rows per gold table."""
    from govlake import gold
    from govlake.gold import build_gold

    settings = _settings(settings)
    run_id = run_id or new_run_id("gold")
    with _job(lambda: gold.lineage_plan(settings), settings=settings, run_id=run_id, name="gold") as job:
        job.result = build_gold(settings=settings, run_id=run_id)
    return job.result


def themes(*, settings: Settings | None = None, run_id: str | None = None) -> dict[str, int]:
    """Build the theme libraries declared in catalog/themes.yml from their models (gold/theme/); rows per
    table."""
    from govlake import themes

    settings = _settings(settings)
    run_id = run_id or new_run_id("themes")
    with _job(lambda: themes.lineage_plan(settings), settings=settings, run_id=run_id,
              name="themes") as job:
        job.result = themes.build_themes(settings=settings, run_id=run_id)
    return job.result


def _on(settings: Settings | None, as_of: dt.date | None) -> Settings:
    """The settings (see _settings), with the business date set when one is given."""
    settings = _settings(settings)
    return settings if as_of is None else dataclasses.replace(settings, as_of=as_of)


def extract(*, settings: Settings | None = None, run_id: str | None = None, as_of: dt.date | None = None) -> Path:
    """Write the masked analyst extract; returns its path. ``as_of`` dates its withdrawal-log rows."""
    from govlake import extract
    from govlake.extract import build_extract

    settings = _on(settings, as_of)
    run_id = run_id or new_run_id("extract")
    with _job(lambda: extract.lineage_plan(settings), settings=settings, run_id=run_id,
              name="extract") as job:
        job.result = build_extract(settings=settings, run_id=run_id)
    return job.result


def returns(*, settings: Settings | None = None, run_id: str | None = None) -> dict:
    """Write each district's and department's return (回流, govlake.returns) and log the deliveries;
    ``{receiver: {"kind", "file", "tables": {table: rows}}}``."""
    from govlake.returns import build_returns

    settings = _settings(settings)
    return build_returns(settings=settings, run_id=run_id or new_run_id("return"))


def credit(*, settings: Settings | None = None, run_id: str | None = None, rebuild: bool = False,
           as_of: dt.date | None = None):
    """The credit step over what changed since its last run: 双公示 lifecycles and publications,
    repairs, withdrawals, 一企一档 profiles and scores (govlake.credit). ``as_of``: the business date
    publication periods are judged on (default the settings')."""
    from govlake import credit
    from govlake.credit import build_credit

    settings = _on(settings, as_of)
    run_id = run_id or new_run_id("credit")
    with _job(lambda: credit.lineage_plan(settings, rebuild=rebuild), settings=settings, run_id=run_id,
              name="credit") as job:
        job.result = build_credit(settings=settings, run_id=run_id, rebuild=rebuild)
    return job.result


def kpis(*, settings: Settings | None = None, run_id: str | None = None, as_of: dt.date | None = None) -> int:
    """Compute every KPI and append its values to meta/kpi_history; returns the number of values."""
    from govlake.kpi import compute_kpis, record_kpis

    settings = _on(settings, as_of)
    return record_kpis(settings, compute_kpis(settings), run_id=run_id or new_run_id("kpis"))


def open_data(*, settings: Settings | None = None, run_id: str | None = None, as_of: dt.date | None = None,
              k: int | None = None):
    """Publish the open datasets (govlake.opendata, docs/open-data.md); their figures. A dataset withheld
    because k is out of reach is in the result (``withheld``), not an error."""
    from govlake import opendata

    settings = _on(settings, as_of)
    run_id = run_id or new_run_id("open")
    with _job(lambda: opendata.lineage_plan(settings), settings=settings, run_id=run_id,
              name="open") as job:
        job.result = opendata.publish_open_data(settings=settings, run_id=run_id, k=k)
    return job.result


def conflicts(*, settings: Settings | None = None, run_id: str | None = None):
    """Compare every department's copy with its authority (一数一源) and merge gold/conflicts."""
    from govlake import governance
    from govlake.governance import detect_conflicts

    settings = _settings(settings)
    run_id = run_id or new_run_id("conflicts")
    with _job(lambda: governance.lineage_plan(settings), settings=settings, run_id=run_id,
              name="conflicts") as job:
        job.result = detect_conflicts(settings=settings, run_id=run_id)
    return job.result


def run(*, settings: Settings | None = None, run_id: str | None = None, rebuild: bool = False,
        on_step: OnStep | None = None) -> dict:
    """Everything after ingest over what has landed: process each resource, then gold, credit, the theme
    libraries, conflicts, the extract and the KPI history. ``on_step`` is told when each step starts and ends."""
    from govlake.catalog import get_catalog
    from govlake.storage import open_table, table_path

    settings = _settings(settings)
    run_id = run_id or new_run_id()
    results = {}
    for code, res in get_catalog(settings.catalog_dir).resources.items():
        if open_table(table_path(settings, "bronze", res.slug)) is not None:
            with _step(on_step, f"process {code}"):
                results[code] = process(code, settings=settings, run_id=run_id, rebuild=rebuild)
    with _step(on_step, "gold"):
        tables = gold(settings=settings, run_id=run_id)
    with _step(on_step, "credit"):
        credit_result = credit(settings=settings, run_id=run_id, rebuild=rebuild)
    with _step(on_step, "themes"):
        theme_rows = themes(settings=settings, run_id=run_id)
    with _step(on_step, "conflicts"):
        found = conflicts(settings=settings, run_id=run_id)
    with _step(on_step, "extract"):
        path = extract(settings=settings, run_id=run_id)
    with _step(on_step, "kpis"):
        recorded = kpis(settings=settings, run_id=run_id)
    return {"run_id": run_id, "resources": results, "gold": tables, "credit": credit_result, "themes": theme_rows,
            "conflicts": found,
            "extract": path, "kpi_values": recorded}


@contextlib.contextmanager
def _job(plan, *, settings: Settings, run_id: str, name: str | None = None) -> Iterator:
    """One job: its lineage run (govlake.lineage.job_run), then the memory it freed given back to the system
    (govlake.compute.release_memory), so that the next job of the same process starts light."""
    from govlake import lineage
    from govlake.compute import release_memory

    try:
        with lineage.job_run(plan, settings=settings, run_id=run_id, name=name) as job:
            yield job
    finally:
        release_memory()


@contextlib.contextmanager
def _step(on_step: OnStep | None, name: str) -> Iterator[None]:
    """Tell ``on_step`` that step ``name`` starts, and that it ended (when it did not fail)."""
    if on_step is not None:
        on_step(name, False)
    yield
    if on_step is not None:
        on_step(name, True)
