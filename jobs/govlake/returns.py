"""回流: data returned to the districts and departments, ``var/returns/<receiver>/returns.duckdb``.

One DuckDB file per receiver — every county-level district (区县 行政区划代码 found in the rows) and every
department of the catalog — holding one table per resource it may receive (rules in docs/returns.md):

- a **district** receives the rows about its area of every 无条件共享 resource, with the items that are
  themselves 无条件共享. A row's district is its own ``region_code`` item (the first one of the resource),
  else that of its 统一社会信用代码 in the enterprise register (:data:`ENTERPRISE_REGISTER`); a row with
  neither (a natural person's penalty) is about no district and goes to none.
- a **department** receives its own data (本部门数据: every row of the resources it provides, and the
  rows it submitted to a multi-department resource such as the 双公示 feeds, table ``<slug>_submitted``),
  every 无条件共享 resource, and for each granted request of the 共享申请记录 that covers it (同意, 有效,
  with 共享用途 and 共享数据项; govlake.sharing) the requested items of the resource — never one that is
  不予共享 — and only the rows of the 共享行政区划 it names (table ``<slug>__<申请编号>``). A 不予共享
  resource goes to its provider only; 有条件共享 without a covering request to no one.

Whatever is returned is masked as in the analyst extract (govlake.masking.release_item_sql): 身份证号,
phone numbers, names and addresses of natural persons are masked for every receiver, a department's own
data included (it keeps the originals in its own systems); L4 items without a mask are left out; free
text is scrubbed. A department's file also holds its 整改清单 (table ``rectification``): its rows in
quarantine (file, row, rule, reason in Chinese) and the open 一数一源 conflicts it is a party to.

Every table delivered is logged in ``meta/returns_log`` (contracts.RETURNS_LOG) with its rows and
columns as counted in the file written. The files are built under temporary names, the log is
appended (stamped, govlake.steps), then each file is renamed over the previous one: a receiver sees
its previous return or the new one, never half of one, and an interrupted run is finished by the next.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from govlake import contracts, locks, steps, storage
from govlake.catalog import Catalog, Item, Resource, get_catalog
from govlake.config import Settings
from govlake.governance import mask_entity_key
from govlake.masking import (
    is_released,
    mask_note,
    name_items,
    release_item_sql,
    scrub_sql,
    scrub_text,
    sql_ident,
    sql_string,
)
from govlake.sharing import ShareRequest, load_requests, requests_path

RETURN_FILE = "returns.duckdb"
INFO_TABLE = "return_info"
RECTIFY_TABLE = "rectification"
LOG_TABLE = "meta/returns_log"
ENTERPRISE_REGISTER = "amr.enterprise"
"""The resource whose ``region_code`` places an enterprise (by 统一社会信用代码) in its district."""
UNCONDITIONAL, CONDITIONAL, NOT_SHARED = "无条件共享", "有条件共享", "不予共享"
OWN, RECTIFY = "本部门数据", "整改清单"
DISTRICT, DEPARTMENT = "district", "department"
_CONFLICTS = "gold/conflicts"

log = logging.getLogger(__name__)


def county_sql(expr: str) -> str:
    """The county-level code (6 digits) of a 行政区划代码 (6 or 12 digits), null for a province or city
    code (``…00``) and anything that is no division code."""
    return (f"case when regexp_full_match({expr}, '[1-9][0-9]{{5}}([0-9]{{6}})?') "
            f"and substr({expr}, 5, 2) <> '00' then substr({expr}, 1, 6) end")


def region_prefix(code: str) -> str:
    """The prefix a division code covers: ``370100`` (a city) → ``3701``, ``370102`` → ``370102``."""
    return re.sub(r"(00)+$", "", code) or code


@dataclass(frozen=True)
class Delivery:
    """One table of one receiver's return."""

    receiver: str
    kind: str
    """:data:`DISTRICT` or :data:`DEPARTMENT`"""
    table: str
    resource: str
    basis: str
    """:data:`UNCONDITIONAL`, :data:`CONDITIONAL` (with ``request_id`` and ``purpose``) or :data:`OWN`"""
    columns: tuple[str, ...]
    where: str
    """SQL condition over the resource's rows: ``_submitter`` (the submitting department) and ``_district``
    (the county-level code of the row's district)."""
    request_id: str | None = None
    purpose: str | None = None


