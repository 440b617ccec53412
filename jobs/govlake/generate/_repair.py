"""credit.repair: 信用修复 decisions forwarded by the public-credit platform, one CSV per platform.

Repairs refer to the city's generated penalties: the penalty files are generated again (same
seed, scale, as-of date and batch size, so the same rows) and penalties of legal-entity subjects
that carry no defect and are still valid (当前状态 有效 or not sent) are drawn. Each row is one of
three kinds, recorded in the manifest (``Manifest.repairs``, counts in ``ResourceInfo.outcomes``):

- ``accepted``: repair date 190-360 days after the decision date — after the 6-month minimum
  of 严重 and the 3-month minimum of 一般 失信, within the 1-year maximum of both — and before
  the as-of date; only for decisions whose publicity regime (catalog/credit_rules.yml, by decision
  date) has no minimum that long (ndrc-2026's 严重 minimum is 12 months);
- ``too_early``: repair date 7-80 days after the decision date (before any minimum);
- ``unknown_decision``: a registry enterprise with a decision number no penalty has.

Whether a repair is allowed is decided downstream by joining to the penalties; here the rows
only carry the kinds of row defects the other 双公示 CSVs get (``SPEC``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from govlake.generate import _ids
from govlake.generate._calendar import day_number, day_text, seconds_text
from govlake.generate._context import City
from govlake.generate._credit import DeptFile, allocate, dept_files
from govlake.generate._defects import DefectKind
from govlake.generate._frame import INVALID_CODES, Frame, Spec, inject_cells, inject_duplicates
from govlake.generate._penalty import penalty_frames
from govlake.generate._random import (
    batch_rng,
    choose,
    formatted,
    hash_unit,
    objects,
    pick_index,
    stable_id,
    weighted,
)
from govlake.generate._registry import planned_kinds
from govlake.generate._vocab import CREDIT_DEPTS, REPAIR_AUTHORITIES, REPAIR_PLATFORMS

K = DefectKind
RESOURCE = "credit.repair"
PENALTY = "credit.penalty"
FOLDER = "credit/repair"

ACCEPTED, TOO_EARLY, UNKNOWN = "accepted", "too_early", "unknown_decision"
OUTCOMES = (ACCEPTED, TOO_EARLY, UNKNOWN)
"""Expected outcome of each repair row (see the module docstring)."""
SHARES = {ACCEPTED: 0.7, TOO_EARLY: 0.2, UNKNOWN: 0.1}
ACCEPTED_DAYS = (190, 360)
"""Repair date of an accepted row: this many days after the decision (inclusive)."""
TOO_EARLY_DAYS = (7, 80)
"""Repair date of a too-early row: this many days after the decision (inclusive)."""
AUTHORITY_WEIGHTS = (50, 30, 20)
"""The city's credit center, then REPAIR_AUTHORITIES."""

SPEC = Spec(
    kinds=(K.USCC_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED, K.WHITESPACE, K.CROSS_FIELD,
           K.FUTURE_DATE, K.DUPLICATE),
    uscc=("uscc", "authority_uscc", "repair_authority_uscc"), dates=("repair_date",),
    required=("uscc", "decision_no", "repair_date", "repair_authority"),
    text=("uscc", "subject_name", "decision_no", "repair_authority"),
)


@dataclass(frozen=True)
class RepairFile:
    """One platform's file of repairs: rows ``first .. first + rows`` of the planned repairs."""

    platform: str
    path: str
    encoding: str
    first: int
    rows: int
    columns: list[str]


@dataclass
class Repairs:
    """The planned repairs of the city (in file order), before defects."""

    outcome: np.ndarray
    uscc: np.ndarray
    subject_name: np.ndarray
    decision_no: np.ndarray
    authority_uscc: np.ndarray
    decision_day: np.ndarray
    """Day number of the penalty's decision date; -1 for an unknown decision."""

    def slice(self, lo: int, hi: int) -> Repairs:
        return Repairs(*(getattr(self, f)[lo:hi] for f in self.__dataclass_fields__))


def repair_files(city: City, rows: int, stamp: str) -> list[RepairFile]:
    """Split ``rows`` over the platforms by their share; layout per platform."""
    weights = np.array([p["share"] for p in REPAIR_PLATFORMS.values()], dtype=float)
    counts = allocate(rows, weights)
    items = [i.column for i in city.resource(RESOURCE).items]
    out, first = [], 0
    for (code, p), n in zip(REPAIR_PLATFORMS.items(), counts.tolist()):
        if n:
            out.append(RepairFile(code, f"{FOLDER}/{code}_{stamp}.csv", p["encoding"], first, n,
                                  [c for c in items if c not in p["drop"]]))
        first += n
    return out


def outcome_counts(rows: int) -> dict[str, int]:
    """Rows per outcome: every kind once as soon as there are three rows, else by ``SHARES``."""
    if rows < len(OUTCOMES):
        return {k: int(i < rows) for i, k in enumerate(OUTCOMES)}
    early = max(1, round(rows * SHARES[TOO_EARLY]))
    unknown = max(1, round(rows * SHARES[UNKNOWN]))
    return {ACCEPTED: rows - early - unknown, TOO_EARLY: early, UNKNOWN: unknown}


