"""One runner for every SQL model under sql/ (staging, silver, gold, credit, governance).

A model is a file ``sql/<folder>/<name>.sql`` or ``.sql.j2`` that starts with two comment lines:

    -- grain: one row per … | key: a + b unique not null | owner: <department>
    -- inputs: view_a, view_b

The runner renders it (one Jinja environment for all models, undefined names are errors), checks its
header, checks that every declared input was provided to the session and that the model reads
nothing it did not declare, runs it on the engine's session (the dialect layer turns the DuckDB
SQL into the engine's), materializes it, and runs its key tests (not null, unique) before anyone
can write it anywhere. Callers provide the inputs as views or tables of the session; they never
hand a model a table it did not ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import jinja2
import sqlglot
from sqlglot import exp

from govlake.transform._cache import on_disk


class ModelError(RuntimeError):
    """A model is malformed, was not given an input it declares, reads one it does not, or fails a key test."""


@dataclass(frozen=True)
class ModelHeader:
    """What a model's first line states: grain, key tests and owner department."""

    grain: str
    key: tuple[str, ...]
    unique: bool
    not_null: bool
    owner: str


_HEADER = re.compile(r"^-- grain: (?P<grain>.+?) \| key: (?P<key>.+?) \| owner: (?P<owner>\S+)\s*$")
_INPUTS = re.compile(r"^-- inputs:(?P<inputs>.*)$")


def model_header(sql: str) -> ModelHeader:
    """Parse ``-- grain: ... | key: a + b unique not null | owner: dept`` from the first line."""
    match = _HEADER.match(sql.splitlines()[0] if sql else "")
    if not match:
        raise ModelError(f"model does not start with a grain | key | owner header: {sql[:80]!r}")
    key = match["key"]
    tests = re.search(r"(\s+unique)?(\s+not null)?$", key)
    columns = key[: tests.start()] if tests else key
    return ModelHeader(grain=match["grain"], key=tuple(c.strip() for c in columns.split("+")),
                       unique=bool(tests and tests.group(1)), not_null=bool(tests and tests.group(2)),
                       owner=match["owner"])


def model_inputs(sql: str) -> tuple[str, ...]:
    """The relations a rendered model declares on its second line (``-- inputs: a, b``)."""
    lines = sql.splitlines()
    match = _INPUTS.match(lines[1]) if len(lines) > 1 else None
    if not match:
        raise ModelError(f"model does not declare its inputs on its second line (-- inputs: a, b): {sql[:80]!r}")
    return tuple(dict.fromkeys(n.strip() for n in match["inputs"].split(",") if n.strip()))


@lru_cache(maxsize=64)
def parsed(sql: str, dialect: str = "duckdb") -> exp.Expression:
    """sqlglot's tree of ``sql``, parsed once per job: a model's SQL is read by the runner's input check, by
    ``tables_read`` and by its column lineage (a gold model takes 10–40 ms to parse, its tree ~1.7 MB).
    Shared: a caller that modifies it works on a ``.copy()``. Emptied when a job ends
    (govlake.compute.release_memory): a tree is cyclic (each node points at its parent), so one kept past the
    job would be frozen there and, once evicted, never collected. What is derived from a tree (the relations
    read, the column lineage) is small and kept for the process."""
    return sqlglot.parse_one(sql, read=dialect)


@lru_cache(maxsize=256)
@on_disk("relations", encode=sorted, decode=frozenset)
def referenced_relations(sql: str) -> frozenset[str]:
    """The tables and views a query reads (its own CTEs left out); kept on disk for the next process
    (govlake.transform._cache)."""
    tree = parsed(sql)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return frozenset(t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes)


@lru_cache(maxsize=256)
@on_disk("columns", encode=sorted, decode=frozenset)
def referenced_columns(sql: str) -> frozenset[str]:
    """The names of the columns a query reads, of any relation (a name its subqueries read counts too), and ``*``
    when it reads every column of one (a star, ``t.*``, ``columns(*)``); kept on disk for the next process
    (govlake.transform._cache)."""
    tree = parsed(sql)
    star = {"*"} if tree.find(exp.Star) else set()
    return frozenset({c.name for c in tree.find_all(exp.Column)} | star)


@dataclass(frozen=True)
class Rendered:
    """A model rendered for one run: its SQL (DuckDB dialect), header and declared inputs."""

    name: str
    sql: str
    header: ModelHeader
    inputs: tuple[str, ...]


def _environment(sql_dir: str, finalize=None) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(sql_dir), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False, finalize=finalize)


