"""The yml beside each published model: what the table is, and unit tests of the model.

``sql/<folder>/<table>.yml`` (one per published table, named after it) holds the table's title in
Chinese and English, the model that builds it, its grain, key and key tests and owner department
(the same as the model's header line: checked here), its sources, one doc per column and unit tests
with given and expected rows. A column whose values come from a catalog item says so
(``from: <resource>.<column>``), so the catalog stays the one place for item names, levels and
personal data; every other column has a Chinese (``zh``) and English (``en``) doc. A publication
that is a projection of a record model (``projection_of``) lists the record's columns it keeps and
takes their docs from the record's yml.

:func:`load_specs` reads the ymls strictly (the catalog's YAML reader: no duplicate keys, anchors or
aliases) and reports every problem at once as ``file:line:col: message`` (:class:`SpecError`).
The unit tests run with :func:`govlake.transform.run_unit_test`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from govlake.catalog import Catalog, YamlDoc, read_yaml
from govlake.transform._models import ModelError, ModelHeader, ModelRunner, model_header, model_inputs

_Strict = ConfigDict(extra="forbid", frozen=True)


class SpecError(ValueError):
    """Model ymls are invalid; ``problems`` lists ``file:line:col: message`` strings."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid model yml:\n  " + "\n  ".join(problems))


class Title(BaseModel):
    model_config = _Strict
    zh: str
    en: str


class ColumnSpec(BaseModel):
    """One column: ``from`` a catalog item (``<resource>.<column>``, with an optional ``note`` added
    to the item's Chinese name), or derived with a Chinese and an English doc."""

    model_config = _Strict
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    source: str | None = Field(default=None, alias="from", pattern=r"^[a-z]+\.[a-z_]+\.[a-z][a-z0-9_]*$")
    note: str | None = None
    zh: str | None = None
    en: str | None = None
    optional: str | None = None
    """Why the column may be missing from the model's output on inputs of the contract shape."""

    @model_validator(mode="after")
    def _one_doc(self) -> ColumnSpec:
        if self.source and (self.zh or self.en):
            raise ValueError("a column is either from a catalog item or has zh and en docs, not both")
        if not self.source and not (self.zh and self.en):
            raise ValueError("a derived column needs zh and en docs (or from: <resource>.<column>)")
        if self.note and not self.source:
            raise ValueError("note adds to a catalog item's name: it needs from")
        return self

    @property
    def item(self) -> tuple[str, str] | None:
        """(resource code, item column) of a column from the catalog, else None."""
        if not self.source:
            return None
        code, column = self.source.rsplit(".", 1)
        return code, column


class InputSpec(BaseModel):
    """The columns of a model input that is neither a silver table nor another model's table."""

    model_config = _Strict
    like: str | None = None
    """A relation whose columns it has, e.g. ``silver_credit_penalty``."""
    columns: dict[str, str] | None = None
    """Column → SQL type."""

    @model_validator(mode="after")
    def _one(self) -> InputSpec:
        if (self.like is None) == (self.columns is None):
            raise ValueError("give either like (a relation) or columns (name: SQL type)")
        return self


class UnitTest(BaseModel):
    """Rows given per input relation, the model's context, and the rows expected."""

    model_config = _Strict
    name: str
    description: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    given: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    expect: list[dict[str, Any]]


class ModelSpec(BaseModel):
    """One ``sql/<folder>/<table>.yml``."""

    model_config = _Strict
    title: Title
    description: str | None = None
    model: str | None = None
    """The model building the table (``gold/legal_entity``); a projection uses its record's."""
    projection_of: str | None = None
    """The published table this one is a projection of (its rows in a state, some of its columns)."""
    written_by: str | None = None
    """Who writes the table from the model's rows when it is not the rows as they are (then the grain
    is the table's own, not the model's)."""
    upstream: list[str] = Field(default_factory=list)
    """Intermediate models the model reads, run before it (by the step and by the unit tests)."""
    grain: str
    key: list[str] = Field(min_length=1)
    key_tests: list[Literal["unique", "not_null"]]
    owner: str
    sources: list[str] = Field(min_length=1)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    columns: list[ColumnSpec | str] = Field(min_length=1)
    unit_tests: list[UnitTest] = Field(default_factory=list)

    @model_validator(mode="after")
    def _model_or_projection(self) -> ModelSpec:
        if (self.model is None) == (self.projection_of is None):
            raise ValueError("give either model (the model building the table) or projection_of (a published table)")
        return self


