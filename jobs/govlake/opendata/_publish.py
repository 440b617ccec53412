"""Publish the open datasets: var/open/<dataset>/ (CSV, JSON, DCAT) and var/open/catalog.jsonld.

One intent of govlake.steps (consumer ``open``) under the ``publish`` lock: the sources are read at
the versions pinned when it started, so a run interrupted after writing some files is finished by the
next one with the same rows. Each dataset is written into a folder of its own for the run
(``.<dataset>@<run id>``); ``<dataset>`` is a symbolic link to it, replaced by ``os.replace`` (an
atomic rename): a reader sees the previous files or the new ones, never a mix. The catalog file is
written beside and renamed over the old one the same way. Then the run's figures are appended to
meta/open_data. A run killed in between (fault label ``open:files``) is finished by the next one: its
intent is replayed, the files written again from the same table versions, its log rows appended once.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from govlake import lineage, locks, objectstore, steps, storage
from govlake._faults import crash_point
from govlake.catalog import Catalog, Resource, get_catalog
from govlake.config import Settings
from govlake.contracts import OPEN_DATA
from govlake.layout import gold_path
from govlake.masking import ID15_IN_TEXT, ID_IN_TEXT, MASK, MOBILE_IN_TEXT, name_items, scrub_names_sql
from govlake.opendata._config import (
    Column,
    DatasetSpec,
    OpenConfig,
    is_identifier,
    load_config,
    quasi_identifiers,
    source_columns,
)
from govlake.opendata._kanon import LADDERS, generalize_sql, level_name, search

log = logging.getLogger(__name__)

META_TABLE = "meta/open_data"
CATALOG_FILE = "catalog.jsonld"
CSV_FILE, JSON_FILE, DCAT_FILE = "data.csv", "data.json", "dataset.jsonld"
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "spdx": "http://spdx.org/rdf/terms#",
    "govlake": "https://github.com/govlake/govlake/ns/open#",
}
MEDIA_TYPES = {CSV_FILE: "text/csv", JSON_FILE: "application/json"}
_PERIOD = {"month": "month", "quarter": "quarter", "year": "year"}


@dataclass(frozen=True)
class Closed:
    """A catalog resource that is not opened, and why."""

    resource: str
    open_type: str
    reason: str


@dataclass
class DatasetResult:
    dataset: str
    resource: str
    source_table: str
    status: str
    """``published``, or ``withheld`` (k not reachable within the suppression allowance, or no source)."""
    rows_in: int = 0
    rows_out: int = 0
    suppressed: int = 0
    k: int = 0
    max_suppression: float = 0.0
    quasi_identifiers: dict[str, str] = field(default_factory=dict)
    generalization: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    source_version: int | None = None
    node: dict[str, Any] | None = None
    """The dataset's DCAT node (published only)."""


@dataclass
class OpenResult:
    run_id: str
    folder: Path
    catalog: Path
    datasets: list[DatasetResult]
    closed: list[Closed]

    @property
    def withheld(self) -> list[DatasetResult]:
        return [d for d in self.datasets if d.status != "published"]


def plan(catalog: Catalog, config: OpenConfig) -> tuple[list[DatasetSpec], list[Closed]]:
    """The datasets to publish (by open_type and the config) and the resources left closed."""
    specs = {s.resource: s for s in config.datasets}
    opened, closed = [], []
    for code, res in sorted(catalog.resources.items()):
        spec = specs.get(code)
        if res.open_type == "不予开放":
            closed.append(Closed(code, res.open_type, "不予开放: never opened"))
        elif res.open_type == "有条件开放" and (spec is None or not spec.approved):
            closed.append(Closed(code, res.open_type, "有条件开放: no approval recorded in open_data.yml (approved:)"))
        elif spec is None:
            closed.append(Closed(code, res.open_type, "open_data.yml chooses no columns for it"))
        else:
            opened.append(spec)
    return opened, closed


def dataset_name(spec: DatasetSpec) -> str:
    return spec.resource.replace(".", "_")


def source_table(catalog: Catalog, spec: DatasetSpec) -> str:
    if spec.source == "silver":
        return f"silver/{catalog.resource(spec.resource).slug}"
    return gold_path(spec.source.removeprefix("gold/"))  # gold/<table> names the table wherever gold keeps it


