"""catalog/credit_rules.yml: deadlines, 失信 classes and publicity periods by regime, and the credit score."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govlake.catalog import CatalogError, get_catalog, parse_document, read_document
from govlake.workdays import WorkdayCalendar

RULES_FILE = "credit_rules.yml"
PENALTY = "credit.penalty"
"""The resource whose dates choose a penalty's regime (``publicity.regime_date``)."""
Severity = Literal["轻微", "一般", "严重"]
_Strict = ConfigDict(extra="forbid", frozen=True)


class DeadlineRules(BaseModel):
    model_config = _Strict
    working_days: int = Field(ge=1)
    by_department: dict[str, int] = Field(default_factory=dict)
    holiday_file: str | None = None

    def days_for(self, department: str | None) -> int:
        """Working days for ``department``; the default for one without its own rule or unknown (None)."""
        return self.by_department.get(department or "", self.working_days)


class Source(BaseModel):
    """Where a rule comes from: the document (the regime's when omitted) and the article."""

    model_config = _Strict
    document: str | None = Field(default=None, min_length=1)
    article: str = Field(min_length=1)


class ClassRule(BaseModel):
    """One 失信 class of a regime: its publicity period (months after the decision) and source."""

    model_config = _Strict
    min_months: int = Field(ge=0)
    max_months: int = Field(ge=1)
    source: Source

    @model_validator(mode="after")
    def _ordered(self) -> ClassRule:
        if self.min_months > self.max_months:
            raise ValueError("min_months is after max_months")
        return self

    def criterion(self) -> str:
        """What puts a penalty in this class, in words (the default class: what no other class takes)."""
        return "every other penalty"


class SeriousClass(ClassRule):
    """严重: any 处罚类别 in ``categories``, or a fine (万元) of at least ``fine_from``."""

    categories: list[str] = Field(default_factory=list)
    fine_from: float | None = None

    @model_validator(mode="after")
    def _has_criterion(self) -> SeriousClass:
        if not self.categories and self.fine_from is None:
            raise ValueError("严重 needs categories or fine_from (else no penalty could be 严重)")
        return self

    def criterion(self) -> str:
        parts = [f"a 处罚类别 in {'/'.join(self.categories)}"] if self.categories else []
        parts += [f"a fine ≥ {self.fine_from:g} 万元"] if self.fine_from is not None else []
        return " or ".join(parts)


class MinorClass(ClassRule):
    """轻微: every 处罚类别 in ``only_categories`` and a fine (万元; none counts as 0) below ``fine_below``."""

    only_categories: list[str] = Field(min_length=1)
    fine_below: float | None = None
    published: bool = False

    def criterion(self) -> str:
        fine = f" and a fine < {self.fine_below:g} 万元" if self.fine_below is not None else ""
        return f"only {'/'.join(self.only_categories)}{fine}"


class Classes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    serious: SeriousClass = Field(alias="严重")
    general: ClassRule = Field(alias="一般")
    minor: MinorClass | None = Field(default=None, alias="轻微")

    def items(self) -> list[tuple[Severity, ClassRule]]:
        """(class, rule) in the order a penalty is classed: 严重, then 轻微, else 一般."""
        found = [("严重", self.serious), ("轻微", self.minor), ("一般", self.general)]
        return [(name, rule) for name, rule in found if rule is not None]

    def get(self, severity: str) -> ClassRule | None:
        return dict(self.items()).get(severity)


class Regime(BaseModel):
    """The publicity rules of one legal regime (法规), in force from ``effective_from`` to ``until``."""

    model_config = _Strict
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str = Field(min_length=1)
    document: str = Field(min_length=1)
    effective_from: dt.date
    until: dt.date | None = None
    notes: list[str] = Field(default_factory=list)
    classes: Classes

    def source(self, rule: ClassRule) -> str:
        """``document article`` of ``rule`` (the regime's document when the rule names none)."""
        return f"{rule.source.document or self.document} {rule.source.article}"

    def unpublished(self) -> list[str]:
        """Classes this regime does not publish (轻微 unless ``published``)."""
        minor = self.classes.minor
        return ["轻微"] if minor is not None and not minor.published else []


class PublicityRules(BaseModel):
    model_config = _Strict
    regime_date: str = "decision_date"
    warning_only_not_published_by: list[str] = Field(default_factory=list)
    regimes: list[Regime] = Field(min_length=1)

    def regime(self, regime_id: str) -> Regime:
        """The regime ``regime_id``; KeyError naming the ones configured."""
        for regime in self.regimes:
            if regime.id == regime_id:
                return regime
        known = ", ".join(r.id for r in self.regimes)
        raise KeyError(f"no regime {regime_id!r} in {RULES_FILE} (publicity.regimes has: {known})")


