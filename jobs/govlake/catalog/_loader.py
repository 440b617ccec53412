"""Load and validate catalog/*.yml, reporting every error at once with its file and line.

``departments.yml`` (a list), ``code_lists.yml`` (a mapping), the optional ``defaults.yml`` and
``resources/<code>.yml`` are read strictly (``_yaml.py``), checked against the models, then against
each other: departments, code lists, copied resources and items that are named must exist, and the
SQL conditions must parse over the resource's columns (``_sql.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from govlake.catalog._models import CodeList, Defaults, Department, Resource
from govlake.catalog._sql import SQL_TYPES, Binder, column_name_problem, condition_problem
from govlake.catalog._yaml import YamlDoc, read_yaml

DEPARTMENTS, CODE_LISTS, DEFAULTS, RESOURCES = "departments.yml", "code_lists.yml", "defaults.yml", "resources"


class CatalogError(ValueError):
    """The catalog is invalid; ``problems`` lists ``file:line: message`` strings.

    ``partial`` is the part of the catalog without problems (None when departments, code lists or
    defaults are broken) and ``left_out`` the resources it lacks, so that checks of other files
    (expectations) can still run on the rest.
    """

    def __init__(self, problems: list[str], *, partial: Catalog | None = None, left_out: frozenset[str] = frozenset()):
        self.problems, self.partial, self.left_out = problems, partial, left_out
        super().__init__("invalid catalog:\n  " + "\n  ".join(problems))


def _read(path: Path) -> tuple[Any, YamlDoc]:
    """The data of one YAML file and its positions; CatalogError when it cannot be read."""
    doc = read_yaml(path)
    if doc.problems:
        raise CatalogError(doc.problems)
    return doc.data, doc


def _parse(model: type[BaseModel], data: Any, path: Path, lines: YamlDoc, prefix: tuple,
           problems: list[str]) -> Any:
    """``model`` from ``data`` (found at ``prefix`` of ``lines``), or None with its problems added."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = (*prefix, *err["loc"])
            where = ".".join(str(p) for p in loc) or "file"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{lines.where(loc, key=err['type'] == 'extra_forbidden')}: {where}: {message}")
        return None


@dataclass(frozen=True)
class Catalog:
    """The whole catalog: departments, code lists, resources and the catalog-wide defaults."""

    departments: dict[str, Department]
    code_lists: dict[str, CodeList]
    resources: dict[str, Resource]
    defaults: Defaults = field(default_factory=Defaults)

    def resource(self, code: str) -> Resource:
        try:
            return self.resources[code]
        except KeyError:
            known = ", ".join(sorted(self.resources))
            raise KeyError(f"unknown resource {code!r}; the catalog has: {known}") from None

    def department(self, code: str) -> Department:
        return self.departments[code]

    def max_quarantine_rate(self, code: str) -> float:
        """The resource's blocking limit from the catalog: its own, else the catalog default."""
        own = self.resource(code).max_quarantine_rate
        return self.defaults.max_quarantine_rate if own is None else own


def _top(doc: YamlDoc, kind: type, what: str, *, empty_ok: bool = True) -> Any:
    """The document's data when its top level is ``kind`` (an empty file: an empty one when
    ``empty_ok``); else a problem and None. None too when the file could not be read."""
    if not doc.readable:
        return None
    if doc.data is None and empty_ok:
        return kind()
    if not isinstance(doc.data, kind):
        found = "an empty file" if doc.data is None else f"a {type(doc.data).__name__}"
        doc.problem((), f"the top level must be {what}, not {found}")
        return None
    return doc.data


def _departments(doc: YamlDoc, data: list) -> dict[str, Department]:
    out: dict[str, Department] = {}
    for i, entry in enumerate(data):
        dep = _parse(Department, entry, doc.path, doc, (i,), doc.problems)
        if dep is None:
            continue
        if dep.code in out:
            doc.problem((i, "code"), f"department {dep.code!r} is listed twice")
        out[dep.code] = dep
    return out


def _code_lists(doc: YamlDoc, data: dict) -> dict[str, CodeList]:
    out: dict[str, CodeList] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            doc.problem((name,), f"{name}: must be a mapping with description, values and synonyms")
            continue
        cl = _parse(CodeList, {**entry, "name": name}, doc.path, doc, (name,), doc.problems)
        if cl is None:
            continue
        for i, value in enumerate(cl.values):
            if cl.values.index(value) != i:
                doc.problem((name, "values", i), f"{name}: value {value!r} is listed twice")
        for synonym, target in cl.synonyms.items():
            if target not in cl.values:
                doc.problem((name, "synonyms", synonym), f"{name}.synonyms: {synonym!r} maps to {target!r}, "
                            "which is not one of the values")
        out[name] = cl
    return out


