"""``govlake backup --to DIR``: a consistent, incremental copy of the whole lake.

Under the exclusive lake lock (no step runs, so every table is at a commit boundary and every
open intent in ``lake/_steps`` matches the tables' txn stamps) it lists every Delta table's
version and the files that version needs, ``lake/_steps/`` and the analyst extract, copies what
the folder does not hold yet, and writes the manifest last. Delta data files are never rewritten
under the same name, so one the folder already holds (same path and size, its checksum known from
an earlier manifest) is reused. Log entries, ``_steps`` files and the extract are hashed each time
(a log entry's name comes back when the lake goes on from an older backup), and a changed one is
stored beside the old under ``<path>@<sha256 prefix>``.
Fault injection: ``GOVLAKE_CRASH_AT=backup:file:<n>`` kills it after the n-th file copied.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from govlake import locks
from govlake._faults import crash_point
from govlake.backup._files import BackupError, CopyProblem, copy_file, describe_os_error, remove_leftovers, sha256_file
from govlake.backup._lake import data_files, delta_tables, log_entries, open_at
from govlake.backup._manifest import FILES, FileEntry, Manifest, TableEntry, stored_index, write_manifest
from govlake.config import Settings
from govlake.objectstore import BACKUP, refuse_on_s3
from govlake.steps import STEPS_DIR


@dataclass(frozen=True)
class BackupResult:
    """What one backup did."""

    manifest: Manifest
    path: Path
    """The manifest file."""
    copied: int
    copied_bytes: int
    reused: int
    reused_bytes: int
    seconds: float


def actor() -> str:
    """Who acts (GOVLAKE_ACTOR or the login), as the batch decisions record it."""
    from govlake.quality import batch_actor

    return batch_actor()


def govlake_version() -> str:
    try:
        return metadata.version("govlake")
    except metadata.PackageNotFoundError:
        return "unknown"


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class _Copier:
    """Places files in the backup folder: reused when held already, else copied."""

    def __init__(self, root: Path):
        self.root = root
        self.index = stored_index(root)
        self.copied = self.copied_bytes = self.reused = self.reused_bytes = 0

    def place(self, src: Path, rel: str, *, immutable: bool) -> FileEntry:
        base = f"{FILES}/{rel}"
        known = self.index.get(base)
        if known is not None:
            size = src.stat().st_size
            if immutable and known[0] == size:
                return self._reused(FileEntry(rel, size, known[1], base))
            sha = sha256_file(src)
            if known == (size, sha):
                return self._reused(FileEntry(rel, size, sha, base))
            base = f"{base}@{sha[:16]}"
            if self.index.get(base) == (size, sha):
                return self._reused(FileEntry(rel, size, sha, base))
        size, sha = copy_file(src, self.root / base)
        crash_point("backup:file")
        self.index[base] = (size, sha)
        self.copied += 1
        self.copied_bytes += size
        return FileEntry(rel, size, sha, base)

    def _reused(self, entry: FileEntry) -> FileEntry:
        self.reused += 1
        self.reused_bytes += entry.size
        return entry


def take_backup(settings: Settings, *, to: Path) -> BackupResult:
    """Back the lake up into folder ``to`` (created when absent); returns what was copied and reused.

    Raises BackupError (previous backups untouched) when there is no lake, ``to`` lies inside it,
    the disk fills up or a file cannot be read or written.
    """
    from govlake.extract import EXTRACT_NAME

    refuse_on_s3(settings, "govlake backup (it copies the lake's folders)", BACKUP)
    started = time.perf_counter()
    root, lake = to.resolve(), settings.lake.resolve()
    if inside(root, lake):
        raise BackupError(f"{root}: a backup cannot be kept inside the lake it backs up ({lake})")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder: {describe_os_error(exc, root)}") from None
    wait = locks.wait_seconds()
    with locks.FileLocks(root).acquire("backup", shared=False, timeout=wait), locks.hold(settings, locks.LAKE):
        locks.check_fence(settings)
        tables = delta_tables(lake)
        if not tables:
            raise BackupError(f"{lake}: no Delta tables here, nothing to back up (is GOVLAKE_VAR right?)")
        cut = dt.datetime.now(dt.UTC)
        backup_id = f"{cut:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
        copier = _Copier(root)
        current = None
        try:
            remove_leftovers(root / FILES)
            entries: dict[str, TableEntry] = {}
            for table in tables:
                path = lake / table
                current = path
                delta = open_at(path)
                if delta is None:
                    raise BackupError(f"{path}: a Delta table that cannot be opened; repair or move it aside first")
                version = delta.version()
                # a log entry's name comes back after a restore from an older backup: always hashed
                files = [copier.place(path / name, f"lake/{table}/{name}", immutable=False)
                         for name in log_entries(path, version)]
                for name in data_files(delta, path):
                    current = path / name
                    files.append(copier.place(path / name, f"lake/{table}/{name}", immutable=True))
                entries[table] = TableEntry(table, version, delta.to_pyarrow_dataset().count_rows(), files)
            steps = []
            steps_dir = lake / STEPS_DIR
            if steps_dir.is_dir():
                for path in sorted(p for p in steps_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
                    current = path
                    steps.append(copier.place(path, f"lake/{STEPS_DIR}/{path.name}", immutable=False))
            extract_path = settings.extracts / EXTRACT_NAME
            current = extract_path
            extract = (copier.place(extract_path, f"extracts/{EXTRACT_NAME}", immutable=False)
                       if extract_path.is_file() else None)
            seconds = time.perf_counter() - started
            manifest = Manifest(backup_id, cut.isoformat(), govlake_version(), str(lake),
                                f"{actor()}@{socket.gethostname()}", entries, steps, extract, stats={
                                    "copied": copier.copied, "copied_bytes": copier.copied_bytes,
                                    "reused": copier.reused, "reused_bytes": copier.reused_bytes,
                                    "seconds": round(seconds, 3)})
            written = write_manifest(root, manifest)
        except CopyProblem as exc:
            raise BackupError(f"{exc}; the backup was not recorded (previous backups in {root} are intact)") from None
        except OSError as exc:
            raise BackupError(f"{describe_os_error(exc, current or root)} while backing up to {root}: this backup "
                              f"was not recorded ({copier.copied} files copied so far); the previous backups are "
                              "intact. Free space or choose another --to, then run again") from None
    return BackupResult(manifest, written, copier.copied, copier.copied_bytes, copier.reused, copier.reused_bytes,
                        time.perf_counter() - started)
