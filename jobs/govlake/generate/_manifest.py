"""The manifest: what was written, and every defect injected (``out/manifest.json``).

Format (JSON, one record per line in the two lists)::

    {"seed": 42, "scale": 2000, "defect_rate": 0.03, "as_of": "2026-11-20", "only": null,
     "skipped": {"ee.discharge_permit": "no generator for it; put its csv files in the inbox yourself (…)"},
     "defect_kinds": {"uscc_check": {"effect": "quarantine", "invalid": true, "description": …}, …},
     "resources": {"credit.penalty": {
         "rows": 700, "invalid_rows": 108, "subjects_outside_registry": 31,
         "defects": {"uscc_check": 25, …},
         "files": [{"path": "credit/penalty/ee_20261120.csv", "encoding": "gbk", "rows": 105,
                    "columns": [<header as written>], "defects": {…}}, …]}, …},
     "dishonest_listed": ["91370102MA…", …],
     "records": [{"resource", "file", "row_number", "defect_kind", "column"}, …] | null,
     "disagreements": [{"resource", "item", "uscc", "department", "authoritative_value",
                        "other_value", "file", "row_number"}, …] | null,
     "repairs": [{"file", "row_number", "uscc", "decision_no", "decision_date", "repair_date",
                  "outcome"}, …] | null}

``records``, ``disagreements`` and ``repairs`` are null when the run wrote more than
RECORDS_LIMIT rows (the counts are always there: ``outcomes`` per resource). ``column`` is the
catalog item column the defect touched (null for duplicates); ``row_number`` counts data rows
from 1, header excluded. ``repairs`` holds every credit.repair row with the outcome the credit
lifecycle should reach (``accepted``, ``too_early``, ``unknown_decision``; a row that is also in
``records`` with an invalid kind never reaches silver). ``dishonest_listed``: the 统一社会信用代码
that court.dishonest lists today (a valid row without 移除日期), sorted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from govlake.generate._defects import DefectKind, kinds_table
from govlake.generate._frame import INVALID_CODES, KINDS

RECORDS_LIMIT = 200_000
"""Per-row defect records are kept only when the run writes at most this many rows."""


@dataclass(frozen=True)
class DefectRecord:
    """One injected defect: ``row_number`` is the 1-based data row of ``file`` (header excluded);
    for the registry table, the row's position ordered by ``updated_at``."""

    resource: str
    file: str
    row_number: int
    defect_kind: str
    column: str | None


@dataclass(frozen=True)
class Disagreement:
    """A copy of an item held by ``department`` that disagrees with its authority: amr's registry
    (``uscc`` set) or, for a natural person's name, psb.population (``id_number`` set, ``item``
    ``name`` whatever the copy's column)."""

    resource: str
    item: str
    uscc: str | None
    department: str
    authoritative_value: str
    other_value: str
    file: str
    row_number: int
    id_number: str | None = None

    @property
    def entity_key(self) -> str:
        return self.uscc or self.id_number


@dataclass(frozen=True)
class RepairOutcome:
    """One credit.repair row and what the credit lifecycle should make of it.

    ``decision_date`` is the repaired penalty's decision date (None for ``unknown_decision``);
    ``uscc``, ``decision_no`` and both dates are the values before any injected defect.
    """

    file: str
    row_number: int
    uscc: str
    decision_no: str
    decision_date: str | None
    repair_date: str
    outcome: str


@dataclass
class FileInfo:
    path: str
    """Relative to the output folder, with ``/`` separators."""
    encoding: str
    """utf-8, utf-8-sig (with BOM), gbk, xlsx or sqlite."""
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    defects: dict[str, int] = field(default_factory=dict)


