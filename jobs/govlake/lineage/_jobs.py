"""The lineage plans of govlake's jobs: what ingest, process, gold and extract read and write.

- ``ingest.<resource>``: the department's files or database table → ``bronze.<slug>``; each
  bronze column from the source header (or column) the ingest matcher maps to it.
- ``process.<resource>``: ``bronze.<slug>`` (+ catalog/departments.yml for ``_dept``) →
  ``silver.<slug>`` and ``quarantine.<slug>``; column lineage from the catalog-driven standardize
  model (sql/staging/standardize.sql.j2 rendered by govlake.transform); quality assertions from
  ``meta/validation_results`` of the run.
- ``gold``: a parent run of one ``gold.<table>`` run per gold table, each reading the silver tables
  its model (sql/gold, ``int_*`` models resolved through) reads; column lineage from the SQL.
- ``extract``: the gold tables → ``var/extracts/analyst.duckdb`` (fields ``<table>.<column>``;
  masked columns marked ``masking``, withheld ones absent).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc

from govlake import storage
from govlake.catalog import Resource, get_catalog
from govlake.config import Settings
from govlake.lineage._columns import Sources, column_sources, compose, tables_read
from govlake.lineage._emit import Assertion, Dataset, JobPlan
from govlake.lineage._naming import LAYERS, DatasetRef, db_table, file_dataset, lake_table
from govlake.lineage._sources import db_fields, file_fields, header_columns
from govlake.lineage._stats import delta_schema

DIRECT = ("DIRECT", "IDENTITY", False)
TRANSFORMED = ("DIRECT", "TRANSFORMATION", False)
MASKED = ("DIRECT", "TRANSFORMATION", True)
CONDITIONAL = ("INDIRECT", "CONDITIONAL", False)


def _lineage(sources: dict[str, Sources], refs: dict[str, DatasetRef], *, identity: bool = False
             ) -> dict[str, dict[tuple[DatasetRef, str], tuple[str, str | None, bool]]]:
    """Column lineage with input tables mapped to datasets (tables without one are left out)."""
    out = {}
    for column, found in sources.items():
        mapped = {}
        for (table, col), direct in found.items():
            if table in refs:
                kind = (DIRECT if identity and col == column else TRANSFORMED) if direct else CONDITIONAL
                mapped[(refs[table], col)] = kind
        if mapped:
            out[column] = mapped
    return out


def _describe(resource: Resource) -> str:
    return f"{resource.name} ({resource.name_en}), {resource.code}"


# ---- ingest -------------------------------------------------------------------------------

def ingest_plan(settings: Settings, code: str, files: list[Path] | None) -> JobPlan:
    from govlake.ingest import discover

    res = get_catalog(settings.catalog_dir).resource(code)
    if res.source.kind == "db":
        sources = [db_table(settings.db_url, res.source.table or "")]
    else:
        paths = files if files is not None else discover(settings.city, res.source.pattern or "")
        sources = [file_dataset(p) for p in paths]
    bronze = Dataset(lake_table(settings, "bronze", res.slug), owner=res.provider,
                     description=f"{_describe(res)}: raw rows as sent (append-only)")
    plan = JobPlan(
        name=f"ingest.{code}", description=f"Land {_describe(res)} from {res.source.kind} in bronze",
        inputs=[Dataset(s, owner=res.provider) for s in sources], outputs=[bronze], owner=res.provider,
        tags={"resource": code}, finish=lambda p, result, error, _: _ingest_finish(settings, res, p, result, error))
    return plan


def _ingest_finish(settings: Settings, res: Resource, plan: JobPlan, result, error) -> None:
    """Inputs: the sources landed by this run, each bronze column from the header that fed it."""
    result = result if result is not None else getattr(error, "result", None)
    if result is None:
        return
    inputs, lineage = [], {}
    for batch in result.batches:
        if batch.status != "landed":
            continue
        if batch.source.startswith("db:"):
            ref = db_table(settings.db_url, res.source.table or "")
            typed = db_fields(settings.db_url, res.source.table or "")
            headers = [name for name, _ in typed]
        else:
            ref = file_dataset(batch.source)
            headers = file_fields(Path(batch.source), res)
            typed = [(h, None) for h in headers]
        inputs.append(Dataset(ref, fields=typed or None, owner=res.provider, description=_describe(res)))
        columns, extras = header_columns(res, headers)
        for column, header in columns.items():
            lineage.setdefault(column, {})[(ref, header)] = DIRECT
        for header in extras:
            lineage.setdefault("_extra", {})[(ref, header)] = TRANSFORMED
    plan.inputs = inputs
    plan.outputs[0].lineage = lineage


# ---- process ------------------------------------------------------------------------------

def process_plan(settings: Settings, code: str, *, rebuild: bool = False) -> JobPlan:
    from govlake.contracts import bronze_schema, silver_schema
    from govlake.engine import get_engine
    from govlake.transform import StagingRenderer

    catalog = get_catalog(settings.catalog_dir)
    res = catalog.resource(code)
    sql = StagingRenderer(catalog, get_engine(settings).dialect, settings).render(res)
    bronze = lake_table(settings, "bronze", res.slug)
    departments = file_dataset(settings.catalog_dir / "departments.yml")
    bronze_columns = bronze_schema(res).names
    staged = column_sources(sql, {f"bronze_{res.slug}": bronze_columns, "ref_department": ["code", "uscc"]})
    refs = {f"bronze_{res.slug}": bronze, "ref_department": departments}
    silver_columns = set(silver_schema(res).names)
    silver_lineage = _lineage({c: s for c, s in staged.items() if c in silver_columns}, refs, identity=True)
    quarantine_lineage = {c: {(bronze, c): DIRECT} for c in bronze_columns}
    quarantine_lineage |= {c: v for c, v in silver_lineage.items() if c not in quarantine_lineage}
    inputs = [Dataset(bronze, owner=res.provider, description=f"{_describe(res)}: raw rows")]
    if any(ref is departments for sources in silver_lineage.values() for ref, _ in sources):
        inputs.append(Dataset(departments, owner="dsj", description="Departments of the catalog (code, uscc)"))
    outputs = [
        Dataset(lake_table(settings, "silver", res.slug), owner=res.provider, lineage=silver_lineage,
                overwrite=rebuild, description=f"{_describe(res)}: {res.grain}"),
        Dataset(lake_table(settings, "quarantine", res.slug), owner=res.provider, lineage=quarantine_lineage,
                overwrite=rebuild, description=f"{_describe(res)}: rejected rows with the rules they failed"),
    ]
    return JobPlan(
        name=f"process.{code}", description=f"Standardize and validate {_describe(res)}: bronze → silver + "
        "quarantine (rules from the catalog and expectations/, checked by Great Expectations)",
        inputs=inputs, outputs=outputs, owner=res.provider, sql=sql, tags={"resource": code},
        finish=lambda p, result, error, run_id: _process_finish(settings, res, p, run_id))


def quality_assertions(settings: Settings, code: str, run_id: str, *, since: dt.datetime | None = None
                       ) -> list[Assertion]:
    """The rule results of ``run_id`` for resource ``code`` in meta/validation_results."""
    table = storage.open_table(storage.table_path(settings, "meta", "validation_results"))
    if table is None:
        return []
    rows = table.to_pyarrow_dataset().to_table(
        filter=(pc.field("run_id") == run_id) & (pc.field("resource") == code)).to_pylist()
    if since is not None:
        rows = [r for r in rows if r["validated_at"] is None or r["validated_at"] >= since] or rows
    if rows:
        latest = max(r["validated_at"] for r in rows if r["validated_at"] is not None)
        rows = [r for r in rows if r["validated_at"] == latest]
    columns = {i.column for i in get_catalog(settings.catalog_dir).resource(code).items}
    out = []
    for r in rows:
        kind, _, rest = r["rule_id"].partition(".")
        out.append(Assertion(
            name=r["rule_id"], assertion=kind, success=bool(r["success"]),
            column=rest if rest in columns else None, severity=r["severity"],
            description=r["description_en"], actual=f"{r['failed']} of {r['rows_checked']} rows failed"))
    return out


def _process_finish(settings: Settings, res: Resource, plan: JobPlan, run_id: str) -> None:
    plan.inputs[0].assertions = quality_assertions(settings, res.code, run_id)


# ---- gold ---------------------------------------------------------------------------------

def _lake_view(settings: Settings, view: str) -> DatasetRef | None:
    """``silver_amr_enterprise`` → the lake table silver/amr_enterprise (any layer), when it exists."""
    layer, _, name = view.partition("_")
    if layer in LAYERS and name and storage.open_table(settings.table_path(layer, name)) is not None:
        return lake_table(settings, layer, name)
    return None


def gold_plan(settings: Settings) -> JobPlan:
    from govlake.contracts import silver_schema
    from govlake.gold import GOLD_TABLES, MODEL_ORDER, model_sql
    from govlake.transform import model_header

    catalog = get_catalog(settings.catalog_dir)
    schema: dict[str, list[str]] = {f"silver_{r.slug}": silver_schema(r).names for r in catalog.resources.values()}
    refs = {f"silver_{r.slug}": lake_table(settings, "silver", r.slug) for r in catalog.resources.values()}
    models: dict[str, dict[str, Sources]] = {}
    reads: dict[str, set[str]] = {}
    children, errors = [], []
    for name in MODEL_ORDER:
        try:
            sql = model_sql(settings, name, catalog)
            read = tables_read(sql)
            for view in read:
                if view not in schema and view not in models and (ref := _lake_view(settings, view)):
                    refs[view] = ref
                    schema[view] = [c for c, _ in delta_schema(ref.path) or []]  # type: ignore[arg-type]
            sources = compose(column_sources(sql, {**schema, **{m: list(c) for m, c in models.items()}}), models)
            models[name] = sources
            schema[name] = list(sources)
            reads[name] = set().union(*(reads.get(v, {v}) for v in read)) if read else set()
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if name not in GOLD_TABLES:
            continue
        header = model_header(sql)
        out = Dataset(lake_table(settings, "gold", name), owner=header.owner, overwrite=True,
                      lineage=_lineage(sources, refs, identity=True),
                      description=f"{name}: {header.grain}; key {' + '.join(header.key)}")
        inputs = [Dataset(refs[v]) for v in sorted(reads[name]) if v in refs]
        children.append(JobPlan(name=f"gold.{name}", description=f"Gold model sql/gold/{name}: {header.grain}",
                                inputs=inputs, outputs=[out], owner=header.owner, sql=sql, job_type="QUERY"))
    return JobPlan(name="gold", description="Build the gold tables (法人库, 双公示 publications, …) from silver; "
                   "one child run per gold table", owner="dsj", children=children, errors=errors)


# ---- extract ------------------------------------------------------------------------------

def extract_plan(settings: Settings) -> JobPlan:
    from govlake import gold
    from govlake.extract import EXTRACT_NAME, release_sql

    docs = gold.table_docs(settings)
    target = file_dataset(settings.extracts / EXTRACT_NAME)
    inputs, lineage = [], {}
    for name in getattr(gold, "PUBLIC_TABLES", gold.GOLD_TABLES):
        ref = lake_table(settings, "gold", name)
        inputs.append(Dataset(ref))
        doc = docs.get(name)
        for column, _type in delta_schema(ref.path) or []:  # type: ignore[arg-type]
            column_doc = doc.columns.get(column) if doc else None
            expr = release_sql(column_doc) if column_doc else None
            if expr is None:
                continue  # withheld from the extract
            kind = MASKED if column_doc.item is not None and column_doc.item.pii else (
                DIRECT if expr == f'"{column}"' else TRANSFORMED)
            lineage[f"{name}.{column}"] = {(ref, column): kind}
    output = Dataset(target, fields=[(c, None) for c in lineage], owner="dsj", lineage=lineage,
                     description="Analyst extract (DuckDB): gold tables with personal data masked")
    return JobPlan(name="extract", description="Write the masked analyst extract from the gold tables",
                   inputs=inputs, outputs=[output], owner="dsj")



# ---- credit and conflicts (table level) -------------------------------------------------------

def credit_plan(settings: Settings, *, rebuild: bool = False) -> JobPlan:
    """The credit step (govlake.credit): its silver inputs and gold outputs, table level only."""
    from govlake.credit import _build as credit

    catalog = get_catalog(settings.catalog_dir)
    reads = [("silver", catalog.resource(code).slug) for code in credit.INPUTS] + [("gold", "legal_entity")]
    writes = [("gold", name) for name in CREDIT_OUTPUTS]
    return table_job_plan(settings, "credit", reads=reads, writes=writes, owner="credit", overwrite=rebuild,
                          description="双公示 lifecycles and publications, credit repairs, withdrawals and "
                          "一企一档 credit profiles (catalog/credit_rules.yml)")


CREDIT_OUTPUTS = ("penalty_record", "license_record", "penalty_publication", "license_publication",
                  "credit_repair_review", "enterprise_credit_profile", "withdrawal_log")


def conflicts_plan(settings: Settings) -> JobPlan:
    """一数一源 conflict detection (govlake.governance): silver copies and authorities → gold/conflicts."""
    catalog = get_catalog(settings.catalog_dir)
    reads = [("silver", r.slug) for r in sorted(catalog.resources.values(), key=lambda r: r.code)
             if storage.open_table(settings.table_path("silver", r.slug)) is not None]
    return table_job_plan(settings, "conflicts", reads=reads, writes=[("gold", "conflicts")], owner="dsj",
                          overwrite=False, description="Compare every department's copy of an item with the "
                          "authoritative department's value (一数一源) and merge gold/conflicts")


# ---- any job over lake tables ---------------------------------------------------------------

def table_job_plan(settings: Settings, name: str, *, reads: list[tuple[str, str]], writes: list[tuple[str, str]],
                   description: str, owner: str | None = None, sql: str | None = None,
                   overwrite: bool = True) -> JobPlan:
    """The plan of a job reading and writing lake tables, e.g. a new credit step.

    Args:
        name: job name, e.g. ``credit.repair``.
        reads: (layer, table) it reads.
        writes: (layer, table) it writes.
        description: what it does.
        owner: the owning department's code.
        sql: the model computing the (single) output; its views named ``<layer>_<table>`` (e.g.
            ``silver_credit_penalty``) are mapped to the lake tables for column lineage.
        overwrite: whether the outputs are replaced (else appended or merged).
    """
    inputs = [Dataset(lake_table(settings, layer, table)) for layer, table in reads]
    outputs = [Dataset(lake_table(settings, layer, table), owner=owner, overwrite=overwrite) for layer, table in writes]
    if sql and len(outputs) == 1:
        refs = {f"{d.ref.layer}_{d.ref.path.name}": d.ref for d in inputs if d.ref.path is not None}
        schema = {view: [c for c, _ in delta_schema(ref.path) or []] for view, ref in refs.items()}  # type: ignore[arg-type]
        outputs[0].lineage = _lineage(column_sources(sql, schema), refs, identity=True)
    return JobPlan(name=name, description=description, inputs=inputs, outputs=outputs, owner=owner, sql=sql)