@dataclass(frozen=True)
class Spec:
    """A loaded yml: the table it documents, its file, its content and its resolved columns."""

    name: str
    path: Path
    spec: ModelSpec
    model: str
    """The model building the table (a projection's: its record's model)."""
    columns: tuple[ColumnSpec, ...]
    """Every column with its doc (a projection's from its record's yml)."""
    lines: YamlDoc

    @property
    def header(self) -> ModelHeader:
        """Grain, key, key tests and owner as the yml states them."""
        s = self.spec
        return ModelHeader(grain=s.grain, key=tuple(s.key), unique="unique" in s.key_tests,
                           not_null="not_null" in s.key_tests, owner=s.owner)

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    def where(self, *loc: str | int) -> str:
        """``file:line:col`` of a value of the yml (of its nearest known parent)."""
        return self.lines.where(tuple(loc))


def _place(part: str | int) -> bool:
    """Whether a part of a pydantic error's location is in the yml: the union's branch (``ColumnSpec``)
    and a validator's tag (``function-after[_one_doc(), ColumnSpec]``) are not."""
    return not (isinstance(part, str) and (part == "ColumnSpec" or part.startswith("function-")))


def _problems_of(exc: ValidationError, doc: YamlDoc) -> list[str]:
    """Pydantic's errors as ``file:line:col: where: message`` (a column is a mapping or, in a
    projection, a name: the mapping's errors are the ones told)."""
    out = []
    for err in exc.errors():
        if "str" in err["loc"][2:3]:
            continue
        loc = tuple(p for p in err["loc"] if _place(p))
        where = ".".join(str(p) for p in loc) or "file"
        message = err["msg"].removeprefix("Value error, ")
        out.append(f"{doc.where(loc, key=err['type'] == 'extra_forbidden')}: {where}: {message}")
    return out


def _read(path: Path, problems: list[str]) -> tuple[ModelSpec, YamlDoc] | None:
    doc = read_yaml(path)
    if doc.problems:
        problems += doc.problems
        return None
    if not isinstance(doc.data, dict):
        problems.append(f"{path}:1: a model yml is a mapping (title, model, grain, key, …)")
        return None
    try:
        return ModelSpec.model_validate(doc.data), doc
    except ValidationError as exc:
        problems += _problems_of(exc, doc)
        return None


def load_specs(sql_dir: Path, *, catalog: Catalog | None = None,
               produced: Mapping[str, list[str]] | None = None) -> dict[str, Spec]:
    """Every ``sql/**/<table>.yml``, checked, by table name.

    Args:
        sql_dir: the models' folder (``sql/``).
        catalog: when given, owners, sources and ``from`` items are checked against it.
        produced: the columns each table has (by table name), when known (the tests run the models
            for it): a documented column it lacks, or a column it has undocumented, is an error.

    Raises:
        SpecError: every problem, as ``file:line:col: message``.
    """
    problems: list[str] = []
    found: dict[str, Path] = {}
    read: dict[str, tuple[Path, ModelSpec, YamlDoc]] = {}
    for path in sorted(sql_dir.rglob("*.yml")):
        name = path.name.removesuffix(".yml")
        if name in found:
            problems.append(f"{path}:1: a second yml for table {name!r} (first: {found[name]})")
            continue
        found[name] = path
        if (loaded := _read(path, problems)) is not None:
            read[name] = (path, *loaded)
    specs = {}
    for name, (path, spec, doc) in read.items():
        record = read.get(spec.projection_of or "")
        model = spec.model or (record[1].model if record else None) or ""
        specs[name] = Spec(name, path, spec, model, _columns(spec, doc, record and record[1], problems), doc)
    checker = _Checker(sql_dir, specs, set(found), catalog, problems)
    for spec in specs.values():
        checker.check(spec, produced.get(spec.name) if produced is not None else None)
    if problems:
        raise SpecError(problems)
    return specs


