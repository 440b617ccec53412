"""``govlake backup``, ``restore``, ``drill`` and ``vacuum`` (govlake.backup; docs/operations.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from govlake.cli._context import RunContext
from govlake.cli._main import ERROR, CommandError, Json, UsageError, app, command, known_errors, message
from govlake.cli._progress import Activity

OS_ERRORS = (OSError,)
"""Also reported as one message by these commands: a backup folder that cannot be written, say."""


def _say(ctx: RunContext, text: str, *, error: bool = False) -> None:
    """One line of a backup command's output, never wrapped (paths stay whole); errors in red on stderr."""
    ctx.say(text, error=error, style="red" if error and not text.startswith(" ") else "")


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.1f} kB"


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="Backup folder (created when absent); files an earlier backup "
                                                 "there holds are not copied again.")],
    as_json: Json = False,
) -> None:
    """Back the whole lake up at one consistent cut: every Delta table, lake/_steps and the extract."""
    from govlake.backup import take_backup

    with command("backup", as_json=as_json, known=OS_ERRORS) as ctx:
        with Activity(ctx, f"backing up the lake to {to}"):
            r = take_backup(ctx.settings, to=to)
        m = r.manifest
        if ctx.json:
            ctx.emit({"backup_id": m.backup_id, "cut": m.cut, "tables": len(m.tables), "rows": m.rows,
                      "copied": r.copied, "copied_bytes": r.copied_bytes, "reused": r.reused,
                      "reused_bytes": r.reused_bytes, "seconds": round(r.seconds, 1), "manifest": r.path})
            return
        _say(ctx, f"backup {m.backup_id} (cut {m.cut}): {len(m.tables)} tables, {m.rows:,} rows; copied {r.copied} "
             f"files ({_size(r.copied_bytes)}), reused {r.reused} files ({_size(r.reused_bytes)}) in "
             f"{r.seconds:.1f}s; manifest {r.path}")


