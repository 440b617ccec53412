"""Browsing the catalog over the lake: what ``govlake catalog search|show|lineage`` and the report's
drill-down answer, as plain data (the CLI and the report print it). A service over the steps: it reads
the catalog, the lake's meta and gold tables and the lineage events.

- :func:`search`: resources, items and departments whose code or names contain the text.
- :func:`show`: one resource with its items (classification, authority), sharing, freshness (the
  last landing in ``meta/ingest_log`` against the 更新周期), the latest quality results
  (``meta/validation_results``), its lineage and the 一数一源 conflicts (``gold/conflicts``) on it.
- :func:`lineage`: upstream and downstream of a table or a column, from the OpenLineage events
  under ``var/lineage`` (govlake.lineage), down to the source files and database tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow.compute as pc

from govlake import storage
from govlake.catalog import Catalog, Resource, get_catalog
from govlake.config import Settings
from govlake.lineage import DatasetRef, LineageGraph, lake_table, load_graph

CYCLE_DAYS = {"realtime": 1, "daily": 1, "weekly": 7, "monthly": 31, "quarterly": 92, "yearly": 366}
"""Days a landing stays fresh per 更新周期 (realtime feeds are checked as daily)."""
CONFLICTS = "conflicts"
"""gold/conflicts (一数一源 disagreements), built by govlake.governance."""
_LAYER_ORDER = {"gold/base": 0, "gold/theme": 0, "gold": 0, "silver": 1, "bronze": 2, "quarantine": 3, "meta": 4}


class BrowseError(KeyError):
    """A resource or table the catalog does not know."""


# ---- search -------------------------------------------------------------------------------

def search(settings: Settings, text: str) -> list[dict[str, Any]]:
    """Resources, items and departments whose code, names (zh/en) or aliases contain ``text``."""
    catalog = get_catalog(settings.catalog_dir)
    needle = text.strip().casefold()
    hits: list[dict[str, Any]] = []

    def matched(*values: str | None) -> str | None:
        return next((v for v in values if v and needle in v.casefold()), None)

    for dept in catalog.departments.values():
        if (m := matched(dept.code, dept.name, dept.name_en)) is not None:
            hits.append({"kind": "department", "code": dept.code, "name": dept.name, "name_en": dept.name_en,
                         "matched": m, "resources": sorted(r.code for r in catalog.resources.values()
                                                           if r.provider == dept.code)})
    for res in sorted(catalog.resources.values(), key=lambda r: r.code):
        if (m := matched(res.code, res.name, res.name_en, res.category, res.summary)) is not None:
            hits.append({"kind": "resource", "code": res.code, "name": res.name, "name_en": res.name_en,
                         "provider": res.provider, "matched": m})
        for item in res.items:
            if (m := matched(item.column, item.name, item.name_en, *item.aliases)) is not None:
                hits.append({"kind": "item", "code": f"{res.code}.{item.column}", "name": item.name,
                             "name_en": item.name_en, "resource": res.code, "level": item.level,
                             "authority": res.authority_of(item), "matched": m})
    return hits


# ---- show ---------------------------------------------------------------------------------

def _resource(catalog: Catalog, code: str) -> Resource:
    if code in catalog.resources:
        return catalog.resources[code]
    by_slug = {r.slug: r for r in catalog.resources.values()}
    if code in by_slug:
        return by_slug[code]
    raise BrowseError(f"no resource {code!r} in the catalog; try `govlake catalog search {code}`")


def _rows(settings: Settings, layer: str, name: str, flt=None) -> list[dict]:
    table = storage.open_table(storage.table_path(settings, layer, name))
    if table is None:
        return []
    return table.to_pyarrow_dataset().to_table(filter=flt).to_pylist()


def freshness(settings: Settings, res: Resource, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The last landing of ``res`` (meta/ingest_log) against its update cycle."""
    now = now or dt.datetime.now(dt.UTC)
    landed = [r for r in _rows(settings, "meta", "ingest_log", pc.field("resource") == res.code)
              if r["status"] == "landed" and r["received_at"] is not None]
    days = CYCLE_DAYS[res.update_cycle]
    if not landed:
        return {"update_cycle": res.update_cycle, "last_landed": None, "age_days": None, "status": "never landed",
                "due_every_days": days}
    last = max(landed, key=lambda r: r["received_at"])
    age = (now - last["received_at"]).total_seconds() / 86400
    return {"update_cycle": res.update_cycle, "due_every_days": days, "last_landed": last["received_at"],
            "last_source": last["source"], "last_rows": last["rows"], "age_days": round(age, 2),
            "status": "fresh" if age <= days else "late"}


