"""Quality rules: generated from the catalog items, plus the rule pack in expectations/*.yml.

A rule is an id, a severity, a bilingual description and the Great Expectations expectation that
checks it (class name + typed kwargs; see ``_expectations.py`` for the pack's own classes). Its
SQL predicate ``fail_when`` (built from the same class and kwargs by ``_checks.py``) is what the
DuckDB split evaluates over the standardized row (typed ``<item>``, cleaned text ``<item>__in``),
while GX runs the expectation on the same table (_gx.py); the two are held to the same counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from govlake.catalog import Catalog, Item, Resource
from govlake.identifiers import sql_id_number_valid, sql_uscc_valid
from govlake.quality._checks import TODAY, fail_when
from govlake.transform import Dialect, tokens_of

Severity = Literal["row", "warning", "blocking"]

PHONE = "1[3-9][0-9]{9}"
INDUSTRY = "[A-T]([0-9]{2}|[0-9]{3}|[0-9]{4})?"
REGION = "[1-8][0-9]{5}"
RAW_SQL = "UnexpectedRowsExpectation"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    zh: str
    en: str
    fail_when: str
    columns: tuple[str, ...] = ()
    expectation: str = RAW_SQL
    """The GX expectation class that checks this rule (GX built-in or the pack's own)."""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Its typed arguments; ``as_of`` may hold the ``{today}`` placeholder until the run binds it."""


def check(rule_id: str, severity: Severity, zh: str, en: str, expectation: str, d: Dialect,
          **kwargs: Any) -> Rule:
    """A rule checked by ``expectation(**kwargs)``; its SQL comes from the same class and kwargs."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    named = [c for k in ("column", "column_a", "column_b") if isinstance(c := kwargs.get(k), str)]
    columns = tuple(dict.fromkeys(c.split("__")[0] for c in [*named, *kwargs.get("column_list", ())]))
    return Rule(rule_id, severity, zh, en, fail_when(expectation, kwargs, d), columns, expectation, kwargs)


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
    c, name, en = item.column, item.name, item.name_en
    raw, typed = f"{c}__in", c
    rules: list[Rule] = []
    if item.required:
        rules.append(check(f"required.{c}", "row", f"{name}为必填项", f"{en} is required",
                           "ExpectColumnValuesToNotBeNull", d, column=raw))
    t = item.type
    if t in ("date", "timestamp", "decimal", "integer"):
        what = {"date": "日期", "timestamp": "时间", "decimal": "数值", "integer": "整数"}[t]
        rules.append(check(f"format.{c}", "row", f"{name}须为可识别的{what}", f"{en} must be a valid {t}",
                           "ExpectColumnValuesToBeParseable", d, column=raw, parsed_column=typed, type_name=t))
    if t in ("date", "timestamp") and not item.future_ok:
        rules.append(check(f"not_future.{c}", "row", f"{name}不得晚于当前日期", f"{en} must not be in the future",
                           "ExpectColumnValuesToNotBeInTheFuture", d, column=typed, as_of=TODAY))
    if t == "uscc":
        rules.append(check(f"uscc.{c}", "row", f"{name}须为有效的统一社会信用代码（含校验位）",
                           f"{en} must be a valid unified social credit code (check character)",
                           "ExpectColumnValuesToBeValidUscc", d, column=raw))
        rules.append(check(f"uscc_org.{c}", "warning",
                           f"{name}第9-17位的组织机构代码校验位应正确（GB 11714，仅提示）",
                           f"{en}: positions 9-17 should carry a valid GB 11714 organisation code "
                           "(warning only)", "ExpectColumnValuesToHaveValidUsccOrganizationCode", d, column=raw))
    if t == "id_number":
        rules.append(check(f"id_number.{c}", "row", f"{name}须为有效的居民身份证号码",
                           f"{en} must be a valid resident ID number",
                           "ExpectColumnValuesToBeValidIdNumber", d, column=typed))
        rules.append(check(f"id_county.{c}", "warning", f"{name}前6位应为已知的县级行政区划（仅提示）",
                           f"{en}: the first six digits should be a known county (warning only)",
                           "ExpectColumnValuesToHaveKnownIdNumberCounty", d, column=typed,
                           codes_table="ref_region"))
    if t == "region_code":
        rules.append(check(f"region.{c}", "row", f"{name}须为有效的行政区划代码（GB/T 2260）",
                           f"{en} must be a known GB/T 2260 division code",
                           "ExpectColumnValuesToBeValidRegionCode", d, column=typed, codes_table="ref_region"))
    if t == "phone":
        rules.append(check(f"phone.{c}", "row", f"{name}须为11位手机号码", f"{en} must be a mobile number",
                           "ExpectColumnValuesToFullyMatchRegex", d, column=typed, regex=PHONE))
    if t == "industry_code":
        rules.append(check(f"industry.{c}", "row", f"{name}须为国民经济行业分类代码（GB/T 4754）",
                           f"{en} must be a GB/T 4754 industry code",
                           "ExpectColumnValuesToFullyMatchRegex", d, column=typed, regex=INDUSTRY))
    if item.code_list:
        cl = catalog.code_lists[item.code_list]
        zh, en_text = f"{name}须为代码表“{cl.description}”中的值", f"{en} must be in code list {cl.name}"
        if item.multi_value:
            # The ';a;b;' form computed once by the standardize model; synonyms count as known.
            spellings = [s for s, _ in tokens_of(cl.values, cl.synonyms)]
            rules.append(check(f"code.{c}", "row", zh, en_text, "ExpectColumnValuesToBeMultiValuedInSet", d,
                               column=f"{c}__norm", value_set=spellings, separators=[";"]))
        else:
            rules.append(check(f"code.{c}", "row", zh, en_text, "ExpectColumnValuesToBeInSet", d,
                               column=typed, value_set=list(cl.values)))
    if item.length:
        rules.append(check(f"length.{c}", "row", f"{name}长度不得超过{item.length}",
                           f"{en} must be at most {item.length} characters",
                           "ExpectColumnValueLengthsToBeBetween", d, column=raw, max_value=item.length))
    return rules


_MACRO = re.compile(r"\{(id_valid|uscc_valid):([a-z_]+)\}")


def _expand(sql: str, d: Dialect) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1) == "id_valid":
            return sql_id_number_valid(m.group(2), d)
        return sql_uscc_valid(m.group(2), d)

    return _MACRO.sub(sub, sql)


def rules_for(resource: Resource, catalog: Catalog, d: Dialect, expectations_dir: Path) -> RuleSet:
    """Every rule of ``resource``: the parse rule, the catalog rules, then those of
    ``expectations/<resource>.yml`` (with its ``overrides`` of catalog rules applied)."""
    rules = [check("parse.row", "row", "行须能按表头完整解析（字段数一致、格式正确）",
                   "The row must parse against the header (field count, JSON)",
                   "ExpectColumnValuesToBeNull", d, column="_parse_error")]
    for item in resource.items:
        rules.extend(_item_rules(catalog, item, d))
    path = expectations_dir / f"{resource.code}.yml"
    max_rate = 1.0
    if path.exists():
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if spec.get("resource") != resource.code:
            raise ValueError(f"{path}: resource is {spec.get('resource')!r}, expected {resource.code!r}")
        for i, r in enumerate(spec.get("rules", [])):
            rule = _yaml_rule(r, d, where=f"{path}: rules[{i}]")
            if rule is not None:
                rules.append(rule)
        rules = _override(rules, spec.get("overrides") or {}, where=f"{path}: overrides")
        max_rate = float((spec.get("blocking") or {}).get("max_quarantine_rate", 1.0))
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate rule ids for {resource.code}: {sorted(dupes)}")
    return RuleSet(resource.code, rules, max_quarantine_rate=max_rate,
                   source_file=path if path.exists() else None)


def _yaml_rule(r: dict, d: Dialect, *, where: str) -> Rule | None:
    """One rule of expectations/*.yml: ``expectation`` + ``kwargs``, or a hand-written ``fail_when``."""
    missing = {"id", "severity", "zh", "en"} - set(r)
    if missing:
        raise ValueError(f"{where} lacks {sorted(missing)}")
    if ("fail_when" in r) == ("expectation" in r):
        raise ValueError(f"{where} ({r['id']}) needs either fail_when or expectation (+ kwargs)")
    if r["severity"] not in ("row", "warning"):
        raise ValueError(f"{where} ({r['id']}) severity must be row or warning")
    if not r.get("enabled", True):
        return None
    if "fail_when" in r:
        return check(r["id"], r["severity"], r["zh"], r["en"], RAW_SQL, d, fail_when=_expand(r["fail_when"], d))
    try:
        return check(r["id"], r["severity"], r["zh"], r["en"], r["expectation"], d, **(r.get("kwargs") or {}))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{where} ({r['id']}): {exc}") from None


def _override(rules: list[Rule], overrides: dict, *, where: str) -> list[Rule]:
    """``overrides: {rule_id: {severity: warning} | {enabled: false}}`` for catalog-generated rules."""
    by_id = {r.id: r for r in rules}
    unknown = sorted(set(overrides) - set(by_id))
    if unknown:
        raise ValueError(f"{where}: no such rules {unknown}")
    out = []
    for r in rules:
        o = overrides.get(r.id) or {}
        if set(o) - {"severity", "enabled"}:
            raise ValueError(f"{where}.{r.id}: only severity and enabled can be overridden")
        if not o.get("enabled", True):
            continue
        if "severity" in o:
            if o["severity"] not in ("row", "warning"):
                raise ValueError(f"{where}.{r.id}: severity must be row or warning")
            r = replace(r, severity=o["severity"])
        out.append(r)
    return out


def bind_today(sql: str, today_literal: str) -> str:
    """The run's business date in place of the ``{today}`` placeholder of a rule's SQL."""
    return sql.replace(TODAY, today_literal)
