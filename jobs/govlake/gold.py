"""Gold tables: the 法人库 (``legal_entity``) and the 双公示 publications, built from silver.

The models are ``sql/gold/*.sql`` (one shape: input CTEs, transform CTEs, ``select * from`` the
last one). Each starts with a header stating grain, key tests and owner department
(``-- grain: ... | key: a + b unique not null | owner: dsj``); :func:`build_gold` runs the key
tests before writing. ``int_*`` models are intermediate: built as temporary tables, not written.

A model may be a Jinja template, ``sql/gold/<name>.sql.j2``, rendered with a context derived
from the catalog: ``int_entity_attributes`` is rendered from :func:`entity_plan` (一数一源: each
attribute from its authoritative department, else from a copy and flagged), so which attributes
come from which departments is decided by the catalog, not written into SQL.

Silver tables are exposed to the models as views ``silver_<slug>``; a table not written yet is an
empty view with the contract schema (:func:`silver_schema`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from govlake import lineage, locks, steps, storage
from govlake.catalog import Catalog, Item, Resource, get_catalog
from govlake.config import Settings
from govlake.contracts import silver_schema
from govlake.engine import get_engine
from govlake.governance import register_objection_views
from govlake.silver import register_silver
from govlake.transform import ModelError, ModelHeader, ModelRunner, model_header

GOLD_TABLES = ("legal_entity",)
"""Tables :func:`build_gold` writes (the 双公示 and credit tables come from govlake.credit)."""
MODEL_ORDER = ("int_entity_attributes", "legal_entity")
PUBLIC_TABLES = ("legal_entity", "penalty_publication", "license_publication", "enterprise_credit_profile",
                 "credit_repair_review")
"""Gold tables fit for analysts and the public (the extract copies them, masked); the lifecycle
tables (penalty_record, license_record) and the withdrawal log hold withdrawn records and stay in the lake."""
ENTITY_KEY = "uscc"
ENTITY_CATEGORY = "法人库"

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
        "subjects": [{"code": r.code, "slug": r.slug} for r in plan.subjects],
        "attributes": attributes,
        "departments": [{"code": d, "held": conds} for d, conds in sorted(held.items())],
    }


_CONTEXTS = {"int_entity_attributes": entity_context}


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


_LINEAGE_COLUMNS = {
    "_dept": ("决定部门代码", "Department code, resolved from 数据来源单位统一社会信用代码"),
    "_source": ("来源文件", "Source file (or database window) of the row"),
    "_row_number": ("来源行号", "Row number in the source file (1-based, header excluded)"),
}
_ENTITY_COLUMNS: dict[str, tuple[str, str] | tuple[str, str, str]] = {
    "attrs_from_non_authority": (
        "取自非权威部门的属性",
        "Attributes taken from a non-authoritative department (;-joined), null when none",
    ),
    "corrected_attributes": ("经异议更正的属性",
                             "Attributes holding a value corrected by a resolved objection (;-joined)"),
    "disputed_attributes": ("存在异议的属性", "Attributes whose value is disputed by an accepted objection (;-joined)"),
    "source_departments": ("数据来源部门", "Departments holding data on the entity (;-joined codes)"),
    "tax_rating_year": ("tax.credit_rating", "year", "最新"),
    "tax_rating": ("tax.credit_rating", "rating", "最新"),
    "social_insurance_period": ("hrss.social_insurance", "period", "最新"),
    "social_insurance_insured_count": ("hrss.social_insurance", "insured_count", "最新月份"),
    "social_insurance_arrears": ("hrss.social_insurance", "arrears", "最新月份"),
    "license_count": ("有效行政许可数", "Valid (not withdrawn) 双公示 licensing decisions naming the entity"),
    "penalty_count": ("有效行政处罚数", "Valid (not withdrawn) 双公示 penalty decisions naming the entity"),
}
_PUBLICATIONS = {"license_publication": "credit.license", "penalty_publication": "credit.penalty"}
_PUBLICATION_COLUMNS = {
    "deadline_date": ("公示截止报送日", "Publication deadline: the configured n-th working day after the decision"),
    "deadline_provisional": ("截止日暂定", "Deadline counted Monday–Friday for a year no calendar covers yet"),
    "on_time": ("按时报送", "Submitted (报送时间, else received) on or before the deadline"),
    "severity": ("失信程度", "失信 severity (一般/严重) from 处罚类别 and fine, per credit_rules.yml"),
    "publish_end": ("公示结束日期", "First day the record is no longer published (period end or repair)"),
}
_PROFILE_COLUMNS = {
    "has_social_insurance_arrears": ("社会保险费欠缴", "Arrears in the latest social-insurance month"),
    "registration_revoked": ("登记吊销或注销", "Registration revoked or cancelled"),
    "valid_license_count": ("有效行政许可数", "Licensing decisions currently published"),
    "license_count_total": ("行政许可总数", "Licensing decisions received, including revoked ones"),
    "published_penalty_count": ("公示中的行政处罚数", "Penalties currently published"),
    "published_serious_count": ("公示中的严重失信处罚数", "Serious penalties currently published"),
    "published_general_count": ("公示中的一般失信处罚数", "General penalties currently published"),
    "past_penalty_count": ("已结束公示的处罚数", "Penalties no longer published (expired or repaired)"),
    "repaired_penalty_count": ("已信用修复的处罚数", "Penalties whose publication ended by credit repair"),
    "revoked_penalty_count": ("已撤销的处罚数", "Penalty decisions revoked"),
    "published_penalty_amount": ("公示中处罚金额(万元)", "Fines and confiscations of published penalties (10k CNY)"),
    "past_penalty_amount": ("已结束公示处罚金额(万元)", "Fines and confiscations of past penalties (10k CNY)"),
    "penalties_by_category": ("按处罚类别和失信程度统计", "Counts and amounts per 处罚类别 and severity"),
    "court_dishonest": ("失信被执行人", "Currently on the court's list of dishonest judgment debtors"),
    "court_case_count": ("失信被执行案件数", "Cases currently listing the enterprise"),
    "credit_score": ("公共信用综合评价得分", "Public credit score (credit_rules.yml: base + factors)"),
    "credit_grade": ("公共信用综合评价等级", "Grade A/B/C/D by the bands of credit_rules.yml"),
    "score_factors": ("评分因素", "The factors that moved the score: id, zh, en, value, points"),
    "score_as_of": ("评价日期", "Business date of the score"),
}
_REVIEW_COLUMNS = {
    "penalty_authority_uscc": ("处罚机关统一社会信用代码", "Authority of the matched penalty"),
    "severity": _PUBLICATION_COLUMNS["severity"],
    "decision_date": ("处罚决定日期", "Decision date of the matched penalty"),
    "min_publish_end": ("最短公示期满日", "Repair allowed from this date"),
    "publicity_status": ("公示状态", "Publicity state of the matched penalty"),
    "publish_end": _PUBLICATION_COLUMNS["publish_end"],
    "outcome": ("审核结果", "accepted or rejected"),
    "reason_zh": ("审核理由", "Reason (Chinese)"),
    "reason_en": ("审核理由（英文）", "Reason (English)"),
}


def _item_doc(catalog: Catalog, column: str, code: str, item_column: str, note: str = "") -> ColumnDoc:
    item = catalog.resource(code).item(item_column)
    return ColumnDoc(column, item.name + (f"（{note}）" if note else ""), item.name_en, item, code)


def table_docs(settings: Settings) -> dict[str, TableDoc]:
    """Title, header and per-column lineage of every gold table (drives the extract's comments)."""
    catalog = get_catalog(settings.catalog_dir)
    plan = entity_plan(catalog)
    docs: dict[str, TableDoc] = {}
    entity = {ENTITY_KEY: _item_doc(catalog, ENTITY_KEY, plan.base.code, ENTITY_KEY)}
    for attr in plan.attributes:
        entity[attr.column] = _item_doc(catalog, attr.column, attr.authority.code, attr.column)
    for column, spec in _ENTITY_COLUMNS.items():
        entity[column] = (_item_doc(catalog, column, *spec) if len(spec) == 3
                          else ColumnDoc(column, spec[0], spec[1]))
    docs["legal_entity"] = TableDoc(
        "legal_entity", "法人库（一企一档）", "Legal entity register (one file per enterprise)",
        model_header(model_sql(settings, "legal_entity")),
        tuple(r.code for r in (*plan.keyed, *plan.subjects)), entity)
    models = {"license_publication": "license_record", "penalty_publication": "penalty_record",
              "enterprise_credit_profile": "enterprise_credit_profile", "credit_repair_review": "credit_repair_review"}
    headers = {name: model_header(_credit_model_first_line(settings, m)) for name, m in models.items()}
    for name, code in _PUBLICATIONS.items():
        res = catalog.resource(code)
        columns = {i.column: ColumnDoc(i.column, i.name, i.name_en, i, code) for i in res.items}
        columns |= {c: ColumnDoc(c, *labels) for c, labels in (_LINEAGE_COLUMNS | _PUBLICATION_COLUMNS).items()}
        header = dataclasses.replace(headers[name], grain=f"one row per decision published now ({headers[name].grain})")
        docs[name] = TableDoc(name, res.name + "（公示中）", res.name_en + " (published now)", header, (code,), columns)
    profile = {c: doc for c, doc in entity.items() if c in ("uscc", *(a.column for a in plan.attributes))}
    profile["registration_status"] = _item_doc(catalog, "registration_status", plan.base.code, "status")
    profile |= {c: ColumnDoc(c, *labels) for c, labels in _PROFILE_COLUMNS.items()}
    profile |= {c: entity[c] for c in ("tax_rating_year", "tax_rating", "social_insurance_period",
                                       "social_insurance_arrears")}
    docs["enterprise_credit_profile"] = TableDoc(
        "enterprise_credit_profile", "企业信用档案（一企一档）", "Enterprise credit profile (one file per enterprise)",
        headers["enterprise_credit_profile"], ("credit.penalty", "credit.license", "court.dishonest", "legal_entity"),
        profile)
    repair = catalog.resource("credit.repair")
    review = {i.column: ColumnDoc(i.column, i.name, i.name_en, i, repair.code) for i in repair.items}
    review |= {c: ColumnDoc(c, *labels) for c, labels in (_LINEAGE_COLUMNS | _REVIEW_COLUMNS).items()}
    docs["credit_repair_review"] = TableDoc(
        "credit_repair_review", "信用修复审核", "Credit-repair review", headers["credit_repair_review"],
        (repair.code, "penalty_record"), review)
    return docs


def _credit_model_first_line(settings: Settings, name: str) -> str:
    """The header line of credit model ``sql/gold/<name>.sql.j2`` (rendered by govlake.credit)."""
    return (settings.sql_dir / "gold" / f"{name}.sql.j2").read_text(encoding="utf-8").splitlines()[0]


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
    con = storage.connect(settings)
    rows: dict[str, int] = {}
    try:
        register_silver(con, settings, catalog)
        register_objection_views(con, settings)  # corrections and disputes (数据异议) for int_entity_attributes
        runner = ModelRunner(settings.sql_dir, dialect=get_engine(settings).dialect)
        for name in MODEL_ORDER:
            runner.run(con, f"gold/{name}", **model_context(name, catalog))
            if name in GOLD_TABLES:
                table = f"gold/{name}"
                intent.write_table(table, con.sql(f"select * from {name}").to_arrow_reader(100_000), mode="overwrite")
                rows[name] = storage.row_count(intent.path(table))
    finally:
        con.close()
    return rows


# ---- lineage ----------------------------------------------------------------------------------


def lineage_plan(settings: Settings) -> lineage.JobPlan:
    """The gold step: a parent run of one ``gold.<table>`` run per gold table, each reading the silver
    tables its model (``int_*`` models resolved through) reads; column lineage from the SQL."""
    catalog = get_catalog(settings.catalog_dir)
    schema: dict[str, list[str]] = {f"silver_{r.slug}": silver_schema(r).names for r in catalog.resources.values()}
    refs = {f"silver_{r.slug}": lineage.lake_table(settings, "silver", r.slug) for r in catalog.resources.values()}
    models: dict[str, dict] = {}
    reads: dict[str, set[str]] = {}
    children, errors = [], []
    for name in MODEL_ORDER:
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