def latest_quality(settings: Settings, code: str) -> dict[str, Any]:
    """The rule results of the latest validation of ``code`` (meta/validation_results)."""
    rows = _rows(settings, "meta", "validation_results", pc.field("resource") == code)
    if not rows:
        return {"run_id": None, "validated_at": None, "rules": []}
    latest = max(rows, key=lambda r: r["validated_at"])
    rules = [{k: r[k] for k in ("rule_id", "severity", "description_zh", "description_en", "rows_checked",
                                "failed", "gx_unexpected", "success")}
             for r in rows if r["run_id"] == latest["run_id"] and r["validated_at"] == latest["validated_at"]]
    return {"run_id": latest["run_id"], "validated_at": latest["validated_at"], "rules": rules}


def conflicts(settings: Settings, *, resource: str | None = None, item: str | None = None,
              entity_key: str | None = None) -> dict[str, Any] | None:
    """Disagreements in gold/conflicts on ``resource`` (as copy or authority) and/or ``item``, per
    item and department; None when the table has not been built. Values are never listed (they
    can be personal: a person's address)."""
    table = storage.open_table(storage.table_path(settings, "gold", CONFLICTS))
    if table is None:
        return None
    rows = table.to_pyarrow_dataset().to_table().to_pylist()
    if resource:
        rows = [r for r in rows if resource in (r.get("resource"), r.get("authority_resource"))]
    if item:
        rows = [r for r in rows if r.get("item") == item]
    if entity_key:
        rows = [r for r in rows if r.get("entity_key") == entity_key]
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r.get("item"), r.get("authority_department"), r.get("department"), r.get("status"))
        g = groups.setdefault(key, {"item": key[0], "authority": key[1], "department": key[2], "status": key[3],
                                    "records": 0, "entities": set(), "first_seen": None, "last_seen": None,
                                    "authority_resources": set()})
        g["records"] += 1
        g["authority_resources"].add(r.get("authority_resource"))
        g["entities"].add(r.get("entity_key"))
        for bound, pick in (("first_seen", min), ("last_seen", max)):
            if r.get(bound) is not None:
                g[bound] = r[bound] if g[bound] is None else pick(g[bound], r[bound])
    out = [dict(g, entities=len(g["entities"]), authority_resources=sorted(g["authority_resources"]))
           for g in groups.values()]
    out.sort(key=lambda g: (g["item"] or "", g["department"] or "", g["status"] or ""))
    return {"table": "gold.conflicts", "groups": out}


def _table_lineage(graph: LineageGraph, ref: DatasetRef, direction: str) -> list[str]:
    return [d.label for d in graph.walk(ref, direction=direction).datasets(graph)]  # type: ignore[arg-type]


def show(settings: Settings, code: str) -> dict[str, Any]:
    """Everything ``govlake catalog show`` prints for one resource."""
    catalog = get_catalog(settings.catalog_dir)
    res = _resource(catalog, code)
    dept = catalog.departments.get(res.provider)
    graph = load_graph(settings.var)
    bronze, silver = lake_table(settings, "bronze", res.slug), lake_table(settings, "silver", res.slug)
    info: dict[str, Any] = {
        "code": res.code, "name": res.name, "name_en": res.name_en, "kind": res.kind, "category": res.category,
        "provider": res.provider, "provider_name": dept.name if dept else None, "summary": res.summary,
        "format": res.format, "share_type": res.share_type, "share_condition": res.share_condition,
        "share_basis": res.share_basis, "share_method": res.share_method, "open_type": res.open_type,
        "update_cycle": res.update_cycle, "published": res.published, "core_business": res.core_business,
        "grain": res.grain, "key": res.key, "source": res.source.model_dump(exclude_none=True),
        "items": [{"column": i.column, "name": i.name, "name_en": i.name_en, "type": i.type,
                   "required": i.required, "level": i.level, "pii": i.pii, "authority": res.authority_of(i),
                   "copy_of": i.copy_of, "copy_when": i.copy_when,
                   "code_list": i.code_list, "aliases": i.aliases} for i in res.items],
        "freshness": freshness(settings, res),
        "quality": latest_quality(settings, res.code),
        "lineage": {"upstream": _table_lineage(graph, bronze, "upstream"),
                    "downstream": _table_lineage(graph, silver, "downstream"),
                    "events": bool(graph.datasets)},
    }
    info["conflicts"] = conflicts(settings, resource=res.code)
    return info


# ---- lineage ------------------------------------------------------------------------------