def plan_repairs(city: City, rows: int, stamp: str, *, batch_size: int) -> Repairs:
    """Draw the penalties repaired (deterministic per seed) and the unknown decisions."""
    counts = outcome_counts(rows)
    wanted = counts[ACCEPTED] + counts[TOO_EARLY]
    threshold = min(1.0, 4.0 * wanted / max(city.n_pen, 1))
    cand = _candidates(city, stamp, threshold, batch_size)
    if not _enough(city, cand, counts) and threshold < 1.0:
        cand = _candidates(city, stamp, 1.0, batch_size)
    if not _enough(city, cand, counts):
        raise ValueError(f"{rows} credit repairs need more eligible penalties than the city's {city.n_pen}")
    today = day_number(city.as_of)
    order = np.argsort(cand["u"], kind="stable")
    accepted = order[np.flatnonzero(_acceptable(city, cand["day"][order]))[: counts[ACCEPTED]]]
    left = np.setdiff1d(order, accepted, assume_unique=True)
    left = left[np.argsort(cand["u"][left], kind="stable")]
    early = left[np.flatnonzero(cand["day"][left] <= today - TOO_EARLY_DAYS[0] - 1)[: counts[TOO_EARLY]]]
    picked = np.concatenate([accepted, early])
    outcome = objects([ACCEPTED] * len(accepted) + [TOO_EARLY] * len(early))
    known = Repairs(outcome, *(cand[c][picked] for c in ("uscc", "subject_name", "decision_no",
                                                         "authority_uscc", "day")))
    unknown = _unknown(city, counts[UNKNOWN])
    both = Repairs(*(np.concatenate([getattr(known, f), getattr(unknown, f)])
                     for f in Repairs.__dataclass_fields__))
    perm = batch_rng(city.seed, RESOURCE, "order").permutation(rows)
    return Repairs(*(getattr(both, f)[perm] for f in Repairs.__dataclass_fields__))


def _enough(city: City, cand: dict[str, np.ndarray], counts: dict[str, int]) -> bool:
    today = day_number(city.as_of)
    old = int(_acceptable(city, cand["day"]).sum())
    recent = int((cand["day"] <= today - TOO_EARLY_DAYS[0] - 1).sum())
    return old >= counts[ACCEPTED] and recent >= counts[ACCEPTED] + counts[TOO_EARLY]


def _acceptable(city: City, days: np.ndarray) -> np.ndarray:
    """Decisions (day numbers) an accepted repair may name: old enough for a repair ACCEPTED_DAYS after
    them, and judged by a regime whose every minimum period ends before that (a month as 31 days)."""
    from govlake.config import get_settings
    from govlake.credit import load_credit_rules

    publicity = load_credit_rules(get_settings().catalog_dir).publicity
    short = [max(rule.min_months for _c, rule in r.classes.items()) * 31 < ACCEPTED_DAYS[0]
             for r in publicity.regimes]
    starts = np.array([day_number(r.effective_from) for r in publicity.regimes[1:]], dtype=np.int64)
    regime = np.searchsorted(starts, days, side="right")
    return (days <= day_number(city.as_of) - ACCEPTED_DAYS[0] - 1) & np.array(short, dtype=bool)[regime]


def _penalty_files(city: City, stamp: str) -> list[DeptFile]:
    return dept_files(city, PENALTY, city.n_pen, "credit/penalty", stamp)


def _candidates(city: City, stamp: str, threshold: float, batch_size: int) -> dict[str, np.ndarray]:
    """Penalties a repair may refer to, each with its draw ``u`` (those with ``u < threshold``)."""
    parts: dict[str, list[np.ndarray]] = {c: [] for c in ("u", "uscc", "subject_name", "decision_no",
                                                          "authority_uscc", "day")}
    for f in _penalty_files(city, stamp):
        for frame in penalty_frames(city, f, batch_size=batch_size):
            u = hash_unit(city.seed, f"repair-pick/{f.dept}", np.arange(frame.start, frame.start + frame.n))
            ok = ((frame.kind < 0) & (frame["subject_type"] != "自然人") & (frame["uscc"] != "")
                  & (u < threshold))
            if "status" in f.columns:
                ok &= frame["status"] == "有效"
            rows = np.flatnonzero(ok)
            parts["u"].append(u[rows])
            for c in ("uscc", "subject_name", "decision_no", "authority_uscc"):
                parts[c].append(frame[c][rows])
            parts["day"].append(np.array(frame["decision_date"][rows].tolist(), dtype="datetime64[D]")
                                .astype(np.int64))
    return {c: np.concatenate(v) if v else np.empty(0) for c, v in parts.items()}


