"""Match source headers (CSV/XLSX header cells, JSON keys, database columns) to catalog items."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from govlake.catalog import Item, Resource


def normalise(header: str) -> str:
    """The matching form of a header: NFKC (full-width → half-width), no whitespace, no BOM,
    no ``*`` required-field markers at the ends, case-folded.

    ``罚款金额（万元）`` and `` 罚款金额(万元) `` both become ``罚款金额(万元)``.
    """
    text = unicodedata.normalize("NFKC", header.replace("\ufeff", ""))
    return "".join(text.split()).strip("*").casefold()


class Matcher:
    """Item column for a header; item ``name`` wins over ``column`` over ``aliases``."""

    def __init__(self, resource: Resource):
        self.resource = resource
        self._lookup: dict[str, str] = {}
        for attr in ("name", "column"):
            for item in resource.items:
                self._lookup.setdefault(normalise(getattr(item, attr)), item.column)
        for item in resource.items:
            for alias in item.aliases:
                self._lookup.setdefault(normalise(alias), item.column)

    def column(self, header: str) -> str | None:
        return self._lookup.get(normalise(header))


@dataclass(frozen=True)
class Layout:
    """Where each bronze column comes from in a source with fixed headers."""

    headers: tuple[str, ...]
    columns: dict[str, int]
    """Item column → index of the source field."""
    extras: tuple[tuple[int, str], ...]
    """(index, key in ``_extra``) for the source fields that match no item."""

    def missing_required(self, resource: Resource) -> list[Item]:
        return [i for i in resource.items if i.required and i.column not in self.columns]

    def describe_missing(self, resource: Resource) -> str | None:
        """``missing required columns: 名称 (name), …; header: …`` or None when none are missing.

        The header is quoted only when some cell names an item: a first row naming none is data
        (the header row is missing) and may hold personal values, so it is described, not shown."""
        missing = self.missing_required(resource)
        if not missing:
            return None
        names = ", ".join(f"{i.name} ({i.column})" for i in missing)
        if not self.columns:
            return (f"missing required columns: {names}; none of the first row's {len(self.headers)} cells "
                    "names an item (is the header row missing? the row is not shown: it may be data)")
        return f"missing required columns: {names}; the header is: {', '.join(self.headers)}"


def layout(resource: Resource, headers: Sequence[str], matcher: Matcher | None = None) -> Layout:
    """Map ``headers`` onto ``resource``'s items; a second header for the same item goes to ``_extra``."""
    matcher = matcher or Matcher(resource)
    columns: dict[str, int] = {}
    extras: list[tuple[int, str]] = []
    keys: set[str] = set()
    for index, header in enumerate(headers):
        column = matcher.column(header)
        if column is not None and column not in columns:
            columns[column] = index
            continue
        key = header if header.strip() else f"_col{index + 1}"
        base, n = key, 1
        while key in keys:
            n += 1
            key = f"{base}#{n}"
        keys.add(key)
        extras.append((index, key))
    return Layout(tuple(headers), columns, tuple(extras))