def _aliases(settings: Settings, catalog: Catalog, graph: LineageGraph) -> list[tuple[str, int, DatasetRef]]:
    """(alias, preference, dataset): ``gold.legal_entity``, ``gold/base/legal_entity``, ``legal_entity``,
    ``amr.enterprise``, ``db:t``, paths."""
    from govlake.gold import GOLD_TABLES

    refs = {d.key: d for d in graph.datasets}
    for res in catalog.resources.values():
        for layer in ("bronze", "silver", "quarantine"):
            ref = lake_table(settings, layer, res.slug)
            refs.setdefault(ref.key, ref)
    for name in GOLD_TABLES:
        ref = lake_table(settings, "gold", name)
        refs.setdefault(ref.key, ref)
    out: list[tuple[str, int, DatasetRef]] = []
    for ref in refs.values():
        out.append((ref.label, 0, ref))
        if ref.kind == "lake" and ref.path is not None:
            out.append((f"{ref.layer}/{ref.path.name}", 0, ref))
            if (ref.layer or "").startswith("gold/"):  # gold/base/legal_entity is also gold/legal_entity
                out.append((f"gold/{ref.path.name}", 0, ref))
            out.append((ref.path.name, 1 + _LAYER_ORDER.get(ref.layer or "", 9), ref))
        elif ref.kind == "db":
            out.append((f"{ref.namespace}/{ref.name}", 0, ref))
    for res in catalog.resources.values():
        out.append((res.code, 1, lake_table(settings, "silver", res.slug)))
    return out


def resolve(settings: Settings, graph: LineageGraph, target: str) -> tuple[DatasetRef, str | None]:
    """The dataset and column ``target`` names: ``gold.legal_entity.address``, ``legal_entity.address``,
    ``silver/amr_enterprise``, ``amr.enterprise.address`` (the resource's silver table), ``db:amr_enterprise``."""
    catalog = get_catalog(settings.catalog_dir)
    text = target.strip()
    best: tuple[int, int, DatasetRef, str | None] | None = None
    for alias, preference, ref in _aliases(settings, catalog, graph):
        if text == alias:
            column = None
        elif text.startswith(alias + "."):
            column = text[len(alias) + 1:]
        else:
            continue
        rank = (-len(alias), preference)
        if best is None or rank < best[:2]:
            best = (*rank, ref, column)
    if best is None:
        raise BrowseError(f"no table {target!r}: name one as layer.table[.column] (e.g. gold.legal_entity.address), "
                          "a resource code (amr.enterprise.address), db:<table> or a file path")
    return best[2], best[3]


def _node(graph: LineageGraph, key, column: str | None) -> dict[str, Any]:
    ref = graph.ref(key)
    return {"dataset": ref.label, "kind": ref.kind, "layer": ref.layer, "namespace": ref.namespace,
            "name": ref.name, "column": column}


def lineage(settings: Settings, target: str, *, upstream: bool = True, downstream: bool = True,
            indirect: bool = False) -> dict[str, Any]:
    """Upstream and/or downstream of a table or column (see :func:`resolve`), from var/lineage events:
    the nodes reached (nearest first) and the edges walked, in the order they were walked."""
    graph = load_graph(settings.var)
    ref, column = resolve(settings, graph, target)
    out: dict[str, Any] = {"target": {"dataset": ref.label, "namespace": ref.namespace, "name": ref.name,
                                      "column": column},
                           "events": [str(p) for p in sorted((settings.var / "lineage").glob("*.jsonl"))]}
    for direction, wanted in (("upstream", upstream), ("downstream", downstream)):
        if not wanted:
            continue
        walk = graph.walk(ref, column=column, direction=direction, indirect=indirect)  # type: ignore[arg-type]
        nodes = [dict(_node(graph, k, c), depth=d) for (k, c), d in sorted(walk.depth.items(), key=lambda kv: kv[1])
                 if d > 0]
        edges = [{"from": _node(graph, h.source, h.source_column), "to": _node(graph, h.target, h.target_column),
                  "job": h.job, "kind": h.kind} for h in walk.hops]
        out[direction] = {"nodes": nodes, "edges": edges}
    if (ref.layer or "").startswith("gold") and column:
        walk = graph.walk(ref, column=column, direction="upstream", indirect=indirect)
        catalog = get_catalog(settings.catalog_dir)
        slugs = {d.path.name for d in walk.datasets(graph) if d.layer == "silver" and d.path is not None}
        authorities = {r.code for r in catalog.resources.values() if r.slug in slugs}
        found = conflicts(settings, item=column)
        if found is not None:
            found["groups"] = [g for g in found["groups"] if set(g["authority_resources"]) & authorities]
        out["conflicts"] = found
    return out
