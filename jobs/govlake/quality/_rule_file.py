"""expectations/<resource>.yml read and checked: every problem with its file, line and rule.

A file holds ``resource``, ``rules`` (id, severity, zh, en and either ``fail_when`` SQL or an
``expectation`` class with its ``kwargs``; ``enabled``), ``overrides`` of catalog-generated rules
and ``blocking.max_quarantine_rate``. Column arguments and ``fail_when`` may only name columns of
the standardized row; every rule's SQL must bind in DuckDB over an empty table of that row.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from govlake.catalog import (
    REFERENCE_TABLES,
    SQL_TYPES,
    Binder,
    Catalog,
    ItemType,
    Resource,
    YamlDoc,
    condition_problem,
    read_yaml,
)
from govlake.quality._checks import CHECKS, MACRO, PRESENTATION_KEYS, RAW_SQL, WHEN_KEYS, expand_macros, fail_when
from govlake.transform import DUCKDB, Dialect

TOP_KEYS = ("resource", "rules", "overrides", "blocking")
RULE_KEYS = ("id", "severity", "zh", "en", "expectation", "kwargs", "fail_when", "enabled")
SEVERITIES = ("row", "warning")
RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
GX_BUILTINS = frozenset({"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeNull", "ExpectColumnValuesToBeInSet",
                         "ExpectColumnValueLengthsToBeBetween"})
"""Great Expectations' own classes the rules may name (no ``when_*`` arguments)."""

COLUMN_ARGS = frozenset({"column", "column_a", "column_b", "parsed_column", "when_column"})
COLUMN_LIST_ARGS = frozenset({"column_list"})
TEXT_LIST_ARGS = frozenset({"value_set", "when_values", "separators"})
DATE_ARGS = frozenset({"as_of", "max_date"})
LINEAGE_COLUMNS = {"_parse_error": "varchar", "_source": "varchar", "_row_number": "bigint", "_batch_id": "varchar",
                   "_received_at": "timestamptz", "_dept": "varchar"}


def row_columns(resource: Resource) -> dict[str, str]:
    """The standardized row a rule checks: typed ``<item>``, cleaned text ``<item>__in``, the
    ``<item>__norm`` of multi-value code lists and the lineage columns, with their DuckDB types."""
    out: dict[str, str] = {}
    for item in resource.items:
        out[item.column] = SQL_TYPES.get(item.type, "varchar")
        out[f"{item.column}__in"] = "varchar"
        if item.code_list and item.multi_value:
            out[f"{item.column}__norm"] = "varchar"
    return {**out, **LINEAGE_COLUMNS}


@dataclass
class RuleFile:
    """What one expectations file declares, once checked."""

    doc: YamlDoc
    specs: list[tuple[int, dict]] = field(default_factory=list)
    """(index, entry) of each well-formed rule, enabled or not."""
    overrides: dict[str, dict] = field(default_factory=dict)
    max_quarantine_rate: float | None = None

    @property
    def problems(self) -> list[str]:
        return self.doc.problems


def _params(expectation: str) -> tuple[set[str], set[str]]:
    """(allowed, required) kwargs of an expectation class the rules may name."""
    sig = inspect.signature(CHECKS[expectation])
    names = {n for n in sig.parameters if n != "d"}
    required = {n for n, p in sig.parameters.items() if n != "d" and p.default is inspect.Parameter.empty}
    return (names if expectation in GX_BUILTINS else names | set(WHEN_KEYS)), required


def _kwarg_problem(key: str, value: Any, columns: dict[str, str]) -> str | None:
    """Why one kwarg's value is unusable, or None."""
    def texts(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v)

    if key in COLUMN_ARGS:
        if not isinstance(value, str) or value not in columns:
            return f"{key}: {value!r} is not a column of the standardized row (<item>, <item>__in)"
    elif key in COLUMN_LIST_ARGS:
        if not texts(value):
            return f"{key}: must be a list of column names"
        unknown = [c for c in value if c not in columns]
        if unknown:
            return f"{key}: {', '.join(map(repr, unknown))} not a column of the standardized row"
    elif key in TEXT_LIST_ARGS:
        if not texts(value):
            return f"{key}: must be a non-empty list of text values (quote numbers: '1')"
    elif key in DATE_ARGS:
        if not isinstance(value, dt.date):
            try:
                dt.date.fromisoformat(str(value))
            except ValueError:
                return f"{key}: {value!r} is not a date (YYYY-MM-DD)"
    elif key == "when_multi_value":
        if not isinstance(value, bool):
            return f"{key}: must be true or false"
    elif key == "max_value":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key}: must be a whole number ≥ 0"
    elif key == "regex":
        if not isinstance(value, str) or not value:
            return f"{key}: must be a regular expression (text)"
    elif key == "type_name":
        if value not in get_args(ItemType):
            return f"{key}: {value!r} is not a catalog item type"
    elif key == "codes_table" and value not in REFERENCE_TABLES:
        return f"{key}: {value!r} is not a reference table ({', '.join(REFERENCE_TABLES)})"
    return None


