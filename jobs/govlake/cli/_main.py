"""The ``govlake`` app, its exit codes, the run context of each command, error printing and ``main()``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from govlake._literal import literal
from govlake.cli._context import RunContext

OK, ERROR, USAGE, HELD = 0, 1, 2, 3
"""Exit codes: success; an error (data or operation); bad usage or settings; completed with batches held."""
HELD_EXIT = HELD
"""Exit code of a run that published everything else but held a batch (see ``govlake batches``)."""

EXIT_CODES = (f"Exit codes: {OK} success · {ERROR} error (data or operation) · {USAGE} bad usage or settings · "
              f"{HELD} completed with batches held (run; ingest with processing) or datasets withheld (open). "
              "With --json, errors are also "
              'printed on stdout as {"error": …, "exit_code": N}.')

app = typer.Typer(help="govlake: the city big data bureau's lakehouse pipeline.", no_args_is_help=True,
                  pretty_exceptions_enable=False, epilog=EXIT_CODES)

Json = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON on stdout).")]


class CommandError(Exception):
    """A command that cannot go on; the message says why and what to do."""

    exit_code = ERROR


class UsageError(CommandError):
    """Options that do not go together, or a value that cannot be read."""

    exit_code = USAGE


def known_errors() -> tuple[type[Exception], ...]:
    """Errors a command reports as one message (no traceback), exit code 1 (2 for settings)."""
    from govlake.backup import BackupError
    from govlake.catalog import CatalogError
    from govlake.config import SettingsError
    from govlake.governance import ClaimError, ObjectionError
    from govlake.ingest import IngestError
    from govlake.locks import LockBusy
    from govlake.quality import BatchError, QualityError
    from govlake.steps import RecoveryError
    from govlake.transform import ModelError

    return (CommandError, SettingsError, CatalogError, QualityError, KeyError, FileNotFoundError, LockBusy,
            RecoveryError, BatchError, IngestError, BackupError, ObjectionError, ClaimError, ModelError)


def message(exc: BaseException) -> str:
    """The text of ``exc`` (a KeyError's without the quotes repr adds)."""
    return str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)


def describe(exc: BaseException) -> str:
    """The message of a known error; the type and message of any other."""
    return message(exc) if isinstance(exc, known_errors()) else f"{type(exc).__name__}: {message(exc)}"


def exit_code(exc: BaseException) -> int:
    """2 for a bad setting or bad usage, 1 for every other error."""
    from govlake.config import SettingsError

    return USAGE if isinstance(exc, SettingsError) else getattr(exc, "exit_code", ERROR)


def lost_cluster() -> str | None:
    """Why this process's Spark jobs were cancelled, when its cluster's master was lost (govlake.engine's master
    watch): that, not the cancelled job's error, is what a command that failed then says."""
    engine = sys.modules.get("govlake.engine")  # not loaded: no Spark session, nothing lost
    return engine.lost_master() if engine else None


def fail(exc: BaseException, *, json_output: bool = False) -> NoReturn:
    """Print ``error: …`` literally on stderr (and ``{"error", "exit_code"}`` on stdout with --json); exit."""
    code = exit_code(exc)
    text = lost_cluster() or message(exc)
    err = Console(stderr=True)
    first, *rest = text.split("\n")
    err.print(literal(("error: ", "bold red"), first), soft_wrap=True)
    for line in rest:
        err.print(literal(line), soft_wrap=True)
    if json_output:
        typer.echo(json.dumps({"error": text, "exit_code": code}, ensure_ascii=False))
    raise typer.Exit(code)


