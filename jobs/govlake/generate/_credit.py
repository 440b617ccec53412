"""双公示 files (credit.penalty, credit.license): one CSV per submitting department.

Shared here: departments' file layouts, subjects (enterprises, 个体工商户, natural
persons), authorities (the department or one of its district branches), decision dates
and 报送时间.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from govlake.generate import _ids
from govlake.generate._calendar import calendar_for, day_number, day_text, seconds_text
from govlake.generate._context import EXTERNAL_SHARE, City
from govlake.generate._defects import DefectKind
from govlake.generate._frame import CODES, Frame
from govlake.generate._people import DISTRICT_NAMES, REGIONS
from govlake.generate._random import choose, objects, stable_id
from govlake.generate._registry import prefer_valid
from govlake.generate._vocab import CREDIT_DEPTS

K = DefectKind
NATURAL_SHARE = 0.20
BRANCH_SHARE = 0.25
LATE_DECEMBER_SHARE = 0.03
ON_TIME_LAGS = np.cumsum([3, 20, 22, 18, 13, 10, 8, 6]) / 100  # working days 0..7


@dataclass(frozen=True)
class DeptFile:
    """One department's file of a 双公示 resource."""

    dept: str
    path: str
    encoding: str
    rows: int
    columns: list[str]


def dept_files(city: City, resource: str, rows: int, folder: str, stamp: str) -> list[DeptFile]:
    """Split ``rows`` over the departments by their share; layout per department."""
    share = "penalty" if resource == "credit.penalty" else "license"
    weights = np.array([d[share] for d in CREDIT_DEPTS.values()], dtype=float)
    counts = allocate(rows, weights)
    items = [i.column for i in city.resource(resource).items]
    out = []
    for (code, d), n in zip(CREDIT_DEPTS.items(), counts):
        if n == 0:
            continue
        drop = set()
        if not d["submitted_at"]:
            drop.add("submitted_at")
        if resource == "credit.penalty" and not d["status"]:
            drop.add("status")
        out.append(DeptFile(code, f"{folder}/{code}_{stamp}.csv", d["encoding"], int(n),
                            [c for c in items if c not in drop]))
    return out


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer split of ``total`` proportional to ``weights`` (largest remainder)."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _authority_table(city: City, dept: str) -> tuple[np.ndarray, np.ndarray]:
    """Names and codes: index 0 the department itself, 1.. its district branches."""
    main = city.catalog.department(dept)
    names = [main.name] + [CREDIT_DEPTS[dept]["branch"].format(d=d) for d in DISTRICT_NAMES]
    org = np.array([stable_id(f"{dept}/{r}") % 31**6 for r in REGIONS], dtype=np.int64)
    branch_codes = _ids.uscc(np.full(len(REGIONS), "11"), REGIONS.astype("U6"), _ids.org_codes(org))
    return objects(names), np.concatenate([objects([main.uscc]), branch_codes])


def fill_common(city: City, frame: Frame, rng: np.random.Generator, dept: str) -> None:
    """Subject, authority and source columns; ``_outside`` (not written) flags subjects
    registered outside the city's registry."""
    n = frame.n
    natural = rng.random(n) < NATURAL_SHARE
    external = ~natural & (rng.random(n) < EXTERNAL_SHARE)
    ent_idx = prefer_valid(city, rng.integers(0, city.n_ent, n))
    idx = np.where(external, city.n_ent + rng.integers(0, city.n_external, n), ent_idx)
    ent = city.enterprises(idx)
    person = rng.integers(0, city.n_pop, n)
    per = city.persons(person)
    with_rep_id = ~natural & CREDIT_DEPTS[dept]["legal_rep_id"]
    frame["subject_name"] = np.where(natural, per["name"], ent["name"])
    frame["subject_type"] = np.where(natural, "自然人", ent["subject_type"])
    frame["uscc"] = np.where(natural, "", ent["uscc"])
    for c in ("reg_no", "org_code", "tax_reg_no", "inst_cert_no", "social_org_no", "remark"):
        frame[c] = ""
    frame["legal_rep"] = np.where(natural, "", ent["legal_rep"])
    frame["legal_rep_id_type"] = choose(with_rep_id, "身份证", "")
    frame["legal_rep_id_no"] = np.where(with_rep_id, ent["legal_rep_id"], "")
    frame["id_type"] = choose(natural, "身份证", "")
    frame["id_no"] = np.where(natural, per["id_number"], "")

    names, codes = _authority_table(city, dept)
    branch = np.where(rng.random(n) < BRANCH_SHARE, rng.integers(1, len(names), n), 0)
    frame["authority"] = names[branch]
    frame["authority_uscc"] = codes[branch]
    main = city.catalog.department(dept)
    frame["source_dept"] = main.name
    frame["source_dept_uscc"] = main.uscc
    frame["_outside"] = external
    frame["_person"] = person


def decision_days(city: City, frame: Frame, rng: np.random.Generator, *,
                  span_days: int | None = None) -> np.ndarray:
    """Decision dates: over the as-of year up to the day before (or, with ``span_days``, over that
    many days before the as-of date), a few in late December before; rows planned late decided at
    least 60 days before; rows planned future after the as-of date."""
    n = frame.n
    today = day_number(city.as_of)
    jan1 = day_number(city.as_of.replace(month=1, day=1))
    first = jan1 if span_days is None else today - span_days
    days = rng.integers(first, max(today, first + 1), n)
    december = rng.random(n) < LATE_DECEMBER_SHARE
    days = np.where(december, jan1 - rng.integers(1, 18, n), days)
    late = frame.planned == CODES[K.LATE_SUBMISSION]
    days = np.where(late, rng.integers(jan1 - 17, max(today - 60, jan1 - 16), n), days)
    future = frame.planned == CODES[K.FUTURE_DATE]
    days = np.where(future, today + rng.integers(1, 90, n), days)
    frame.mark(np.flatnonzero(future), K.FUTURE_DATE, "decision_date")
    return days


def submitted_at(city: City, frame: Frame, rng: np.random.Generator, days: np.ndarray) -> None:
    """报送时间: within 7 working days of the decision (never after the as-of date);
    rows planned late 8-40 working days after."""
    n = frame.n
    today = day_number(city.as_of)
    lag = np.searchsorted(ON_TIME_LAGS, rng.random(n), side="right")
    late = frame.planned == CODES[K.LATE_SUBMISSION]
    lag = np.where(late, rng.integers(8, 41, n), lag)
    # Late rows were decided at least 60 days back, so capping at the as-of date keeps them late.
    sub = np.minimum(calendar_for(city.as_of).add(np.minimum(days, today), lag), today)
    seconds = sub * 86400 + rng.integers(8 * 3600 + 1800, 18 * 3600, n)
    frame["submitted_at"] = seconds_text(seconds)
    frame.mark(np.flatnonzero(late), K.LATE_SUBMISSION, "submitted_at")


def plan_kinds(kinds: tuple[DefectKind, ...], columns: list[str]) -> tuple[DefectKind, ...]:
    """The kinds a file can carry: no late submission without a 报送时间 column."""
    return tuple(k for k in kinds if k is not K.LATE_SUBMISSION or "submitted_at" in columns)


def text(values) -> np.ndarray:
    return objects(np.asarray(values).astype(str))


def dates(days: np.ndarray) -> np.ndarray:
    return day_text(days)
