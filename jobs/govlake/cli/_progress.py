"""Progress of a long command: a Rich progress display on a terminal, nothing anywhere else.

On a terminal (stderr is one) the display is drawn on stderr and erased when the command ends;
in CI, a pipe or an Airflow log nothing is drawn, so the output is exactly the command's lines.
What is shown comes from the pipeline's callbacks (``on_step`` of ``pipeline.run``, ``on_source``
of ``pipeline.ingest``); the pipeline itself knows nothing about terminals.
"""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from govlake._literal import plain
from govlake.cli._context import RunContext


class Activity:
    """What a long command is doing now: steps or files done, rows landed, time taken.

    Use as a context manager; every method does nothing when the run is not interactive.
    """

    def __init__(self, ctx: RunContext, what: str, *, total: int | None = None, unit: str = ""):
        """``what`` the command does; ``unit`` what it counts (steps, files, resources; none when
        empty), ``total`` how many when known."""
        self._progress: Progress | None = None
        self._what, self._total, self._unit = plain(what), total, unit
        self._task: TaskID | None = None
        self._rows = 0
        if ctx.interactive:
            count = ([MofNCompleteColumn(), TextColumn(unit)] if total else
                     [TextColumn("{task.completed:.0f} " + unit, markup=False)] if unit else [])
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}", markup=False), *count,
                TextColumn("{task.fields[rows]}", markup=False), TimeElapsedColumn(),
                console=ctx.err, transient=True,
                # stdout is drawn above the display only when it goes to the terminal too
                redirect_stdout=ctx.out.is_terminal, redirect_stderr=True)

    def __enter__(self) -> Activity:
        if self._progress is not None:
            self._task = self._progress.add_task(self._what, total=self._total, rows="")
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def doing(self, text: str) -> None:
        """Name what is being done now (a step, a resource, a file)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self._what}: {plain(text)}")

    def done(self, *, count: int = 1, rows: int = 0) -> None:
        """``count`` more steps, resources or files done, with the rows they landed."""
        if self._progress is not None and self._task is not None:
            self._rows += rows
            self._progress.update(self._task, advance=count, rows=f"{self._rows:,} rows" if self._rows else "")

    def on_step(self, step: str, done: bool) -> None:
        """``pipeline.run``'s callback: a step starts or ends."""
        if done:
            self.done()
        else:
            self.doing(step)

    def on_source(self, source: str, result: object | None) -> None:
        """``pipeline.ingest``'s callback: a file (or database window) is read, then landed or not.

        Counted as done when the activity counts files; its landed rows are added either way.
        """
        if result is None:
            self.doing(source)
            return
        landed = getattr(result, "rows", 0) if getattr(result, "status", "") == "landed" else 0
        self.done(count=1 if self._unit == "files" else 0, rows=landed)
