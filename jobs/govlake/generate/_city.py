"""generate_city: write the departments' exports of the demo city, and the manifest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from govlake.catalog import Catalog, get_catalog
from govlake.generate import _copies, _registry
from govlake.generate._context import AS_OF, City, make_city, skipped
from govlake.generate._court import court_frames
from govlake.generate._credit import dept_files
from govlake.generate._license import license_frames
from govlake.generate._manifest import (
    RECORDS_LIMIT,
    FileInfo,
    Manifest,
    Recorder,
    ResourceInfo,
)
from govlake.generate._penalty import penalty_frames
from govlake.generate._population import population_frames
from govlake.generate._repair import plan_repairs, repair_files, repair_frames
from govlake.generate._sharing import write_sharing_inputs
from govlake.generate._writers import CsvSink, DbSink, JsonlSink, XlsxSink

REGISTRY_FILE = "amr_registry.sqlite"
# Earlier outputs of each resource, removed before it is written again (clean=True).
_OWN = {
    "amr.enterprise": [REGISTRY_FILE],
    "tax.credit_rating": ["tax/tax_credit_rating_*.xlsx"],
    "hrss.social_insurance": ["hrss/social_insurance_*.jsonl"],
    "psb.population": ["psb/population_*.csv"],
    "credit.license": ["credit/license/*_*.csv"],
    "credit.penalty": ["credit/penalty/*_*.csv"],
    "credit.repair": ["credit/repair/*_*.csv"],
    "court.dishonest": ["court/dishonest_*.jsonl"],
}


def generate_city(out: Path, *, scale: int = 2000, seed: int = 42, defect_rate: float = 0.03,
                  only: str | None = None, rows: int | None = None, as_of: dt.date = AS_OF,
                  batch_size: int = 50_000, clean: bool = True,
                  catalog: Catalog | None = None) -> Manifest:
    """Write the demo city's department exports under ``out`` and return (and write) the manifest.

    Args:
        out: the inbox folder; created if missing. Gets ``amr_registry.sqlite``,
            ``tax/``, ``hrss/``, ``psb/``, ``credit/license/``, ``credit/penalty/``,
            ``credit/repair/``, ``court/`` and ``manifest.json``; a whole city also gets ``dsj/`` (the bureau's 事项清单
            and sharing-request log, docs/sharing-inputs.md).
        scale: about the total rows over all resources, split in fixed shares
            (``SHARES``: enterprises 15%, penalties 35%, licences 25%, population 15%,
            social insurance 8%, tax 2%; at least 20 rows each), plus credit repairs (2% of
            the penalties) and court 失信 entries (1% of the enterprises), at least 20 each.
            It also sizes the registry, population and penalties that other resources refer
            to in ``only`` mode (``only="credit.repair"`` refers to the penalties a full run
            with the same scale, seed, defect_rate, as_of and batch_size writes).
        seed: the same arguments give byte-identical files.
        defect_rate: probability of each defect kind per row, in [0, 1/12]; a row carries
            at most one defect (see ``DefectKind`` and the manifest's ``defect_kinds``).
        only: write just this resource (a catalog code such as ``credit.penalty``).

    A catalog resource the generator cannot write (a department added to the catalog after it) is
    skipped, not an error: ``manifest.skipped`` names it with a note, and nothing is written for it.
        rows: with ``only``, exactly this many rows of that resource.
        as_of: the delivery date: file names carry it, decisions precede it, and the
            ``future_date`` defect lies after it.
        batch_size: rows generated and written at a time (memory is bounded by it).
        clean: first delete earlier generated files of the resources written.
        catalog: the catalog to follow (default: the configured one).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    catalog = catalog or get_catalog()
    city, planned = make_city(scale=scale, seed=seed, defect_rate=defect_rate, as_of=as_of, only=only,
                              rows=rows, catalog=catalog)
    manifest = Manifest(seed=seed, scale=scale, defect_rate=defect_rate, as_of=as_of.isoformat(), only=only,
                        skipped=skipped(catalog, only=only))
    keep = sum(planned.values()) <= RECORDS_LIMIT
    if not keep:
        manifest.records = None
        manifest.disagreements = None
    stamp = as_of.strftime("%Y%m%d")
    for code, n in planned.items():
        manifest.resources[code] = ResourceInfo()
        if clean:
            for pattern in _OWN[code]:
                for old in out.glob(pattern):
                    old.unlink()
        for info, sink, columns, frames in _outputs(city, code, n, out, stamp, batch_size):
            recorder = Recorder(manifest, code, info, keep=keep)
            try:
                for frame in frames:
                    sink.write(frame, columns)
                    recorder.add(frame)
            finally:
                sink.close()
            recorder.close()
    if only is None:  # the bureau's own sharing inputs (事项清单, request log) go with a whole city
        write_sharing_inputs(out, catalog=catalog, seed=seed, as_of=as_of, scale=scale)
    manifest.write(out / "manifest.json")
    return manifest


def _names(city: City, code: str, columns: list[str]) -> list[str]:
    res = city.resource(code)
    return [res.item(c).name for c in columns]


def _outputs(city: City, code: str, n: int, out: Path, stamp: str, batch_size: int) -> Iterator[tuple]:
    """(file info, sink, columns, frames) per file of resource ``code``."""
    columns = [i.column for i in city.resource(code).items]
    if code == "amr.enterprise":
        info = FileInfo(REGISTRY_FILE, "sqlite", columns=columns)
        sink = DbSink(f"sqlite:///{out / REGISTRY_FILE}", _registry.TABLE, columns, index="updated_at")
        yield info, sink, columns, _registry.registry_frames(city, batch_size=batch_size, rows=n)
    elif code == "psb.population":
        path = f"psb/population_{stamp}.csv"
        header = _names(city, code, columns)
        yield (FileInfo(path, "utf-8-sig", columns=header), CsvSink(out / path, header, "utf-8-sig"), columns,
               population_frames(city, n, columns, batch_size=batch_size))
    elif code == "tax.credit_rating":
        header = _names(city, code, columns)
        for k, first, count in _copies.periods(n, city.n_ent):
            path = f"tax/tax_credit_rating_{city.as_of.year - 1 - k}.xlsx"
            sink = XlsxSink(out / path, city.resource(code).source.sheet or "Sheet1", header,
                            numbers={"year"}, dates={"rated_on"},
                            created=dt.datetime.combine(city.as_of, dt.time(9)))
            yield (FileInfo(path, "xlsx", columns=header), sink, columns,
                   _copies.tax_frames(city, k, first, count, columns, batch_size=batch_size))
    elif code == "hrss.social_insurance":
        header = _names(city, code, columns)
        numbers = {"insured_count": int, "due_amount": float, "paid_amount": float, "arrears": float}
        for k, first, count in _copies.periods(n, city.n_ent):
            path = f"hrss/social_insurance_{_copies.hrss_period(city.as_of, k)}.jsonl"
            yield (FileInfo(path, "utf-8", columns=header), JsonlSink(out / path, header, numbers), columns,
                   _copies.hrss_frames(city, k, first, count, columns, batch_size=batch_size))
    elif code == "credit.repair":
        repairs = plan_repairs(city, n, stamp, batch_size=batch_size)
        for f in repair_files(city, n, stamp):
            header = _names(city, code, f.columns)
            yield (FileInfo(f.path, f.encoding, columns=header), CsvSink(out / f.path, header, f.encoding), f.columns,
                   repair_frames(city, f, repairs.slice(f.first, f.first + f.rows), batch_size=batch_size))
    elif code == "court.dishonest":
        path = f"court/dishonest_{stamp}.jsonl"
        header = _names(city, code, columns)
        yield (FileInfo(path, "utf-8", columns=header), JsonlSink(out / path, header, {}), columns,
               court_frames(city, n, columns, batch_size=batch_size))
    else:
        folder = "credit/penalty" if code == "credit.penalty" else "credit/license"
        make = penalty_frames if code == "credit.penalty" else license_frames
        for f in dept_files(city, code, n, folder, stamp):
            header = _names(city, code, f.columns)
            sink = CsvSink(out / f.path, header, f.encoding, free_text={"facts"})
            yield FileInfo(f.path, f.encoding, columns=header), sink, f.columns, make(city, f, batch_size=batch_size)


def _registry_city(scale: int, seed: int, defect_rate: float, as_of: dt.date,
                   catalog: Catalog | None) -> City:
    city, _planned = make_city(scale=scale, seed=seed, defect_rate=defect_rate, as_of=as_of,
                               only=None, rows=None, catalog=catalog or get_catalog())
    return city


def enterprise_rows(scale: int = 2000, seed: int = 42, *, defect_rate: float = 0.03, as_of: dt.date = AS_OF,
                    batch_size: int = 50_000, catalog: Catalog | None = None) -> Iterator[dict[str, str | None]]:
    """The rows of table ``amr_enterprise`` exactly as :func:`generate_city` writes them (same
    arguments), as dicts column → text (None = NULL), in ``updated_at`` order."""
    city = _registry_city(scale, seed, defect_rate, as_of, catalog)
    yield from _registry.registry_rows(city, batch_size=batch_size)


def load_registry(url_or_engine, *, scale: int = 2000, seed: int = 42, defect_rate: float = 0.03,
                  as_of: dt.date = AS_OF, table: str = _registry.TABLE, batch_size: int = 50_000,
                  catalog: Catalog | None = None) -> int:
    """(Re)create ``table`` (all TEXT, indexed on updated_at) in a SQLAlchemy database — a URL
    or an Engine, e.g. PostgreSQL — and fill it with :func:`enterprise_rows`; returns rows."""
    city = _registry_city(scale, seed, defect_rate, as_of, catalog)
    columns = _registry.registry_columns(city)
    sink = DbSink(url_or_engine, table, columns, index="updated_at")
    total = 0
    try:
        for frame in _registry.registry_frames(city, batch_size=batch_size):
            sink.write(frame, columns)
            total += frame.n
    finally:
        sink.close()
    return total
