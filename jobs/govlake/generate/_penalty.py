"""credit.penalty: 行政处罚 records, one CSV per submitting department."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from govlake.generate._context import City
from govlake.generate._copies import person_disagreements
from govlake.generate._credit import (
    DeptFile,
    dates,
    decision_days,
    fill_common,
    plan_kinds,
    submitted_at,
    text,
)
from govlake.generate._defects import DefectKind
from govlake.generate._frame import Frame, Spec, inject_cells, inject_duplicates
from govlake.generate._random import (
    batch_rng,
    choose,
    formatted,
    objects,
    pick_index,
    weighted,
)
from govlake.generate._vocab import CREDIT_DEPTS, EVIDENCE, PENALTY_COMBOS, VIOLATIONS

K = DefectKind
RESOURCE = "credit.penalty"

SPEC = Spec(
    kinds=(K.USCC_CHECK, K.ID_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED, K.UNKNOWN_CODE,
           K.CODE_SYNONYM, K.WHITESPACE, K.CROSS_FIELD, K.FUTURE_DATE, K.DUPLICATE, K.LATE_SUBMISSION),
    uscc=("uscc",), ids=("id_no",), dates=("decision_date", "valid_until", "publish_until"),
    required=("subject_name", "subject_type", "decision_no", "violation_type", "facts", "basis",
              "penalty_category", "content", "decision_date", "valid_until", "authority"),
    codes={"subject_type": "subject_type", "penalty_category": "penalty_category",
           "status": "decision_status", "id_type": "id_type", "legal_rep_id_type": "id_type"},
    text=("subject_name", "uscc", "decision_no", "authority", "violation_type"),
)

_COMBO = weighted([(i, c[5]) for i, c in enumerate(PENALTY_COMBOS)])
_COMBO_TEXT = objects([c[0] for c in PENALTY_COMBOS])
_HAS_FINE = np.array([c[1] for c in PENALTY_COMBOS])
_HAS_CONFISCATION = np.array([c[2] for c in PENALTY_COMBOS])
_HAS_LICENCE = np.array([c[3] for c in PENALTY_COMBOS])
_SERIOUS = np.array([c[4] for c in PENALTY_COMBOS])
EVIDENCE_SHARE = 0.08
DECISION_SPAN_DAYS = 4 * 365
"""Penalty decisions spread over the four years before the as-of date, so that some are past a
1-year and some past a 3-year publicity period (and credit repairs have old decisions to refer to)."""


def penalty_frames(city: City, f: DeptFile, *, batch_size: int) -> Iterator[Frame]:
    """Frames of one department's penalty file."""
    kinds = plan_kinds(SPEC.kinds, f.columns)
    violations = VIOLATIONS[f.dept]
    v_type = objects([v[0] for v in violations])
    v_facts = objects([v[1] + "。" for v in violations])
    v_basis = objects([v[2] for v in violations])
    abbr = CREDIT_DEPTS[f.dept]["abbr"]
    for start in range(0, f.rows, batch_size):
        n = min(batch_size, f.rows - start)
        rng = batch_rng(city.seed, RESOURCE, f.dept, start)
        frame = Frame(n, start)
        frame.plan(rng, kinds, city.defect_rate)
        fill_common(city, frame, rng, f.dept)

        v = rng.integers(0, len(violations), n)
        frame["violation_type"] = v_type[v]
        evidence = rng.random(n) < EVIDENCE_SHARE
        if start == 0:
            evidence[0] = True  # every file has a quoted field with an embedded newline
        facts = v_facts[v]
        facts[evidence] = facts[evidence] + EVIDENCE
        frame["facts"] = facts
        frame["basis"] = v_basis[v]

        combo = pick_index(_COMBO, rng.random(n))
        fine = np.round(np.minimum(np.exp(rng.normal(-0.3, 1.1, n)), 9999), 2).clip(0.01)
        confiscated = np.round(fine * rng.uniform(0.1, 0.8, n), 2).clip(0.01)
        has_fine = _HAS_FINE[combo]
        has_conf = _HAS_CONFISCATION[combo]
        has_licence = _HAS_LICENCE[combo]
        frame["penalty_category"] = _COMBO_TEXT[combo]
        frame["fine_amount"] = choose(has_fine, formatted(fine, "%g"), "")
        frame["confiscated_amount"] = choose(has_conf, formatted(confiscated, "%g"), "")
        uscc = frame["uscc"][has_licence]
        licence = np.full(n, "", dtype=object)
        licence[has_licence] = choose(uscc == "", "《从业资格证》", "《营业执照》" + uscc)
        frame["licence_revoked"] = licence
        content = _COMBO_TEXT[combo]
        content[has_fine] = (content[has_fine] + "，罚款人民币"
                             + formatted(np.round(fine[has_fine] * 10000).astype(np.int64), "%d") + "元")
        content[has_conf] = (content[has_conf] + "，没收违法所得"
                             + formatted(np.round(confiscated[has_conf] * 10000).astype(np.int64), "%d") + "元")
        frame["content"] = content

        days = decision_days(city, frame, rng, span_days=DECISION_SPAN_DAYS)
        serious = _SERIOUS[combo] | (fine > 10)
        frame["decision_date"] = dates(days)
        frame["valid_until"] = dates(days + 365)
        frame["publish_until"] = dates(days + np.where(serious, 3 * 365, 365))
        year = formatted(days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970, "%d")
        frame["decision_no"] = abbr + "罚〔" + year + "〕" + text(np.arange(start + 1, start + n + 1)) + "号"
        frame["status"] = choose(rng.random(n) < 0.97, "有效", "无效")
        if "submitted_at" in f.columns:
            submitted_at(city, frame, rng, days)

        cross = frame.planned_rows(K.CROSS_FIELD)
        frame.set("penalty_category", cross, "罚款")
        for c in ("fine_amount", "confiscated_amount", "licence_revoked"):
            frame.set(c, cross, "")
        frame.mark(cross, K.CROSS_FIELD, "fine_amount")

        person_disagreements(frame, city, RESOURCE, f.dept, batch_size=batch_size)
        inject_cells(frame, SPEC, f.columns, rng, city.catalog)
        inject_duplicates(frame)
        yield frame
