"""共享申请记录: the sharing-request log the bureau keeps (one CSV; format in docs/sharing-inputs.md)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from govlake.catalog import Catalog
from govlake.sharing._rows import Problems, department_code, parse, read_csv_rows, to_datetime

Outcome = Literal["同意", "驳回", "待答复", "撤回"]
ANSWERED: tuple[str, ...] = ("同意", "驳回")
"""Outcomes that are an answer (and need 答复时间)."""
FULFILLED: tuple[str, ...] = ("同意",)

REQUEST_COLUMNS = {
    "申请编号": "id", "申请部门": "department", "资源代码": "resource", "申请共享类型": "share_type",
    "申请时间": "requested_at", "答复时间": "answered_at", "答复结果": "outcome", "是否有效": "valid",
}
OPTIONAL_COLUMNS = {"共享用途": "purpose", "共享数据项": "items", "共享行政区划": "regions"}
"""What a granted request covers, for the returns (govlake.returns); a log without them is still valid."""


def _split(value: object) -> object:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in re.split(r"[;；、,，\n]", value) if p.strip())
    return value


class ShareRequest(BaseModel):
    """One request by a department for a catalogued resource."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^\S+$")
    department: str
    """Requesting department (code; the log may give the code or the full name)."""
    resource: str = Field(pattern=r"^[a-z]+\.[a-z_]+$")
    share_type: Literal["无条件共享", "有条件共享"]
    requested_at: dt.datetime
    answered_at: dt.datetime | None = None
    outcome: Outcome
    valid: bool
    """False for requests the bureau set aside (duplicates, out of scope): not in any denominator."""
    purpose: str | None = None
    """共享用途: what the data is for; a request without one covers no return."""
    items: tuple[str, ...] = ()
    """共享数据项: the resource's columns granted (``;`` between them); none: the request covers no return."""
    regions: tuple[str, ...] = ()
    """共享行政区划: 6-digit division codes the rows are limited to (a city code covers its districts); none: all."""

    @field_validator("items", "regions", mode="before")
    @classmethod
    def _list(cls, value: object) -> object:
        return _split(value)

    @field_validator("items")
    @classmethod
    def _columns(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        bad = [i for i in items if not re.fullmatch(r"[a-z][a-z0-9_]*", i)]
        if bad:
            raise ValueError(f"not a column name: {', '.join(bad)}")
        return items

    @field_validator("regions")
    @classmethod
    def _divisions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in regions if not re.fullmatch(r"[1-9][0-9]{5}", r)]
        if bad:
            raise ValueError(f"not a 6-digit division code: {', '.join(bad)}")
        return regions

    @field_validator("requested_at", "answered_at", mode="before")
    @classmethod
    def _stamp(cls, value: object) -> object:
        if value is None:
            return None
        stamp = to_datetime(value)
        if not isinstance(stamp, dt.datetime) or stamp.tzinfo is not None:
            raise ValueError("not a date or date and time like 2026-10-09 or 2026-10-09 14:30")
        return stamp

    @field_validator("valid", mode="before")
    @classmethod
    def _yes_no(cls, value: object) -> object:
        if value in ("是", "否"):
            return value == "是"
        if isinstance(value, str):
            raise ValueError("是否有效 must be 是 or 否")
        return value


@dataclass(frozen=True)
class RequestLog:
    path: Path
    requests: tuple[ShareRequest, ...]


def load_requests(path: Path, catalog: Catalog) -> RequestLog:
    """Read and check the request log at ``path`` against ``catalog``.

    Raises:
        SharingInputError: every problem, as ``file:row: rule: message``.
    """
    problems = Problems()
    out: list[ShareRequest] = []
    seen: set[str] = set()
    headers = REQUEST_COLUMNS | OPTIONAL_COLUMNS
    for where, values in read_csv_rows(path, REQUEST_COLUMNS, problems, OPTIONAL_COLUMNS):
        row = parse(ShareRequest, where, values, headers, "request", problems)
        if row is None:
            continue
        if row.id in seen:
            problems.add(where, "request.unique", f"申请编号 {row.id} is listed twice")
        seen.add(row.id)
        dept = department_code(catalog, row.department)
        if dept is None:
            problems.add(where, "request.department_known", f"unknown department {row.department!r}")
        if row.resource not in catalog.resources:
            problems.add(where, "request.resource_known", f"unknown resource {row.resource!r}")
        else:
            columns = {i.column for i in catalog.resources[row.resource].items}
            for item in (i for i in row.items if i not in columns):
                problems.add(where, "request.item_known", f"resource {row.resource} has no item {item!r}")
        if row.outcome in ANSWERED and row.answered_at is None:
            problems.add(where, "request.answer_time", f"答复结果 {row.outcome} needs 答复时间")
        if row.outcome == "待答复" and row.answered_at is not None:
            problems.add(where, "request.answer_time", "答复结果 待答复 cannot have 答复时间")
        if row.answered_at is not None and row.answered_at < row.requested_at:
            problems.add(where, "request.answer_order",
                         f"答复时间 {row.answered_at:%Y-%m-%d %H:%M} is before "
                         f"申请时间 {row.requested_at:%Y-%m-%d %H:%M}")
        out.append(row.model_copy(update={"department": dept or row.department}))
    problems.raise_if_any()
    return RequestLog(path, tuple(out))
