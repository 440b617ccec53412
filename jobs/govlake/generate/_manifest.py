"""The manifest: what was written, and every defect injected (``out/manifest.json``).

Format (JSON, one record per line in the two lists)::

    {"seed": 42, "scale": 2000, "defect_rate": 0.03, "as_of": "2026-11-20", "only": null,
     "defect_kinds": {"uscc_check": {"effect": "quarantine", "invalid": true, "description": …}, …},
     "resources": {"credit.penalty": {
         "rows": 700, "invalid_rows": 108, "subjects_outside_registry": 31,
         "defects": {"uscc_check": 25, …},
         "files": [{"path": "credit/penalty/ee_20261120.csv", "encoding": "gbk", "rows": 105,
                    "columns": [<header as written>], "defects": {…}}, …]}, …},
     "records": [{"resource", "file", "row_number", "defect_kind", "column"}, …] | null,
     "disagreements": [{"resource", "item", "uscc", "department", "authoritative_value",
                        "other_value", "file", "row_number"}, …] | null}

``records`` and ``disagreements`` are null when the run wrote more than RECORDS_LIMIT rows
(the counts are always there). ``column`` is the catalog item column the defect touched
(null for duplicates); ``row_number`` counts data rows from 1, header excluded.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from govlake.generate._defects import DefectKind, kinds_table
from govlake.generate._frame import KINDS

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
    """A copy of an item held by ``department`` that disagrees with the authority (amr)."""

    resource: str
    item: str
    uscc: str
    department: str
    authoritative_value: str
    other_value: str
    file: str
    row_number: int


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


@dataclass
class Manifest:
    """Everything :func:`generate_city` wrote, with the injected defects."""

    seed: int
    scale: int
    defect_rate: float
    as_of: str
    only: str | None = None
    resources: dict[str, ResourceInfo] = field(default_factory=dict)
    records: list[DefectRecord] | None = field(default_factory=list)
    """Every injected defect, or None when the run wrote more than RECORDS_LIMIT rows."""
    disagreements: list[Disagreement] | None = field(default_factory=list)
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

    def to_dict(self) -> dict:
        head = {k: v for k, v in vars(self).items() if k not in ("records", "disagreements", "resources")}
        head["resources"] = {code: asdict(r) for code, r in self.resources.items()}
        for name in ("records", "disagreements"):
            items = getattr(self, name)
            head[name] = None if items is None else [vars(i).copy() for i in items]
        return head

    def write(self, path: Path) -> None:
        """JSON with one record per line (readable, and fast to write for 200k records)."""
        data = self.to_dict()
        lists = {name: data.pop(name) for name in ("records", "disagreements")}
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
        return cls(
            resources=resources,
            records=None if records is None else [DefectRecord(**r) for r in records],
            disagreements=None if disagreements is None else [Disagreement(**d) for d in disagreements],
            **data,
        )


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
        self.info.rows += frame.n
        self.res.rows += frame.n
        if "_outside" in frame.cols:
            self.res.subjects_outside_registry += int(frame.cols["_outside"].astype(bool).sum())

    def close(self) -> None:
        self.info.defects = dict(sorted(self.counts.items()))
        total = Counter(self.res.defects)
        total.update(self.counts)
        self.res.defects = dict(sorted(total.items()))
        self.res.invalid_rows = sum(n for k, n in self.res.defects.items() if DefectKind(k).invalid)