def _released(res: Resource, keep=lambda item: True) -> tuple[str, ...]:
    return tuple(i.column for i in res.items if is_released(i) and keep(i))


def covers(request: ShareRequest, receiver: str, res: Resource) -> bool:
    """Whether ``request`` grants ``receiver`` rows of ``res`` for a return: valid, 同意, the receiver's own,
    for this resource, with a purpose and the items granted; a 不予共享 resource is never covered."""
    return (request.valid and request.outcome == "同意" and request.department == receiver
            and request.resource == res.code and bool(request.purpose) and bool(request.items)
            and res.share_type != NOT_SHARED)


def plan(catalog: Catalog, requests: tuple[ShareRequest, ...], *, districts: list[str],
         submitted: dict[str, set[str]], routed: set[str]) -> list[Delivery]:
    """Every table of every receiver.

    Args:
        districts: the county-level codes found in the rows (each is a receiver).
        submitted: resource code → departments that submitted rows to it (``_dept``; multi-department resources).
        routed: the resources whose rows have a district.
    """
    out: list[Delivery] = []
    resources = sorted(catalog.resources.values(), key=lambda r: r.code)

    def unconditional(res: Resource) -> tuple[str, ...]:
        return _released(res, lambda i: res.share_type_of(i) == UNCONDITIONAL)

    for district in districts:
        for res in resources:
            if res.share_type == UNCONDITIONAL and res.code in routed and (cols := unconditional(res)):
                out.append(Delivery(district, DISTRICT, res.slug, res.code, UNCONDITIONAL, cols,
                                    f"_district = {sql_string(district)}"))
    for dept in sorted(catalog.departments):
        for res in resources:
            if res.provider == dept:
                out.append(Delivery(dept, DEPARTMENT, res.slug, res.code, OWN, _released(res), "true"))
                continue
            if res.department_from and dept in submitted.get(res.code, ()):
                out.append(Delivery(dept, DEPARTMENT, f"{res.slug}_submitted", res.code, OWN, _released(res),
                                    f"_submitter = {sql_string(dept)}"))
            if res.share_type == UNCONDITIONAL and (cols := unconditional(res)):
                out.append(Delivery(dept, DEPARTMENT, res.slug, res.code, UNCONDITIONAL, cols, "true"))
            for req in (r for r in requests if covers(r, dept, res)):
                cols = _released(res, lambda i, r=res, granted=set(req.items):
                                 i.column in granted and r.share_type_of(i) != NOT_SHARED)
                if not cols:
                    continue
                where = " or ".join(f"starts_with(_district, {sql_string(region_prefix(r))})" for r in req.regions)
                table = f"{res.slug}__{re.sub(r'[^0-9a-z]+', '_', req.id.lower())}"
                taken = {d.table for d in out if d.receiver == dept}
                table = next(t for n in range(len(taken) + 1) if (t := f"{table}_{n}" if n else table) not in taken)
                out.append(Delivery(dept, DEPARTMENT, table, res.code, CONDITIONAL, cols,
                                    f"coalesce({where}, false)" if where else "true",
                                    request_id=req.id, purpose=req.purpose))
    return out


def build_returns(*, settings: Settings, run_id: str) -> dict:
    """Write every receiver's return; returns ``{receiver: {"kind", "file", "tables": {table: rows}}}``.

    One intent of govlake.steps under the ``publish`` lock, reading silver, quarantine and gold/conflicts
    at the versions pinned when it started. Raises SharingInputError for an invalid 共享申请记录.
    """
    catalog = get_catalog(settings.catalog_dir)
    tables = ([f"silver/{r.slug}" for r in catalog.resources.values()]
              + [f"quarantine/{r.slug}" for r in catalog.resources.values()] + [_CONFLICTS])
    return steps.run(settings, "returns", lock=locks.PUBLISH, run_id=run_id,
                     params=lambda: {"as_of": settings.today.isoformat()}, reads=lambda _: tables,
                     body=_build)