@lru_cache(maxsize=8)
def _shared_environment(sql_dir: str) -> jinja2.Environment:
    """The Jinja environment of one ``sql/`` folder, shared by every runner of the process: it compiles a template
    once (a step's runners compiled theirs each, 0.06 s of the gold step's models and as much for its lineage), and
    compiles it again when the file changes (Jinja checks its modification time on every use)."""
    return _environment(sql_dir)


class ModelRunner:
    """Renders and runs the models of one ``sql/`` folder on any engine's session (govlake.compute)."""

    def __init__(self, sql_dir: Path, *, finalize=None):
        """``finalize``: what every ``{{ … }}`` output goes through (infra/lint_models.py marks them); such a runner
        has an environment of its own."""
        self.sql_dir = sql_dir
        self.env = _shared_environment(str(sql_dir)) if finalize is None else _environment(str(sql_dir), finalize)

    def path(self, name: str) -> Path:
        """``sql/<name>.sql.j2``, else ``sql/<name>.sql``."""
        for suffix in (".sql.j2", ".sql"):
            candidate = self.sql_dir / f"{name}{suffix}"
            if candidate.exists():
                return candidate
        raise ModelError(f"no model {name!r} under {self.sql_dir} (expected {name}.sql or {name}.sql.j2)")

    def render(self, name: str, **context) -> Rendered:
        """Render model ``name`` (e.g. ``gold/legal_entity``) with ``context``; check its header."""
        path = self.path(name)
        try:
            sql = self.env.get_template(path.relative_to(self.sql_dir).as_posix()).render(**context)
        except jinja2.UndefinedError as exc:
            raise ModelError(f"{path}: {exc} (the model needs it in its context)") from None
        try:
            return Rendered(name, sql, model_header(sql), model_inputs(sql))
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None

    def header(self, name: str, **context) -> ModelHeader:
        return self.render(name, **context).header

    def run(self, con, name: str, *, into: str | None = None, kind: Literal["table", "view", "file"] = "table",
            temp: bool = True, **context) -> Rendered:
        """Run model ``name`` into table (or view) ``into`` (default: the model's own name) of ``con`` (a
        govlake.compute session, or a DuckDB connection) and run its key tests; the declared inputs must
        be relations of ``con`` and the only ones read. The session's engine runs the model's SQL as the
        dialect layer translates it. ``temp=False``: DuckDB makes a table of the session's database (other
        cursors of it, e.g. GX's, see it)."""
        from govlake.compute import as_compute

        compute = as_compute(con)
        model = self.render(name, **context)
        target = into or name.rsplit("/", 1)[-1]
        self._check_inputs(compute, model)
        compute.create(target, model.sql, kind=kind, shared=not temp)
        if kind != "view":
            check_keys(compute, target, model.header, model=name)
        return model

    def _check_inputs(self, compute, model: Rendered) -> None:
        present = compute.relations()
        missing = [i for i in model.inputs if i not in present]
        if missing:
            raise ModelError(f"model {model.name}: input(s) {', '.join(missing)} were not provided")
        undeclared = sorted(referenced_relations(model.sql) - set(model.inputs))
        if undeclared:
            raise ModelError(f"model {model.name} reads {', '.join(undeclared)} without declaring it "
                             f"(-- inputs: line)")


def check_keys(con, name: str, header: ModelHeader, *, model: str | None = None) -> None:
    """The header's key tests on relation ``name``: no null key, no duplicated key."""
    from govlake.compute import as_compute

    compute = as_compute(con)
    what = model or name
    cols = ", ".join(header.key)
    if header.not_null:
        nulls = compute.one(f"select count(*) from {name} where "
                            + " or ".join(f"{c} is null" for c in header.key))[0]
        if nulls:
            raise ModelError(f"{what}: {nulls} rows with a null key ({cols})")
    if header.unique:
        # the keys grouped by a 64-bit hash first, then the keys of the hashes seen twice compared exactly (a
        # duplicated key always shares its hash): a group-by on the keys themselves, two strings each, ran out
        # of DuckDB's 768 MB at 24.7 million records; on their hashes it took 2.3 s and 842 MiB
        hashed = f"hash({cols})"
        dups = compute.one(f"""select count(*) from (
            select {cols} from {name}
            where {hashed} in (select {hashed} from {name} group by {hashed} having count(*) > 1)
            group by {cols} having count(*) > 1) as duplicated""")[0]
        if dups:
            raise ModelError(f"{what}: {dups} duplicated keys ({cols})")
