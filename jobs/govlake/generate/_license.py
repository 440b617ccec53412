"""credit.license: 行政许可 records, one CSV per submitting department."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from govlake.generate._calendar import LONG_TERM, day_number
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
from govlake.generate._random import batch_rng, choose, formatted, objects
from govlake.generate._vocab import CREDIT_DEPTS, LICENSE_DOC_NAMES, LICENSES

K = DefectKind
RESOURCE = "credit.license"
LONG_TERM_SHARE = 0.08

SPEC = Spec(
    kinds=(K.USCC_CHECK, K.ID_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED, K.UNKNOWN_CODE,
           K.CODE_SYNONYM, K.WHITESPACE, K.CROSS_FIELD, K.FUTURE_DATE, K.DUPLICATE, K.LATE_SUBMISSION),
    uscc=("uscc",), ids=("id_no",), dates=("decision_date", "valid_from", "valid_to"),
    required=("subject_name", "subject_type", "doc_name", "doc_no", "license_category", "content",
              "decision_date", "valid_from", "valid_to", "authority", "status"),
    codes={"subject_type": "subject_type", "license_category": "license_category",
           "status": "decision_status", "id_type": "id_type", "legal_rep_id_type": "id_type"},
    text=("subject_name", "uscc", "doc_no", "authority", "cert_name"),
)
_DOC_NAMES = objects(LICENSE_DOC_NAMES)


def license_frames(city: City, f: DeptFile, *, batch_size: int) -> Iterator[Frame]:
    """Frames of one department's licensing file."""
    kinds = plan_kinds(SPEC.kinds, f.columns)
    table = LICENSES[f.dept]
    cert = objects([t[0] for t in table])
    category = objects([t[1] for t in table])
    content = objects([t[2] for t in table])
    prefix = objects([t[3] for t in table])
    years = np.array([t[4] for t in table])
    abbr = CREDIT_DEPTS[f.dept]["abbr"]
    for start in range(0, f.rows, batch_size):
        n = min(batch_size, f.rows - start)
        rng = batch_rng(city.seed, RESOURCE, f.dept, start)
        frame = Frame(n, start)
        frame.plan(rng, kinds, city.defect_rate)
        fill_common(city, frame, rng, f.dept)

        t = rng.integers(0, len(table), n)
        seq = np.arange(start + 1, start + n + 1)
        frame["doc_name"] = _DOC_NAMES[rng.integers(0, len(_DOC_NAMES), n)]
        frame["license_category"] = category[t]
        frame["cert_name"] = cert[t]
        frame["license_no"] = np.where(prefix[t] == "", "",
                                       prefix[t] + text(np.char.zfill(seq.astype(str), 8)))
        frame["content"] = content[t]

        days = decision_days(city, frame, rng)
        year = formatted(days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970, "%d")
        frame["doc_no"] = abbr + "许准字〔" + year + "〕第" + text(seq) + "号"
        frame["decision_date"] = dates(days)
        # a future decision (defect) keeps a past valid-from, so only its decision date is wrong
        frame["valid_from"] = dates(np.minimum(days, day_number(city.as_of)))
        long_term = (years[t] == 0) | (rng.random(n) < LONG_TERM_SHARE)
        frame["valid_to"] = choose(long_term, LONG_TERM, dates(days + np.maximum(years[t], 1) * 365 - 1))
        frame["status"] = choose(rng.random(n) < 0.95, "有效", "无效")
        if "submitted_at" in f.columns:
            submitted_at(city, frame, rng, days)

        cross = frame.planned_rows(K.CROSS_FIELD)
        frame.set("valid_to", cross, dates(days[cross] - rng.integers(30, 365, len(cross))))
        frame.mark(cross, K.CROSS_FIELD, "valid_to")

        person_disagreements(frame, city, RESOURCE, f.dept, batch_size=batch_size)
        inject_cells(frame, SPEC, f.columns, rng, city.catalog)
        inject_duplicates(frame)
        yield frame
