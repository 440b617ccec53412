"""Everything the report shows, read from the lake in one pass (DuckDB aggregates; nothing row by row
in Python except the few sample rows per rule, which are masked before they leave this module)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from govlake import objectstore, storage
from govlake.catalog import Catalog, Resource, get_catalog
from govlake.config import Settings
from govlake.kpi import Kpi, compute_kpis
from govlake.masking import is_released, mask_value, name_items, scrub_names, scrub_text
from govlake.opendata import open_data_runs

OPEN_RUNS = 10
"""Runs of ``govlake open`` the open-data page shows."""
SAMPLES_PER_DEPT = 5
"""Sample failing rows kept per rule and department (masked)."""


@dataclass
class RuleInfo:
    resource: str
    rule_id: str
    severity: str
    description_zh: str
    description_en: str
    history: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(run day, run id, rows checked, failed) per validation run, oldest first."""
    by_dept: dict[str, int] = field(default_factory=dict)
    """Rows now in quarantine with this rule, per department."""
    by_month: dict[str, int] = field(default_factory=dict)
    by_dept_month: dict[tuple[str, str], int] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Masked sample rows per department."""

    @property
    def latest_failed(self) -> int:
        return self.history[-1][3] if self.history else 0


@dataclass
class LakeData:
    settings: Settings
    catalog: Catalog
    kpis: list[Kpi]
    as_of: dt.date
    rules: dict[tuple[str, str], RuleInfo]
    runs: list[tuple[str, str]]
    """(run day, run id) of every validation run, oldest first."""
    reconciliation: dict[str, list[dict[str, Any]]]
    """Per resource, one row per run (oldest first)."""
    rows_by_dept_month: dict[tuple[str, str], dict[str, int]]
    """(department, YYYY-MM) → rows submitted, quarantined, and failing rows per quality dimension."""
    kpi_history_all: dict[str, list[tuple[str, float]]]
    """KPI id → (as-of day, value of scope ``all``) per day (last run of the day)."""
    kpi_history_last: dict[tuple[str, str, str], tuple[float | None, float | None, float | None]]
    """(KPI id, scope, YYYY-MM of the run's as-of) → (value, numerator, denominator) of the month's last run."""
    table_counts: list[tuple[str, str, int, int]]
    """(layer, table, rows, version) of every lake table."""
    conflicts: list[dict[str, Any]]
    gx_docs: Path | None
    open_data: list[dict[str, Any]] = field(default_factory=list)
    """meta/open_data rows of the last ``govlake open`` runs (govlake.opendata.open_data_runs), newest first."""


def _register_all(con: duckdb.DuckDBPyConnection, settings: Settings, layer: str, name: str, view: str) -> bool:
    return storage.register(con, view, storage.table_path(settings, layer, name))


def _month(ts: str) -> str:
    return ts[:7]


def dimension_sql(dimensions: dict[str, str], default: str, column: str) -> str:
    """SQL mapping a rule id to its quality dimension by the prefix before the first dot."""
    prefix = f"split_part({column}, '.', 1)"
    whens = " ".join(f"when '{k}' then '{v}'" for k, v in sorted(dimensions.items()))
    return f"case {prefix} {whens} else '{default}' end"


def _sample(res: Resource, row: dict[str, Any]) -> dict[str, Any]:
    """A quarantined row as the report may show it: the catalog's masks, free text scrubbed, L4 items
    without a mask left out, file name and row number kept for finding it."""
    out: dict[str, Any] = {"file": Path(str(row.get("_source") or "").split("?")[0]).name or row.get("_source"),
                           "row": row.get("_row_number"), "dept": row.get("_dept"),
                           "rules": ", ".join(row.get("_failed_rules") or [])}
    names = name_items(res.items)
    for item in res.items:
        if item.column not in row or not is_released(item):
            continue
        value = mask_value(item, row[item.column], row)
        if isinstance(value, str) and not item.pii:
            value = scrub_names(value, row, names)
        out[item.column] = scrub_text(value) if isinstance(value, str) else value
    return out


def load(settings: Settings, scoring: dict[str, Any]) -> LakeData:
    """Read the lake for the report."""
    catalog = get_catalog(settings.catalog_dir)
    kpis = compute_kpis(settings)
    con = storage.connect(settings)
    try:
        return _load(con, settings, catalog, kpis, scoring)
    finally:
        con.close()


def _load(con, settings: Settings, catalog: Catalog, kpis: list[Kpi], scoring: dict[str, Any]) -> LakeData:
    dims = scoring["dimensions"]
    default_dim = scoring["default_dimension"]
    rules: dict[tuple[str, str], RuleInfo] = {}
    runs: list[tuple[str, str]] = []
    if _register_all(con, settings, "meta", "validation_results", "vr"):
        for res, rid, sev, zh, en in con.execute("""
                select resource, rule_id, arg_max(severity, validated_at), arg_max(description_zh, validated_at),
                       arg_max(description_en, validated_at)
                from vr group by all order by 1, 2""").fetchall():
            rules[(res, rid)] = RuleInfo(res, rid, sev, zh, en)
        runs = [(str(d), r) for d, r in con.execute("""
            select strftime(min(validated_at), '%Y-%m-%d'), run_id from vr group by run_id
            order by min(validated_at)""").fetchall()]
        for res, rid, day, run, checked, failed in con.execute("""
                select resource, rule_id, strftime(min(validated_at), '%Y-%m-%d') as day, run_id,
                       sum(rows_checked), sum(failed)
                from vr group by resource, rule_id, run_id order by resource, rule_id, day, run_id""").fetchall():
            rules[(res, rid)].history.append((day, run, int(checked or 0), int(failed or 0)))

    reconciliation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if _register_all(con, settings, "meta", "reconciliation", "rec"):
        cur = con.execute("""select resource, run_id, strftime(checked_at, '%Y-%m-%d') as day, rows_read, silver,
                quarantined, duplicates, new_rows, new_quarantined, balanced
            from rec order by resource, checked_at""")
        cols = [d[0] for d in cur.description]
        for row in cur.fetchall():
            reconciliation[row[0]].append(dict(zip(cols, row, strict=True)))

    # Rows per department and month (the month of submission, as the 双公示 compliance KPI counts).
    rows_by: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    dim_case = dimension_sql(dims, default_dim, "rule")
    for res in catalog.resources.values():
        view = f"s_{res.slug}"
        if _register_all(con, settings, "silver", res.slug, view):
            cols = set(con.sql(f"select * from {view} limit 0").columns)
            when = ("coalesce(try_cast(submitted_at as timestamp), "
                    "cast(_received_at at time zone 'Asia/Shanghai' as timestamp))"
                    if "submitted_at" in cols else "cast(_received_at at time zone 'Asia/Shanghai' as timestamp)")
            for dept, month, n in con.execute(f"""select coalesce(_dept, '{res.provider}'),
                    strftime({when}, '%Y-%m'), count(*) from {view} group by all""").fetchall():
                rows_by[(dept, month or "?")]["rows"] += n
        qview = f"q_{res.slug}"
        if not _register_all(con, settings, "quarantine", res.slug, qview):
            continue
        qcols = set(con.sql(f"select * from {qview} limit 0").columns)
        dept_expr = f"coalesce(_dept, '{res.provider}')" if "_dept" in qcols else f"'{res.provider}'"
        when = ("coalesce(_submitted_at, cast(_received_at at time zone 'Asia/Shanghai' as timestamp))"
                if "_submitted_at" in qcols else "cast(_received_at at time zone 'Asia/Shanghai' as timestamp)")
        con.execute(f"""create or replace temp table qrows as
            select row_number() over () as rid, {dept_expr} as dept, strftime({when}, '%Y-%m') as month, *
            from {qview}""")
        for dept, month, n in con.execute("select dept, month, count(*) from qrows group by all").fetchall():
            rows_by[(dept, month or "?")]["rows"] += n
            rows_by[(dept, month or "?")]["quarantined"] += n
        for dept, month, dim, n in con.execute(f"""
                select dept, month, {dim_case} as dim, count(distinct rid)
                from (select rid, dept, month, unnest(_failed_rules) as rule from qrows) group by all""").fetchall():
            rows_by[(dept, month or "?")][f"fail_{dim}"] += n
        for rule, dept, month, n in con.execute("""
                select rule, dept, month, count(*) from (select dept, month, unnest(_failed_rules) as rule
                from qrows) group by all""").fetchall():
            info = rules.setdefault((res.code, rule), RuleInfo(res.code, rule, "row", "", ""))
            info.by_dept[dept] = info.by_dept.get(dept, 0) + n
            info.by_month[month or "?"] = info.by_month.get(month or "?", 0) + n
            info.by_dept_month[(dept, month or "?")] = n
        picked = con.execute(f"""
            select * exclude (k) from (
                select rule, rid, row_number() over (partition by rule, dept order by _source, _row_number) as k
                from (select rid, dept, _source, _row_number, unnest(_failed_rules) as rule from qrows))
            where k <= {SAMPLES_PER_DEPT}""").fetchall()
        if picked:
            wanted = sorted({rid for _, rid in picked})
            plain = [c for c, t in con.execute("select column_name, column_type from (describe qrows)").fetchall()
                     if "WITH TIME ZONE" not in t]
            cur = con.execute(f"select {', '.join(chr(34) + c + chr(34) for c in plain)} from qrows "
                              f"where rid in ({', '.join(map(str, wanted))})")
            names = [d[0] for d in cur.description]
            by_rid = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
            for rule, rid in sorted(picked, key=lambda p: (p[0], by_rid[p[1]]["dept"] or "",
                                                           str(by_rid[p[1]]["_source"]), by_rid[p[1]]["_row_number"])):
                row = by_rid[rid]
                info = rules[(res.code, rule)]
                info.samples.setdefault(row["dept"], []).append(_sample(res, row))

    hist_all: dict[str, list[tuple[str, float]]] = defaultdict(list)
    hist_last: dict[tuple[str, str, str], tuple] = {}
    if _register_all(con, settings, "meta", "kpi_history", "kh"):
        for kid, day, value in con.execute("""
                select kpi_id, strftime(as_of, '%Y-%m-%d') as day, arg_max(value, recorded_at)
                from kh where scope = 'all' and value is not null and not starts_with(period, 'as of ')
                  and period = (select max(period) from kh k2 where k2.kpi_id = kh.kpi_id and k2.as_of = kh.as_of
                                and k2.scope = 'all')
                group by all order by 1, 2""").fetchall():
            hist_all[kid].append((day, value))
        for kid, day, value in con.execute("""
                select kpi_id, strftime(as_of, '%Y-%m-%d') as day, arg_max(value, recorded_at)
                from kh where scope = 'all' and value is not null and starts_with(period, 'as of ')
                group by all order by 1, 2""").fetchall():
            hist_all[kid].append((day, value))
        for kid, scope, month, v, n, d in con.execute("""
                select kpi_id, scope, strftime(as_of, '%Y-%m') as month, arg_max(value, recorded_at),
                       arg_max(numerator, recorded_at), arg_max(denominator, recorded_at)
                from kh where starts_with(period, 'as of ') group by all""").fetchall():
            hist_last[(kid, scope, month)] = (v, n, d)

    counts = []
    for layer in storage.LAYERS:
        folder = settings.layer(layer)
        for name in objectstore.delta_tables(folder):
            t = storage.open_table(objectstore.join(folder, name))
            if t is not None:
                counts.append((layer, name, t.to_pyarrow_dataset().count_rows(), t.version()))

    conflicts: list[dict[str, Any]] = []
    if _register_all(con, settings, "gold", "conflicts", "cf"):
        cur = con.execute("""select item, item_name, resource, authority_department, authority_resource,
                department, status, count(*) as records, count(distinct entity_key) as entities,
                strftime(min(first_seen), '%Y-%m-%d') as first_seen, strftime(max(last_seen), '%Y-%m-%d') as last_seen
            from cf group by all order by resource, item, department, status""")
        names = [d[0] for d in cur.description]
        conflicts = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    gx = settings.reports / "gx" / "index.html"
    return LakeData(settings=settings, catalog=catalog, kpis=kpis, as_of=settings.today, rules=rules, runs=runs,
                    reconciliation=dict(reconciliation),
                    rows_by_dept_month={k: dict(v) for k, v in rows_by.items()},
                    kpi_history_all=dict(hist_all), kpi_history_last=hist_last, table_counts=counts,
                    conflicts=conflicts, gx_docs=gx if gx.exists() else None,
                    open_data=open_data_runs(settings, runs=OPEN_RUNS))
