"""Departments' copies of registry data: tax.credit_rating (xlsx) and hrss.social_insurance (jsonl).

Each row is one registry enterprise (a permutation, so keys do not repeat within a year or
month); name, address and legal representative are copied from the registry, except rows
planned as disagreements, which hold a former name, another house number or another person.

:func:`person_disagreements` does the same for a natural person's name in the credit and court
feeds (a copy of psb.population's 姓名 for the same 身份证号).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np

from govlake.generate._calendar import day_number, day_text
from govlake.generate._context import City
from govlake.generate._defects import DefectKind
from govlake.generate._enterprises import other_address
from govlake.generate._frame import Frame, Spec, inject_cells, inject_duplicates
from govlake.generate._population import planned_population_kinds
from govlake.generate._random import (
    batch_rng,
    coprime_multiplier,
    formatted,
    hash_int,
    hash_unit,
    pick,
    weighted,
)
from govlake.generate._registry import planned_kinds

K = DefectKind
TAX = "tax.credit_rating"
HRSS = "hrss.social_insurance"

TAX_SPEC = Spec(
    kinds=(K.USCC_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED, K.UNKNOWN_CODE, K.WHITESPACE,
           K.FUTURE_DATE, K.DUPLICATE, K.DISAGREEMENT),
    uscc=("uscc",), dates=("rated_on",), required=("uscc", "name", "year", "rating"),
    codes={"rating": "tax_rating"}, text=("name", "address", "uscc"),
)
HRSS_SPEC = Spec(
    kinds=(K.USCC_CHECK, K.FULL_WIDTH, K.BLANK_REQUIRED, K.WHITESPACE, K.DUPLICATE, K.DISAGREEMENT),
    uscc=("uscc",), required=("uscc", "name", "period", "insured_count", "due_amount", "paid_amount"),
    text=("name", "legal_rep", "uscc"), blank=None,
)
_RATING = weighted([("A", 15), ("B", 55), ("M", 20), ("C", 7), ("D", 3)])


def periods(total: int, n_ent: int) -> list[tuple[int, int, int]]:
    """``(k, first row, rows)`` per period: k = 0 the latest year/month, k = 1 the one before..."""
    return [(k, start, min(n_ent, total - start)) for k, start in enumerate(range(0, total, n_ent))]


def _enterprise_of(city: City, salt: str, rows: np.ndarray) -> np.ndarray:
    a = coprime_multiplier(city.n_ent, city.seed + len(salt))
    b = int(hash_int(city.seed, salt, np.zeros(1), city.n_ent)[0])
    return (rows % city.n_ent * a + b) % city.n_ent


def _disagree(frame: Frame, city: City, idx: np.ndarray, ent: dict, dept: str,
              items: list[str]) -> None:
    """Rows planned as disagreements whose registry row is clean: change one copied item."""
    rows = frame.planned_rows(K.DISAGREEMENT)
    rows = rows[planned_kinds(city, idx[rows]) < 0]
    other_rep = city.persons(hash_int(city.seed, "other-rep", idx[rows], city.n_pop))["name"]
    for j, row in enumerate(rows.tolist()):
        item = items[row % len(items)]
        auth = frame[item][row]
        if item == "name":
            other = ent["old_name"][row]
        elif item == "address":
            other = other_address(auth, row)
        else:
            other = other_rep[j]
        if other == auth:
            continue
        frame.set(item, row, other)
        frame.mark(row, K.DISAGREEMENT, item)
        frame.disagreements.append({"row": row, "item": item, "uscc": frame["uscc"][row],
                                    "department": dept, "authoritative_value": auth,
                                    "other_value": other})


def person_disagreements(frame: Frame, city: City, resource: str, dept: str, *, batch_size: int,
                         rate: float | None = None) -> None:
    """Give some 自然人 rows another person's name under the same 身份证号 (``id_no``).

    Rows are chosen by a hash of (seed, resource, department, row), at ``rate`` (default
    ``city.defect_rate``), among
    rows with no planned defect whose person (hidden column ``_person``) has a clean population row,
    so that silver holds both values; no random draw is taken, so the rest of the file is unchanged.
    Recorded as ``disagreement`` on ``subject_name``, item ``name`` (psb.population's column).
    """
    rows = np.arange(frame.n)
    chosen = (hash_unit(city.seed, f"person-disagree|{resource}|{dept}", frame.start + rows)
              < (city.defect_rate if rate is None else rate))
    rows = rows[chosen & (frame["subject_type"] == "自然人") & (frame.planned < 0) & (frame.kind < 0)]
    person = frame["_person"][rows].astype(np.int64)
    rows = rows[planned_population_kinds(city, person, batch_size=batch_size) < 0]
    other = city.persons(hash_int(city.seed, "other-person", frame.start + rows, city.n_pop))["name"]
    for row, name in zip(rows.tolist(), other.tolist()):
        auth = frame["subject_name"][row]
        if name == auth:
            continue
        frame.set("subject_name", row, name)
        frame.mark(row, K.DISAGREEMENT, "subject_name")
        frame.disagreements.append({"row": row, "item": "name", "uscc": None, "id_number": frame["id_no"][row],
                                    "department": dept, "authoritative_value": auth, "other_value": name})


def tax_frames(city: City, k: int, first: int, rows: int, columns: list[str], *,
               batch_size: int) -> Iterator[Frame]:
    """Ratings of year ``as_of.year - 1 - k`` for ``rows`` enterprises."""
    year = city.as_of.year - 1 - k
    today = day_number(city.as_of)
    for start in range(0, rows, batch_size):
        n = min(batch_size, rows - start)
        rng = batch_rng(city.seed, TAX, k, start)
        idx = _enterprise_of(city, TAX, np.arange(first + start, first + start + n))
        ent = city.enterprises(idx)
        frame = Frame(n, start)
        frame.plan(rng, TAX_SPEC.kinds, city.defect_rate)
        frame["uscc"] = ent["uscc"].copy()
        frame["name"] = ent["name"].copy()
        frame["address"] = ent["address"].copy()
        frame["year"] = str(year)
        frame["rating"] = pick(_RATING, rng.random(n))
        rated = day_number(dt.date(year + 1, 4, 1)) + rng.integers(0, 30, n)
        future = frame.planned_rows(K.FUTURE_DATE)
        rated[future] = today + rng.integers(1, 60, len(future))
        frame["rated_on"] = day_text(rated)
        frame.mark(future, K.FUTURE_DATE, "rated_on")
        _disagree(frame, city, idx, ent, "tax", ["name", "address"])
        inject_cells(frame, TAX_SPEC, columns, rng, city.catalog)
        inject_duplicates(frame)
        yield frame


def hrss_period(as_of: dt.date, k: int) -> str:
    """``YYYYMM`` of the month ``k + 1`` months before the as-of month."""
    month = as_of.year * 12 + as_of.month - 1 - (k + 1)
    return f"{month // 12}{month % 12 + 1:02d}"


def hrss_frames(city: City, k: int, first: int, rows: int, columns: list[str], *,
                batch_size: int) -> Iterator[Frame]:
    """Contributions of month :func:`hrss_period` ``(k)`` for ``rows`` enterprises."""
    period = hrss_period(city.as_of, k)
    for start in range(0, rows, batch_size):
        n = min(batch_size, rows - start)
        rng = batch_rng(city.seed, HRSS, k, start)
        idx = _enterprise_of(city, HRSS, np.arange(first + start, first + start + n))
        ent = city.enterprises(idx)
        frame = Frame(n, start)
        frame.plan(rng, HRSS_SPEC.kinds, city.defect_rate)
        frame["uscc"] = ent["uscc"].copy()
        frame["name"] = ent["name"].copy()
        frame["legal_rep"] = ent["legal_rep"].copy()
        frame["period"] = period
        insured = np.minimum(1 + np.floor(np.exp(rng.normal(2.2, 1.1, n))), 3000).astype(np.int64)
        due = np.round(insured * rng.uniform(3500, 9000, n) * 0.16, 2)
        paid = np.where(rng.random(n) < 0.9, due, np.round(due * rng.uniform(0.3, 0.95, n), 2))
        frame["insured_count"] = formatted(insured, "%d")
        frame["due_amount"] = formatted(due, "%.2f")
        frame["paid_amount"] = formatted(paid, "%.2f")
        frame["arrears"] = formatted(np.round(due - paid, 2), "%.2f")
        _disagree(frame, city, idx, ent, "hrss", ["name", "legal_rep"])
        inject_cells(frame, HRSS_SPEC, columns, rng, city.catalog)
        inject_duplicates(frame)
        yield frame
