"""Backup manifests: ``DIR/manifests/<backup id>.json``, one per backup, written last.

A manifest names the cut, the govlake version and, for every Delta table, its version, its row
count and every file needed to read that version (``_delta_log`` entries up to it, checkpoints
included, and the live data files), each with size, sha256 and where the backup holds it
(``stored``, relative to DIR). ``lake/_steps/`` and the analyst extract are listed the same way. A
backup without its manifest does not exist: files a killed backup left are not part of any.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from govlake.backup._files import BackupError
from govlake.objectstore import write_atomic

log = logging.getLogger(__name__)

FORMAT = 1
MANIFESTS = "manifests"
FILES = "files"


@dataclass(frozen=True)
class FileEntry:
    """One file of a backup: ``path`` relative to the var folder (``lake/silver/x/part-….parquet``),
    ``stored`` relative to the backup folder."""

    path: str
    size: int
    sha256: str
    stored: str


@dataclass
class TableEntry:
    """One Delta table at the cut."""

    table: str
    version: int
    rows: int
    files: list[FileEntry]


@dataclass
class Manifest:
    """What one backup holds."""

    backup_id: str
    cut: str
    """ISO time (UTC) at which the lake lock was taken: the lake as it was then."""
    govlake_version: str
    lake: str
    created_by: str
    tables: dict[str, TableEntry]
    steps: list[FileEntry]
    extract: FileEntry | None
    stats: dict = field(default_factory=dict)
    format: int = FORMAT

    def files(self) -> Iterator[FileEntry]:
        """Every file of the backup: tables', then ``_steps``', then the extract."""
        for t in self.tables.values():
            yield from t.files
        yield from self.steps
        if self.extract is not None:
            yield self.extract

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode("utf-8")


def _entry(raw: dict) -> FileEntry:
    return FileEntry(str(raw["path"]), int(raw["size"]), str(raw["sha256"]), str(raw["stored"]))


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path``; BackupError naming it when it is not a readable govlake manifest."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, this govlake reads format {FORMAT}")
        tables = {name: TableEntry(name, int(t["version"]), int(t["rows"]), [_entry(f) for f in t["files"]])
                  for name, t in raw["tables"].items()}
        return Manifest(str(raw["backup_id"]), str(raw["cut"]), str(raw["govlake_version"]), str(raw["lake"]),
                        str(raw["created_by"]), tables, [_entry(f) for f in raw["steps"]],
                        _entry(raw["extract"]) if raw.get("extract") else None, dict(raw.get("stats") or {}))
    except FileNotFoundError:
        raise BackupError(f"{path}: no such backup manifest") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{path}: not a readable govlake backup manifest ({exc})") from None


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` atomically under ``root/manifests``; the backup exists from then on."""
    path = root / MANIFESTS / f"{manifest.backup_id}.json"
    write_atomic(path, manifest.to_json())
    return path


def manifests(root: Path) -> list[Manifest]:
    """Every readable backup under ``root``, oldest cut first (an unreadable manifest is logged, skipped)."""
    folder = root / MANIFESTS
    found = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                found.append(read_manifest(path))
            except BackupError as exc:
                log.warning("%s", exc)
    return sorted(found, key=lambda m: m.cut)


def find(root: Path, backup_id: str | None = None) -> Manifest:
    """Backup ``backup_id`` (or the latest) under ``root``; BackupError saying what is there otherwise."""
    if not (root / MANIFESTS).is_dir():
        raise BackupError(f"{root}: no backups here (no {MANIFESTS}/ folder); take one with `govlake backup "
                          f"--to {root}`")
    if backup_id is not None:
        return read_manifest(root / MANIFESTS / f"{backup_id}.json")
    found = manifests(root)
    if not found:
        raise BackupError(f"{root}: no complete backup here (no readable manifest in {root / MANIFESTS})")
    return found[-1]


def stored_index(root: Path) -> dict[str, tuple[int, str]]:
    """``stored`` path → (size, sha256) of every file some readable manifest under ``root`` lists."""
    index: dict[str, tuple[int, str]] = {}
    for m in manifests(root):
        for f in m.files():
            index[f.stored] = (f.size, f.sha256)
    return index