def _defaults(doc: YamlDoc) -> Defaults:
    data = _top(doc, dict, "a mapping of settings (max_quarantine_rate, alerts)")
    return (_parse(Defaults, data, doc.path, doc, (), doc.problems) if data is not None else None) or Defaults()


@dataclass
class _Names:
    """What exists (even when its entry is invalid: a broken entry is reported once, not at every use)."""

    departments: set[str]
    code_lists: set[str]
    resources: dict[str, Resource]
    broken_resources: set[str]


def _resource_problems(res: Resource, doc: YamlDoc, names: _Names) -> None:
    """Rules across the fields of one resource and towards departments and code lists."""
    columns = {item.column for item in res.items}
    if doc.path.stem != res.code:
        doc.problem(("code",), f"resource {res.code} is in {doc.path.name}; name the file {res.code}.yml")
    for fld in ("provider", "claimed_by"):
        dept = getattr(res, fld)
        if dept and dept not in names.departments:
            doc.problem((fld,), f"{fld}: unknown department {dept!r} (not in {DEPARTMENTS})")
    if res.claimed_on and not res.claimed_by:
        doc.problem(("claimed_on",), "claimed_on needs claimed_by (the department that claimed the entry)")
    if res.mounted_on and not res.claimed_by:
        doc.problem(("mounted_on",), "mounted_on needs claimed_by (only the claiming department mounts)")
    elif res.mounted_on and res.mounted_on < (res.claimed_on or res.published):
        doc.problem(("mounted_on",), f"mounted_on {res.mounted_on} is before the claim "
                                     f"({res.claimed_on or res.published}); a resource is claimed, then mounted")
    if res.share_type != "无条件共享" and not (res.share_condition and res.share_basis):
        doc.problem(("share_type",), f"{res.share_type} needs share_condition and share_basis")
    for i, code in enumerate(res.related):
        if code not in names.resources and code not in names.broken_resources:
            doc.problem(("related", i), f"related: unknown resource {code!r}")
    for i, column in enumerate(res.key):
        if column not in columns:
            doc.problem(("key", i), f"key: {column!r} is not an item of {res.code}")
        elif res.key.index(column) != i:
            doc.problem(("key", i), f"key: {column!r} is listed twice")
    if res.department_from and res.department_from not in columns:
        doc.problem(("department_from",), f"department_from: {res.department_from!r} is not an item of {res.code}")
    if res.source.kind == "db" and res.source.watermark not in columns:
        doc.problem(("source", "watermark"), f"source.watermark: {res.source.watermark!r} is not an item of {res.code}")
    first: dict[str, int] = {}
    for i, item in enumerate(res.items):
        where = ("items", i)
        if item.column in first:
            doc.problem((*where, "column"), f"items.{i}.column: {item.column!r} is declared twice "
                        f"(first at line {doc.line(('items', first[item.column]))})")
        first.setdefault(item.column, i)
        if problem := column_name_problem(item.column):
            doc.problem((*where, "column"), f"items.{i}.column: {problem}")
        if item.authority and item.authority not in names.departments:
            doc.problem((*where, "authority"), f"items.{i}.authority: unknown department {item.authority!r}")
        if item.code_list and item.code_list not in names.code_lists:
            doc.problem((*where, "code_list"), f"items.{i}.code_list: unknown code list {item.code_list!r}")
        if item.pii and item.level == "L1":
            doc.problem((*where, "level"), f"items.{i}: personal data ({item.pii}) cannot be level L1")
        if item.public_when is not None:
            if not item.pii:
                doc.problem((*where, "public_when"), f"items.{i}.public_when: needs pii (the kind of personal data)")
            for column, values in item.public_when.items():
                if column not in columns:
                    doc.problem((*where, "public_when"), f"items.{i}.public_when: {column!r} is not an item of "
                                f"{res.code}")
                if not values or not all(isinstance(v, str) and v.strip() for v in values):
                    doc.problem((*where, "public_when"), f"items.{i}.public_when.{column}: list the values "
                                "(non-empty text) that make the row public")


def _copy_problems(res: Resource, doc: YamlDoc, names: _Names) -> None:
    """``copy_of`` names a single-key resource's item; ``copy_key`` and ``copy_when`` use this resource's columns."""
    columns = {i.column for i in res.items}
    for i, item in enumerate(res.items):
        if not item.copy_of:
            continue

        def bad(fld: str, message: str, i: int = i) -> None:
            doc.problem(("items", i, fld), f"items.{i}.{fld}: {message}")

        code, _, column = item.copy_of.rpartition(".")
        target = names.resources.get(code)
        if code == res.code:
            bad("copy_of", "an item cannot be a copy of its own resource")
        elif target is None:
            if code not in names.broken_resources:
                bad("copy_of", f"unknown resource {code!r}")
        elif column not in {t.column for t in target.items}:
            bad("copy_of", f"{code} has no item {column!r}")
        elif len(target.key) != 1:
            bad("copy_of", f"{code} is not keyed by one entity key ({', '.join(target.key)})")
        if item.copy_key and item.copy_key not in columns:
            bad("copy_key", f"{item.copy_key!r} is not an item of {res.code}")
        if item.copy_when and (problem := condition_problem(item.copy_when, columns)):
            bad("copy_when", problem)