def _unknown(city: City, n: int) -> Repairs:
    """Registry enterprises (valid registry rows) with decision numbers beyond every penalty file."""
    rng = batch_rng(city.seed, RESOURCE, "unknown")
    idx = rng.integers(0, city.n_ent, n)
    for _ in range(4):
        bad = np.isin(planned_kinds(city, idx), INVALID_CODES)
        if not bad.any():
            break
        idx = np.where(bad, (idx + 1) % city.n_ent, idx)
    ent = city.enterprises(idx)
    depts = list(CREDIT_DEPTS)
    d = rng.integers(0, len(depts), n)
    abbr = objects([CREDIT_DEPTS[depts[i]]["abbr"] for i in d.tolist()])
    dept_uscc = objects([city.catalog.department(depts[i]).uscc for i in d.tolist()])
    year = formatted(city.as_of.year - rng.integers(0, 3, n), "%d")
    seq = formatted(city.n_pen + 1000 + np.arange(n), "%d")  # no penalty file has this many rows
    return Repairs(objects([UNKNOWN] * n), ent["uscc"].copy(), ent["name"].copy(),
                   abbr + "罚〔" + year + "〕" + seq + "号", dept_uscc, np.full(n, -1, dtype=np.int64))


def _authorities(city: City) -> tuple[np.ndarray, np.ndarray]:
    """Names and codes of the repairing authorities (the city's credit center first)."""
    main = city.catalog.department("credit")
    org = np.array([stable_id(f"repair/{name}") % 31**6 for name, _p, _r in REPAIR_AUTHORITIES], dtype=np.int64)
    codes = _ids.uscc(np.array([p for _n, p, _r in REPAIR_AUTHORITIES]),
                      np.array([r for _n, _p, r in REPAIR_AUTHORITIES]), _ids.org_codes(org))
    return (objects([main.name] + [n for n, _p, _r in REPAIR_AUTHORITIES]),
            np.concatenate([objects([main.uscc]), codes]))


_AUTHORITY = weighted([(i, w) for i, w in enumerate(AUTHORITY_WEIGHTS)])


def repair_frames(city: City, f: RepairFile, repairs: Repairs, *, batch_size: int) -> Iterator[Frame]:
    """Frames of one platform's repair file (``repairs`` = its rows)."""
    kinds = tuple(k for k in SPEC.kinds if k is not K.CROSS_FIELD or "submitted_at" in f.columns)
    names, codes = _authorities(city)
    today = day_number(city.as_of)
    for start in range(0, f.rows, batch_size):
        n = min(batch_size, f.rows - start)
        part = repairs.slice(start, start + n)
        rng = batch_rng(city.seed, RESOURCE, f.platform, start)
        frame = Frame(n, start)
        frame.plan(rng, kinds, city.defect_rate)
        frame["uscc"] = part.uscc.copy()
        frame["subject_name"] = part.subject_name.copy()
        frame["decision_no"] = part.decision_no.copy()
        frame["authority_uscc"] = part.authority_uscc.copy()

        dec = part.decision_day
        after_acc = rng.integers(ACCEPTED_DAYS[0], ACCEPTED_DAYS[1] + 1, n)
        after_early = rng.integers(TOO_EARLY_DAYS[0], TOO_EARLY_DAYS[1] + 1, n)
        before = rng.integers(1, 366, n)
        repair = np.where(part.outcome == ACCEPTED, dec + after_acc,
                          np.where(part.outcome == TOO_EARLY, dec + after_early, today - before))
        repair = np.minimum(repair, today - 1)
        a = pick_index(_AUTHORITY, rng.random(n))
        frame["repair_authority"] = names[a]
        frame["repair_authority_uscc"] = codes[a]
        sub = np.minimum(repair + rng.integers(0, 4, n), today)
        seconds = sub * 86400 + rng.integers(8 * 3600 + 1800, 18 * 3600, n)

        future = frame.planned_rows(K.FUTURE_DATE)
        repair[future] = today + rng.integers(1, 60, len(future))
        frame["repair_date"] = day_text(repair)
        frame.mark(future, K.FUTURE_DATE, "repair_date")
        submitted = seconds_text(seconds)
        submitted[future] = ""  # not sent: a future 报送时间 would be a second defect
        cross = frame.planned_rows(K.CROSS_FIELD)
        early = (repair[cross] - rng.integers(1, 31, len(cross))) * 86400 + seconds[cross] % 86400
        submitted[cross] = seconds_text(early)
        frame["submitted_at"] = submitted
        frame.mark(cross, K.CROSS_FIELD, "submitted_at")

        # what the manifest records (copied with the row by inject_duplicates)
        frame["_outcome"] = part.outcome.copy()
        frame["_uscc"] = part.uscc.copy()
        frame["_decision_no"] = part.decision_no.copy()
        frame["_decision_date"] = choose(dec >= 0, day_text(np.maximum(dec, 0)), "")
        frame["_repair_date"] = frame["repair_date"].copy()

        inject_cells(frame, SPEC, f.columns, rng, city.catalog)
        inject_duplicates(frame)
        yield frame
