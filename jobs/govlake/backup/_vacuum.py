"""``govlake vacuum``: delete the files no version inside the retention window needs.

Under the exclusive lake lock (no step runs, so none is reading an older version), each Delta
table is vacuumed with delta-rs (``full``: files no log mentions, left by a killed writer, go too)
keeping every file a version committed inside the window needs, and every version an open intent
(``lake/_steps/*.json``, state open) pinned, so an interrupted step still replays exactly. Backups
hold their own copies and are never touched. ``compact`` also rewrites the small files of the
append-only meta tables into few (nobody reads a meta table by "files added since"), checkpoints
every table, and deletes the gold and meta tables' log entries older than Delta's log retention
(30 days; ``restore --as-of`` cannot go back past it then). Bronze and silver keep their whole log:
an incremental step reads the file list of the version it consumed last, however old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from govlake import locks, objectstore, steps
from govlake.backup._files import BackupError
from govlake.backup._lake import delta_tables, open_at
from govlake.config import Settings

DEFAULT_HOURS = 168
SAFE_MINIMUM_HOURS = 24
"""Below this ``--force`` is needed: ``restore --as-of`` can go back no further than the window."""
LOG_RETENTION_HOURS = 30 * 24
"""Delta's default ``delta.logRetentionDuration``: older log entries go at a checkpoint (with ``compact``)."""
CLEAN_LOGS = ("gold/", "meta/")
"""Layers whose old log entries ``compact`` deletes (no step reads an old version of them)."""


@dataclass
class VacuumResult:
    """What a vacuum removed, per table (files, bytes) and in all."""

    retain_hours: int
    dry_run: bool
    removed: dict[str, tuple[int, int]] = field(default_factory=dict)
    kept_pinned: dict[str, list[int]] = field(default_factory=dict)
    compacted: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Meta table → (files removed, files added) by compaction."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files(self) -> int:
        return sum(n for n, _ in self.removed.values())

    @property
    def bytes(self) -> int:
        return sum(b for _, b in self.removed.values())


def pinned_versions(settings: Settings) -> dict[str, list[int]]:
    """Lake-relative table → the versions open intents read (govlake.steps)."""
    pinned: dict[str, set[int]] = {}
    for intent in steps.open_intents(settings):
        for table, version in (intent.get("versions") or {}).items():
            if version is not None:
                pinned.setdefault(table, set()).add(int(version))
    return {t: sorted(v) for t, v in pinned.items()}


def vacuum(settings: Settings, *, retain_hours: int = DEFAULT_HOURS, force: bool = False, dry_run: bool = False,
           compact: bool = False) -> VacuumResult:
    """Vacuum every table of the lake; see the module docstring. BackupError below the safe minimum
    without ``force``."""
    if retain_hours < 0:
        raise BackupError(f"--retain-hours {retain_hours}: must be 0 or more")
    if retain_hours < SAFE_MINIMUM_HOURS and not force:
        raise BackupError(f"--retain-hours {retain_hours} is below the safe minimum of {SAFE_MINIMUM_HOURS} h: "
                          f"`govlake restore --as-of` could not go back past it. Add --force if that is meant")
    started = time.perf_counter()
    result = VacuumResult(retain_hours, dry_run)
    with locks.hold(settings, locks.LAKE):
        locks.check_fence(settings)
        lake = settings.lake
        tables = delta_tables(lake)
        if not tables:
            raise BackupError(f"{lake}: no Delta tables here, nothing to vacuum (are GOVLAKE_VAR and GOVLAKE_LAKE "
                              "right?)")
        pinned = pinned_versions(settings)
        for table in tables:
            path = objectstore.join(lake, table)
            delta = open_at(path)
            if delta is None:
                result.notes.append(f"{table}: cannot be opened; left alone")
                continue
            if compact and table.startswith("meta/") and not dry_run:
                # only here, under the lake's lock held exclusively: two compactions of one table at once both
                # commit with delta-rs 1.6 (each removing the same files and adding their rows again), which
                # duplicated rows when tried on every meta append (two processes of 40 appends each: 59 million
                # rows for 81)
                metrics = delta.optimize.compact()
                if metrics.get("numFilesRemoved"):
                    result.compacted[table] = (int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]))
                delta = open_at(path)
            keep = pinned.get(table)
            if keep:
                result.kept_pinned[table] = keep
            listed = delta.vacuum(retention_hours=retain_hours, dry_run=True, enforce_retention_duration=False,
                                  full=True, keep_versions=keep)
            size = sum(objectstore.size(objectstore.join(path, f)) for f in listed)
            if listed and not dry_run:
                delta.vacuum(retention_hours=retain_hours, dry_run=False, enforce_retention_duration=False,
                             full=True, keep_versions=keep)
            if listed:
                result.removed[table] = (len(listed), size)
            if compact and not dry_run:
                delta = open_at(path)
                delta.create_checkpoint()
                if retain_hours <= LOG_RETENTION_HOURS and table.startswith(CLEAN_LOGS) and not keep:
                    delta.cleanup_metadata()
        if compact and retain_hours > LOG_RETENTION_HOURS:
            result.notes.append(f"log entries kept: --retain-hours {retain_hours} is beyond Delta's log retention "
                                f"({LOG_RETENTION_HOURS} h)")
    result.seconds = time.perf_counter() - started
    return result
