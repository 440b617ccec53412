"""catalog/credit_rules.yml: deadlines, 失信 severity, publicity periods and the credit score."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govlake.catalog import CatalogError, get_catalog, parse_document, read_document
from govlake.workdays import WorkdayCalendar

RULES_FILE = "credit_rules.yml"
Severity = Literal["一般", "严重"]
_Strict = ConfigDict(extra="forbid", frozen=True)


class DeadlineRules(BaseModel):
    model_config = _Strict
    working_days: int = Field(ge=1)
    by_department: dict[str, int] = Field(default_factory=dict)
    holiday_file: str | None = None

    def days_for(self, department: str | None) -> int:
        """Working days for ``department``; the default for one without its own rule or unknown (None)."""
        return self.by_department.get(department or "", self.working_days)


class Period(BaseModel):
    model_config = _Strict
    min_months: int = Field(ge=0)
    max_months: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.min_months > self.max_months:
            raise ValueError("min_months is after max_months")
        return self


class PublicityRules(BaseModel):
    model_config = _Strict
    serious_categories: list[str]
    serious_fine_from: float | None = None
    periods: dict[Severity, Period]
    warning_only_not_published_by: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _both_severities(self) -> PublicityRules:
        missing = {"一般", "严重"} - set(self.periods)
        if missing:
            raise ValueError(f"periods needs 一般 and 严重 (missing {sorted(missing)})")
        return self


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
    if problems:
        raise CatalogError(problems)
    return rules.model_copy(update={"folder": Path(directory)})