def _bind_problems(res: Resource, doc: YamlDoc) -> None:
    """``copy_when`` conditions that parse must also bind in DuckDB over the typed columns."""
    conditions = [(i, "copy_when", item.copy_when) for i, item in enumerate(res.items) if item.copy_when]
    if not conditions:
        return
    columns = {item.column for item in res.items}
    binder = Binder({item.column: SQL_TYPES.get(item.type, "varchar") for item in res.items})
    try:
        for i, fld, cond in conditions:
            if condition_problem(cond, columns) is None and (problem := binder.problem(cond)):
                doc.problem(("items", i, fld), f"items.{i}.{fld}: {problem}")
    finally:
        binder.close()


def _resource_docs(folder: Path, problems: list[str]) -> list[YamlDoc]:
    if not folder.is_dir():
        problems.append(f"{folder}: missing (the folder of resources/<code>.yml files)")
        return []
    for other in sorted(folder.iterdir()):
        if other.suffix != ".yml" and not other.name.startswith("."):
            problems.append(f"{other}: not read; catalog resources are resources/<code>.yml files")
    return [read_yaml(path) for path in sorted(folder.glob("*.yml"))]


def load_catalog(directory: Path) -> Catalog:
    """Read ``departments.yml``, ``code_lists.yml``, ``defaults.yml`` (optional) and ``resources/*.yml``.

    Raises:
        CatalogError: every problem found, each ``file:line[:col]: message``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogError([f"{directory}: no catalog folder here ({DEPARTMENTS}, {CODE_LISTS}, {RESOURCES}/)"])
    dep_doc, cl_doc = read_yaml(directory / DEPARTMENTS), read_yaml(directory / CODE_LISTS)
    def_doc = read_yaml(directory / DEFAULTS, required=False)
    dep_data = _top(dep_doc, list, "a list of departments ({code, name, name_en, uscc})")
    cl_data = _top(cl_doc, dict, "a mapping of code list name → {description, values, synonyms}")
    departments = _departments(dep_doc, dep_data or [])
    code_lists = _code_lists(cl_doc, cl_data or {})
    defaults = _defaults(def_doc)
    folder_problems: list[str] = []
    res_docs = _resource_docs(directory / RESOURCES, folder_problems)
    # A file that could not be read is reported once, not again at every name it should have held.
    names = _Names(
        departments=_AnyName() if dep_data is None else {e.get("code") for e in dep_data if isinstance(e, dict)},
        code_lists=_AnyName() if cl_data is None else set(cl_data), resources={}, broken_resources=set())
    parsed: list[tuple[Resource, YamlDoc]] = []
    for doc in res_docs:
        data = _top(doc, dict, "a mapping (code, name, …, items)", empty_ok=False)
        res = None if data is None else _parse(Resource, data, doc.path, doc, (), doc.problems)
        if res is None:
            names.broken_resources.add(str((data or {}).get("code", doc.path.stem)))
            continue
        if res.code in names.resources:
            first = next(d for r, d in parsed if r.code == res.code)
            doc.problem(("code",), f"resource {res.code} is declared twice (first in {first.where(('code',))})")
            continue
        names.resources[res.code] = res
        parsed.append((res, doc))
    for res, doc in parsed:
        _resource_problems(res, doc, names)
        _copy_problems(res, doc, names)
        _bind_problems(res, doc)
    problems = [*dep_doc.sorted_problems(), *cl_doc.sorted_problems(), *def_doc.sorted_problems(),
                *folder_problems, *(p for doc in res_docs for p in doc.sorted_problems())]
    if problems:
        sound = {r.code: r for r, doc in parsed if not doc.problems}
        partial = None if dep_doc.problems or cl_doc.problems or def_doc.problems else Catalog(
            departments, code_lists, sound, defaults)
        left_out = frozenset((set(names.resources) | names.broken_resources) - set(sound))
        raise CatalogError(problems, partial=partial, left_out=left_out)
    return Catalog(departments, code_lists, names.resources, defaults)


class _AnyName(set):
    """Stands in for the names of a file that could not be read: its problem is reported once."""

    def __contains__(self, name: object) -> bool:
        return True


@lru_cache(maxsize=8)
def _cached(directory: str) -> Catalog:
    return load_catalog(Path(directory))


def get_catalog(directory: Path | None = None) -> Catalog:
    """The catalog of ``directory`` (default: the configured catalog folder), cached."""
    if directory is None:
        from govlake.config import get_settings

        directory = get_settings().catalog_dir
    return _cached(str(directory))
