"""psb.population: the public-security population file (UTF-8 with BOM)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from govlake.generate._context import City
from govlake.generate._defects import DefectKind
from govlake.generate._frame import Frame, Spec, inject_cells, inject_duplicates
from govlake.generate._random import batch_rng

K = DefectKind
RESOURCE = "psb.population"
NO_MOBILE_SHARE = 0.1

SPEC = Spec(
    kinds=(K.ID_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED, K.UNKNOWN_CODE, K.CODE_SYNONYM,
           K.WHITESPACE, K.DUPLICATE),
    ids=("id_number",), dates=("birth_date",),
    required=("id_number", "name", "sex", "birth_date", "hukou_region"),
    codes={"sex": "sex"}, text=("name", "address", "id_number"),
)


def planned_population_kinds(city: City, idx: np.ndarray, *, batch_size: int) -> np.ndarray:
    """Codes of the defect kinds planned for persons ``idx`` in the population file (-1 = clean),
    as :func:`population_frames` with the same ``batch_size`` draws them (the first draw of each
    batch's generator). Lets other resources compare a person only with a clean population row."""
    idx = np.asarray(idx, dtype=np.int64)
    out = np.full(len(idx), -1, dtype=np.int8)
    starts = idx // batch_size * batch_size
    for start in np.unique(starts).tolist():
        frame = Frame(min(batch_size, city.n_pop - start), start)
        frame.plan(batch_rng(city.seed, RESOURCE, start), SPEC.kinds, city.defect_rate)
        sel = starts == start
        out[sel] = frame.planned[idx[sel] - start]
    return out


def population_frames(city: City, rows: int, columns: list[str], *, batch_size: int) -> Iterator[Frame]:
    """Persons ``0 .. rows-1``, in batches."""
    for start in range(0, rows, batch_size):
        n = min(batch_size, rows - start)
        rng = batch_rng(city.seed, RESOURCE, start)
        person = city.persons(np.arange(start, start + n))
        frame = Frame(n, start)
        frame.plan(rng, SPEC.kinds, city.defect_rate)
        for c in columns:
            frame[c] = person[c].copy()
        frame.set("mobile", rng.random(n) < NO_MOBILE_SHARE, "")
        inject_cells(frame, SPEC, columns, rng, city.catalog)
        inject_duplicates(frame)
        yield frame
