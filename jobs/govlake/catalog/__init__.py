"""The data resource catalog: what each department supplies, and who is authoritative for each item."""

from govlake.catalog._loader import Catalog, CatalogError, get_catalog, load_catalog
from govlake.catalog._models import CodeList, Defaults, Department, Item, Resource, Source

__all__ = [
    "Catalog", "CatalogError", "CodeList", "Defaults", "Department", "Item", "Resource", "Source",
    "get_catalog", "load_catalog",
]