def _rule_problems(i: int, r: dict, columns: dict[str, str]) -> list[tuple[tuple, str]]:
    """(loc, message) of each problem of rule ``i``; nothing when it can be built."""
    loc = ("rules", i)
    out: list[tuple[tuple, str]] = []
    for key in r:
        if key not in RULE_KEYS:
            out.append(((*loc, key), f"unknown key {key!r} (a rule has {', '.join(RULE_KEYS)})"))
    missing = [k for k in ("id", "severity", "zh", "en") if k not in r]
    if missing:
        out.append((loc, f"lacks {', '.join(missing)}"))
    if "id" in r and not (isinstance(r["id"], str) and RULE_ID.match(r["id"])):
        out.append(((*loc, "id"), f"id {r['id']!r}: letters, digits, '_', '.', '-' (e.g. SGS.fine_amount)"))
    if "severity" in r and r["severity"] not in SEVERITIES:
        out.append(((*loc, "severity"), f"severity {r['severity']!r}: must be row or warning "
                                        "(the blocking limit is blocking.max_quarantine_rate)"))
    for k in ("zh", "en"):
        if k in r and not (isinstance(r[k], str) and r[k].strip()):
            hint = f" ({r[k]!r} was read as {type(r[k]).__name__}: quote it)" if r[k] is not None else ""
            out.append(((*loc, k), f"{k}: the description must be text{hint}"))
    if not isinstance(r.get("enabled", True), bool):
        out.append(((*loc, "enabled"), "enabled: must be true or false"))
    if ("fail_when" in r) == ("expectation" in r):
        out.append((loc, "needs either fail_when or expectation (+ kwargs)"))
    elif "fail_when" in r:
        if "kwargs" in r:
            out.append(((*loc, "kwargs"), "kwargs go with expectation, not with fail_when"))
        sql = r["fail_when"]
        checked = MACRO.sub(lambda m: f"({m.group(2)} is null)", sql) if isinstance(sql, str) else sql
        if problem := condition_problem(checked, columns):
            out.append(((*loc, "fail_when"), f"fail_when: {problem}"))
    else:
        out.extend(_expectation_problems(loc, r, columns))
    return out


def _expectation_problems(loc: tuple, r: dict, columns: dict[str, str]) -> list[tuple[tuple, str]]:
    name, kwargs = r["expectation"], r.get("kwargs") or {}
    if name == RAW_SQL:
        return [((*loc, "expectation"), f"{RAW_SQL}: write the condition as fail_when instead")]
    if not isinstance(name, str) or name not in CHECKS:
        known = sorted(set(CHECKS) - {RAW_SQL})
        return [((*loc, "expectation"), f"unknown expectation {name!r}; known: {', '.join(known)}")]
    if not isinstance(kwargs, dict):
        return [((*loc, "kwargs"), "kwargs: must be a mapping of argument → value")]
    allowed, required = _params(name)
    out = []
    for key, value in kwargs.items():
        if key in PRESENTATION_KEYS:
            out.append(((*loc, "kwargs", key), f"{name}: {key} is set by the pipeline (lineage columns only)"))
        elif key not in allowed:
            out.append(((*loc, "kwargs", key), f"{name}: unknown kwarg {key!r} (takes {', '.join(sorted(allowed))})"))
        elif problem := _kwarg_problem(key, value, columns):
            out.append(((*loc, "kwargs", key), f"{name}: {problem}"))
    missing = sorted(required - set(kwargs))
    if missing:
        out.append(((*loc, "kwargs"), f"{name}: missing {', '.join(missing)}"))
    return out


def _label(r: dict, i: int) -> str:
    return f"rules[{i}]" + (f" ({r['id']})" if isinstance(r.get("id"), str) else "")


def _sql_of(r: dict, d: Dialect) -> str:
    """The rule's failing-row predicate (``{id_valid:x}`` macros expanded)."""
    if "fail_when" in r:
        return expand_macros(r["fail_when"], d)
    return fail_when(r["expectation"], r.get("kwargs") or {}, d)