def regime_problems(publicity: PublicityRules, where) -> list[str]:
    """Regimes out of order, overlapping, with a gap between them, or ending: ``where(loc)`` → ``file:line``."""
    problems: list[str] = []

    def problem(loc: tuple, text: str) -> None:
        problems.append(f"{where(('publicity', 'regimes', *loc))}: publicity.regimes.{'.'.join(map(str, loc))}: "
                        f"{text}")

    seen: dict[str, int] = {}
    for i, regime in enumerate(publicity.regimes):
        if regime.id in seen:
            problem((i, "id"), f"duplicate regime id {regime.id!r} (also regimes.{seen[regime.id]})")
        seen.setdefault(regime.id, i)
        if regime.until is not None and regime.until < regime.effective_from:
            problem((i, "until"), f"{regime.until} is before effective_from {regime.effective_from}")
    for i, (before, after) in enumerate(zip(publicity.regimes, publicity.regimes[1:]), start=1):
        if after.effective_from <= before.effective_from:
            problem((i, "effective_from"), f"{after.effective_from} is not after regime {before.id!r} "
                                           f"(from {before.effective_from}): list the regimes in date order")
        elif before.until is not None and before.until >= after.effective_from:
            problem((i - 1, "until"), f"regime {before.id!r} until {before.until} overlaps regime {after.id!r} "
                                      f"from {after.effective_from}")
        elif before.until is not None and before.until + dt.timedelta(days=1) < after.effective_from:
            problem((i - 1, "until"), f"gap: regime {before.id!r} ends {before.until} but {after.id!r} starts "
                                      f"{after.effective_from}; decisions in between would have no regime")
    last = publicity.regimes[-1]
    if last.until is not None:
        problem((len(publicity.regimes) - 1, "until"),
                f"the last regime ({last.id!r}) ends {last.until}: decisions after it would have no regime "
                "(remove until, or add the regime that follows)")
    return problems


class ScoreFactor(BaseModel):
    """One factor of the score: points per unit of a count (capped), when a flag is true, or per value."""

    model_config = _Strict
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str
    en: str
    column: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    points_each: float | None = None
    cap: float | None = None
    points_if_true: float | None = None
    points_by_value: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ScoreFactor:
        kinds = [k for k in ("points_each", "points_if_true", "points_by_value") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a factor needs one of points_each, points_if_true, points_by_value (has {kinds})")
        if self.cap is not None and self.points_each is None:
            raise ValueError("cap applies to points_each only")
        return self

    def points_sql(self) -> str:
        """SQL for this factor's points on a profile row (columns of int_profile_inputs)."""
        col = self.column
        if self.points_each is not None:
            raw = f"coalesce({col}, 0) * {self.points_each}"
            if self.cap is None:
                return raw
            return f"{'greatest' if self.cap < 0 else 'least'}({raw}, {self.cap})"
        if self.points_if_true is not None:
            return f"case when {col} then {self.points_if_true} else 0 end"
        cases = " ".join(f"when {col} = '{v}' then {p}" for v, p in (self.points_by_value or {}).items())
        return f"case {cases} else 0 end"


class ScoreRules(BaseModel):
    model_config = _Strict
    base: float
    floor: float
    ceiling: float
    bands: dict[str, float]
    factors: list[ScoreFactor]

    def grade_sql(self, score: str) -> str:
        ordered = sorted(self.bands.items(), key=lambda kv: -kv[1])
        return "case " + " ".join(f"when {score} >= {low} then '{g}'" for g, low in ordered) + " else 'D' end"


class CreditRules(BaseModel):
    model_config = _Strict
    deadline: DeadlineRules
    publicity: PublicityRules
    score: ScoreRules
    folder: Path | None = None

    def calendar(self) -> WorkdayCalendar:
        holidays = self.deadline.holiday_file
        return WorkdayCalendar(self.folder / holidays if holidays and self.folder else None)


def load_credit_rules(catalog_dir: Path) -> CreditRules:
    """Read and validate ``<catalog_dir>/credit_rules.yml``; errors name the file and line.

    Department codes (``deadline.by_department``, ``publicity.warning_only_not_published_by``) must
    be in the catalog's departments.yml: a misspelt one would silently fall back to the defaults.
    ``publicity.regime_date`` must be a date of credit.penalty; the regimes must follow each other
    without a gap or an overlap, the last one open-ended.
    """
    return _load(str(catalog_dir))


@lru_cache(maxsize=8)
def _load(directory: str) -> CreditRules:
    path = Path(directory) / RULES_FILE
    data, lines = read_document(path)
    problems: list[str] = []
    rules = parse_document(CreditRules, data, path, lines, (), problems)
    if rules is not None:
        known = get_catalog(Path(directory)).departments
        used = [(("deadline", "by_department", code), code) for code in rules.deadline.by_department]
        used += [(("publicity", "warning_only_not_published_by", i), code)
                 for i, code in enumerate(rules.publicity.warning_only_not_published_by)]
        problems += [f"{lines.where(loc)}: {'.'.join(map(str, loc))}: unknown department {code!r} "
                     f"(departments.yml has: {', '.join(known)})" for loc, code in used if code not in known]
        dates = [i.column for i in get_catalog(Path(directory)).resource(PENALTY).items
                 if i.type in ("date", "timestamp")]
        if rules.publicity.regime_date not in dates:
            problems.append(f"{lines.where(('publicity', 'regime_date'))}: publicity.regime_date: "
                            f"{rules.publicity.regime_date!r} is not a date of {PENALTY} ({', '.join(dates)})")
        problems += regime_problems(rules.publicity, lines.where)
    if problems:
        raise CatalogError(problems)
    return rules.model_copy(update={"folder": Path(directory)})