@contextlib.contextmanager
def command(name: str, *, as_json: bool = False, known: tuple[type[Exception], ...] = ()) -> Iterator[RunContext]:
    """The run context of one invocation of command ``name``; known errors end it with their exit code.

    The settings are read (and checked: a bad one exits 2) once here, with a run id and the business
    date, and the engine they choose (one this installation cannot run exits 2, before anything is
    written); errors in
    ``known_errors`` or ``known`` are printed as one message, not a traceback.
    """
    from govlake.config import SettingsError, get_settings
    from govlake.engine import get_engine
    from govlake.pipeline import new_run_id

    try:
        settings = get_settings()
        get_engine(settings)
    except SettingsError as exc:
        fail(exc, json_output=as_json)
    as_of = settings.today
    ctx = RunContext(settings=dataclasses.replace(settings, as_of=as_of), run_id=new_run_id(name), as_of=as_of,
                     output="json" if as_json else "terminal")
    try:
        yield ctx
    except (*known_errors(), *known) as exc:
        fail(exc, json_output=ctx.json)


def _unexpected(exc: BaseException, *, json_output: bool) -> None:
    """One line for an error no command expected (ID and mobile numbers masked); a full disk says what to do."""
    from govlake.masking import scrub_text

    err = Console(stderr=True)
    text = " ".join(str(exc).split())
    if lost := lost_cluster():
        summary = lost
        err.print(literal(("error: ", "bold red"), summary), soft_wrap=True)
    elif "No space left on device" in text or "os error 28" in text or getattr(exc, "errno", None) == 28:
        summary = ("no space left on device. Free space under GOVLAKE_VAR (var/work holds DuckDB spill files; "
                   "`govlake vacuum` removes old table versions) and run the same command again: a step "
                   "interrupted here is finished by its next run, nothing written twice.")
        err.print(literal(("error: ", "bold red"), summary), soft_wrap=True)
        err.print(literal(f"  ({type(exc).__name__}: {scrub_text(text[:500])})"), soft_wrap=True)
    else:
        summary = f"{type(exc).__name__}: {scrub_text(text[:1000])}"
        err.print(literal(("error: ", "bold red"), summary), soft_wrap=True)
        err.print(literal("  unexpected: run again with GOVLAKE_DEBUG=1 for the traceback and report it; a step "
                          "interrupted here is finished by its next run"), soft_wrap=True)
    if json_output:
        typer.echo(json.dumps({"error": summary, "exit_code": ERROR}, ensure_ascii=False))


def _show_usage_error(exc: typer.TyperException) -> None:
    """A usage error as typer shows it (usage line and a box; for no arguments at all, the help)."""
    from typer import rich_utils

    rich_utils.rich_format_error(exc)  # type: ignore[arg-type]


def main() -> None:
    """The console script: run the app, then leave without interpreter teardown.

    Native thread pools (delta-rs, Arrow, DuckDB) can abort the process at interpreter exit
    ("terminate called without an active exception", exit 134) after all work is done, which would
    turn a success into a failure. Output is flushed, logging shut down, and the exit code passed
    to ``os._exit`` as the command decided it.

    A usage error (an unknown option, a missing argument) exits 2; an error no command expected is
    printed as one line (ID and mobile numbers masked) with exit code 1 — a full disk with what to
    do about it — and its traceback only with GOVLAKE_DEBUG=1. With ``--json`` both are also
    printed on stdout as ``{"error": …, "exit_code": N}``.
    """
    import logging

    json_output = "--json" in sys.argv[1:]
    code = OK
    try:
        returned = app(standalone_mode=False)  # an Exit comes back as its code
        code = returned if isinstance(returned, int) else OK
    except typer.TyperException as exc:  # bad usage: the usage line and what is wrong (exit 2)
        _show_usage_error(exc)
        code = exc.exit_code
        if json_output:
            typer.echo(json.dumps({"error": exc.format_message(), "exit_code": code}, ensure_ascii=False))
    except typer.Abort:
        Console(stderr=True).print("Aborted!", highlight=False)
        code = ERROR
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (OK if exc.code is None else ERROR)
    except BrokenPipeError:  # the reader went away (`govlake status | head`): nothing more to say
        code = ERROR
    except Exception as exc:  # noqa: BLE001 — the last line of defence: one clear line, a true exit code
        if os.environ.get("GOVLAKE_DEBUG"):
            raise
        code = ERROR
        _unexpected(exc, json_output=json_output)
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe must not change the exit code
                stream.flush()
    os._exit(code)
