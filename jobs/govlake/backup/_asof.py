"""``govlake restore --as-of TIME``: the whole lake back to a moment, by Delta time travel.

Delta RESTORE does not take back a table's txn application versions, so going back to a moment
when some step was half done would make its replay skip writes the restore undid. The restore
therefore goes back to the **quiet cut**: the latest moment at or before TIME at which no intent
was open (``lake/_steps/history.jsonl``, written by govlake.steps; an intent is open from its
begin to its close, or to the next begin of the same step). Every table goes to its last version
committed by then (``DeltaTable.restore``, a new commit stamped with the restore's txn, so a
resumed restore skips it); a table created after the cut is set aside; open intents are closed
(none was open at the cut); the extract is rebuilt from the restored gold (so the next run's
extract logs, against it, every publication withdrawn since). The audit tables (meta/drills,
meta/restores) are left as they are. A moment whose files were vacuumed (or whose log entries were
cleaned) is refused, naming the oldest moment that can be restored.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import Transaction

from govlake import locks, steps
from govlake._faults import crash_point
from govlake.backup._common import (
    ASIDE_PREFIX,
    CONSUMER,
    RestoreResult,
    begin_event,
    close_open_intents,
    finish,
    move_aside,
    new_record,
    put_extract,
    raise_fence,
    refuse_if_fenced,
    stamp,
)
from govlake.backup._files import BackupError
from govlake.backup._lake import (
    AUDIT,
    commit_times,
    delta_tables,
    from_ms,
    ms,
    oldest_restorable,
    restorable,
    version_at,
)
from govlake.config import Settings
from govlake.objectstore import RESTORE, refuse_on_s3

MARGIN_MS = 1.0
"""Delta commit times are whole milliseconds: a cut keeps this far from any intent's begin and close."""


def _parse(at: str) -> float:
    return ms(dt.datetime.fromisoformat(at))


def open_spans(events: list[dict]) -> list[tuple[float, float, str]]:
    """(begin, end, consumer) in ms of every intent (and restore) in the step history; end is
    infinite for one still open."""
    spans, current = [], {}
    for e in events:
        kind, consumer = e.get("event"), e.get("consumer")
        if kind not in ("begin", "close") or consumer is None or "at" not in e:
            continue
        at = _parse(e["at"])
        if kind == "begin":
            if consumer in current:  # its earlier intent ended before this one began, at the latest
                spans.append((current[consumer][1], at, consumer))
            current[consumer] = (e.get("id"), at)
        elif consumer in current and current[consumer][0] == e.get("id"):
            spans.append((current.pop(consumer)[1], at, consumer))
    spans += [(begin, math.inf, consumer) for consumer, (_, begin) in current.items()]
    return spans


def quiet_cut(events: list[dict], moment: dt.datetime) -> dt.datetime:
    """The latest moment at or before ``moment`` at which no intent was open."""
    spans = open_spans(events)
    t = ms(moment)
    while True:
        blocking = [begin for begin, end, _ in spans if begin - MARGIN_MS <= t < end + MARGIN_MS]
        if not blocking:
            return from_ms(t)
        t = min(blocking) - 2 * MARGIN_MS


def _replaced_spans(events: list[dict]) -> list[tuple[float, float, dict]]:
    """(cut, end, event) of each restore from a backup: between the two the lake's history was replaced."""
    out = []
    for e in events:
        if e.get("event") == "close" and e.get("consumer") == CONSUMER and e.get("kind") in ("whole", "table"):
            out.append((_parse(e["cut"]), _parse(e["at"]), e))
    return out


