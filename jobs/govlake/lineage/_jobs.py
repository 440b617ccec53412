"""Building blocks for the steps' lineage plans: column-lineage kinds, mapping a model's column
sources to datasets, and the plan of any job over lake tables.

Each step declares its own plan next to itself (``govlake.ingest``, ``govlake.quality``,
``govlake.gold``, ``govlake.credit``, ``govlake.governance``, ``govlake.extract``: ``lineage_plan``);
this package only builds, names, emits and validates — it imports no step.
"""

from __future__ import annotations

from govlake import objectstore, storage
from govlake.catalog import Resource
from govlake.config import Settings
from govlake.lineage._columns import Sources, column_sources
from govlake.lineage._emit import Dataset, JobPlan
from govlake.lineage._naming import LAYERS, DatasetRef, lake_table
from govlake.lineage._stats import delta_schema

DIRECT = ("DIRECT", "IDENTITY", False)
TRANSFORMED = ("DIRECT", "TRANSFORMATION", False)
MASKED = ("DIRECT", "TRANSFORMATION", True)
CONDITIONAL = ("INDIRECT", "CONDITIONAL", False)


def column_lineage(sources: dict[str, Sources], refs: dict[str, DatasetRef], *, identity: bool = False
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


def describe(resource: Resource) -> str:
    return f"{resource.name} ({resource.name_en}), {resource.code}"


def lake_view(settings: Settings, view: str) -> DatasetRef | None:
    """``silver_amr_enterprise`` → the lake table silver/amr_enterprise (any layer), when it exists."""
    layer, _, name = view.partition("_")
    if layer in LAYERS and name and storage.open_table(settings.table_path(layer, name)) is not None:
        return lake_table(settings, layer, name)
    return None


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
        # views are named <layer>_<table>, gold's sublayers as gold: gold_legal_entity
        refs = {f"{(d.ref.layer or '').split('/')[0]}_{objectstore.name(d.ref.path)}": d.ref
                for d in inputs if d.ref.path is not None}
        schema = {view: [c for c, _ in delta_schema(ref.path) or []] for view, ref in refs.items()}  # type: ignore[arg-type]
        outputs[0].lineage = column_lineage(column_sources(sql, schema), refs, identity=True)
    return JobPlan(name=name, description=description, inputs=inputs, outputs=outputs, owner=owner, sql=sql)