@dataclass
class ResourceInfo:
    rows: int = 0
    files: list[FileInfo] = field(default_factory=list)
    defects: dict[str, int] = field(default_factory=dict)
    invalid_rows: int = 0
    """Rows the pipeline must quarantine (the sum over invalid kinds)."""
    subjects_outside_registry: int = 0
    """双公示 rows whose legal-entity subject is not in amr.enterprise (valid rows)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """Rows per expected outcome (credit.repair: accepted / too_early / unknown_decision;
    court.dishonest: listed / removed); empty for other resources."""


@dataclass
class Manifest:
    """Everything :func:`generate_city` wrote, with the injected defects."""

    seed: int
    scale: int
    defect_rate: float
    as_of: str
    only: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    """Catalog resources the generator has no generator for (nothing written), each with a note."""
    resources: dict[str, ResourceInfo] = field(default_factory=dict)
    records: list[DefectRecord] | None = field(default_factory=list)
    """Every injected defect, or None when the run wrote more than RECORDS_LIMIT rows."""
    disagreements: list[Disagreement] | None = field(default_factory=list)
    repairs: list[RepairOutcome] | None = field(default_factory=list)
    """Every credit.repair row with its expected outcome, or None over RECORDS_LIMIT rows."""
    dishonest_listed: list[str] = field(default_factory=list)
    """统一社会信用代码 on the court's 失信被执行人 list today (a valid row, not removed), sorted."""
    defect_kinds: dict[str, dict] = field(default_factory=kinds_table)

    @property
    def total_rows(self) -> int:
        return sum(r.rows for r in self.resources.values())

    def records_for(self, resource: str, *, kinds=None) -> list[DefectRecord]:
        """Records of one resource, optionally only of ``kinds`` (DefectKind or str)."""
        wanted = {DefectKind(k).value for k in kinds} if kinds is not None else None
        return [r for r in self.records or [] if r.resource == resource
                and (wanted is None or r.defect_kind in wanted)]

    def invalid_records(self, resource: str) -> list[DefectRecord]:
        """The rows of ``resource`` the pipeline must quarantine."""
        return self.records_for(resource, kinds=[k for k in DefectKind if k.invalid])

    def repairs_for(self, *outcomes: str) -> list[RepairOutcome]:
        """credit.repair rows expected to end as one of ``outcomes`` (all when none given)."""
        return [r for r in self.repairs or [] if not outcomes or r.outcome in outcomes]

    def to_dict(self) -> dict:
        head = {k: v for k, v in vars(self).items() if k not in (*_LISTS, "resources")}
        head["resources"] = {code: asdict(r) for code, r in self.resources.items()}
        for name in _LISTS:
            items = getattr(self, name)
            head[name] = None if items is None else [vars(i).copy() for i in items]
        return head

    def write(self, path: Path) -> None:
        """JSON with one record per line (readable, and fast to write for 200k records)."""
        data = self.to_dict()
        lists = {name: data.pop(name) for name in _LISTS}
        text = json.dumps(data, ensure_ascii=False, indent=1)[:-2]
        for name, items in lists.items():
            if items is None:
                text += f',\n "{name}": null'
            else:
                body = ",\n  ".join(json.dumps(i, ensure_ascii=False) for i in items)
                text += f',\n "{name}": [\n  {body}\n ]' if items else f',\n "{name}": []'
        path.write_text(text + "\n}\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        resources = {}
        for code, res in data.pop("resources").items():
            files = [FileInfo(**f) for f in res.pop("files")]
            resources[code] = ResourceInfo(files=files, **res)
        records = data.pop("records")
        disagreements = data.pop("disagreements")
        repairs = data.pop("repairs", [])  # manifests written before credit.repair have none
        return cls(
            resources=resources,
            records=None if records is None else [DefectRecord(**r) for r in records],
            disagreements=None if disagreements is None else [Disagreement(**d) for d in disagreements],
            repairs=None if repairs is None else [RepairOutcome(**r) for r in repairs],
            **data,
        )


_LISTS = ("records", "disagreements", "repairs")
"""Manifest lists written one record per line (null when not kept)."""


class Recorder:
    """Collects the defects of the frames written to one file."""

    def __init__(self, manifest: Manifest, resource: str, info: FileInfo, *, keep: bool):
        self.manifest = manifest
        self.resource = resource
        self.info = info
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self.res = manifest.resources.setdefault(resource, ResourceInfo())
        self.res.files.append(info)

    def add(self, frame) -> None:
        rows = np.flatnonzero(frame.kind >= 0)
        kinds = [KINDS[k].value for k in frame.kind[rows].tolist()]
        self.counts.update(kinds)
        if self.keep:
            self.manifest.records.extend(
                DefectRecord(self.resource, self.info.path, row, kind, column)
                for row, kind, column in zip((rows + frame.start + 1).tolist(), kinds,
                                             frame.column[rows].tolist()))
        if self.keep:
            for d in frame.disagreements:
                self.manifest.disagreements.append(Disagreement(
                    resource=self.resource, file=self.info.path, row_number=frame.start + d.pop("row") + 1,
                    **d))
        if "_outcome" in frame.cols:
            self._outcomes(frame)
        self.info.rows += frame.n
        self.res.rows += frame.n
        if "_outside" in frame.cols:
            self.res.subjects_outside_registry += int(frame.cols["_outside"].astype(bool).sum())

    def _outcomes(self, frame) -> None:
        """Expected outcomes carried by the frame's hidden columns (credit.repair, court.dishonest)."""
        outcome = frame.cols["_outcome"]
        counts = Counter(self.res.outcomes)
        counts.update(outcome.tolist())
        self.res.outcomes = dict(sorted(counts.items()))
        if "_decision_no" in frame.cols and self.keep:
            first = frame.start + 1
            self.manifest.repairs.extend(
                RepairOutcome(self.info.path, first + i, u, no, d or None, r, o)
                for i, (u, no, d, r, o) in enumerate(zip(
                    frame.cols["_uscc"].tolist(), frame.cols["_decision_no"].tolist(),
                    frame.cols["_decision_date"].tolist(), frame.cols["_repair_date"].tolist(),
                    outcome.tolist())))
        if "_listed_uscc" in frame.cols:
            valid = ~np.isin(frame.kind, INVALID_CODES)
            listed = valid & (outcome == "listed") & (frame.cols["_listed_uscc"] != "")
            codes = set(self.manifest.dishonest_listed) | set(frame.cols["_listed_uscc"][listed].tolist())
            self.manifest.dishonest_listed = sorted(codes)

    def close(self) -> None:
        self.info.defects = dict(sorted(self.counts.items()))
        total = Counter(self.res.defects)
        total.update(self.counts)
        self.res.defects = dict(sorted(total.items()))
        self.res.invalid_rows = sum(n for k, n in self.res.defects.items() if DefectKind(k).invalid)
