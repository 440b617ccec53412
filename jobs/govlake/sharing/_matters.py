"""事项清单: government services, their form fields and proof materials, mapped to catalog items.

One xlsx workbook the bureau maintains (format and rules in docs/sharing-inputs.md), sheets
事项, 表单字段, 证明材料 and 电子证照. A field or material is mapped to a catalog data item
(``resource_code.column``) or, for materials, to an e-licence of the 电子证照 sheet, or left empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from govlake.catalog import Catalog
from govlake.sharing._rows import Problems, department_code, parse, read_sheet_rows

SHARED = ("无条件共享", "有条件共享")
ITEM_REF = r"^[a-z]+\.[a-z_]+\.[a-z][a-z0-9_]*$"
"""A catalog data item: ``resource_code.column``, e.g. ``amr.enterprise.uscc``."""
MatterKind = Literal["行政许可", "行政确认", "行政给付", "行政裁决", "行政征收", "公共服务", "其他行政权力"]

MATTER_COLUMNS = {"事项编码": "code", "事项名称": "name", "事项类型": "kind", "实施部门": "department"}
FIELD_COLUMNS = {"事项编码": "matter", "表单名称": "form", "字段名称": "name", "数据项": "item"}
MATERIAL_COLUMNS = {"事项编码": "matter", "材料名称": "name", "数据项": "items", "电子证照": "licence"}
LICENCE_COLUMNS = {"证照编码": "code", "证照名称": "name", "发证部门": "department"}
SHEETS = {"事项": MATTER_COLUMNS, "表单字段": FIELD_COLUMNS, "证明材料": MATERIAL_COLUMNS,
          "电子证照": LICENCE_COLUMNS}

_Strict = ConfigDict(extra="forbid", frozen=True)


class ServiceMatter(BaseModel):
    """One government service (政务服务事项)."""

    model_config = _Strict
    code: str = Field(pattern=r"^\S+$")
    name: str
    kind: MatterKind
    department: str
    """Implementing department (code; the sheet may give the code or the full name)."""


class FormField(BaseModel):
    """One field of a service's application form."""

    model_config = _Strict
    matter: str
    form: str
    name: str
    item: str | None = Field(default=None, pattern=ITEM_REF)
    """The catalog data item that can fill the field, if any."""


class ProofMaterial(BaseModel):
    """One proof material (证明材料) a service requires."""

    model_config = _Strict
    matter: str
    name: str
    items: tuple[str, ...] = ()
    """Catalog data items that replace the material together (``;`` between them in the sheet)."""
    licence: str | None = None
    """The e-licence (证照编码) that replaces the material."""

    @field_validator("items", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(p.strip() for p in re.split(r"[;；、,，\n]", value) if p.strip())
        return value

    @field_validator("items")
    @classmethod
    def _refs(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        bad = [i for i in items if not re.match(ITEM_REF, i)]
        if bad:
            raise ValueError(f"not of the form resource_code.column: {', '.join(bad)}")
        return items


class ELicence(BaseModel):
    """One e-licence type (电子证照) the city's licence library issues."""

    model_config = _Strict
    code: str = Field(pattern=r"^\S+$")
    name: str
    department: str


@dataclass(frozen=True)
class ServiceMatters:
    """A validated 事项清单."""

    path: Path
    matters: dict[str, ServiceMatter]
    fields: tuple[FormField, ...]
    materials: tuple[ProofMaterial, ...]
    licences: dict[str, ELicence]


def item_problem(catalog: Catalog, ref: str) -> str | None:
    """Why ``ref`` (``resource_code.column``) names no catalog item, or None."""
    code, column = ref.rsplit(".", 1)
    if code not in catalog.resources:
        return f"{ref}: unknown resource {code!r}"
    if column not in {i.column for i in catalog.resources[code].items}:
        return f"{ref}: resource {code} has no item {column!r}"
    return None


def item_shared(catalog: Catalog, ref: str) -> bool:
    """Whether the catalog item ``ref`` is shared (无条件 or 有条件共享)."""
    code, column = ref.rsplit(".", 1)
    res = catalog.resource(code)
    return res.share_type_of(res.item(column)) in SHARED


def load_service_matters(path: Path, catalog: Catalog) -> ServiceMatters:
    """Read and check the 事项清单 workbook at ``path`` against ``catalog``.

    Raises:
        SharingInputError: every problem, as ``file:sheet:row: rule: message``.
    """
    import openpyxl

    problems = Problems()
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        matters = _keyed(path, book, "事项", ServiceMatter, "matter", catalog, problems)
        licences = _keyed(path, book, "电子证照", ELicence, "licence", catalog, problems)
        fields = _fields(path, book, catalog, matters, problems)
        materials = _materials(path, book, catalog, matters, licences, problems)
    finally:
        book.close()
    problems.raise_if_any()
    return ServiceMatters(path, matters, tuple(fields), tuple(materials), licences)


def _keyed(path, book, sheet, model, prefix, catalog, problems):
    columns = SHEETS[sheet]
    out: dict = {}
    for where, values in read_sheet_rows(path, book, sheet, columns, problems):
        row = parse(model, where, values, columns, prefix, problems)
        if row is None:
            continue
        if row.code in out:
            problems.add(where, f"{prefix}.unique", f"{row.code} is listed twice")
            continue
        dept = department_code(catalog, row.department)
        if dept is None:  # kept so that rows referring to it are not reported as well; raised at the end
            problems.add(where, f"{prefix}.department_known", f"unknown department {row.department!r}")
        out[row.code] = row.model_copy(update={"department": dept or row.department})
    return out


def _fields(path, book, catalog, matters, problems) -> list[FormField]:
    out, seen = [], set()
    for where, values in read_sheet_rows(path, book, "表单字段", FIELD_COLUMNS, problems):
        row = parse(FormField, where, values, FIELD_COLUMNS, "field", problems)
        if row is None:
            continue
        ok = _matter_known(where, row.matter, matters, "field", problems)
        if row.item and (why := item_problem(catalog, row.item)):
            problems.add(where, "field.item_known", why)
            ok = False
        key = (row.matter, row.form, row.name)
        if key in seen:
            problems.add(where, "field.unique", f"field {row.name} of form {row.form} ({row.matter}) is listed twice")
            ok = False
        seen.add(key)
        if ok:
            out.append(row)
    return out


def _materials(path, book, catalog, matters, licences, problems) -> list[ProofMaterial]:
    out, seen = [], set()
    for where, values in read_sheet_rows(path, book, "证明材料", MATERIAL_COLUMNS, problems):
        row = parse(ProofMaterial, where, values, MATERIAL_COLUMNS, "material", problems)
        if row is None:
            continue
        ok = _matter_known(where, row.matter, matters, "material", problems)
        for ref in row.items:
            if why := item_problem(catalog, ref):
                problems.add(where, "material.item_known", why)
                ok = False
        if row.licence and row.licence not in licences:
            problems.add(where, "material.licence_known", f"e-licence {row.licence!r} is not on the 电子证照 sheet")
            ok = False
        if row.items and row.licence:
            problems.add(where, "material.one_mapping", "give 数据项 or 电子证照, not both")
            ok = False
        if (row.matter, row.name) in seen:
            problems.add(where, "material.unique", f"material {row.name} ({row.matter}) is listed twice")
            ok = False
        seen.add((row.matter, row.name))
        if ok:
            out.append(row)
    return out


def _matter_known(where: str, code: str, matters: dict, prefix: str, problems: Problems) -> bool:
    if code in matters:
        return True
    problems.add(where, f"{prefix}.matter_known", f"事项编码 {code} is not on the 事项 sheet")
    return False
