"""k-anonymity by generalization and suppression, computed in DuckDB.

Each quasi-identifier kind has a ladder of generalizations, finest first (level 0 is what a dataset
publishes at the least: a region at county level, a date as its month, an amount as its band):

- ``region`` (GB/T 2260 code): county (the 6-digit code) → prefecture (``3701`` + ``00``) → province
  (``37`` + ``0000``);
- ``date``: month (``2024-04``) → quarter (``2024-Q2``) → year (``2024``);
- ``amount``: decade band (``[10,100)``) → two-decade band (``[1,100)``) → sign (``0``, ``>0``, ``<0``);
- ``industry`` (GB/T 4754 code): the code (``F5211``) → 大类 (``F52``) → 门类 (``F``);
- ``category`` (a code-list value, or a value the config declares a category): as it is → ``*`` (any:
  a category has no hierarchy, so its one coarser level says nothing of the value).

The search is greedy: starting with every quasi-identifier at level 0, while more rows lie in cells
(combinations of quasi-identifier values) smaller than k than may be suppressed, it takes the one
step up one ladder that leaves the fewest rows in small cells (ties: the first quasi-identifier in
column order). When the allowance is met, each step it no longer needs is taken back, one at a
time (the one leaving the fewest rows in small cells first), so the result is a minimal
generalization: no quasi-identifier could be one rung finer. The rows of the remaining small cells
are then suppressed; when every ladder is at its top and the allowance is not met, the dataset cannot
be published (:class:`Outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from govlake.masking import sql_ident
from govlake.opendata._config import QiKind


def _band(x: str, decades: int) -> str:
    """``[10^n,10^(n+decades))`` with n a multiple of ``decades``; values in (0, 1) are ``(0,1)``."""
    low = f"cast(floor(floor(log10({x})) / {decades}) * {decades} as integer)"
    return (f"case when {x} is null then null when {x} < 0 then '<0' when {x} = 0 then '0' "
            f"when {x} < 1 then '(0,1)' else '[' || cast(cast(power(10, {low}) as hugeint) as varchar) || ',' "
            f"|| cast(cast(power(10, {low} + {decades}) as hugeint) as varchar) || ')' end")


LADDERS: dict[str, tuple[tuple[str, str], ...]] = {
    "region": (("county", "left({x}, 6)"), ("prefecture", "left({x}, 4) || '00'"),
               ("province", "left({x}, 2) || '0000'")),
    "date": (("month", "strftime(cast({x} as date), '%Y-%m')"),
             ("quarter", "strftime(cast({x} as date), '%Y') || '-Q' || cast(quarter(cast({x} as date)) as varchar)"),
             ("year", "strftime(cast({x} as date), '%Y')")),
    "amount": (("band", _band("cast({x} as double)", 1)), ("wide band", _band("cast({x} as double)", 2)),
               ("sign", "case when {x} is null then null when {x} < 0 then '<0' when {x} = 0 then '0' else '>0' end")),
    "industry": (("class", "cast({x} as varchar)"), ("division", "left({x}, 3)"), ("section", "left({x}, 1)")),
    "category": (("value", "cast({x} as varchar)"), ("any", "'*'")),
}
"""Per kind, (level name, SQL template over ``{x}``) from finest to coarsest."""


def generalize_sql(kind: QiKind, level: int, column: str) -> str:
    """SQL for ``column`` generalized to ``level`` of its ladder (null stays null)."""
    template = LADDERS[kind][level][1]
    x = sql_ident(column)
    return f"(case when {x} is null then null else {template.replace('{x}', x)} end)"


def level_name(kind: QiKind, level: int) -> str:
    return LADDERS[kind][level][0]


@dataclass(frozen=True)
class Outcome:
    """Where the search ended: a level per quasi-identifier, and the rows in cells smaller than k there."""

    levels: dict[str, int]
    small_rows: int
    rows: int
    allowed: int
    """Rows that may be suppressed (``floor(max_suppression × rows)``)."""

    @property
    def publishable(self) -> bool:
        return self.small_rows <= self.allowed


def small_rows(con: duckdb.DuckDBPyConnection, view: str, qis: dict[str, QiKind], levels: dict[str, int],
               k: int) -> int:
    """Rows of ``view`` whose combination of generalized quasi-identifiers appears fewer than k times."""
    keys = ", ".join(generalize_sql(kind, levels[c], c) for c, kind in qis.items())
    partition = f"partition by {keys}" if keys else ""
    return con.execute(f"select count(*) from (select count(*) over ({partition}) as n from {view}) "
                       f"where n < {int(k)}").fetchone()[0]


def search(con: duckdb.DuckDBPyConnection, view: str, qis: dict[str, QiKind], *, k: int,
           max_suppression: float) -> Outcome:
    """The greedy search over the ladders (module docstring); ``view`` holds the ungeneralized rows."""
    rows = con.execute(f"select count(*) from {view}").fetchone()[0]
    allowed = int(max_suppression * rows)
    levels = dict.fromkeys(qis, 0)
    small = small_rows(con, view, qis, levels, k)
    while small > allowed:
        tried = {column: small_rows(con, view, qis, levels | {column: levels[column] + 1}, k)
                 for column, kind in qis.items() if levels[column] + 1 < len(LADDERS[kind])}
        if not tried:
            break
        column = min(tried, key=lambda c: tried[c])
        small = tried[column]
        levels[column] += 1
    while small <= allowed:  # then take back each step the allowance does not need (a minimal node)
        finer = {column: small_rows(con, view, qis, levels | {column: levels[column] - 1}, k)
                 for column in qis if levels[column] > 0}
        undo = [c for c, n in finer.items() if n <= allowed]
        if not undo:
            break
        column = min(undo, key=lambda c: finer[c])
        small = finer[column]
        levels[column] -= 1
    return Outcome(levels=levels, small_rows=small, rows=rows, allowed=allowed)
