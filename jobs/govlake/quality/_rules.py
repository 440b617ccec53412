"""Quality rules: generated from the catalog items, plus hand-written ones in expectations/*.yml.

A rule is an id, a severity, a bilingual description and a SQL predicate ``fail_when`` over
the standardized row (typed ``<item>`` and cleaned text ``<item>__in``). The same predicate
splits rows into silver and quarantine (DuckDB) and becomes a Great Expectations
``UnexpectedRowsExpectation`` (see _gx.py), so the two can be held to the same counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from govlake.catalog import Catalog, Item, Resource
from govlake.identifiers import sql_id_number_valid, sql_uscc_valid
from govlake.transform import Dialect, tokens_of

Severity = Literal["row", "warning", "blocking"]

PHONE = "1[3-9][0-9]{9}"
INDUSTRY = "[A-T]([0-9]{2}|[0-9]{3}|[0-9]{4})?"
REGION = "[1-8][0-9]{5}"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    zh: str
    en: str
    fail_when: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleSet:
    resource: str
    rules: list[Rule]
    max_quarantine_rate: float = 1.0
    source_file: Path | None = None
    extra: dict = field(default_factory=dict)

    def by_severity(self, *severities: Severity) -> list[Rule]:
        return [r for r in self.rules if r.severity in severities]


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _item_rules(catalog: Catalog, item: Item, d: Dialect) -> list[Rule]:
    c, name = item.column, item.name
    raw, typed = f"{c}__in", c
    rules: list[Rule] = []
    if item.required:
        rules.append(Rule(f"required.{c}", "row", f"{name}为必填项", f"{item.name_en} is required",
                          f"{raw} is null", (c,)))
    t = item.type
    if t in ("date", "timestamp", "decimal", "integer"):
        what = {"date": "日期", "timestamp": "时间", "decimal": "数值", "integer": "整数"}[t]
        rules.append(Rule(f"format.{c}", "row", f"{name}须为可识别的{what}",
                          f"{item.name_en} must be a valid {t}",
                          f"{raw} is not null and {typed} is null", (c,)))
    if t in ("date", "timestamp") and not item.future_ok:
        rules.append(Rule(f"not_future.{c}", "row", f"{name}不得晚于当前日期",
                          f"{item.name_en} must not be in the future",
                          f"cast({typed} as date) > {{today}}", (c,)))
    if t == "uscc":
        rules.append(Rule(f"uscc.{c}", "row", f"{name}须为有效的统一社会信用代码（含校验位）",
                          f"{item.name_en} must be a valid unified social credit code (check character)",
                          f"{raw} is not null and not coalesce({sql_uscc_valid(raw, d)}, false)", (c,)))
    if t == "id_number":
        valid = sql_id_number_valid(typed, d)
        rules.append(Rule(f"id_number.{c}", "row", f"{name}须为有效的居民身份证号码",
                          f"{item.name_en} must be a valid resident ID number",
                          f"{typed} is not null and not coalesce({valid}, false)", (c,)))
    if t == "region_code":
        rules.append(Rule(f"region.{c}", "row", f"{name}须为有效的行政区划代码（GB/T 2260）",
                          f"{item.name_en} must be a known GB/T 2260 division code",
                          f"{raw} is not null and ({typed} not in (select code from ref_region))", (c,)))
    if t == "phone":
        rules.append(Rule(f"phone.{c}", "row", f"{name}须为11位手机号码",
                          f"{item.name_en} must be a mobile number",
                          f"{typed} is not null and not {d.full_match(typed, PHONE)}", (c,)))
    if t == "industry_code":
        rules.append(Rule(f"industry.{c}", "row", f"{name}须为国民经济行业分类代码（GB/T 4754）",
                          f"{item.name_en} must be a GB/T 4754 industry code",
                          f"{typed} is not null and not {d.full_match(typed, INDUSTRY)}", (c,)))
    if item.code_list:
        cl = catalog.code_lists[item.code_list]
        allowed = ", ".join(_q(v) for v in cl.values)
        if item.multi_value:
            rest = f"{c}__norm"  # ';a;b;' form computed once by the standardize model
            for spelling, _ in tokens_of(cl.values, cl.synonyms):
                rest = f"replace({rest}, {_q(';' + spelling + ';')}, ';')"
            fail = f"{raw} is not null and {d.remove_all(rest, ';')} <> ''"
        else:
            fail = f"{typed} is not null and {typed} not in ({allowed})"
        rules.append(Rule(f"code.{c}", "row", f"{name}须为代码表“{cl.description}”中的值",
                          f"{item.name_en} must be in code list {cl.name}", fail, (c,)))
    if item.length:
        rules.append(Rule(f"length.{c}", "row", f"{name}长度不得超过{item.length}",
                          f"{item.name_en} must be at most {item.length} characters",
                          f"length({raw}) > {item.length}", (c,)))
    return rules


_MACRO = re.compile(r"\{(id_valid|uscc_valid):([a-z_]+)\}")


def _expand(sql: str, d: Dialect) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1) == "id_valid":
            return sql_id_number_valid(m.group(2), d)
        return sql_uscc_valid(m.group(2), d)

    return _MACRO.sub(sub, sql)


def rules_for(resource: Resource, catalog: Catalog, d: Dialect, expectations_dir: Path) -> RuleSet:
    """Every rule of ``resource``: the parse rule, the catalog rules, then the hand-written ones."""
    rules = [Rule("parse.row", "row", "行须能按表头完整解析（字段数一致、格式正确）",
                  "The row must parse against the header (field count, JSON)",
                  "_parse_error is not null")]
    for item in resource.items:
        rules.extend(_item_rules(catalog, item, d))
    path = expectations_dir / f"{resource.code}.yml"
    max_rate = 1.0
    if path.exists():
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if spec.get("resource") != resource.code:
            raise ValueError(f"{path}: resource is {spec.get('resource')!r}, expected {resource.code!r}")
        for i, r in enumerate(spec.get("rules", [])):
            missing = {"id", "severity", "zh", "en", "fail_when"} - set(r)
            if missing:
                raise ValueError(f"{path}: rules[{i}] lacks {sorted(missing)}")
            if r["severity"] not in ("row", "warning"):
                raise ValueError(f"{path}: rules[{i}] severity must be row or warning")
            rules.append(Rule(r["id"], r["severity"], r["zh"], r["en"], _expand(r["fail_when"], d)))
        max_rate = float((spec.get("blocking") or {}).get("max_quarantine_rate", 1.0))
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate rule ids for {resource.code}: {sorted(dupes)}")
    return RuleSet(resource.code, rules, max_quarantine_rate=max_rate,
                   source_file=path if path.exists() else None)


def bind_today(sql: str, today_literal: str) -> str:
    return sql.replace("{today}", today_literal)
