"""``catalog/open_data.yml``: which resources are opened, which of their columns, and the k to reach.

The file is read strictly (govlake.catalog's YAML reader) and checked against the catalog with file
and line: a listed column must exist in the dataset's source and be releasable by its classification
(:func:`refusal`); an organisation's code or name must also be listed under ``identifiers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from govlake.catalog import Catalog, CatalogError, Item, get_catalog
from govlake.catalog._loader import _parse
from govlake.catalog._yaml import read_yaml
from govlake.config import Settings

CONFIG_FILE = "open_data.yml"
QiKind = Literal["region", "date", "amount", "industry", "category"]
LINEAGE = ("_source", "_row_number", "_batch_id", "_received_at", "_dept")
"""Lake bookkeeping columns: never opened."""

_Strict = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(BaseModel):
    """One open dataset: a catalog resource, read from silver or from the gold table that publishes it."""

    model_config = _Strict
    resource: str
    source: str = Field(default="silver", pattern=r"^(silver|gold/[a-z][a-z0-9_]*)$")
    """``silver`` (``silver/<slug>``) or ``gold/<table>`` when gold is the published form (the 双公示
    publications, which hold only the records in their publicity period)."""
    approved: str | None = Field(default=None, min_length=1)
    """For a 有条件开放 resource: the approval that meets its condition; without it nothing is opened."""
    columns: list[str] = Field(min_length=1)
    identifiers: list[str] = Field(default_factory=list)
    """Organisation codes and names (type ``uscc``, or an item named …名称) that are public for every row."""
    quasi_identifiers: dict[str, QiKind] = Field(default_factory=dict)
    """Columns to generalize besides those the item types make quasi-identifiers, or another ladder."""
    k: int | None = Field(default=None, ge=2)
    max_suppression: float | None = Field(default=None, ge=0, le=1)


class OpenConfig(BaseModel):
    model_config = _Strict
    k: int = Field(default=5, ge=2)
    """Every combination of quasi-identifier values in a published file appears at least k times."""
    max_suppression: float = Field(default=0.05, ge=0, le=1)
    """Largest share of a dataset's rows that may be suppressed; more withholds the dataset."""
    publisher: str = "dsj"
    """Department code of the catalog's publisher (the datasets' publishers are their providers)."""
    license: str = "https://creativecommons.org/licenses/by/4.0/"
    base_url: str | None = None
    """Address the folder is served from (the JSON-LD ``@base``); default the folder's file:// URI."""
    datasets: list[DatasetSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Column:
    """A source column as the open dataset sees it: its catalog item (None when derived in gold)."""

    name: str
    label: str
    label_en: str
    item: Item | None


def source_columns(settings: Settings, catalog: Catalog, spec: DatasetSpec) -> dict[str, Column]:
    """Every column of the dataset's source with its item: the resource's items for silver, the
    table's documented columns (sql/gold/<table>.yml) for gold."""
    res = catalog.resource(spec.resource)
    if spec.source == "silver":
        return {i.column: Column(i.column, i.name, i.name_en, i) for i in res.items}
    from govlake.gold import PUBLIC_TABLES, table_docs

    table = spec.source.removeprefix("gold/")
    if table not in PUBLIC_TABLES:
        raise ValueError(f"gold/{table} is not a public gold table ({', '.join(PUBLIC_TABLES)})")
    doc = table_docs(settings)[table]
    if spec.resource not in doc.sources:
        raise ValueError(f"gold/{table} is not built from {spec.resource} (its sources: {', '.join(doc.sources)})")
    return {c.name: Column(c.name, c.label, c.label_en, c.item) for c in doc.columns.values()}


def is_identifier(column: Column) -> bool:
    """An organisation's 统一社会信用代码 or name: public only where the config says so."""
    return column.item is not None and (column.item.type == "uscc" or column.item.name.endswith("名称"))


def refusal(column: Column) -> str | None:
    """Why the column can never be opened, by its classification; None when it may be."""
    item = column.item
    if column.name in LINEAGE:
        return "a lake bookkeeping column"
    if item is None:
        return None
    if item.level in ("L3", "L4"):
        return f"level {item.level} (personal or sensitive data)"
    if item.pii or item.type in ("id_number", "phone"):
        return f"personal data ({item.pii or item.type})"
    return None


def default_kind(column: Column) -> QiKind | None:
    """The quasi-identifier ladder an item's type implies: region codes, dates, amounts, categories."""
    item = column.item
    if item is None:
        return None
    if item.type == "region_code":
        return "region"
    if item.type in ("date", "timestamp"):
        return "date"
    if item.type in ("decimal", "integer"):
        return "amount"
    if item.type == "industry_code":
        return "industry"
    if item.code_list:
        return "category"
    return None


def quasi_identifiers(spec: DatasetSpec, columns: dict[str, Column]) -> dict[str, QiKind]:
    """The dataset's quasi-identifiers in column order: the type defaults, then the declared ones."""
    out: dict[str, QiKind] = {}
    for name in spec.columns:
        kind = spec.quasi_identifiers.get(name) or default_kind(columns[name])
        if kind:
            out[name] = kind
    return out


_KIND_TYPES = {"region": ("region_code", "string"), "date": ("date", "timestamp"),
               "amount": ("decimal", "integer"), "industry": ("industry_code", "string")}


def load_config(settings: Settings) -> OpenConfig:
    """``<catalog>/open_data.yml``, checked; CatalogError listing ``file:line:col: problem`` otherwise.
    A missing file opens nothing."""
    path = Path(settings.catalog_dir) / CONFIG_FILE
    doc = read_yaml(path, required=False)
    if doc.problems:
        raise CatalogError(doc.problems)
    if doc.data is None:
        return OpenConfig()
    problems: list[str] = []
    config = _parse(OpenConfig, doc.data, path, doc, (), problems)
    if config is None:
        raise CatalogError(problems)
    catalog = get_catalog(settings.catalog_dir)
    if config.publisher not in catalog.departments:
        doc.problem(("publisher",), f"unknown department {config.publisher!r} (departments.yml)")
    seen: set[str] = set()
    for n, spec in enumerate(config.datasets):
        at = ("datasets", n)
        if spec.resource not in catalog.resources:
            doc.problem((*at, "resource"), f"unknown resource {spec.resource!r}")
            continue
        if spec.resource in seen:
            doc.problem((*at, "resource"), f"{spec.resource} is listed twice")
        seen.add(spec.resource)
        try:
            columns = source_columns(settings, catalog, spec)
        except ValueError as exc:
            doc.problem((*at, "source"), str(exc))
            continue
        for i, name in enumerate(spec.columns):
            if name not in columns:
                doc.problem((*at, "columns", i), f"{spec.source} of {spec.resource} has no column {name!r}")
            elif why := refusal(columns[name]):
                doc.problem((*at, "columns", i), f"{name} ({columns[name].label}) is never opened: {why}")
            elif is_identifier(columns[name]) and name not in spec.identifiers:
                doc.problem((*at, "columns", i), f"{name} ({columns[name].label}) identifies an organisation: "
                                                 "list it under identifiers too if it is public for every row")
        for i, name in enumerate(spec.identifiers):
            if name not in spec.columns:
                doc.problem((*at, "identifiers", i), f"identifier {name!r} is not among the columns")
            elif name in spec.quasi_identifiers:
                doc.problem((*at, "identifiers", i), f"{name} is an identifier, not a quasi-identifier")
        for name, kind in spec.quasi_identifiers.items():
            if name not in spec.columns:
                doc.problem((*at, "quasi_identifiers", name), f"quasi-identifier {name!r} is not among the columns")
                continue
            item = columns[name].item if name in columns else None
            allowed = _KIND_TYPES.get(kind)
            if allowed and item is not None and item.type not in allowed:
                doc.problem((*at, "quasi_identifiers", name),
                            f"{name} is of type {item.type}; the {kind} ladder needs {' or '.join(allowed)}")
    if doc.problems:
        raise CatalogError(doc.sorted_problems())
    return config
