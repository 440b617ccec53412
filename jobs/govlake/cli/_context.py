"""The run context: what one ``govlake`` invocation runs with, built once and passed to every helper."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import typer
from rich.console import Console

from govlake._literal import literal
from govlake.config import Settings

Output = Literal["terminal", "json"]


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """Settings, run id, business date and output mode of one invocation.

    ``settings.as_of`` is pinned to ``as_of``: every step of the invocation judges "the future"
    against the same day, even across midnight.
    """

    settings: Settings
    run_id: str
    as_of: dt.date
    output: Output = "terminal"
    out: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))

    @property
    def json(self) -> bool:
        """Machine-readable output: one JSON document on stdout, nothing else there."""
        return self.output == "json"

    @property
    def interactive(self) -> bool:
        """Progress may be drawn: stderr is a terminal (not CI, a pipe or a log file)."""
        return self.err.is_terminal and not self.err.is_dumb_terminal

    def emit(self, data: Any) -> None:
        """``data`` as JSON on stdout (dates and paths as text, Chinese as is)."""
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))

    def say(self, *parts: Any, error: bool = False, style: str = "", wrap: bool = False) -> None:
        """One line of output, as data (``literal``): on stdout (not in JSON mode, where the document
        holds it), or with ``error`` on stderr (in both modes: errors and warnings are said alike).

        Paths and messages stay whole; ``wrap`` folds the line at the console's width.
        """
        if error or not self.json:
            (self.err if error else self.out).print(literal(*parts, style=style), soft_wrap=not wrap)

    def show(self, renderable: Any) -> None:
        """A table or tree in terminal mode (its cells built with ``literal``); nothing in JSON mode."""
        if not self.json:
            self.out.print(renderable)