def _source_views(con: duckdb.DuckDBPyConnection, intent: steps.Intent, catalog: Catalog) -> set[str]:
    """Table ``src_<slug>`` per resource in silver: its released items, masked (govlake.masking), its
    ``_submitter`` and ``_district``; returns the codes of the resources present."""
    register = catalog.resources.get(ENTERPRISE_REGISTER)
    has_register = register is not None and intent.register(con, "enterprise_register", f"silver/{register.slug}")
    region = next((i.column for i in register.items if i.type == "region_code"), None) if register else None
    if has_register and region:
        con.execute(f"""create temp view register_district as
            select uscc as _register_uscc, min({county_sql(sql_ident(region))}) as _register_district
            from enterprise_register group by uscc""")
    present = set()
    for res in catalog.resources.values():
        if not intent.register(con, f"silver_{res.slug}", f"silver/{res.slug}"):
            continue
        present.add(res.code)
        own = next((i.column for i in res.items if i.type == "region_code"), None)
        if own:
            district, join = county_sql(f"s.{sql_ident(own)}"), ""
        elif has_register and region and any(i.column == "uscc" for i in res.items):
            district, join = "g._register_district", "left join register_district as g on g._register_uscc = s.uscc"
        else:
            district, join = "cast(null as varchar)", ""
        dept = "s._dept" if "_dept" in contracts.silver_schema(res).names else sql_string(res.provider)
        names = name_items(res.items)
        released = "".join(f"{release_item_sql(i, f's.{sql_ident(i.column)}', names)} as {sql_ident(i.column)}, "
                           for i in res.items if is_released(i))
        # masked once per resource (every receiver gets the same masks); the deliveries select from it
        con.execute(f"create temp table src_{res.slug} as select {released}{dept} as _submitter, "
                    f"{district} as _district from silver_{res.slug} as s {join}")
    return present


def _facts(con: duckdb.DuckDBPyConnection, catalog: Catalog, present: set[str]):
    districts: set[str] = set()
    routed: set[str] = set()
    submitted: dict[str, set[str]] = {}
    for code in sorted(present):
        res = catalog.resource(code)
        found = {d for (d,) in con.execute(
            f"select distinct _district from src_{res.slug} where _district is not null").fetchall()}
        if found:
            routed.add(code)
        districts |= found
        if res.department_from:
            submitted[code] = {d for (d,) in con.execute(
                f"select distinct _submitter from src_{res.slug} where _submitter is not null").fetchall()}
    return sorted(districts), submitted, routed


def _column_comment(res: Resource, item: Item) -> str:
    parts = [item.name, item.name_en, item.level]
    if item.pii:
        parts.append(mask_note(item))
    return " | ".join([*parts, f"from {res.code}.{item.column}"])


def _write_table(con: duckdb.DuckDBPyConnection, res: Resource, d: Delivery, run_id: str) -> None:
    items = [res.item(c) for c in d.columns]
    select = ", ".join(sql_ident(i.column) for i in items)
    target = f"out.{sql_ident(d.table)}"
    con.execute(f"create table {target} as select {select} from src_{res.slug} where {d.where}")
    basis = d.basis + (f" | 申请 request {d.request_id} | 用途 purpose: {d.purpose}" if d.request_id else "")
    con.execute(f"comment on table {target} is "
                f"{sql_string(f'{res.name} ({res.name_en}) | 依据 basis: {basis} | run: {run_id}')}")
    for item in items:
        con.execute(f"comment on column {target}.{sql_ident(item.column)} is {sql_string(_column_comment(res, item))}")


def _rules(settings: Settings) -> pa.Table:
    from govlake.quality import rule_listing

    rules = rule_listing(settings=settings)
    return pa.table({"resource": [r["resource"] for r in rules], "rule": [r["id"] for r in rules],
                     "reason_zh": [r["zh"] for r in rules]})


