"""Quality rules: generated from the catalog items, plus the rule pack in expectations/*.yml.

A rule is an id, a severity, a bilingual description and the Great Expectations expectation that
checks it (class name + typed kwargs; see ``_expectations.py`` for the pack's own classes). Its
SQL predicate ``fail_when`` (built from the same class and kwargs by ``_checks.py``) is what the
DuckDB split evaluates over the standardized row (typed ``<item>``, cleaned text ``<item>__in``),
while GX runs the expectation on the same table (_gx.py); the two are held to the same counts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from govlake.catalog import Catalog, CatalogError, Item, Resource
from govlake.quality._checks import RAW_SQL, TODAY, expand_macros, fail_when
from govlake.transform import DUCKDB, Dialect, tokens_of

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
    max_quarantine_rate: float = 0.5
    """Blocking limit: the expectations file's, else the resource's in the catalog, else the catalog default."""
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
                           "ExpectColumnValuesToBeValidUscc", d, column=raw, known_table="ref_uscc_valid"))
        rules.append(check(f"uscc_org.{c}", "warning",
                           f"{name}第9-17位的组织机构代码校验位应正确（GB 11714，仅提示）",
                           f"{en}: positions 9-17 should carry a valid GB 11714 organisation code "
                           "(warning only)", "ExpectColumnValuesToHaveValidUsccOrganizationCode", d, column=raw,
                           known_table="ref_uscc_org_valid"))
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


def rules_for(resource: Resource, catalog: Catalog, d: Dialect, expectations_dir: Path) -> RuleSet:
    """Every rule of ``resource``: the parse rule, the catalog rules, then those of
    ``expectations/<resource>.yml`` (with its ``overrides`` of catalog rules applied).

    Raises:
        CatalogError: the expectations file has problems (the ones ``check_expectations`` lists).
    """
    from govlake.quality._rule_file import read_rule_file

    rules = [check("parse.row", "row", "行须能按表头完整解析（字段数一致、格式正确）",
                   "The row must parse against the header (field count, JSON)",
                   "ExpectColumnValuesToBeNull", d, column="_parse_error")]
    for item in resource.items:
        rules.extend(_item_rules(catalog, item, d))
    path = expectations_dir / f"{resource.code}.yml"
    max_rate = catalog.max_quarantine_rate(resource.code)
    if not path.exists():
        return RuleSet(resource.code, rules, max_quarantine_rate=max_rate)
    spec = read_rule_file(path, resource)
    generated = {r.id for r in rules}
    for i, r in spec.specs:
        if r["id"] in generated:
            spec.doc.problem(("rules", i, "id"), f"rules[{i}] ({r['id']}): {r['id']!r} is the id of a rule "
                             "the catalog generates; choose another id (or use overrides)")
        elif r.get("enabled", True):
            rules.append(_yaml_rule(r, d))
    known = {r.id for r in rules} | {r["id"] for _, r in spec.specs}
    for rule_id in spec.overrides:
        if rule_id not in known:
            spec.doc.problem(("overrides", rule_id), f"overrides: no rule {rule_id!r} for {resource.code} "
                             "(`govlake rules RESOURCE` lists them)", key=True)
    if spec.problems:
        raise CatalogError(spec.doc.sorted_problems())
    rules = _override(rules, spec.overrides)
    if spec.max_quarantine_rate is not None:
        max_rate = spec.max_quarantine_rate
    return RuleSet(resource.code, rules, max_quarantine_rate=max_rate, source_file=path)


def check_expectations(catalog: Catalog, expectations_dir: Path, *, skip: Collection[str] = ()) -> list[str]:
    """Every problem of the expectations folder and its files (``file:line:col: message``).

    Args:
        catalog: the catalog the files are about.
        expectations_dir: the folder of ``<resource>.yml`` files.
        skip: resources whose files are not checked (their catalog entry is broken: ``CatalogError.left_out``).
    """
    from govlake.quality._rule_file import expectation_files

    problems = expectation_files(catalog, expectations_dir, skip=skip)
    for code in sorted(set(catalog.resources) - set(skip)):
        try:
            rules_for(catalog.resource(code), catalog, DUCKDB, expectations_dir)
        except CatalogError as exc:
            problems.extend(exc.problems)
    return problems


def _yaml_rule(r: dict, d: Dialect) -> Rule:
    """One checked rule of expectations/*.yml: ``expectation`` + ``kwargs``, or a hand-written ``fail_when``."""
    if "fail_when" in r:
        return check(r["id"], r["severity"], r["zh"], r["en"], RAW_SQL, d, fail_when=expand_macros(r["fail_when"], d))
    return check(r["id"], r["severity"], r["zh"], r["en"], r["expectation"], d, **(r.get("kwargs") or {}))


def _override(rules: list[Rule], overrides: dict) -> list[Rule]:
    """``overrides: {rule_id: {severity: warning} | {enabled: false}}`` (checked by ``_rule_file``)."""
    out = []
    for r in rules:
        o = overrides.get(r.id) or {}
        if not o.get("enabled", True):
            continue
        if "severity" in o:
            r = replace(r, severity=o["severity"])
        out.append(r)
    return out


def bind_today(sql: str, today_literal: str) -> str:
    """The run's business date in place of the ``{today}`` placeholder of a rule's SQL."""
    return sql.replace(TODAY, today_literal)
