"""Theme libraries (主题库): ``gold/theme/<table>``, declared in ``catalog/themes.yml``.

A theme library is a catalog entry — title, owner department, the inputs it may read (catalog
resources, i.e. their silver tables, and gold tables) — plus its SQL models. Two kinds:

- built by a step of its own: the credit theme (信用主题库: the 双公示 records and publications, the
  repair reviews and 一企一档 credit profiles), whose lifecycles, deadlines and publicity periods need
  more than a model (govlake.credit); its entry lists the tables that step writes;
- built from its models alone: each ``sql/theme/<table>.sql`` (or ``.sql.j2``, with a yml beside it
  like every published model) becomes ``gold/theme/<table>``. The themes step (:func:`build_themes`,
  after the credit step in ``govlake run`` and in the ``publish_credit`` DAG) runs them in the order
  the file lists them, each on the engine's session, under the ``publish`` lock, and overwrites the
  table: a new theme library is a catalog entry plus SQL models, no Python.

A model reads views named like every model's: ``silver_<slug>`` for a resource, ``gold_<table>`` for a
gold table; its ``-- inputs:`` line may name only what its theme declares (checked by
:func:`load_themes`, with file and line) and only gold tables built before it (the base libraries,
the credit theme, an earlier theme's tables).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from govlake import lineage, locks, steps
from govlake.catalog import Catalog, CatalogError, get_catalog
from govlake.catalog._loader import _parse
from govlake.catalog._yaml import read_yaml
from govlake.compute import open_compute
from govlake.config import Settings
from govlake.engine import get_engine
from govlake.layout import BASE_TABLES, GOLD_LOGS, gold_path
from govlake.silver import register_silver
from govlake.transform import ModelError, ModelRunner

THEMES_FILE = "themes.yml"
MODELS = "theme"
"""Folder of the theme models under sql/."""
_Strict = ConfigDict(extra="forbid", frozen=True)
_GOLD_INPUT = re.compile(r"^gold/([a-z][a-z0-9_]*)$")


class ThemeTitle(BaseModel):
    model_config = _Strict
    zh: str
    en: str


class Theme(BaseModel):
    """One theme library of ``themes.yml``."""

    model_config = _Strict
    title: ThemeTitle
    owner: str
    inputs: list[str] = Field(min_length=1)
    """Catalog resource codes (their silver tables) and ``gold/<table>``."""
    models: list[str] = Field(default_factory=list)
    """Its models, ``sql/theme/<table>.sql[.j2]``, each written to ``gold/theme/<table>``, in this order."""
    step: Literal["credit"] | None = None
    """The step that builds it instead of models (its tables are listed in ``tables``)."""
    tables: list[str] = Field(default_factory=list)


class ThemesFile(BaseModel):
    model_config = _Strict
    themes: dict[str, Theme] = Field(default_factory=dict)


@dataclass(frozen=True)
class ThemeLibrary:
    """A checked theme: its id, entry, and tables (in build order)."""

    id: str
    theme: Theme
    tables: tuple[str, ...]

    @property
    def built_by_models(self) -> bool:
        return self.theme.step is None


def _view(name: str, catalog: Catalog) -> str:
    """The view a model reads an input as: ``silver_<slug>`` or ``gold_<table>``."""
    found = _GOLD_INPUT.match(name)
    return f"gold_{found[1]}" if found else f"silver_{catalog.resource(name).slug}"


def load_themes(settings: Settings, catalog: Catalog | None = None) -> list[ThemeLibrary]:
    """``<catalog>/themes.yml``, checked against the catalog, the credit step and the models; CatalogError
    listing ``file:line:col: problem`` otherwise. A missing file declares no theme."""
    from govlake.credit._build import INPUTS as CREDIT_INPUTS
    from govlake.credit._build import OUTPUTS as CREDIT_OUTPUTS

    path = Path(settings.catalog_dir) / THEMES_FILE
    doc = read_yaml(path, required=False)
    if doc.problems:
        raise CatalogError(doc.problems)
    if doc.data is None:
        return []
    problems: list[str] = []
    parsed = _parse(ThemesFile, doc.data, path, doc, (), problems)
    if parsed is None:
        raise CatalogError(problems)
    catalog = catalog or get_catalog(settings.catalog_dir)
    runner = ModelRunner(settings.sql_dir)
    credit_tables = tuple(t for t in CREDIT_OUTPUTS if t not in GOLD_LOGS)
    built = set(BASE_TABLES)  # gold tables a theme may read: those built before it
    out: list[ThemeLibrary] = []
    for theme_id, theme in parsed.themes.items():
        at = ("themes", theme_id)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", theme_id):
            doc.problem(at, f"theme id {theme_id!r}: lower-case letters, digits and _", key=True)
        if theme.owner not in catalog.departments:
            doc.problem((*at, "owner"), f"unknown department {theme.owner!r} (departments.yml)")
        if theme.step == "credit":
            tables = credit_tables
            if list(theme.tables) != list(credit_tables):
                doc.problem((*at, "tables"), f"the credit step writes {', '.join(credit_tables)}")
            if theme.models:
                doc.problem((*at, "models"), "a theme built by a step has no models of its own")
            reads = {*CREDIT_INPUTS, "gold/legal_entity"}
            if set(theme.inputs) != reads:
                doc.problem((*at, "inputs"), f"the credit step reads {', '.join(sorted(reads))}")
        else:
            tables = tuple(theme.models)
            if theme.tables:
                doc.problem((*at, "tables"), "a theme built from models: its tables are its models")
            if not theme.models:
                doc.problem(at, "a theme needs models (sql/theme/<table>.sql) or a step")
        for i, name in enumerate(theme.inputs):
            gold = _GOLD_INPUT.match(name)
            if gold and gold[1] not in built and gold[1] not in tables:
                doc.problem((*at, "inputs", i), f"{name} is not a gold table built before this theme (built before "
                                                f"it: {', '.join(sorted(built))})")
            elif not gold and name not in catalog.resources:
                doc.problem((*at, "inputs", i), f"{name!r} is neither a catalog resource nor gold/<table>")
        allowed = {_view(n, catalog) for n in theme.inputs
                   if (_GOLD_INPUT.match(n) or n in catalog.resources)}
        for i, model in enumerate(theme.models):
            where = (*at, "models", i)
            if model in BASE_TABLES or model in GOLD_LOGS or model in built:
                doc.problem(where, f"gold table {model!r} exists already: a theme table needs a name of its own")
                continue
            try:
                rendered = runner.render(f"{MODELS}/{model}")
            except ModelError as exc:
                doc.problem(where, str(exc))
                continue
            earlier = {f"gold_{t}" for t in theme.models[:i]}  # the theme's own tables built before this one
            if stray := [v for v in rendered.inputs if v not in allowed | earlier]:
                doc.problem(where, f"sql/{MODELS}/{model} reads {', '.join(stray)}, which theme {theme_id} does "
                                   f"not declare in its inputs")
            built.add(model)
        built.update(tables)
        out.append(ThemeLibrary(theme_id, theme, tables))
    if doc.problems:
        raise CatalogError(doc.sorted_problems())
    return out


def theme_tables(settings: Settings) -> list[str]:
    """The tables the themes step writes (every model-built theme's, in build order)."""
    return [t for lib in load_themes(settings) if lib.built_by_models for t in lib.tables]


def _gold_inputs(libraries: list[ThemeLibrary]) -> list[str]:
    """The gold tables the themes step reads from the lake: its themes' gold inputs but the tables the step
    builds itself (a theme may read an earlier theme's table: it reads this run's rows)."""
    built = {t for lib in libraries if lib.built_by_models for t in lib.tables}
    return list(dict.fromkeys(gold_path(m[1]) for lib in libraries if lib.built_by_models
                              for n in lib.theme.inputs if (m := _GOLD_INPUT.match(n)) and m[1] not in built))


def build_themes(*, settings: Settings, run_id: str) -> dict[str, int]:
    """Run every model-built theme's models and overwrite their ``gold/theme/`` tables; rows per table.

    Re-runnable like the gold step (the same inputs give the same rows; an interrupted run is superseded
    by the next), under the ``publish`` lock; the gold tables read are pinned at the versions the run
    started with. Raises CatalogError for a bad themes.yml, ModelError when a model fails its key tests
    (nothing of that table is written then).
    """
    catalog = get_catalog(settings.catalog_dir)
    libraries = [lib for lib in load_themes(settings, catalog) if lib.built_by_models]
    return steps.run(settings, "themes", lock=locks.PUBLISH, run_id=run_id, params=dict,
                     reads=lambda _: _gold_inputs(libraries),
                     body=lambda intent: _build(intent, catalog, libraries), replay=False)


def _build(intent: steps.Intent, catalog: Catalog, libraries: list[ThemeLibrary]) -> dict[str, int]:
    settings = intent.settings
    rows: dict[str, int] = {}
    if not libraries:
        return rows
    con = open_compute(get_engine(settings))
    try:
        register_silver(con, settings, catalog, intent=None)
        for table in _gold_inputs(libraries):
            name = table.rsplit("/", 1)[1]
            if not intent.register(con, f"gold_{name}", table):
                raise ModelError(f"{table} does not exist yet: run the steps that build it (`govlake run`) first")
        runner = ModelRunner(settings.sql_dir)
        for lib in libraries:
            for model in lib.tables:
                runner.run(con, f"{MODELS}/{model}")
                con.create(f"gold_{model}", f"select * from {model}", kind="view")  # for the models after it
                rows[model] = intent.replace_with(gold_path(model), con, model)
    finally:
        con.close()
    return rows


def lineage_plan(settings: Settings) -> lineage.JobPlan:
    """The themes step: a parent run of one ``themes.<table>`` run per theme table, each reading its
    model's inputs, with column lineage from the SQL."""
    catalog = get_catalog(settings.catalog_dir)
    runner = ModelRunner(settings.sql_dir)
    children, errors = [], []
    for lib in load_themes(settings, catalog):
        if not lib.built_by_models:
            continue
        for model in lib.tables:
            rendered = runner.render(f"{MODELS}/{model}")
            reads = [("silver", v.removeprefix("silver_")) if v.startswith("silver_")
                     else ("gold", v.removeprefix("gold_")) for v in rendered.inputs]
            plan = functools.partial(lineage.table_job_plan, settings, f"themes.{model}", reads=reads,
                                     writes=[("gold", model)], owner=lib.theme.owner,
                                     description=f"Theme library {lib.id} ({lib.theme.title.zh}): "
                                                 f"{rendered.header.grain}")
            try:
                children.append(plan(sql=rendered.sql))
            except Exception as exc:  # noqa: BLE001 — e.g. an input not built yet: table-level lineage then
                errors.append(f"themes.{model}: column lineage: {type(exc).__name__}: {exc}")
                children.append(plan())
    return lineage.JobPlan(name="themes", description="Build the theme libraries declared in catalog/themes.yml "
                           "from their SQL models (gold/theme/); one child run per table", owner="dsj",
                           children=children, errors=errors)
