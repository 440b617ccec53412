"""Load and validate catalog/*.yml, reporting every error with its file and line."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from govlake.catalog._models import CodeList, Department, Resource


class CatalogError(ValueError):
    """The catalog is invalid; ``problems`` lists ``file:line: message`` strings."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid catalog:\n  " + "\n  ".join(problems))


def _to_python(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value
            out[key] = _to_python(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n, (*path, i), lines) for i, n in enumerate(node.value)]
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _read(path: Path) -> tuple[Any, dict[tuple, int]]:
    lines: dict[tuple, int] = {}
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise CatalogError([f"{path}:{line}: not valid YAML: {exc}"]) from exc
    if node is None:
        return None, lines
    return _to_python(node, (), lines), lines


def _line(lines: dict[tuple, int], loc: tuple) -> int:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 0


def _parse(model: type[BaseModel], data: Any, path: Path, lines: dict, prefix: tuple,
           problems: list[str]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = (*prefix, *err["loc"])
            where = ".".join(str(p) for p in loc)
            problems.append(f"{path}:{_line(lines, loc)}: {where}: {err['msg']}")
        return None


@dataclass(frozen=True)
class Catalog:
    """The whole catalog: departments, code lists and resources."""

    departments: dict[str, Department]
    code_lists: dict[str, CodeList]
    resources: dict[str, Resource]

    def resource(self, code: str) -> Resource:
        try:
            return self.resources[code]
        except KeyError:
            known = ", ".join(sorted(self.resources))
            raise KeyError(f"unknown resource {code!r}; the catalog has: {known}") from None

    def department(self, code: str) -> Department:
        return self.departments[code]


def load_catalog(directory: Path) -> Catalog:
    """Read ``departments.yml``, ``code_lists.yml`` and ``resources/*.yml`` under ``directory``."""
    problems: list[str] = []
    departments: dict[str, Department] = {}
    code_lists: dict[str, CodeList] = {}
    resources: dict[str, Resource] = {}
    copy_lines: dict[str, tuple[Path, dict]] = {}

    dep_file = directory / "departments.yml"
    data, lines = _read(dep_file)
    for i, entry in enumerate(data or []):
        dep = _parse(Department, entry, dep_file, lines, (i,), problems)
        if dep:
            departments[dep.code] = dep

    cl_file = directory / "code_lists.yml"
    data, lines = _read(cl_file)
    for name, entry in (data or {}).items():
        cl = _parse(CodeList, {"name": name, **entry}, cl_file, lines, (name,), problems)
        if cl:
            code_lists[name] = cl

    for res_file in sorted((directory / "resources").glob("*.yml")):
        data, lines = _read(res_file)
        res = _parse(Resource, data, res_file, lines, (), problems)
        if res is None:
            continue
        if res.code in resources:
            problems.append(f"{res_file}:{_line(lines, ('code',))}: resource {res.code} is declared twice")
        if res.provider not in departments:
            problems.append(f"{res_file}:{_line(lines, ('provider',))}: unknown department {res.provider!r}")
        if res.claimed_by and res.claimed_by not in departments:
            problems.append(f"{res_file}:{_line(lines, ('claimed_by',))}: unknown department {res.claimed_by!r}")
        for i, item in enumerate(res.items):
            if item.authority and item.authority not in departments:
                problems.append(
                    f"{res_file}:{_line(lines, ('items', i, 'authority'))}: "
                    f"items.{i}.authority: unknown department {item.authority!r}")
            if item.code_list and item.code_list not in code_lists:
                problems.append(
                    f"{res_file}:{_line(lines, ('items', i, 'code_list'))}: "
                    f"items.{i}.code_list: unknown code list {item.code_list!r}")
            if item.pii and item.level in ("L1",):
                problems.append(
                    f"{res_file}:{_line(lines, ('items', i, 'level'))}: "
                    f"items.{i}: personal data ({item.pii}) cannot be level L1")
        resources[res.code] = res
        copy_lines[res.code] = (res_file, lines)
    for code, (res_file, lines) in copy_lines.items():
        problems.extend(_copy_problems(resources[code], resources, res_file, lines))
    if problems:
        raise CatalogError(problems)
    return Catalog(departments, code_lists, resources)


def _copy_problems(res: Resource, resources: dict[str, Resource], path: Path, lines: dict) -> list[str]:
    """``copy_of`` names a single-key resource's item; ``copy_key`` and ``copy_when`` use this resource's columns."""
    problems = []
    columns = {i.column for i in res.items}
    for i, item in enumerate(res.items):
        if not item.copy_of:
            continue

        def bad(field: str, message: str, i: int = i) -> None:
            problems.append(f"{path}:{_line(lines, ('items', i, field))}: items.{i}.{field}: {message}")

        code, _, column = item.copy_of.rpartition(".")
        target = resources.get(code)
        if target is None:
            bad("copy_of", f"unknown resource {code!r}")
        elif column not in {t.column for t in target.items}:
            bad("copy_of", f"{code} has no item {column!r}")
        elif len(target.key) != 1:
            bad("copy_of", f"{code} is not keyed by one entity key ({', '.join(target.key)})")
        elif code == res.code:
            bad("copy_of", "an item cannot be a copy of its own resource")
        if item.copy_key and item.copy_key not in columns:
            bad("copy_key", f"{item.copy_key!r} is not an item of {res.code}")
        if item.copy_when:
            used = _condition_columns(item.copy_when)
            unknown = None if used is None else used - columns
            if unknown is None or unknown:
                bad("copy_when", f"not a SQL condition on {res.code}'s columns: {item.copy_when!r}"
                    + (f" (unknown {sorted(unknown)})" if unknown else ""))
    return problems


def _condition_columns(condition: str) -> set[str] | None:
    """Columns a SQL condition refers to, or None when it does not parse."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(condition, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return None
    return {c.name for c in tree.find_all(exp.Column)}


@lru_cache(maxsize=8)
def _cached(directory: str) -> Catalog:
    return load_catalog(Path(directory))


def get_catalog(directory: Path | None = None) -> Catalog:
    """The catalog of ``directory`` (default: the configured catalog folder), cached."""
    if directory is None:
        from govlake.config import get_settings

        directory = get_settings().catalog_dir
    return _cached(str(directory))