RECTIFY_COLUMNS = (("kind", "类别（隔离 / 冲突）"), ("resource", "资源代码"), ("file", "文件"), ("row", "行号"),
                   ("rule", "规则"), ("reason_zh", "原因"), ("record_key", "记录键"), ("entity_key", "主体标识"))


def _rectification(con: duckdb.DuckDBPyConnection, quarantined: list[Resource], catalog: Catalog, dept: str,
                   conflicts: list[dict]) -> None:
    """The department's 整改清单: its quarantined rows (one line per failed rule) and open conflicts."""
    con.execute(f"create table out.{RECTIFY_TABLE} (kind varchar, resource varchar, file varchar, row bigint, "
                "rule varchar, reason_zh varchar, record_key varchar, entity_key varchar)")
    for res in quarantined:
        view = f"q_{res.slug}"
        con.execute(f"""insert into out.{RECTIFY_TABLE}
            select '隔离', {sql_string(res.code)}, {scrub_sql('q._source')}, q._row_number, q.rule,
                   coalesce(r.reason_zh, '规则 ' || q.rule || ' 已不在现行规则中'), null, null
            from (select _source, _row_number, unnest(_failed_rules) as rule from {view}
                  where coalesce(_dept, {sql_string(res.provider)}) = {sql_string(dept)}) as q
            left join rules as r on r.resource = {sql_string(res.code)} and r.rule = q.rule
            order by q._source, q._row_number, q.rule""")
    rows = []
    for c in conflicts:
        if dept not in (c["department"], c["authority_department"]):
            continue
        authority = catalog.departments.get(c["authority_department"])
        role = "本部门为权威部门" if c["authority_department"] == dept else "本部门持有副本"
        rows.append(("冲突", c["resource"], None, None, f"一数一源:{c['item']}",
                     f"{c['item_name']}与权威部门{authority.name if authority else c['authority_department']}"
                     f"（{c['authority_resource']}）的值不一致（{role}，自 {c['first_seen']:%Y-%m-%d} 起）",
                     scrub_text(c["record_key"]), mask_entity_key(c["entity_key_type"], c["entity_key"])))
    if rows:
        con.executemany(f"insert into out.{RECTIFY_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    comment = "整改清单：本部门被隔离的行（文件、行号、规则、原因）与未解决的一数一源冲突 | Rectification list"
    con.execute(f"comment on table out.{RECTIFY_TABLE} is {sql_string(comment)}")
    for column, label in RECTIFY_COLUMNS:
        con.execute(f"comment on column out.{RECTIFY_TABLE}.{column} is {sql_string(label)}")


def _open_conflicts(con: duckdb.DuckDBPyConnection, intent: steps.Intent) -> list[dict]:
    from govlake.governance._conflicts import RESOLVED

    if not intent.register(con, "conflicts", _CONFLICTS):
        return []
    cur = con.execute(f"select * from conflicts where status <> '{RESOLVED}' order by resource, record_key, item")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _build(intent: steps.Intent) -> dict:
    settings, run_id = intent.settings, intent.run_id
    catalog = get_catalog(settings.catalog_dir)
    path = requests_path(settings)
    requests = load_requests(path, catalog).requests if path.exists() else ()
    con = storage.connect(settings)
    built: list[tuple[Path, Path]] = []
    try:
        present = _source_views(con, intent, catalog)
        districts, submitted, routed = _facts(con, catalog, present)
        con.register("rules", _rules(settings))
        quarantined = [r for r in sorted(catalog.resources.values(), key=lambda r: r.code)
                       if intent.register(con, f"q_{r.slug}", f"quarantine/{r.slug}")]
        conflicts = _open_conflicts(con, intent)
        deliveries = [d for d in plan(catalog, requests, districts=districts, submitted=submitted, routed=routed)
                      if d.resource in present]
        by_receiver: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
        for d in deliveries:
            by_receiver[(d.receiver, d.kind)].append(d)
        for dept in catalog.departments:
            by_receiver.setdefault((dept, DEPARTMENT), [])
        delivered_at = dt.datetime.now(dt.UTC)
        log_rows, summary = [], {}
        for (receiver, kind), items in sorted(by_receiver.items()):
            target = settings.returns / receiver / RETURN_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{RETURN_FILE}.{run_id}.tmp")
            tmp.unlink(missing_ok=True)
            built.append((tmp, target))
            con.execute(f"attach {sql_string(str(tmp))} as out")
            try:
                con.execute("begin")  # one commit per file, not one per table and comment
                for d in items:
                    _write_table(con, catalog.resource(d.resource), d, run_id)
                if kind == DEPARTMENT:
                    _rectification(con, quarantined, catalog, receiver, conflicts)
                counted = _counted(con)
                _info(con, items, counted, run_id, delivered_at)
                con.execute("commit")
                con.execute("checkpoint out")
            finally:
                con.execute("detach out")
            file = str(target.relative_to(settings.var))
            for d in items:
                rows, cols = counted[d.table]
                log_rows.append({"receiver": receiver, "receiver_kind": kind, "file": file, "table_name": d.table,
                                 "resource": d.resource, "basis": d.basis, "request_id": d.request_id,
                                 "purpose": d.purpose, "rows": rows, "columns": len(cols),
                                 "column_names": ",".join(cols), "delivered_at": delivered_at, "run_id": run_id})
            if kind == DEPARTMENT:
                rows, cols = counted[RECTIFY_TABLE]
                log_rows.append({"receiver": receiver, "receiver_kind": kind, "file": file,
                                 "table_name": RECTIFY_TABLE, "resource": None, "basis": RECTIFY, "rows": rows,
                                 "columns": len(cols), "column_names": ",".join(cols),
                                 "delivered_at": delivered_at, "run_id": run_id})
            summary[receiver] = {"kind": kind, "file": str(target),
                                 "tables": {t: counted[t][0] for t in sorted(counted)}}
    finally:
        con.close()
    try:
        # the log first: if the process dies before the renames, the next run finishes them, logging nothing twice
        intent.append_rows(LOG_TABLE, log_rows, contracts.RETURNS_LOG)
        for tmp, target in built:
            os.replace(tmp, target)
    finally:
        for tmp, _target in built:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
    log.info("returns: %d receivers, %d tables", len(summary), len(log_rows))
    return summary


def _counted(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, list[str]]]:
    """Rows and columns of every table of the file being written, as the file holds them."""
    columns: dict[str, list[str]] = defaultdict(list)
    for table, column in con.execute("""select table_name, column_name from duckdb_columns()
            where database_name = 'out' order by table_name, column_index""").fetchall():
        columns[table].append(column)
    return {t: (con.execute(f"select count(*) from out.{sql_ident(t)}").fetchone()[0], cols)
            for t, cols in columns.items()}