def restore_as_of(settings: Settings, *, moment: dt.datetime) -> RestoreResult:
    """Take the lake back to the quiet cut at or before ``moment`` (timezone-aware)."""
    refuse_on_s3(settings, "govlake restore --as-of (it moves the lake's folders aside)", RESTORE)
    started = time.perf_counter()
    with locks.hold(settings, locks.LAKE):
        refuse_if_fenced(settings)
        lake = settings.lake
        tables = [t for t in delta_tables(lake) if t not in AUDIT]
        if not tables:
            raise BackupError(f"{lake}: no lake here to take back in time")
        events = steps.history(settings)
        cut = quiet_cut(events, moment)
        for start, end, e in _replaced_spans(events):
            if start < ms(cut) < end:
                when, then = f"{from_ms(end):%Y-%m-%d %H:%M:%S}", f"{from_ms(start):%Y-%m-%d %H:%M:%S}"
                raise BackupError(f"the lake was restored from backup {e.get('backup_id')} at {when} UTC to its cut "
                                  f"of {then} UTC; the lake in between cannot be had by time travel. Choose a time "
                                  "before the cut or after the restore")
        targets, aside, problems, existed = {}, [], [], False
        for table in tables:
            times = commit_times(lake / table)
            version = version_at(times, ms(cut))
            if version is None:
                aside.append(table)
                continue
            existed = True
            if version != times[-1][0]:
                targets[table] = version
                if not restorable(lake / table, version):
                    problems.append((table, version, times))
        if not existed:
            raise BackupError(f"no table of the lake existed at {cut:%Y-%m-%d %H:%M:%S.%f} UTC; nothing to go back to")
        if problems:
            oldest = max(_oldest_time(lake / t, times) for t, _, times in problems)
            table, version, _ = problems[0]
            raise BackupError(f"cannot go back to {moment.isoformat()}: {table} version {version} is no longer "
                              f"readable (its files were vacuumed or its log cleaned). The oldest time that can be "
                              f"restored is {oldest}; older states only from a backup (`govlake restore --from DIR`)")
        record = raise_fence(settings, new_record(
            "as-of", cut=cut.isoformat(), moment=moment.isoformat(), tables=targets, aside_only=aside,
            aside=str(settings.var / f"{ASIDE_PREFIX}{stamp()}")))
        begin_event(settings, record)
        result = finish_as_of(settings, record)
    result.seconds = time.perf_counter() - started
    return result


def _oldest_time(path: Path, times: list[tuple[int, int]]) -> str:
    version = oldest_restorable(path, times)
    if version is None:
        return "none (the table's current version itself is unreadable)"
    stamp_ms = dict(times)[version]
    return f"{from_ms(stamp_ms).isoformat(timespec='seconds')} (when {path.parent.name}/{path.name} was at version " \
           f"{version})"


def finish_as_of(settings: Settings, record: dict) -> RestoreResult:
    """Restore each table to its version at the cut (skipping those done), set the new ones aside,
    close open intents, rebuild the extract; idempotent."""
    from govlake.extract import build_extract

    lake, aside = settings.lake, Path(record["aside"])
    cut = dt.datetime.fromisoformat(record["cut"])
    result = RestoreResult("as-of", cut, tables=sorted(record["tables"]))
    meta = {"govlake.run_id": record["run_id"], "govlake.restore_as_of": record["cut"]}
    props = CommitProperties(custom_metadata=meta,
                             app_transactions=[Transaction(app_id=CONSUMER, version=int(record["id"]))])
    for table, version in sorted(record["tables"].items()):
        delta = DeltaTable(str(lake / table))
        reached = delta.transaction_version(CONSUMER)
        if reached is None or reached < int(record["id"]):
            delta.restore(int(version), commit_properties=props)
            crash_point("restore:table")
    for table in record["aside_only"]:
        if move_aside(lake / table, aside / table):
            result.set_aside.append(table)
    closed = close_open_intents(settings, None, f"lake restored as of {record['cut']}")
    if closed:
        result.notes.append(f"intents closed (their writes were undone): {', '.join(closed)}")
    from govlake.extract import EXTRACT_NAME

    if (aside / "_extract" / EXTRACT_NAME).exists():  # resumed: the live extract is the one this restore built
        (settings.extracts / EXTRACT_NAME).unlink(missing_ok=True)
    else:
        put_extract(settings, None, aside)
    try:
        build_extract(settings=settings, run_id=record["run_id"])
        result.notes.append("the analyst extract was rebuilt from the restored gold tables")
    except FileNotFoundError:
        result.notes.append("no gold tables at the cut: no analyst extract until the next `govlake run`")
    result.aside_dir = aside if aside.exists() else None
    finish(settings, record, tables=sorted(record["tables"]), set_aside=record["aside_only"],
           note=f"as of {record['moment']} (quiet cut {record['cut']})")
    return result
