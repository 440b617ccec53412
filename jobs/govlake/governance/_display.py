"""What the governance commands print: identifiers and personal values masked (docs/domain.md).

The lake keeps conflicts and objections in clear (it holds the identifiers anyway); whatever leaves
it through the CLI goes through these functions: a 身份证号 entity key as ``370102********123X``,
values by their catalog item's mask (names ``张*``, addresses down to the county), free text
(reasons, actors) with any 身份证号 or mobile number in it masked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from govlake.catalog import Catalog, Item
from govlake.masking import is_released, mask_id_number, mask_value, scrub_text


def mask_entity_key(key_type: str | None, key: str | None) -> str | None:
    """A 身份证号 key masked; a 统一社会信用代码 (an organisation's public code) as it is."""
    return mask_id_number(key) if key_type == "id_number" else key


def _item(catalog: Catalog, resource: str | None, column: str | None) -> Item | None:
    try:
        return catalog.resource(resource).item(column) if resource and column else None
    except KeyError:
        return None


def mask_item_value(item: Item | None, value: str | None) -> str | None:
    """``value`` as the catalog lets it out: masked when personal, ``****`` when not released."""
    if value is None:
        return None
    if item is None:
        return scrub_text(value)
    if not is_released(item):
        return "****"
    return scrub_text(mask_value(item, value))


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return scrub_text(value) if isinstance(value, str) else value


def display_conflict(row: dict, catalog: Catalog) -> dict:
    """A gold/conflicts row as printed: masked key and values, timestamps as ISO text."""
    item = _item(catalog, row["authority_resource"], row["item"])
    out = {k: _text(v) for k, v in row.items()}
    out["entity_key"] = mask_entity_key(row["entity_key_type"], row["entity_key"])
    out["authoritative_value"] = mask_item_value(item, row["authoritative_value"])
    out["other_value"] = mask_item_value(item, row["other_value"])
    return out


def display_objection(objection: Any, catalog: Catalog) -> dict:
    """An objection (or a history row, as a dict) as printed, masked the same way."""
    row = dataclasses.asdict(objection) if dataclasses.is_dataclass(objection) else dict(objection)
    item = _item(catalog, row.get("resource"), row.get("item"))
    out = {k: _text(v) for k, v in row.items()}
    out["entity_key"] = mask_entity_key(row.get("entity_key_type"), row.get("entity_key"))
    for column in ("disputed_value", "corrected_value"):
        out[column] = mask_item_value(item, row.get(column))
    return out


def display_claim(claim: Any) -> dict:
    """A claim's current state (or a history row, as a dict) as printed: times as ISO text, free text
    (who, why) with any 身份证号 or mobile number masked."""
    row = dataclasses.asdict(claim) if dataclasses.is_dataclass(claim) else dict(claim)
    return {k: _text(v) for k, v in row.items()}