def publish_open_data(*, settings: Settings, run_id: str, k: int | None = None,
                      config: OpenConfig | None = None) -> OpenResult:
    """Publish every dataset the catalog's open_type and ``catalog/open_data.yml`` allow (docs/open-data.md).

    ``k`` overrides the configured k of every dataset. A dataset whose k cannot be reached within its
    suppression allowance is withheld (its previous files removed) and reported, not raised.
    """
    config = config or load_config(settings)
    catalog = get_catalog(settings.catalog_dir)
    opened, closed = plan(catalog, config)
    tables = [source_table(catalog, s) for s in opened] + [META_TABLE]

    def body(intent: steps.Intent) -> OpenResult:
        return _publish(intent, catalog, config, opened, closed, k=intent.params.get("k"))

    return steps.run(settings, "open", lock=locks.PUBLISH, run_id=run_id,
                     params=lambda: {"as_of": settings.today.isoformat(), "k": k},
                     reads=lambda _: tables, body=body)


def _publish(intent: steps.Intent, catalog: Catalog, config: OpenConfig, opened: list[DatasetSpec],
             closed: list[Closed], *, k: int | None) -> OpenResult:
    settings, run_id = intent.settings, intent.run_id
    folder = settings.open_data
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    issued = _first_published(intent)
    results = []
    con = storage.connect(settings)
    try:
        for spec in opened:
            results.append(_dataset(con, intent, catalog, config, spec, k=k, now=now,
                                    issued=issued.get(dataset_name(spec), now)))
    finally:
        con.close()
    published = {r.dataset for r in results if r.status == "published"}
    for entry in sorted(folder.iterdir()):  # swap in the new folders; withdraw the rest
        if entry.is_symlink() and entry.name not in published:
            entry.unlink()
    for name in sorted(published):
        link = folder / f".{name}@{run_id}.link"
        link.unlink(missing_ok=True)
        link.symlink_to(f".{name}@{run_id}")
        os.replace(link, folder / name)
    document = _catalog_document(settings, catalog, config, results, now)
    objectstore.write_text(folder / CATALOG_FILE, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    crash_point("open:files")
    live = {os.readlink(e) for e in folder.iterdir() if e.is_symlink()}
    for entry in folder.iterdir():  # previous runs' folders, and a killed run's leftovers
        if entry.name.startswith(".") and entry.is_dir() and entry.name not in live:
            shutil.rmtree(entry, ignore_errors=True)
    intent.append_rows(META_TABLE, [_meta_row(r, run_id, now) for r in results], OPEN_DATA)
    return OpenResult(run_id=run_id, folder=folder, catalog=folder / CATALOG_FILE, datasets=results, closed=closed)


def _first_published(intent: steps.Intent) -> dict[str, dt.datetime]:
    """When each dataset was first published (dct:issued), from meta/open_data at the pinned version."""
    con = duckdb.connect()
    try:
        if not intent.register(con, "open_log", META_TABLE):
            return {}
        return dict(con.execute("select dataset, min(published_at) from open_log where status = 'published' "
                                "group by dataset").fetchall())
    finally:
        con.close()


def redact_sql(text_expr: str) -> str:
    """Free text for open data: 身份证号 (18 and 15 digits) and mobile numbers replaced whole by ``****``
    (the analysts' partial masks keep the division and the last digits, too much for the public)."""
    for pattern in (ID_IN_TEXT, ID15_IN_TEXT, MOBILE_IN_TEXT):
        quoted = "'" + pattern.replace("'", "''") + "'"
        text_expr = f"regexp_replace({text_expr}, {quoted}, '{MASK}', 'g')"
    return text_expr


def open_data_runs(settings: Settings, *, runs: int = 1) -> list[dict[str, Any]]:
    """The rows of meta/open_data of the last ``runs`` runs of ``govlake open``, newest run first
    (JSON columns decoded); empty when it has never run."""
    con = duckdb.connect()
    try:
        if not storage.register(con, "open_log", storage.table_path(settings, "meta", META_TABLE.split("/")[1])):
            return []
        cur = con.execute("""select * from open_log where run_id in (
                select run_id from open_log group by run_id order by max(published_at) desc limit ?)
            order by published_at desc, dataset""", [runs])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    for row in rows:
        for key in ("quasi_identifiers", "generalization", "files"):
            row[key] = json.loads(row[key]) if row[key] else None
    return rows


def lineage_plan(settings: Settings) -> lineage.JobPlan:
    """``open``: the opened datasets' sources → ``var/open/<dataset>/data.csv`` (its columns; generalized
    quasi-identifiers and scrubbed free text marked as masking) and meta/open_data."""
    catalog = get_catalog(settings.catalog_dir)
    opened, _ = plan(catalog, load_config(settings))
    inputs, outputs = [], []
    for spec in opened:
        layer, table = source_table(catalog, spec).rsplit("/", 1)
        ref = lineage.lake_table(settings, layer, table)
        inputs.append(lineage.Dataset(ref))
        columns = source_columns(settings, catalog, spec)
        qis = quasi_identifiers(spec, columns)
        fields = {c: {(ref, c): lineage.MASKED if c in qis or _is_free_text(columns[c]) or columns[c].item is None
                      else lineage.DIRECT} for c in spec.columns}
        res = catalog.resource(spec.resource)
        # named by the link, not the run's folder it points at: one dataset across runs
        path = settings.open_data.resolve() / dataset_name(spec) / CSV_FILE
        folder = lineage.file_dataset(settings.open_data)
        ref_out = lineage.DatasetRef(folder.namespace, str(path), "file", str(path), None, path)
        outputs.append(lineage.Dataset(ref_out,
                                       fields=[(c, None) for c in spec.columns], owner=res.provider, lineage=fields,
                                       description=f"Open data (k-anonymous): {res.name_en}"))
    outputs.append(lineage.Dataset(lineage.lake_table(settings, "meta", META_TABLE.split("/")[1])))
    return lineage.JobPlan(name="open", description="Publish the de-identified, k-anonymous open datasets (DCAT)",
                           inputs=inputs, outputs=outputs, owner="dsj")


def _is_free_text(column: Column) -> bool:
    item = column.item
    return item is not None and item.type == "string" and not item.code_list and not is_identifier(column)


def _dataset(con: duckdb.DuckDBPyConnection, intent: steps.Intent, catalog: Catalog, config: OpenConfig,
             spec: DatasetSpec, *, k: int | None, now: dt.datetime, issued: dt.datetime) -> DatasetResult:
    name, table = dataset_name(spec), source_table(catalog, spec)
    k = k or spec.k or config.k
    max_suppression = config.max_suppression if spec.max_suppression is None else spec.max_suppression
    columns = source_columns(intent.settings, catalog, spec)
    qis = quasi_identifiers(spec, columns)
    result = DatasetResult(dataset=name, resource=spec.resource, source_table=table, status="withheld", k=k,
                           max_suppression=max_suppression, quasi_identifiers=dict(qis),
                           source_version=intent.version(table))
    view = f"src_{name}"
    if not intent.register(con, view, table):
        result.reason = f"{table} has not been built yet"
        return result
    names = name_items([c.item for c in columns.values() if c.item is not None and c.item.column == c.name])
    selects = []
    for column in spec.columns:
        ref = f'"{column}"'
        if _is_free_text(columns[column]):
            expr = redact_sql(scrub_names_sql(ref, names))
        elif columns[column].item is None and column not in qis:  # derived in gold: scrubbed as text too
            expr = redact_sql(scrub_names_sql(f"cast({ref} as varchar)", names))
        else:
            expr = ref
        selects.append(f"{expr} as {ref}")
    con.execute(f"create or replace temp table base as select {', '.join(selects)} from {view}")
    outcome = search(con, "base", qis, k=k, max_suppression=max_suppression)
    result.rows_in = outcome.rows
    result.generalization = {c: level_name(kind, outcome.levels[c]) for c, kind in qis.items()}
    if not outcome.publishable:
        share = outcome.small_rows / outcome.rows if outcome.rows else 0
        coarsest = ", ".join(f"{c}: {result.generalization[c]}" for c in qis) or "no quasi-identifiers"
        result.suppressed = outcome.small_rows
        result.reason = (f"k={k} not reached: {outcome.small_rows} of {outcome.rows} rows ({share:.0%}) lie in "
                         f"cells smaller than k at the coarsest generalization ({coarsest}); at most "
                         f"{max_suppression:.0%} may be suppressed. Nothing is published: choose fewer "
                         "quasi-identifiers or a smaller k in open_data.yml, or wait for more rows")
        return result
    keys = ", ".join(f'"{c}"' for c in qis)
    generalized = ", ".join(
        (generalize_sql(qis[c], outcome.levels[c], c) if c in qis else f'cast("{c}" as varchar)') + f' as "{c}"'
        for c in spec.columns)
    con.execute(f"""create or replace temp table released as
        select * exclude (_n) from (select *, count(*) over ({f'partition by {keys}' if keys else ''}) as _n
                                    from (select {generalized} from base))
        where _n >= {int(k)}""")
    cur = con.execute("select * from released order by all")
    header = [d[0] for d in cur.description]
    rows = cur.fetchall()
    result.rows_out = len(rows)
    result.suppressed = outcome.rows - len(rows)
    result.status = "published"
    target = intent.settings.open_data / f".{name}@{intent.run_id}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with (target / CSV_FILE).open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    (target / JSON_FILE).write_text(json.dumps([dict(zip(header, r)) for r in rows], ensure_ascii=False, indent=1)
                                    + "\n", encoding="utf-8")
    result.files = [_file_info(target / f) for f in (CSV_FILE, JSON_FILE)]
    res = catalog.resource(spec.resource)
    result.node = _dataset_node(config, catalog, res, spec, columns, result,
                                spatial=_spatial(con, res, qis, catalog),
                                temporal=_temporal(con, qis, outcome.levels), now=now, issued=issued)
    (target / DCAT_FILE).write_text(json.dumps({"@context": _context(intent.settings, config), **result.node},
                                               ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for f in (CSV_FILE, JSON_FILE, DCAT_FILE):
        objectstore.fsync(target / f)
    return result


def _file_info(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"name": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _spatial(con: duckdb.DuckDBPyConnection, res: Resource, qis: dict[str, str], catalog: Catalog) -> list[str]:
    """Division codes covered: the published region values, else the provider's (its code's 3rd–8th characters)."""
    regions = [c for c, kind in qis.items() if kind == "region"]
    if regions:
        return [r for (r,) in con.execute(f'select distinct "{regions[0]}" from released where "{regions[0]}" '
                                          "is not null order by 1").fetchall()]
    return [catalog.department(res.provider).uscc[2:8]]


def _temporal(con: duckdb.DuckDBPyConnection, qis: dict[str, str], levels: dict[str, int]) -> tuple[str, str] | None:
    """First and last day covered by the first date quasi-identifier, at the level it is published at."""
    dates = [c for c, kind in qis.items() if kind == "date"]
    if not dates:
        return None
    column = dates[0]
    unit = _PERIOD[LADDERS["date"][levels[column]][0]]
    first, last = con.execute(f"""select min(d), max(d) from (select case
            when '{unit}' = 'month' then strptime("{column}", '%Y-%m')
            when '{unit}' = 'year' then strptime("{column}", '%Y')
            else make_date(cast(left("{column}", 4) as integer), cast(right("{column}", 1) as integer) * 3 - 2, 1)
            end as d from released where "{column}" is not null)""").fetchone()
    if first is None:
        return None
    end = (last + {"month": dt.timedelta(days=32), "quarter": dt.timedelta(days=95),
                   "year": dt.timedelta(days=370)}[unit]).replace(day=1)
    if unit == "year":
        end = end.replace(month=1)
    return first.date().isoformat(), (end.date() - dt.timedelta(days=1)).isoformat()


def _context(settings: Settings, config: OpenConfig) -> dict[str, str]:
    base = config.base_url or settings.open_data.resolve().as_uri() + "/"
    return {**CONTEXT, "@base": base}


def _lang(zh: str, en: str) -> list[dict[str, str]]:
    return [{"@value": zh, "@language": "zh"}, {"@value": en, "@language": "en"}]


def _typed(value: Any, xsd: str) -> dict[str, Any]:
    return {"@value": value, "@type": f"xsd:{xsd}"}


def _dataset_node(config: OpenConfig, catalog: Catalog, res: Resource, spec: DatasetSpec, columns: dict[str, Column],
                  result: DatasetResult, *, spatial: list[str], temporal: tuple[str, str] | None,
                  now: dt.datetime, issued: dt.datetime) -> dict[str, Any]:
    """The dcat:Dataset node of one published dataset (file names relative to its folder)."""
    provider = catalog.department(res.provider)
    prefix = f"{result.dataset}/"
    node: dict[str, Any] = {
        "@id": prefix,
        "@type": "dcat:Dataset",
        "dct:identifier": result.dataset,
        "dct:title": _lang(f"{res.name}（开放数据）", f"{res.name_en} (open data)"),
        "dct:description": _lang(
            f"{res.summary} 已去标识化：个人信息和L3/L4数据项已删除，准标识符已泛化，每种组合至少出现{result.k}次。",
            f"De-identified: personal and L3/L4 items removed, quasi-identifiers generalized so that every "
            f"combination appears at least {result.k} times."),
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": _lang(provider.name, provider.name_en),
                          "dct:identifier": provider.uscc},
        "dct:issued": _typed(issued.isoformat(), "dateTime"),
        "dct:modified": _typed(now.isoformat(), "dateTime"),
        "dct:license": {"@id": config.license},
        "dct:accrualPeriodicity": res.update_cycle,
        "dct:source": f"{result.source_table} ({res.code})",
        "dct:spatial": [{"@type": "dct:Location", "dct:identifier": code} for code in spatial],
        "dcat:distribution": [{
            "@id": prefix + f["name"],
            "@type": "dcat:Distribution",
            "dct:title": f["name"],
            "dcat:downloadURL": {"@id": prefix + f["name"]},
            "dcat:mediaType": {"@id": f"https://www.iana.org/assignments/media-types/{MEDIA_TYPES[f['name']]}"},
            "dct:format": MEDIA_TYPES[f["name"]],
            "dcat:byteSize": _typed(f["bytes"], "nonNegativeInteger"),
            "spdx:checksum": {"@type": "spdx:Checksum", "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                              "spdx:checksumValue": f["sha256"]},
        } for f in result.files],
        "govlake:kAnonymity": result.k,
        "govlake:rowsIn": result.rows_in,
        "govlake:rowsOut": result.rows_out,
        "govlake:suppressedRows": result.suppressed,
        "govlake:maxSuppression": result.max_suppression,
        "govlake:generalization": [
            {"govlake:column": c, "govlake:ladder": kind, "govlake:level": result.generalization[c]}
            for c, kind in result.quasi_identifiers.items()],
        "govlake:column": [
            {"govlake:name": c, "dct:title": _lang(columns[c].label, columns[c].label_en),
             "govlake:role": "quasi-identifier" if c in result.quasi_identifiers else
             ("identifier" if c in spec.identifiers else "attribute")} for c in spec.columns],
    }
    if temporal:
        node["dct:temporal"] = {"@type": "dct:PeriodOfTime", "dcat:startDate": _typed(temporal[0], "date"),
                                "dcat:endDate": _typed(temporal[1], "date")}
    return node


def _catalog_document(settings: Settings, catalog: Catalog, config: OpenConfig, results: list[DatasetResult],
                      now: dt.datetime) -> dict[str, Any]:
    publisher = catalog.department(config.publisher)
    return {
        "@context": _context(settings, config),
        "@id": "",
        "@type": "dcat:Catalog",
        "dct:title": _lang("政务开放数据目录", "Open government data catalog"),
        "dct:description": _lang("govlake 发布的去标识化开放数据集（k-匿名）。",
                                 "De-identified (k-anonymous) open datasets published by govlake."),
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": _lang(publisher.name, publisher.name_en),
                          "dct:identifier": publisher.uscc},
        "dct:modified": _typed(now.isoformat(), "dateTime"),
        "dct:license": {"@id": config.license},
        "dcat:dataset": [r.node for r in results if r.node is not None],
    }


def _meta_row(r: DatasetResult, run_id: str, now: dt.datetime) -> dict[str, Any]:
    return {"run_id": run_id, "dataset": r.dataset, "resource": r.resource, "source_table": r.source_table,
            "source_version": r.source_version, "status": r.status, "rows_in": r.rows_in, "rows_out": r.rows_out,
            "suppressed": r.suppressed, "k": r.k, "max_suppression": r.max_suppression,
            "quasi_identifiers": json.dumps(r.quasi_identifiers, ensure_ascii=False),
            "generalization": json.dumps(r.generalization, ensure_ascii=False), "reason": r.reason,
            "files": json.dumps(r.files, ensure_ascii=False), "published_at": now}
