"""What an ingest reads and writes, for lineage: the department's files or table → ``bronze.<slug>``.

Each bronze column comes from the source field the ingest matcher mapped to it; the fields are the
ones the readers found while landing (``BatchResult.fields``), so no file is opened again for lineage.
"""

from __future__ import annotations

from pathlib import Path

from govlake.catalog import Resource, get_catalog
from govlake.config import Settings
from govlake.ingest._headers import layout
from govlake.ingest._ingest import discover
from govlake.lineage import DIRECT, TRANSFORMED, Dataset, JobPlan, db_table, describe, file_dataset, lake_table


def lineage_plan(settings: Settings, code: str, files: list[Path] | None) -> JobPlan:
    """The ingest of ``code``: its sources (the files given, else those discovered; or its table) → bronze."""
    res = get_catalog(settings.catalog_dir).resource(code)
    if res.source.kind == "db":
        sources = [db_table(settings.db_url, res.source.table or "")]
    else:
        paths = files if files is not None else discover(settings.city, res.source.pattern or "")
        sources = [file_dataset(p) for p in paths]
    bronze = Dataset(lake_table(settings, "bronze", res.slug), owner=res.provider,
                     description=f"{describe(res)}: raw rows as sent (append-only)")
    return JobPlan(
        name=f"ingest.{code}", description=f"Land {describe(res)} from {res.source.kind} in bronze",
        inputs=[Dataset(s, owner=res.provider) for s in sources], outputs=[bronze], owner=res.provider,
        tags={"resource": code}, finish=lambda p, result, error, _: _finish(settings, res, p, result, error))


def _finish(settings: Settings, res: Resource, plan: JobPlan, result, error) -> None:
    """Inputs: the sources landed by this run, each bronze column from the field that fed it."""
    result = result if result is not None else getattr(error, "result", None)
    if result is None:
        return
    inputs, lineage = [], {}
    for batch in result.batches:
        if batch.status != "landed":
            continue
        fields = batch.fields or []
        ref = (db_table(settings.db_url, res.source.table or "") if batch.source.startswith("db:")
               else file_dataset(batch.source))
        inputs.append(Dataset(ref, fields=fields or None, owner=res.provider, description=describe(res)))
        columns, extras = header_columns(res, [name for name, _ in fields])
        for column, header in columns.items():
            lineage.setdefault(column, {})[(ref, header)] = DIRECT
        for header in extras:
            lineage.setdefault("_extra", {})[(ref, header)] = TRANSFORMED
    plan.inputs = inputs
    plan.outputs[0].lineage = lineage


def header_columns(resource: Resource, headers: list[str]) -> tuple[dict[str, str], list[str]]:
    """Bronze column → the source header it is read from, and the headers landing in ``_extra``."""
    lay = layout(resource, headers)
    columns = {column: headers[index] for column, index in lay.columns.items()}
    extras = [headers[index] for index, _ in lay.extras if headers[index].strip()]
    return columns, extras