def _info(con: duckdb.DuckDBPyConnection, items: list[Delivery], counted: dict, run_id: str,
          built_at: dt.datetime) -> None:
    con.execute(f"create table out.{INFO_TABLE} (table_name varchar, resource varchar, basis varchar, "
                "request_id varchar, purpose varchar, rows bigint, run_id varchar, built_at_utc timestamp)")
    stamp = built_at.replace(tzinfo=None)
    rows = [(d.table, d.resource, d.basis, d.request_id, d.purpose, counted[d.table][0], run_id, stamp)
            for d in items]
    if RECTIFY_TABLE in counted:
        rows.append((RECTIFY_TABLE, None, RECTIFY, None, None, counted[RECTIFY_TABLE][0], run_id, stamp))
    if rows:
        con.executemany(f"insert into out.{INFO_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    info = sql_string("本次回流的表、依据与批次 | Tables of this return")
    con.execute(f"comment on table out.{INFO_TABLE} is {info}")


def delivery_log(settings: Settings) -> list[dict]:
    """meta/returns_log, latest delivery first; empty when nothing has been returned yet."""
    table = storage.open_table(storage.table_path(settings, "meta", "returns_log"))
    if table is None:
        return []
    rows = table.to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: (r["delivered_at"], r["receiver"], r["table_name"]), reverse=True)
