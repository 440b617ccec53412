"""The data resource catalog: what each department supplies, and who is authoritative for each item.

``search``, ``show`` and ``lineage`` answer ``govlake catalog search|show|lineage`` as plain data
(``BrowseError`` for a name the catalog does not know); they are loaded on first use, as they read
the lake and the lineage events.
"""

from govlake.catalog._loader import Catalog, CatalogError, get_catalog, load_catalog
from govlake.catalog._models import CodeList, Defaults, Department, Item, Resource, Source

_BROWSE = ("BrowseError", "lineage", "search", "show")


def __getattr__(name: str):
    if name in _BROWSE:
        from govlake.catalog import _browse

        return getattr(_browse, name)
    raise AttributeError(f"module 'govlake.catalog' has no attribute {name!r}")


__all__ = [
    "Catalog", "CatalogError", "CodeList", "Defaults", "Department", "Item", "Resource", "Source",
    "get_catalog", "load_catalog", *_BROWSE,
]
