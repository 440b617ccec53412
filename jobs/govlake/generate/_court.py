"""court.dishonest: the 失信被执行人名单 of the city's courts, one JSON-lines file from the
intermediate court.

Debtors are registry enterprises (valid registry rows, so the 法人库 knows them) and a few
natural persons from the population. About a quarter of the entries have been removed from
the list (移除日期, mostly after performing). Each row records ``_outcome`` (``listed`` or
``removed``) and ``_listed_uscc`` (the debtor's code, blank for persons); the manifest keeps the
codes of enterprises currently listed by a valid row (``Manifest.dishonest_listed``), which is
what a 失信 flag in silver must show.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from govlake.generate._calendar import day_number, day_text
from govlake.generate._context import City
from govlake.generate._copies import person_disagreements
from govlake.generate._defects import DefectKind
from govlake.generate._frame import Frame, Spec, inject_cells, inject_duplicates
from govlake.generate._people import DISTRICT_NAMES, REGIONS
from govlake.generate._random import batch_rng, choose, formatted, objects, pick, weighted
from govlake.generate._registry import prefer_valid
from govlake.generate._vocab import DISHONEST_CIRCUMSTANCES, DISTRICT_COURT, INTERMEDIATE_COURT

K = DefectKind
RESOURCE = "court.dishonest"
LISTED, REMOVED = "listed", "removed"

NATURAL_SHARE = 0.15
REMOVED_SHARE = 0.25
INTERMEDIATE_SHARE = 0.3
LISTED_DAYS = 3 * 365
"""Entries were published within this many days before the as-of date."""
SPEC = Spec(
    kinds=(K.USCC_CHECK, K.ID_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED, K.UNKNOWN_CODE,
           K.CODE_SYNONYM, K.WHITESPACE, K.CROSS_FIELD, K.FUTURE_DATE, K.DUPLICATE),
    uscc=("uscc",), ids=("id_no",), dates=("filing_date", "published_date", "removed_date"),
    required=("case_no", "subject_name", "subject_type", "court_name", "filing_date", "published_date",
              "circumstance", "performance"),
    codes={"subject_type": "subject_type", "performance": "performance"},
    text=("case_no", "subject_name", "court_name", "uscc"),
    blank=None,
)
_CIRCUMSTANCE = weighted(DISHONEST_CIRCUMSTANCES)
_COURTS = objects([INTERMEDIATE_COURT] + [DISTRICT_COURT.format(d=d) if d.endswith("区") else f"{d}人民法院"
                                          for d in DISTRICT_NAMES.tolist()])
_COURT_CODES = objects(["鲁01"] + ["鲁" + r[2:] for r in REGIONS.tolist()])


def exact_share(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """``round(n * share)`` rows chosen at random (at least one of each when n >= 2 and 0 < share < 1)."""
    k = round(n * share)
    if n >= 2:
        k = min(max(k, 1), n - 1)
    return rng.permutation(n) < k


def court_frames(city: City, rows: int, columns: list[str], *, batch_size: int) -> Iterator[Frame]:
    """Frames of the court's list file."""
    today = day_number(city.as_of)
    for start in range(0, rows, batch_size):
        n = min(batch_size, rows - start)
        rng = batch_rng(city.seed, RESOURCE, start)
        frame = Frame(n, start)
        frame.plan(rng, SPEC.kinds, city.defect_rate)
        natural = exact_share(rng, n, NATURAL_SHARE)
        removed = exact_share(rng, n, REMOVED_SHARE)

        idx = prefer_valid(city, rng.integers(0, city.n_ent, n))
        ent = city.enterprises(idx)
        person = rng.integers(0, city.n_pop, n)
        per = city.persons(person)
        frame["_person"] = person
        frame["subject_name"] = np.where(natural, per["name"], ent["name"])
        frame["subject_type"] = np.where(natural, "自然人", ent["subject_type"])
        frame["uscc"] = choose(~natural, ent["uscc"], None)
        frame["id_no"] = choose(natural, per["id_number"], None)
        frame["legal_rep"] = choose(~natural, ent["legal_rep"], None)

        court = np.where(rng.random(n) < INTERMEDIATE_SHARE, 0, rng.integers(1, len(_COURTS), n))
        frame["court_name"] = _COURTS[court]
        published = today - rng.integers(1, LISTED_DAYS + 1, n)
        filed = published - rng.integers(30, 400, n)
        gone = published + np.floor(rng.random(n) * (today - published)).astype(np.int64)
        year = formatted(filed.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970, "%d")
        seq = formatted(np.arange(start + 1, start + n + 1), "%d")
        frame["case_no"] = "（" + year + "）" + _COURT_CODES[court] + "执" + seq + "号"
        frame["circumstance"] = pick(_CIRCUMSTANCE, rng.random(n))
        performed = rng.random(n) < 0.8
        frame["performance"] = np.where(removed, np.where(performed, "已履行", "部分履行"),
                                        np.where(rng.random(n) < 0.7, "全部未履行", "部分履行"))

        future = frame.planned_rows(K.FUTURE_DATE)
        published[future] = today + rng.integers(1, 60, len(future))
        removed[future] = False
        frame.mark(future, K.FUTURE_DATE, "published_date")
        cross = frame.planned_rows(K.CROSS_FIELD)
        published[cross] = filed[cross] - rng.integers(1, 30, len(cross))  # listed before it was filed
        removed[cross] = False
        frame.mark(cross, K.CROSS_FIELD, "published_date")
        frame["filing_date"] = day_text(filed)
        frame["published_date"] = day_text(published)
        frame["removed_date"] = choose(removed, day_text(gone), None)

        frame["_outcome"] = choose(removed, REMOVED, LISTED)
        frame["_listed_uscc"] = choose(~natural, ent["uscc"], "")

        # the list is small (1% of the enterprises): five times the defect rate, so a demo city has some
        person_disagreements(frame, city, RESOURCE, "court", batch_size=batch_size,
                             rate=min(1.0, 5 * city.defect_rate))
        inject_cells(frame, SPEC, columns, rng, city.catalog)
        inject_duplicates(frame)
        yield frame
