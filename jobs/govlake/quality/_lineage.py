"""What the process step reads and writes, for lineage: ``bronze.<slug>`` (+ catalog/departments.yml
for ``_dept``) → ``silver.<slug>`` and ``quarantine.<slug>``, column lineage from the standardize model
the step runs, quality assertions from the run's rows in ``meta/validation_results``."""

from __future__ import annotations

import datetime as dt

import pyarrow.compute as pc

from govlake import storage
from govlake.catalog import Resource, get_catalog
from govlake.config import Settings
from govlake.contracts import bronze_schema, silver_schema
from govlake.lineage import (
    DIRECT,
    Assertion,
    Dataset,
    JobPlan,
    column_lineage,
    column_sources,
    describe,
    file_dataset,
    lake_table,
)
from govlake.transform import DUCKDB, StagingRenderer


def lineage_plan(settings: Settings, code: str, *, rebuild: bool = False) -> JobPlan:
    """The process step of ``code``: bronze → silver + quarantine."""
    catalog = get_catalog(settings.catalog_dir)
    res = catalog.resource(code)
    sql = StagingRenderer(catalog, DUCKDB, settings).render(res)   # the models' dialect, whatever the engine
    bronze = lake_table(settings, "bronze", res.slug)
    departments = file_dataset(settings.catalog_dir / "departments.yml")
    bronze_columns = bronze_schema(res).names
    staged = column_sources(sql, {f"bronze_{res.slug}": bronze_columns, "ref_department": ["code", "uscc"]})
    refs = {f"bronze_{res.slug}": bronze, "ref_department": departments}
    silver_columns = set(silver_schema(res).names)
    silver_lineage = column_lineage({c: s for c, s in staged.items() if c in silver_columns}, refs, identity=True)
    quarantine_lineage = {c: {(bronze, c): DIRECT} for c in bronze_columns}
    quarantine_lineage |= {c: v for c, v in silver_lineage.items() if c not in quarantine_lineage}
    inputs = [Dataset(bronze, owner=res.provider, description=f"{describe(res)}: raw rows")]
    if any(ref is departments for sources in silver_lineage.values() for ref, _ in sources):
        inputs.append(Dataset(departments, owner="dsj", description="Departments of the catalog (code, uscc)"))
    outputs = [
        Dataset(lake_table(settings, "silver", res.slug), owner=res.provider, lineage=silver_lineage,
                overwrite=rebuild, description=f"{describe(res)}: {res.grain}"),
        Dataset(lake_table(settings, "quarantine", res.slug), owner=res.provider, lineage=quarantine_lineage,
                overwrite=rebuild, description=f"{describe(res)}: rejected rows with the rules they failed"),
    ]
    return JobPlan(
        name=f"process.{code}", description=f"Standardize and validate {describe(res)}: bronze → silver + "
        "quarantine (rules from the catalog and expectations/, checked by Great Expectations)",
        inputs=inputs, outputs=outputs, owner=res.provider, sql=sql, tags={"resource": code},
        finish=lambda p, result, error, run_id: _finish(settings, res, p, run_id))


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


def _finish(settings: Settings, res: Resource, plan: JobPlan, run_id: str) -> None:
    plan.inputs[0].assertions = quality_assertions(settings, res.code, run_id)
