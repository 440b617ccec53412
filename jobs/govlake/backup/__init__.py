"""Backups, restores, restore drills (灾备演练) and vacuum of the lake (docs/operations.md).

- :func:`take_backup` — ``govlake backup --to DIR``: every Delta table at one cut (under the
  exclusive lake lock), ``lake/_steps`` and the analyst extract; incremental; manifest last.
- :func:`restore_lake` — ``govlake restore --from DIR``: the whole lake back to a backup's cut.
- :func:`restore_tables` — ``govlake restore --from DIR --table T``: T and what depends on it.
- :func:`restore_as_of` — ``govlake restore --as-of TIME``: Delta time travel to the quiet cut.
- :func:`resume` — ``govlake restore --resume``: finish a restore that was interrupted.
- :func:`run_drill` — ``govlake drill``: restore a backup into scratch, check it, record it.
- :func:`vacuum` — ``govlake vacuum``: delete files no version in the retention window needs.

Backups hold the lake as it is, personal data included: keep them as securely as the lake.
"""

from __future__ import annotations

from govlake import locks
from govlake.backup._asof import finish_as_of, quiet_cut, restore_as_of
from govlake.backup._common import RestoreResult, raise_fence, read_fence
from govlake.backup._deps import closure, pipeline_steps
from govlake.backup._drill import DrillResult, drills, run_drill
from govlake.backup._files import BackupError
from govlake.backup._manifest import Manifest, find, manifests, read_manifest
from govlake.backup._tables import finish_tables, restore_tables
from govlake.backup._take import BackupResult, take_backup
from govlake.backup._vacuum import DEFAULT_HOURS, SAFE_MINIMUM_HOURS, VacuumResult, vacuum
from govlake.backup._whole import finish_whole, restore_lake
from govlake.config import Settings
from govlake.objectstore import RESTORE, refuse_on_s3


def resume(settings: Settings) -> RestoreResult | None:
    """Finish the restore an interrupted ``govlake restore`` left (None when there is none)."""
    refuse_on_s3(settings, "govlake restore --resume", RESTORE)
    with locks.hold(settings, locks.LAKE):
        record = read_fence(settings)
        if record is None:
            return None
        finisher = {"whole": finish_whole, "table": finish_tables, "as-of": finish_as_of}.get(record.get("kind"))
        if finisher is None:
            raise BackupError(f"var/locks/fence.json: unknown restore kind {record.get('kind')!r}")
        return finisher(settings, raise_fence(settings, record))  # this process now holds the fence


__all__ = [
    "DEFAULT_HOURS", "SAFE_MINIMUM_HOURS", "BackupError", "BackupResult", "DrillResult", "Manifest", "RestoreResult",
    "VacuumResult", "closure", "drills", "find", "manifests", "pipeline_steps", "quiet_cut", "read_fence",
    "read_manifest", "restore_as_of", "restore_lake", "restore_tables", "resume", "run_drill", "take_backup", "vacuum",
]
