"""Pydantic models of the data resource catalog (政务数据资源目录)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ShareType = Literal["无条件共享", "有条件共享", "不予共享"]
OpenType = Literal["无条件开放", "有条件开放", "不予开放"]
UpdateCycle = Literal["realtime", "daily", "weekly", "monthly", "quarterly", "yearly"]
ResourceKind = Literal["基础", "主题", "部门"]
Level = Literal["L1", "L2", "L3", "L4"]
PiiKind = Literal["id_number", "phone", "person_name", "address", "bank_account", "health"]
ItemType = Literal[
    "string", "date", "timestamp", "decimal", "integer",
    "uscc", "id_number", "region_code", "industry_code", "phone",
]
SourceKind = Literal["csv", "xlsx", "jsonl", "db"]

_Strict = ConfigDict(extra="forbid", frozen=True)


class AlertThresholds(BaseModel):
    """When ``govlake alerts check`` raises an alert (``alerts:`` in ``catalog/defaults.yml``; docs/alerts.md)."""

    model_config = _Strict
    late_after_days: int = Field(default=0, ge=0, le=366)
    """A feed is late this many days after its next delivery was due (per 更新周期)."""
    volume_history: int = Field(default=5, ge=1, le=100)
    """A delivery's volume is judged against the median of this many earlier landed deliveries of its feed."""
    volume_min_history: int = Field(default=3, ge=1, le=100)
    """… when at least this many exist (fewer: not judged)."""
    volume_drop_below: float = Field(default=0.5, gt=0, le=1)
    """A delivery with fewer rows than this share of that median is a volume drop."""
    publicity_late_days: int = Field(default=0, ge=0, le=366)
    """A 双公示 record submitted more than this many days after its deadline is late."""
    publicity_lookback_days: int = Field(default=92, ge=1, le=3660)
    """Late 双公示 records are alerted while their deadline is within this many days of the business date
    (older lapses are history, counted by the 及时率 KPI; their alert is then resolved as cleared)."""

    @model_validator(mode="after")
    def _history(self) -> AlertThresholds:
        if self.volume_min_history > self.volume_history:
            raise ValueError(f"volume_min_history ({self.volume_min_history}) cannot exceed volume_history "
                             f"({self.volume_history}): no delivery would ever be judged")
        return self


class Defaults(BaseModel):
    """Catalog-wide settings (``catalog/defaults.yml``); a resource may override them."""

    model_config = _Strict
    max_quarantine_rate: float = Field(default=0.5, ge=0, le=1)
    """Blocking limit of every resource that sets none: a run with a larger share of its rows
    quarantined publishes nothing."""
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)
    """Thresholds of the alert checks (govlake.alerts)."""


class Department(BaseModel):
    model_config = _Strict
    code: str
    name: str
    name_en: str
    uscc: str


class CodeList(BaseModel):
    """A code list: canonical values, and spellings departments use that map onto them."""

    model_config = _Strict
    name: str
    description: str
    values: list[str]
    synonyms: dict[str, str] = Field(default_factory=dict)
    """Checked by the loader: every synonym maps to one of ``values``."""


