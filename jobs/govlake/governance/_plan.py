"""Which copies of which data items are checked against their authority (一数一源), from the catalog.

An item whose ``authority`` (catalog) names a department other than the resource's provider is a
*copy*: the department that holds it is not the one that decides its value. The *authoritative
resource* is the resource that department provides, keyed by one entity key (``uscc`` for
amr.enterprise, ``id_number`` for psb.population), that holds an item of the same column. The
copy is matched to it by the copy's item of the same column as that key, else by its only item
of the same type.

An item may also be a copy of another resource's item under another column, declared with
``copy_of: <resource>.<column>`` (the authority is that resource's provider), ``copy_key`` (the
copy's column holding the authority's key, else found as above) and ``copy_when`` (an SQL condition
on the copy's row under which the item is a copy): e.g. a 自然人's ``subject_name`` in credit.penalty
is a copy of ``psb.population.name``, matched on ``id_no``. ``copy_of`` leaves ``authority`` alone, so
the 法人库's attribute authorities (gold's entity plan) do not change.
"""

from __future__ import annotations

from dataclasses import dataclass

from govlake.catalog import Catalog, Item, Resource


class ConflictPlanError(ValueError):
    """The catalog declares an authority that no resource can answer for."""


@dataclass(frozen=True)
class CopyCheck:
    """One copy (resource + item) compared with its authoritative resource."""

    item: Item
    """The copy's item (its ``column`` names the item in both resources unless it has ``copy_of``)."""
    copy: Resource
    copy_key: str
    """Column of ``copy`` holding the entity key."""
    authority: Resource
    authority_key: str
    """The authoritative resource's (single) key column."""
    authority_item: Item
    department: str
    """The authoritative department's code."""
    when: str | None = None
    """SQL condition on the copy's row under which the item is a copy (``copy_when``); None: every row."""

    @property
    def column(self) -> str:
        """The data item: the authority's column (``name`` for a 自然人's ``subject_name``)."""
        return self.authority_item.column

    @property
    def copy_column(self) -> str:
        """The copy's column holding the item."""
        return self.item.column

    @property
    def entity_key_type(self) -> str:
        """``uscc`` or ``id_number`` (the type of the authority's key)."""
        return self.authority.item(self.authority_key).type

    @property
    def record_key(self) -> tuple[str, ...]:
        """The copy's business key without the entity key: what tells its rows apart per entity."""
        return tuple(k for k in self.copy.key if k != self.copy_key)


def _authority_resource(catalog: Catalog, dept: str, column: str) -> Resource | None:
    for res in sorted(catalog.resources.values(), key=lambda r: r.code):
        if res.provider != dept or len(res.key) != 1:
            continue
        if any(i.column == column and res.authority_of(i) == dept for i in res.items):
            return res
    return None


def _copy_key(copy: Resource, authority: Resource) -> str | None:
    key = authority.key[0]
    columns = {i.column: i for i in copy.items}
    if key in columns:
        return key
    same_type = [i.column for i in copy.items if i.type == authority.item(key).type]
    return same_type[0] if len(same_type) == 1 else None


def _declared_copy(catalog: Catalog, res: Resource, item: Item) -> CopyCheck:
    code, _, column = item.copy_of.rpartition(".")
    authority = catalog.resource(code)
    key = item.copy_key or _copy_key(res, authority)
    if key is None:
        raise ConflictPlanError(f"{res.code}.{item.column}: no column to match {code}.{authority.key[0]} on; "
                                "declare copy_key")
    return CopyCheck(item, res, key, authority, authority.key[0], authority.item(column), authority.provider,
                     item.copy_when)


def conflict_plan(catalog: Catalog) -> tuple[CopyCheck, ...]:
    """Every copy the catalog declares, in resource-code then item order.

    Raises ConflictPlanError when a declared authority has no single-key resource holding the item,
    or the copy has no column to match the authority's key on.
    """
    checks = []
    for res in sorted(catalog.resources.values(), key=lambda r: r.code):
        for item in res.items:
            if item.copy_of:
                checks.append(_declared_copy(catalog, res, item))
                continue
            dept = res.authority_of(item)
            if dept == res.provider:
                continue
            authority = _authority_resource(catalog, dept, item.column)
            if authority is None:
                raise ConflictPlanError(
                    f"{res.code}.{item.column}: authority {dept!r} provides no resource keyed by one "
                    f"entity key that holds {item.column!r}")
            key = _copy_key(res, authority)
            if key is None:
                raise ConflictPlanError(
                    f"{res.code}.{item.column}: no column to match {authority.code}.{authority.key[0]} on")
            checks.append(CopyCheck(item, res, key, authority, authority.key[0],
                                    authority.item(item.column), dept))
    return tuple(checks)
