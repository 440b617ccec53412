"""Gold tables: the 法人库 (``legal_entity``), the 人口库 (``population``) and the 一人一档
(``person_profile``), built from silver (the 双公示 and credit tables: govlake.credit).

The models are ``sql/gold/*.sql`` (one shape: input CTEs, transform CTEs, ``select * from`` the
last one). Each starts with a header stating grain, key tests and owner department
(``-- grain: ... | key: a + b unique not null | owner: dsj``); :func:`build_gold` runs the key
tests before writing. ``int_*`` models are intermediate: built as temporary tables, not written.

A model may be a Jinja template, ``sql/gold/<name>.sql.j2``, rendered with a context derived
from the catalog: ``int_entity_attributes`` is rendered from :func:`entity_plan` (一数一源: each
attribute from its authoritative department, else from a copy and flagged), and ``population``
from :func:`person_plan` (the same for the person attributes, the copies found through ``copy_of``,
``copy_key`` and ``copy_when``), so which attributes come from which departments is decided by the
catalog, not written into SQL.

Silver tables are exposed to the models as views ``silver_<slug>``; a table not written yet is an
empty view with the contract schema (:func:`silver_schema`). Silver's penalties, the one silver table that grows
without bound, reach the models summed per subject and state (``gold/base/penalty_subjects``, :func:`_summarize`),
a summary the step keeps from run to run and brings up to date from the data files silver gained and lost.

Each published table has a yml beside its model (``sql/gold/<table>.yml``: title, grain, key tests,
owner, sources, column docs, unit tests); :func:`table_docs` reads them for the extract's comments
and masking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from govlake import lineage, locks, steps, storage
from govlake.catalog import Catalog, Item, Resource, condition_columns, get_catalog
from govlake.compute import open_compute
from govlake.config import Settings
from govlake.contracts import silver_schema
from govlake.engine import get_engine
from govlake.governance import conflict_plan, register_objection_views
from govlake.layout import BASE_STATE, BASE_TABLES, gold_path
from govlake.silver import register_silver
from govlake.transform import ModelError, ModelHeader, ModelRunner, Spec, load_specs
from govlake.transform import model_header as model_header  # re-exported: tests read headers from here

SUMMARY = "penalty_subjects"
"""silver/credit_penalty summed per subject, kept from run to run (:func:`_summarize`; the models read it)."""
SUMMARIZED = "credit.penalty"
SUMMARY_GROUP = ("uscc", "id_no", "subject_type", "status")
SUMMARY_READS = (*SUMMARY_GROUP, "fine_amount", "subject_name", "_received_at", "_row_number", "_batch_id")
"""The silver columns the summary reads."""
SUMMARY_COLUMNS = (*SUMMARY_GROUP, "penalties", "fine_total", "fined", "subject_name", "_received_at", "_row_number",
                   "_batch_id")
SILVER_AT = ("_silver_id", "_silver_version")
"""The silver table (its Delta id, then version) the summary counts, on each of its rows: one overwrite commit writes
them all, so the summary and what it counts cannot disagree."""
GOLD_TABLES = (*BASE_TABLES, *BASE_STATE)
"""Tables :func:`build_gold` writes, in ``gold/base/`` (the credit theme's tables come from govlake.credit)."""
MODEL_ORDER = ("int_entity_attributes", "legal_entity", "population", "person_profile")
PUBLIC_TABLES = ("legal_entity", "penalty_publication", "license_publication", "enterprise_credit_profile",
                 "credit_repair_review")
"""Gold tables fit for analysts and the public (the extract copies them, masked); the lifecycle
tables (penalty_record, license_record) and the withdrawal log hold withdrawn records and stay in the lake, and
the 人口库 (population) and 一人一档 (person_profile) are natural persons' L3/L4 data, for departments' use in
the lake only (共享 on approval, never released to analysts)."""
ENTITY_KEY = "uscc"
ENTITY_CATEGORY = "法人库"
PERSON_KEY = "id_number"
PERSON_CATEGORY = "人口库"

_SQL_TYPES = {"date": "date", "timestamp": "timestamp", "decimal": "decimal(18, 4)", "integer": "bigint"}
_ORDER_LATEST = "_received_at desc nulls last, _row_number desc nulls last"


GoldError = ModelError
"""A gold model failed: missing silver columns, a missing input or a failed key test."""


# ---- silver inputs --------------------------------------------------------------------------


# ---- model headers and SQL ------------------------------------------------------------------


def model_context(name: str, catalog: Catalog) -> dict:
    """What gold model ``name`` is rendered with (the catalog-derived plan, or nothing)."""
    make = _CONTEXTS.get(name)
    return make(catalog) if make else {}


def model_sql(settings: Settings, name: str, catalog: Catalog | None = None) -> str:
    """The SQL of gold model ``name`` (``sql/gold/<name>.sql[.j2]``), rendered by the model runner."""
    context = model_context(name, catalog or get_catalog(settings.catalog_dir))
    return ModelRunner(settings.sql_dir).render(f"gold/{name}", **context).sql


# ---- the catalog-generated entity attributes (一数一源) ------------------------------------


@dataclass(frozen=True)
class EntityAttribute:
    """A 法人库 attribute: the resource holding the authoritative value and those holding copies."""

    column: str
    item: Item
    authority: Resource
    copies: tuple[Resource, ...]


@dataclass(frozen=True)
class EntityPlan:
    base: Resource
    keyed: tuple[Resource, ...]
    """Resources with one row per enterprise (and period): they define the entities."""
    subjects: tuple[Resource, ...]
    """Resources naming enterprises by uscc without being keyed by them (双公示 records)."""
    attributes: tuple[EntityAttribute, ...]


def entity_plan(catalog: Catalog) -> EntityPlan:
    """Which resource is authoritative for which 法人库 attribute, from the catalog.

    The base is the 法人库 resource keyed by ``uscc`` alone (amr.enterprise). Its attributes are
    its items except the key, L4 items and its delivery watermark. For each attribute the
    authoritative department is ``item.authority or resource.provider``; other enterprise-keyed
    resources holding an item of the same column whose authority is that department are copies,
    used (in resource-code order) only when the authoritative resource has no row for the code.
    """
    resources = sorted(catalog.resources.values(), key=lambda r: r.code)
    bases = [r for r in resources if r.category.startswith(ENTITY_CATEGORY) and r.key == [ENTITY_KEY]]
    if len(bases) != 1:
        raise GoldError(f"expected one {ENTITY_CATEGORY} resource keyed by {ENTITY_KEY}, found {bases}")
    base = bases[0]
    keyed = tuple(r for r in resources if ENTITY_KEY in r.key)
    subjects = tuple(r for r in resources if ENTITY_KEY not in r.key
                     and any(i.column == ENTITY_KEY for i in r.items))
    attributes = []
    for item in base.items:
        if item.column in base.key or item.level == "L4" or item.column == base.source.watermark:
            continue
        dept = base.authority_of(item)
        holders = [r for r in keyed if any(i.column == item.column and r.authority_of(i) == dept
                                           for i in r.items)]
        authority = next((r for r in holders if r.provider == dept), None)
        if authority is None:
            raise GoldError(f"{base.code}.{item.column}: no resource of its authority {dept!r}")
        copies = tuple(r for r in holders if r is not authority)
        attributes.append(EntityAttribute(item.column, item, authority, copies))
    return EntityPlan(base, keyed, subjects, tuple(attributes))


def _cast(value: str, source: Item, target: Item) -> str:
    if _SQL_TYPES.get(source.type, "varchar") == _SQL_TYPES.get(target.type, "varchar"):
        return value
    return f"cast({value} as {_SQL_TYPES.get(target.type, 'varchar')})"


def entity_context(catalog: Catalog) -> dict:
    """What ``sql/gold/int_entity_attributes.sql.j2`` is rendered with (see :func:`entity_plan`)."""
    plan = entity_plan(catalog)
    used = {r.code: [a.column for a in plan.attributes if r is a.authority or r in a.copies]
            for r in plan.keyed}
    keyed = [r for r in plan.keyed if used[r.code] or r is plan.base]
    attributes = []
    for attr in plan.attributes:
        copies = [_cast(f"latest_{r.slug}.{attr.column}", r.item(attr.column), attr.item)
                  for r in attr.copies]
        fallback = (copies[0] if len(copies) == 1 else f"coalesce({', '.join(copies)})") if copies else None
        attributes.append({"column": attr.column, "authority": attr.authority.slug, "fallback": fallback,
                           "sql_type": _SQL_TYPES.get(attr.item.type, "varchar")})
    held: dict[str, list[str]] = {}
    for res in keyed:
        held.setdefault(res.provider, []).append(f"latest_{res.slug}.{ENTITY_KEY} is not null")
    for res in plan.subjects:
        held.setdefault(res.provider, []).append(f"{res.slug}_subjects.{ENTITY_KEY} is not null")
    return {
        "base": plan.base.code,
        "keyed": [{"code": r.code, "slug": r.slug, "columns": used[r.code],
                   "order_columns": [k for k in r.key if k != ENTITY_KEY]} for r in keyed],
        "subjects": [{"code": r.code, "slug": r.slug, "relation": _relation(r, ENTITY_KEY)} for r in plan.subjects],
        "attributes": attributes,
        "departments": [{"code": d, "held": conds} for d, conds in sorted(held.items())],
    }


# ---- the catalog-generated person attributes (人口库, 一数一源) --------------------------------


@dataclass(frozen=True)
class PersonCopy:
    """Rows of a resource holding a copy of a person attribute: the copy's item, the column holding the
    person's 身份证号 and the condition under which a row is a copy (``copy_when``; None: every row)."""

    resource: Resource
    item: Item
    key: str
    when: str | None = None


@dataclass(frozen=True)
class PersonAttribute:
    """A 人口库 attribute: the resource holding the authoritative value and the copies of it."""

    column: str
    item: Item
    authority: Resource
    copies: tuple[PersonCopy, ...]


@dataclass(frozen=True)
class PersonPlan:
    base: Resource
    attributes: tuple[PersonAttribute, ...]


def person_plan(catalog: Catalog) -> PersonPlan:
    """Which resource is authoritative for which 人口库 attribute, and which rows copy it, from the catalog.

    The base is the 人口库 resource keyed by ``id_number`` alone (psb.population); its attributes are its
    items except the key, L4 items and its delivery watermark. Each attribute's authoritative
    department is ``item.authority or resource.provider``, and its authoritative resource the
    person-keyed resource of that department holding the column. Its copies, in resource-code order,
    are the catalog's copies of it (govlake.governance conflict_plan): items of other person-keyed
    resources whose authority is another department, and items declaring ``copy_of`` one of its
    columns with ``copy_key`` (the column holding the 身份证号) and ``copy_when``.
    """
    resources = sorted(catalog.resources.values(), key=lambda r: r.code)
    bases = [r for r in resources if r.category.startswith(PERSON_CATEGORY) and r.key == [PERSON_KEY]]
    if len(bases) != 1:
        raise GoldError(f"expected one {PERSON_CATEGORY} resource keyed by {PERSON_KEY}, found {bases}")
    base = bases[0]
    keyed = [r for r in resources if PERSON_KEY in r.key]  # with or without other key columns
    checks = [c for c in conflict_plan(catalog) if PERSON_KEY in c.authority.key]
    attributes = []
    for item in base.items:
        if item.column in base.key or item.level == "L4" or item.column == base.source.watermark:
            continue
        dept = base.authority_of(item)
        authority = next((r for r in keyed if r.provider == dept and any(
            i.column == item.column and r.authority_of(i) == dept for i in r.items)), None)
        if authority is None:
            raise GoldError(f"{base.code}.{item.column}: no resource of its authority {dept!r} keyed by {PERSON_KEY}")
        copies = tuple(PersonCopy(c.copy, c.item, c.copy_key, c.when) for c in checks
                       if c.column == item.column and c.copy is not authority)
        attributes.append(PersonAttribute(item.column, item, authority, copies))
    return PersonPlan(base, tuple(attributes))


def population_context(catalog: Catalog) -> dict:
    """What ``sql/gold/population.sql.j2`` is rendered with (see :func:`person_plan`).

    A *source* is the rows of one resource read one way: a person-keyed resource as it is (latest row
    per person by the rest of its key, then arrival), or the rows of a copy (its ``copy_key``, under its
    ``copy_when``; latest by arrival). Each attribute names its authority's source and the fallback
    over its copies' sources.
    """
    plan = person_plan(catalog)
    groups: dict[tuple[str, str, str | None], list[tuple[str, str]]] = {}

    def source(res: Resource, key: str, when: str | None) -> tuple[str, str, str | None]:
        group = (res.code, key, when)
        groups.setdefault(group, [])
        return group

    base = source(plan.base, PERSON_KEY, None)
    uses = []
    for attr in plan.attributes:
        auth = source(attr.authority, PERSON_KEY, None)
        groups[auth].append((attr.column, attr.column))
        copies = []
        for copy in attr.copies:
            group = source(copy.resource, copy.key, copy.when)
            if any(alias == attr.column for _, alias in groups[group]):
                raise GoldError(f"{copy.resource.code}.{copy.item.column}: a second copy of {attr.column!r} "
                                f"read by {copy.key} under the same condition")
            groups[group].append((copy.item.column, attr.column))
            copies.append((group, copy))
        uses.append((attr, auth, copies))
    per_resource: dict[str, int] = {}
    for code, _, _ in groups:
        per_resource[code] = per_resource.get(code, 0) + 1
    names, seen = {}, {}
    for group in groups:
        slug = catalog.resource(group[0]).slug
        seen[slug] = seen.get(slug, 0) + 1
        names[group] = slug if per_resource[group[0]] == 1 else f"{slug}_{seen[slug]}"
    attributes = []
    for attr, auth, copies in uses:
        values = [_cast(f"latest_{names[g]}.{attr.column}", c.item, attr.item) for g, c in copies]
        fallback = (values[0] if len(values) == 1 else f"coalesce({', '.join(values)})") if values else None
        attributes.append({"column": attr.column, "authority": names[auth], "fallback": fallback,
                           "sql_type": _SQL_TYPES.get(attr.item.type, "varchar")})
    held: dict[str, list[str]] = {}
    sources = []
    for (code, key, when), columns in groups.items():
        res = catalog.resource(code)
        held.setdefault(res.provider, []).append(f"latest_{names[code, key, when]}.{PERSON_KEY} is not null")
        order = [k for k in res.key if k != PERSON_KEY] if key == PERSON_KEY and PERSON_KEY in res.key else []
        read = [key, *(condition_columns(when) if when else ()), *(c for c, _ in columns), *order, "_received_at",
                "_row_number"]
        sources.append({"name": names[code, key, when], "code": code, "slug": res.slug, "key": key, "when": when,
                        "columns": columns, "order_columns": order, "relation": _relation(res, *read)})
    return {"base": plan.base.code, "register": names[base], "sources": sources, "attributes": attributes,
            "departments": [{"code": d, "held": conds} for d, conds in sorted(held.items())]}


def _relation(res: Resource, *columns: str) -> str:
    """What a model reads ``columns`` of ``res``'s silver rows from: the summary (:data:`SUMMARY`) when it is
    ``res``'s and holds them all (each of its rows is a group's latest row, so the latest row of a person or an
    enterprise is among them, and so is every subject), else the silver view."""
    if res.code == SUMMARIZED and set(columns) <= set(SUMMARY_COLUMNS):
        return SUMMARY
    return f"silver_{res.slug}"


_CONTEXTS = {"int_entity_attributes": entity_context, "population": population_context}


# ---- what the gold columns are (for comments and masking downstream) -----------------------


@dataclass(frozen=True)
class ColumnDoc:
    """A gold column: the catalog item its values come from, or a description when derived."""

    name: str
    label: str
    """Chinese name."""
    label_en: str
    item: Item | None = None
    resource: str | None = None
    """Catalog resource code the values come from (None when derived)."""


@dataclass(frozen=True)
class TableDoc:
    name: str
    title: str
    title_en: str
    header: ModelHeader
    sources: tuple[str, ...]
    columns: dict[str, ColumnDoc]


def table_docs(settings: Settings) -> dict[str, TableDoc]:
    """Title, header and per-column lineage of every published table (drives the extract's comments
    and masking), from the ymls beside the models (``sql/gold/<table>.yml``, govlake.transform.load_specs).

    A column ``from`` a catalog item carries the item (its name, level and personal data); a
    projection's grain is its own followed by its record model's, in parentheses.
    """
    catalog = get_catalog(settings.catalog_dir)
    specs = load_specs(settings.sql_dir, catalog=catalog)
    # 法人库 reads every enterprise-keyed resource of the catalog, and one added to it reaches the table
    # with no change anywhere: the extract names it among the sources before legal_entity.yml does
    entity = entity_context(catalog)
    read = {"legal_entity": [r["code"] for r in (*entity["keyed"], *entity["subjects"])]}
    return {name: _table_doc(spec, specs, catalog, read.get(name, ())) for name, spec in specs.items()}


def _table_doc(spec: Spec, specs: dict[str, Spec], catalog: Catalog, read: Iterable[str] = ()) -> TableDoc:
    header = spec.header
    if spec.spec.projection_of:
        header = dataclasses.replace(header, grain=f"{header.grain} ({specs[spec.spec.projection_of].spec.grain})")
    columns = {}
    for column in spec.columns:
        if column.item is None:
            columns[column.name] = ColumnDoc(column.name, column.zh or "", column.en or "")
            continue
        code, name = column.item
        item = catalog.resource(code).item(name)
        label = item.name + (f"（{column.note}）" if column.note else "")
        columns[column.name] = ColumnDoc(column.name, label, item.name_en, item, code)
    sources = tuple(dict.fromkeys([*spec.spec.sources, *read]))
    return TableDoc(spec.name, spec.spec.title.zh, spec.spec.title.en, header, sources, columns)


# ---- build ----------------------------------------------------------------------------------


def build_gold(*, settings: Settings, run_id: str) -> dict[str, int]:
    """Build every gold model from silver and overwrite the gold Delta tables.

    Returns the number of rows per gold table. Re-runnable: the same silver gives the same rows, so
    a run interrupted between two tables is simply superseded by the next (govlake.steps, no
    replay), under the ``publish`` lock. Raises GoldError when silver lacks contract columns or a
    model fails its key tests (nothing of that model is written then).
    """
    catalog = get_catalog(settings.catalog_dir)
    return steps.run(settings, "gold", lock=locks.PUBLISH, run_id=run_id, params=dict, reads=lambda _: [],
                     body=lambda intent: _build(intent, catalog), replay=False)


def _build(intent: steps.Intent, catalog: Catalog) -> dict[str, int]:
    settings = intent.settings
    con = open_compute(get_engine(settings))
    rows: dict[str, int] = {}
    try:
        register_silver(con, settings, catalog)
        register_objection_views(con, settings)  # corrections and disputes (数据异议) for int_entity_attributes
        runner = ModelRunner(settings.sql_dir)
        rows[SUMMARY] = _summarize(con, intent, catalog, runner)
        for name in MODEL_ORDER:
            runner.run(con, f"gold/{name}", **model_context(name, catalog))
            if name in GOLD_TABLES:
                rows[name] = intent.replace_with(gold_path(name), con, name)
    finally:
        con.close()
    return rows


def _summarize(con, intent: steps.Intent, catalog: Catalog, runner: ModelRunner) -> int:
    """Bring the summary of silver's penalties (:data:`SUMMARY`, model ``sql/gold/penalty_subjects.sql``) to
    silver as it is now, write it and register it as ``penalty_subjects``; its rows.

    From the version it counts, the rows of the data files silver gained since are counted in and those of the
    files it lost counted out (storage.file_changes: a day's few files, whatever silver's size); a group whose
    latest row silver lost is given its rows again to find its latest among (read from silver for those groups
    alone). When the summary is new or lost, counts another table (silver made again: another Delta id), or the
    files cannot be told, every silver row is counted. Only the gold step writes the summary, under the publish
    lock; a run finding it at silver's version writes nothing."""
    settings = intent.settings
    res = catalog.resource(SUMMARIZED)
    silver, kept = storage.table_path(settings, "silver", res.slug), intent.path(gold_path(SUMMARY))
    table = storage.open_table(silver)
    at = (table.metadata().id, table.version()) if table is not None else None
    summed = _summary_at(con, kept)
    if at is not None and summed == at:
        con.register_delta(SUMMARY, kept)
        return storage.row_count(kept)
    reads = ", ".join(SUMMARY_READS)
    summary = ", ".join(SUMMARY_COLUMNS)
    changes = (storage.file_changes(silver, summed[1], at[1])
               if at is not None and summed is not None and summed[0] == at[0] and summed[1] < at[1] else None)
    if changes is not None:
        removed, added = changes
        schema = pa.schema(table.schema().to_arrow())
        schema = pa.schema([schema.field(c) for c in SUMMARY_READS])  # Spark reads the files by it
        for name, files in (("silver_removed", removed), ("silver_added", added)):
            con.register_files(name, files, schema)
        # the groups whose latest row silver lost (not written again as it was by the same commits)
        group = " and ".join(f"k.{c} is not distinct from r.{c}" for c in SUMMARY_GROUP)
        same = " and ".join(f"a.{c} is not distinct from r.{c}" for c in SUMMARY_READS)
        con.create("stale_groups", f"""select distinct {', '.join(f'k.{c}' for c in SUMMARY_GROUP)}
            from summary_kept as k join silver_removed as r
                on {group} and k._batch_id = r._batch_id and k._row_number = r._row_number
            where not exists (select 1 from silver_added as a where {same})""")
        signed = [f"select {reads}, 1 as _sign from silver_added", f"select {reads}, -1 as _sign from silver_removed"]
        if con.count("stale_groups"):
            con.register_delta("silver_summed", silver, version=at[1])
            on = " and ".join(f"s.{c} is not distinct from g.{c}" for c in SUMMARY_GROUP)
            signed.append(f"select {', '.join(f's.{c}' for c in SUMMARY_READS)}, 0 as _sign from silver_summed as s "
                          f"semi join stale_groups as g on {on}")
        con.create("penalty_rows", " union all ".join(signed), kind="view")
        on = " and ".join(f"k.{c} is not distinct from g.{c}" for c in SUMMARY_GROUP)
        con.create("penalty_subjects_before", f"select {', '.join(f'k.{c}' for c in SUMMARY_COLUMNS)}, "
                   "g._gone is not null as _stale from summary_kept as k left join "
                   f"(select *, true as _gone from stale_groups) as g on {on}", kind="view")
    else:
        if at is not None:
            con.register_delta("silver_summed", silver, version=at[1])
        else:
            con.register_arrow("silver_summed", silver_schema(res).empty_table())
        con.create("penalty_rows", f"select {reads}, 1 as _sign from silver_summed", kind="view")
        con.create("penalty_subjects_before", f"select {summary}, false as _stale from (select {reads}, "
                   "cast(0 as bigint) as penalties, cast(0 as decimal(38, 4)) as fine_total, cast(0 as bigint) as "
                   "fined from silver_summed) as s where false", kind="view")
    runner.run(con, f"gold/{SUMMARY}", into=f"new_{SUMMARY}")
    if at is None:  # no silver yet: nothing to keep
        con.create(SUMMARY, f"select * from new_{SUMMARY}", kind="view")
        return con.count(SUMMARY)
    stamp = f"cast('{at[0]}' as varchar) as {SILVER_AT[0]}, cast({at[1]} as bigint) as {SILVER_AT[1]}"
    intent.write_table(gold_path(SUMMARY), con.data(f"select *, {stamp} from new_{SUMMARY}"), mode="overwrite")
    con.register_delta(SUMMARY, kept)
    return storage.row_count(kept)


def _summary_at(con, path) -> tuple[str, int] | None:
    """The silver table (id, version) the kept summary counts (None: no summary yet); registers it as
    ``summary_kept``."""
    if storage.open_table(path) is None:
        return None
    con.register_delta("summary_kept", path)
    row = con.one(f"select max({SILVER_AT[0]}), max({SILVER_AT[1]}) from summary_kept")
    return None if row[1] is None else (row[0], int(row[1]))


# ---- lineage ----------------------------------------------------------------------------------


def lineage_plan(settings: Settings) -> lineage.JobPlan:
    """The gold step: a parent run of one ``gold.<table>`` run per gold table, each reading the silver
    tables its model (``int_*`` models resolved through) reads; column lineage from the SQL."""
    catalog = get_catalog(settings.catalog_dir)
    schema: dict[str, list[str]] = {f"silver_{r.slug}": silver_schema(r).names for r in catalog.resources.values()}
    refs = {f"silver_{r.slug}": lineage.lake_table(settings, "silver", r.slug) for r in catalog.resources.values()}
    # the summary reads silver's penalties as penalty_rows, and itself as it was
    summarized = f"silver_{catalog.resource(SUMMARIZED).slug}"
    schema["penalty_rows"], refs["penalty_rows"] = [*schema[summarized], "_sign"], refs[summarized]
    schema["penalty_subjects_before"] = [*SUMMARY_COLUMNS, "_stale"]
    models: dict[str, dict] = {}
    reads: dict[str, set[str]] = {}
    children, errors = [], []
    for name in (SUMMARY, *MODEL_ORDER):
        try:
            sql = model_sql(settings, name, catalog)
            read = lineage.tables_read(sql)
            for view in read:
                if view not in schema and view not in models and (ref := lineage.lake_view(settings, view)):
                    refs[view] = ref
                    schema[view] = [c for c, _ in lineage.delta_schema(ref.path) or []]  # type: ignore[arg-type]
            known = {**schema, **{m: list(c) for m, c in models.items()}}
            sources = lineage.compose(lineage.column_sources(sql, known), models)
            models[name] = sources
            schema[name] = list(sources)
            reads[name] = set().union(*(reads.get(v, {v}) for v in read)) if read else set()
        except Exception as exc:  # noqa: BLE001 — lineage must never stop the step; the event says what failed
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if name not in GOLD_TABLES:
            continue
        header = model_header(sql)
        out = lineage.Dataset(lineage.lake_table(settings, "gold", name), owner=header.owner, overwrite=True,
                              lineage=lineage.column_lineage(sources, refs, identity=True),
                              description=f"{name}: {header.grain}; key {' + '.join(header.key)}")
        inputs = [lineage.Dataset(refs[v]) for v in sorted(reads[name]) if v in refs]
        children.append(lineage.JobPlan(name=f"gold.{name}", description=f"Gold model sql/gold/{name}: {header.grain}",
                                        inputs=inputs, outputs=[out], owner=header.owner, sql=sql, job_type="QUERY"))
    return lineage.JobPlan(name="gold", description="Build the gold tables (法人库, 双公示 publications, …) from "
                           "silver; one child run per gold table", owner="dsj", children=children, errors=errors)