class Item(BaseModel):
    """One data item (信息项) of a resource."""

    model_config = _Strict
    column: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    name_en: str
    type: ItemType = "string"
    length: int | None = None
    required: bool = False
    aliases: list[str] = Field(default_factory=list)
    code_list: str | None = None
    multi_value: bool = False
    future_ok: bool = False
    """Dates that may lie in the future (validity ends); others fail the not-future rule."""
    level: Level = "L1"
    pii: PiiKind | None = None
    public_when: dict[str, list[str]] | None = None
    """When a ``pii`` item is NOT personal: row columns and the values (compared after NFKC and
    trimming) that make it public, e.g. ``{subject_type: [法人及非法人组织]}``; every other row is
    masked (default-deny, govlake.masking)."""
    authority: str | None = None
    """Department that is the authoritative source (一数一源); ``None`` means the provider."""
    description: str | None = None
    share_type: ShareType | None = None
    """This item's 共享类型 when it differs from the resource's (e.g. an L4 item 不予共享)."""
    copy_of: str | None = Field(default=None, pattern=r"^[a-z]+\.[a-z_]+\.[a-z][a-z0-9_]*$")
    """``<resource>.<column>`` this item copies under another column (一数一源), e.g. a 法定代表人 that is
    ``psb.population.name``: checked against that resource (its provider decides the value). Unlike
    ``authority`` it says nothing about who decides the item for this resource's own entity (the 法人库)."""
    copy_key: str | None = None
    """With ``copy_of``: this resource's column holding the authority's entity key (e.g. ``id_no``)."""
    copy_when: str | None = None
    """With ``copy_of``: SQL condition on this resource's row under which the item is a copy
    (e.g. ``subject_type = '自然人'``); rows outside it are not compared."""

    @model_validator(mode="after")
    def _copy_fields(self) -> Item:
        if (self.copy_key or self.copy_when) and not self.copy_of:
            raise ValueError("copy_key and copy_when need copy_of")
        if self.copy_of and self.authority:
            raise ValueError("declare either authority (same column) or copy_of, not both")
        return self


class Source(BaseModel):
    """How the department delivers the resource."""

    model_config = _Strict
    kind: SourceKind
    table: str | None = None
    watermark: str | None = None
    lookback: str | None = Field(default=None, pattern=r"^([0-9]+[dhms])+$")
    """db: how far below the high-water mark each read starts again (``1d``, ``2h``, ``1d12h``, ``0s``),
    catching rows committed late; default one day (docs/feeds.md)."""
    pattern: str | None = None
    sheet: str | None = None

    @model_validator(mode="after")
    def _db_needs_table(self) -> Source:
        if self.kind == "db" and not (self.table and self.watermark):
            raise ValueError("a db source needs table and watermark")
        if self.kind != "db" and not self.pattern:
            raise ValueError("a file source needs a pattern (glob under the inbox)")
        return self


class Resource(BaseModel):
    """One catalogued data resource (信息资源).

    Rules across fields and files (key and watermark columns are items, departments and code lists
    exist, SQL conditions parse) are checked by the loader, which knows each value's line.
    """

    model_config = _Strict
    code: str = Field(pattern=r"^[a-z]+\.[a-z_]+$")
    name: str
    name_en: str
    kind: ResourceKind
    category: str
    provider: str
    summary: str = Field(min_length=1)
    format: str
    share_type: ShareType
    share_condition: str | None = None
    share_basis: str | None = None
    share_method: str
    open_type: OpenType
    update_cycle: UpdateCycle
    published: dt.date
    related: list[str] = Field(default_factory=list)
    core_business: bool = False
    grain: str
    key: list[str]
    department_from: str | None = None
    """Item holding the submitting department's 统一社会信用代码 (rows from several departments)."""
    source: Source
    items: list[Item]
    claimed_by: str | None = None
    """Department that claimed (认领) the entry and answers for it; None: not claimed yet."""
    claimed_on: dt.date | None = None
    mounted_on: dt.date | None = None
    """The day the claiming department mounted (挂载) the entry's data (silver/<slug>): with ``claimed_by``,
    the seeded mount that follows the seeded claim (govlake.governance claims); later mounts are steps."""
    max_quarantine_rate: float | None = Field(default=None, ge=0, le=1)
    """Blocking limit on the share of a run's rows quarantined; None: the catalog default
    (``defaults.yml``). ``expectations/<code>.yml`` may set it too (``blocking``)."""

    @property
    def slug(self) -> str:
        """Table-name form of the code: ``credit.penalty`` → ``credit_penalty``."""
        return self.code.replace(".", "_")

    def item(self, column: str) -> Item:
        for it in self.items:
            if it.column == column:
                return it
        raise KeyError(f"{self.code} has no item {column!r}")

    def authority_of(self, item: Item) -> str:
        return item.authority or self.provider

    def share_type_of(self, item: Item) -> str:
        """The item's 共享类型: its own, else the resource's."""
        return item.share_type or self.share_type