def _columns(spec: ModelSpec, doc: YamlDoc, record: ModelSpec | None, problems: list[str]) -> tuple[ColumnSpec, ...]:
    """The columns with their docs: a projection's from its record's yml."""
    out = []
    for i, column in enumerate(spec.columns):
        where = f"{doc.where(('columns', i))}: columns.{i}"
        if spec.projection_of is None:
            if isinstance(column, str):
                problems.append(f"{where}: {column!r} needs a doc: {{name, from}} or {{name, zh, en}} "
                                "(only a projection lists bare names)")
            else:
                out.append(column)
        elif not isinstance(column, str):
            problems.append(f"{where}: a projection lists the names of its record's columns; their docs are "
                            f"in {spec.projection_of}.yml")
        elif record is not None:
            found = next((c for c in record.columns if not isinstance(c, str) and c.name == column), None)
            if found is None:
                problems.append(f"{where}: {column!r} is not a column of {spec.projection_of}.yml")
            else:
                out.append(found)
    return tuple(out)


def _templated(line: str) -> bool:
    return "{{" in line or "{%" in line


class _Checker:
    """The checks across files: models and their headers, catalog names, columns and unit tests."""

    def __init__(self, sql_dir: Path, specs: dict[str, Spec], tables: set[str], catalog: Catalog | None,
                 problems: list[str]):
        self.runner = ModelRunner(sql_dir)
        self.specs, self.catalog, self.problems = specs, catalog, problems
        self.tables = tables
        """Every yml's table, loaded or not (an invalid one's problems are reported on its own)."""

    def bad(self, spec: Spec, loc: tuple, message: str) -> None:
        self.problems.append(f"{spec.lines.where(loc)}: {'.'.join(str(p) for p in loc)}: {message}")

    def check(self, spec: Spec, produced: list[str] | None) -> None:
        s = spec.spec
        names = [c.name for c in spec.columns]
        for i, name in enumerate(names):
            if name in names[:i]:
                self.bad(spec, ("columns", i), f"{name!r} is documented twice")
        for i, key in enumerate(s.key):
            if key not in names:
                self.bad(spec, ("key", i), f"{key!r} is not one of the columns")
        if s.projection_of:
            self._projection(spec)
        else:
            self._model(spec)
        self._catalog(spec)
        self._unit_tests(spec, set(names))
        if produced is not None:
            self._produced(spec, produced)

    def _head(self, spec: Spec, model: str, loc: tuple) -> list[str] | None:
        """The first two lines of ``model`` (header and inputs), or None (a problem) when it is missing."""
        try:
            lines = self.runner.path(model).read_text(encoding="utf-8").splitlines()
        except ModelError as exc:
            self.bad(spec, loc, str(exc))
            return None
        return (lines + ["", ""])[:2]

    def _model(self, spec: Spec) -> None:
        s = spec.spec
        heads = [self._head(spec, spec.model, ("model",))]
        heads += [self._head(spec, up, ("upstream", i)) for i, up in enumerate(s.upstream)]
        if heads[0] is not None and not _templated(heads[0][0]):  # a templated one is checked rendered (tests)
            self._header(spec, model_header(heads[0][0]))
        if any(h is None or _templated(h[1]) for h in heads):
            return
        made = {up.rsplit("/", 1)[-1] for up in s.upstream}
        inputs = set().union(*(model_inputs("\n".join(h)) for h in heads if h)) - made
        for name in s.inputs:
            if name not in inputs:
                self.bad(spec, ("inputs", name), f"{name!r} is not an input of {spec.model} or its upstream models")
        for t, test in enumerate(s.unit_tests):
            for name in test.given:
                if name not in inputs:
                    self.bad(spec, ("unit_tests", t, "given", name),
                             f"{name!r} is not an input of {spec.model} or its upstream models")

    def _header(self, spec: Spec, header: ModelHeader) -> None:
        """The yml's grain, key, key tests and owner against the model's header line."""
        s, mine = spec.spec, spec.header
        if s.written_by is None and s.projection_of is None and mine.grain != header.grain:
            self.bad(spec, ("grain",), f"differs from the grain of {spec.model}'s header: {header.grain!r}")
        if mine.key != header.key:
            self.bad(spec, ("key",), f"{list(mine.key)} differs from the key of {spec.model}'s header: "
                     f"{' + '.join(header.key)}")
        tests = [t for t, on in (("unique", header.unique), ("not_null", header.not_null)) if on]
        if sorted(s.key_tests) != sorted(tests):
            self.bad(spec, ("key_tests",), f"{s.key_tests} differ from the key tests of {spec.model}'s header: {tests}")
        if mine.owner != header.owner:
            self.bad(spec, ("owner",), f"{mine.owner!r} differs from the owner of {spec.model}'s header: "
                     f"{header.owner!r}")

    def _projection(self, spec: Spec) -> None:
        s = spec.spec
        record = self.specs.get(s.projection_of or "")
        if record is None and s.projection_of in self.tables:
            return  # the record's yml is invalid: its problems are told
        if record is None or record.spec.projection_of:
            what = "is a projection itself" if record else "has no yml"
            self.bad(spec, ("projection_of",), f"table {s.projection_of!r} {what}")
            return
        if s.upstream or s.inputs or s.unit_tests:
            self.bad(spec, ("projection_of",), "a projection has no upstream, inputs or unit tests of its own "
                     f"(its record model's are in {s.projection_of}.yml)")
        self._header(spec, record.header)

    def _catalog(self, spec: Spec) -> None:
        s = spec.spec
        if self.catalog is None:
            return
        for i, source in enumerate(s.sources):
            if source not in self.tables and source not in self.catalog.resources:
                self.bad(spec, ("sources", i), f"{source!r} is neither a catalog resource nor a published table")
        if s.owner not in self.catalog.departments:
            self.bad(spec, ("owner",), f"{s.owner!r} is not a department of catalog/departments.yml")
        if s.projection_of:
            return
        for i, column in enumerate(spec.columns):
            if (item := column.item) is None:
                continue
            res = self.catalog.resources.get(item[0])
            if res is None:
                self.bad(spec, ("columns", i, "from"), f"unknown catalog resource {item[0]!r}")
            elif not any(it.column == item[1] for it in res.items):
                self.bad(spec, ("columns", i, "from"), f"{item[1]!r} is not an item of {item[0]}")

    def _unit_tests(self, spec: Spec, columns: set[str]) -> None:
        seen: set[str] = set()
        for t, test in enumerate(spec.spec.unit_tests):
            if test.name in seen:
                self.bad(spec, ("unit_tests", t, "name"), f"a second unit test named {test.name!r}")
            seen.add(test.name)
            first = tuple(test.expect[0]) if test.expect else ()
            for r, row in enumerate(test.expect):
                if tuple(row) != first:
                    self.bad(spec, ("unit_tests", t, "expect", r),
                             f"every expected row names the same columns ({', '.join(first)})")
                for column in row:
                    if column not in columns:
                        self.bad(spec, ("unit_tests", t, "expect", r, column),
                                 f"{column!r} is not a column of {spec.name}")

    def _produced(self, spec: Spec, produced: list[str]) -> None:
        """The documented columns against those the table has."""
        for i, column in enumerate(spec.columns):
            if column.name not in produced and not column.optional:
                self.bad(spec, ("columns", i), f"{column.name!r} is not produced by {spec.model}")
        missing = [c for c in produced if spec.column(c) is None]
        if missing:
            self.bad(spec, ("columns",), f"{spec.model} produces undocumented columns: {', '.join(missing)}")