def _overrides(doc: YamlDoc, data: Any) -> dict[str, dict]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        doc.problem(("overrides",), "overrides: must be a mapping of rule id → {severity, enabled}")
        return {}
    out = {}
    for rule_id, o in data.items():
        loc = ("overrides", rule_id)
        if not isinstance(o, dict) or not o:
            doc.problem(loc, f"overrides.{rule_id}: must be {{severity: row|warning}} or {{enabled: false}}")
            continue
        before = len(doc.problems)
        for k in o:
            if k not in ("severity", "enabled"):
                doc.problem((*loc, k), f"overrides.{rule_id}: only severity and enabled can be overridden, not {k!r}")
        if "severity" in o and o["severity"] not in SEVERITIES:
            doc.problem((*loc, "severity"), f"overrides.{rule_id}: severity must be row or warning")
        if "enabled" in o and not isinstance(o["enabled"], bool):
            doc.problem((*loc, "enabled"), f"overrides.{rule_id}: enabled must be true or false")
        if len(doc.problems) == before:
            out[rule_id] = o
    return out


def _blocking(doc: YamlDoc, data: Any) -> float | None:
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"max_quarantine_rate"}:
        doc.problem(("blocking",), "blocking: must be {max_quarantine_rate: <share of rows, 0 to 1>}")
        return None
    rate = data.get("max_quarantine_rate")
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        doc.problem(("blocking", "max_quarantine_rate"),
                    f"blocking.max_quarantine_rate: {rate!r} is not a share of rows between 0 and 1")
        return None
    return float(rate)


def read_rule_file(path: Path, resource: Resource) -> RuleFile:
    """Read and check ``path``, the expectations of ``resource``; problems are in ``.problems``."""
    out = RuleFile(read_yaml(path))
    doc = out.doc
    if not doc.readable:
        return out
    data = doc.data
    if not isinstance(data, dict):
        doc.problem((), "the top level must be a mapping (resource, rules, overrides, blocking)")
        return out
    for key in data:
        if key not in TOP_KEYS:
            doc.problem((key,), f"unknown key {key!r} (a file has {', '.join(TOP_KEYS)})", key=True)
    if data.get("resource") != resource.code:
        doc.problem(("resource",), f"resource is {data.get('resource')!r}; this file is {resource.code}'s "
                    f"(name it {data.get('resource')}.yml if it is about that resource)")
    rules = data.get("rules") or []
    if not isinstance(rules, list):
        doc.problem(("rules",), "rules: must be a list of rules")
        rules = []
    columns = row_columns(resource)
    first_id: dict[str, int] = {}
    binder: Binder | None = None
    try:
        for i, r in enumerate(rules):
            if not isinstance(r, dict):
                doc.problem(("rules", i), f"rules[{i}]: must be a mapping (id, severity, zh, en, …)")
                continue
            found = _rule_problems(i, r, columns)
            for loc, message in found:
                doc.problem(loc, f"{_label(r, i)}: {message}")
            if isinstance(r.get("id"), str):
                if r["id"] in first_id:
                    doc.problem(("rules", i, "id"), f"{_label(r, i)}: rule id {r['id']!r} is declared twice "
                                f"(first at line {doc.line(('rules', first_id[r['id']]))})")
                first_id.setdefault(r["id"], i)
            if found:
                continue
            binder = binder or Binder(columns)
            try:
                sql = _sql_of(r, DUCKDB)
            except ValueError as exc:
                doc.problem(("rules", i), f"{_label(r, i)}: {exc}")
                continue
            if problem := binder.problem(sql):
                at = ("rules", i, "fail_when" if "fail_when" in r else "kwargs")
                doc.problem(at, f"{_label(r, i)}: {problem}")
                continue
            out.specs.append((i, r))
    finally:
        if binder:
            binder.close()
    out.overrides = _overrides(doc, data.get("overrides"))
    out.max_quarantine_rate = _blocking(doc, data.get("blocking"))
    return out


def expectation_files(catalog: Catalog, expectations_dir: Path, *, skip: Collection[str] = ()) -> list[str]:
    """Problems of the folder itself: files for resources the catalog does not have (``skip``: do not
    know either way), other files."""
    if not expectations_dir.is_dir():
        return [f"{expectations_dir}: missing (the folder of expectations/<resource>.yml files)"]
    problems = []
    for path in sorted(expectations_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if path.suffix != ".yml":
            problems.append(f"{path}: not read; expectations are expectations/<resource>.yml files")
        elif path.stem not in catalog.resources and path.stem not in skip:
            problems.append(f"{path}:1: no resource {path.stem!r} in the catalog "
                            f"(it has {', '.join(sorted(catalog.resources))})")
    return problems

