"""The data resource catalog: what each department supplies, and who is authoritative for each item.

``search``, ``show`` and ``lineage`` answer ``govlake catalog search|show|lineage`` as plain data
(``BrowseError`` for a name the catalog does not know); they are loaded on first use, as they read
the lake and the lineage events.
"""

from govlake.catalog._loader import Catalog, CatalogError, get_catalog, load_catalog
from govlake.catalog._loader import _parse as parse_document
from govlake.catalog._loader import _read as read_document
from govlake.catalog._models import CodeList, Defaults, Department, Item, ItemType, Resource, Source
from govlake.catalog._sql import REFERENCE_TABLES, SQL_TYPES, Binder, condition_problem
from govlake.catalog._yaml import YamlDoc, read_yaml

_BROWSE = ("BrowseError", "lineage", "search", "show")


def __getattr__(name: str):
    if name in _BROWSE:
        from govlake.catalog import _browse

        return getattr(_browse, name)
    raise AttributeError(f"module 'govlake.catalog' has no attribute {name!r}")


__all__ = [
    "REFERENCE_TABLES", "SQL_TYPES", "Binder", "Catalog", "CatalogError", "CodeList", "Defaults", "Department", "Item",
    "ItemType", "Resource", "Source", "YamlDoc", "condition_problem", "get_catalog", "load_catalog",
    "parse_document", "read_document", "read_yaml", *_BROWSE,
]