def _as_of(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--as-of {text!r}: expected an ISO time such as 2026-11-20T09:30:00+08:00") from None
    return moment if moment.tzinfo else moment.astimezone()


@app.command()
def restore(
    source: Annotated[Path | None, typer.Option("--from", help="Backup folder to restore from.")] = None,
    backup_id: Annotated[str | None, typer.Option("--backup", help="With --from: this backup (default the latest).")]
    = None,
    table: Annotated[list[str] | None, typer.Option("--table", help="With --from: only this table (e.g. "
                     "silver/credit_penalty) and what depends on it; repeatable.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Delta time travel to this ISO time (local time "
                     "without a zone) inside the retention window.")] = None,
    resume_: Annotated[bool, typer.Option("--resume", help="Finish a restore that was interrupted.")] = False,
    as_json: Json = False,
) -> None:
    """Bring the lake back: the whole lake or some tables from a backup, or the lake as of a time."""
    from govlake import backup as bk

    with command("restore", as_json=as_json, known=OS_ERRORS) as ctx:
        if sum((source is not None, as_of is not None, resume_)) != 1:
            raise UsageError("give one of --from DIR, --as-of TIME or --resume")
        if source is None and (table or backup_id):
            raise UsageError("--table and --backup go with --from DIR")
        moment = _as_of(as_of) if as_of is not None else None
        try:
            with Activity(ctx, "restoring the lake"):
                if resume_:
                    result = bk.resume(ctx.settings)
                elif moment is not None:
                    result = bk.restore_as_of(ctx.settings, moment=moment)
                elif table:
                    result = bk.restore_tables(ctx.settings, source=source, tables=table, backup_id=backup_id)
                else:
                    result = bk.restore_lake(ctx.settings, source=source, backup_id=backup_id)
        except (*known_errors(), *OS_ERRORS) as exc:
            if bk.read_fence(ctx.settings) is not None:
                raise CommandError(f"{message(exc)}. The restore was interrupted: `govlake restore --resume` "
                                   "finishes it") from exc
            raise
        if result is None:  # --resume with nothing to finish
            if ctx.json:
                ctx.emit({"restored": False, "note": "no interrupted restore to finish"})
            ctx.say("no interrupted restore to finish", wrap=True)
            return
        if ctx.json:
            ctx.emit(dict(dataclasses.asdict(result), restored=True))
            return
        _print_restore(ctx, result)


def _print_restore(ctx: RunContext, result) -> None:
    what = {"whole": "the whole lake", "table": "tables", "as-of": "the lake"}[result.kind]
    source_text = f"backup {result.backup_id}" if result.backup_id else "time travel"
    checked = f", {result.files} files ({_size(result.bytes)}) checked" if result.files else ""
    _say(ctx, f"restored {what} to {result.cut:%Y-%m-%d %H:%M:%S} UTC from {source_text}: {len(result.tables)} "
         f"tables{checked} in {result.seconds:.1f}s")
    if result.kind != "whole" and result.tables:
        _say(ctx, "  " + ", ".join(result.tables))
    if result.aside_dir is not None:
        _say(ctx, f"set aside (never deleted; remove it when no longer needed): {result.aside_dir}")
    for note in result.notes:
        _say(ctx, f"note: {note}")
    ctx.say("next: `govlake ingest --all` and `govlake run` carry on from the restored state", wrap=True)


@app.command()
def drill(
    source: Annotated[Path, typer.Option("--from", help="Backup folder.")],
    backup_id: Annotated[str | None, typer.Option("--backup", help="This backup (default the latest).")] = None,
    scratch: Annotated[Path | None, typer.Option(help="Folder for the scratch lake (default the system's temp).")]
    = None,
    keep: Annotated[bool, typer.Option(help="Leave the scratch lake in place.")] = False,
    as_json: Json = False,
) -> None:
    """Restore drill (灾备演练): restore a backup into scratch, check every file and table, record it.

    Exit code 1 when the drill fails (every problem is named).
    """
    from govlake.backup import run_drill

    with command("drill", as_json=as_json, known=OS_ERRORS) as ctx:
        with Activity(ctx, "restore drill"):
            r = run_drill(ctx.settings, source=source, backup_id=backup_id, scratch=scratch, keep=keep)
        m = r.manifest
        if ctx.json:
            doc = {"drill_id": r.drill_id, "passed": r.passed, "backup_dir": r.backup_dir,
                   "backup_id": m.backup_id if m else None, "cut": m.cut if m else None, "tables": r.tables,
                   "rows": r.rows, "files": r.files, "bytes": r.bytes, "seconds": round(r.seconds, 1),
                   "problems": r.problems, "scratch": r.scratch}
            ctx.emit(doc if r.passed else dict(doc, error=f"drill {r.drill_id} failed", exit_code=ERROR))
        what = f"backup {m.backup_id} (cut {m.cut})" if m else str(r.backup_dir)
        counts = (f"{r.tables} tables, {r.rows:,} rows, {r.files} files ({_size(r.bytes)}) restored and checked "
                  f"in {r.seconds:.1f}s")
        if r.scratch:
            _say(ctx, f"scratch lake kept at {r.scratch}")
        if r.passed:
            _say(ctx, f"drill {r.drill_id} of {what}: passed — {counts}; recorded in meta/drills")
            return
        _say(ctx, f"drill {r.drill_id} of {what}: FAILED — {counts}; recorded in meta/drills", error=True)
        for problem in r.problems:
            _say(ctx, f"  {problem}", error=True)
        raise typer.Exit(ERROR)


@app.command()
def vacuum(
    retain_hours: Annotated[int, typer.Option(help="Keep every file a version of the last H hours needs.")] = 168,
    force: Annotated[bool, typer.Option(help="Allow --retain-hours below the safe minimum (24).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be deleted.")] = False,
    compact: Annotated[bool, typer.Option(help="Also compact the meta tables' small files, checkpoint every table "
                                               "and drop old log entries of gold and meta.")] = False,
    as_json: Json = False,
) -> None:
    """Delete files no version inside the retention window needs (open intents' versions are kept)."""
    from govlake.backup import vacuum as run_vacuum

    with command("vacuum", as_json=as_json, known=OS_ERRORS) as ctx:
        with Activity(ctx, "vacuum"):
            r = run_vacuum(ctx.settings, retain_hours=retain_hours, force=force, dry_run=dry_run, compact=compact)
        if ctx.json:
            ctx.emit(dict(dataclasses.asdict(r), files=r.files, bytes=r.bytes))
            return
        verb = "would remove" if r.dry_run else "removed"
        for name, (files, size) in sorted(r.removed.items()):
            _say(ctx, f"{name}: {verb} {files} files ({_size(size)})")
        for name, (removed, added) in sorted(r.compacted.items()):
            _say(ctx, f"{name}: compacted {removed} files into {added}")
        for name, versions in sorted(r.kept_pinned.items()):
            _say(ctx, f"{name}: kept versions {', '.join(map(str, versions))} (an interrupted step reads them)")
        for note in r.notes:
            _say(ctx, f"note: {note}")
        _say(ctx, f"vacuum (retain {r.retain_hours} h): {verb} {r.files} files ({_size(r.bytes)}) in {r.seconds:.1f}s")
