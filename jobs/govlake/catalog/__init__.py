"""The data resource catalog: what each department supplies, and who is authoritative for each item."""

from govlake.catalog._loader import Catalog, CatalogError, get_catalog, load_catalog
from govlake.catalog._models import CodeList, Defaults, Department, Item, Resource, Source
from govlake.catalog._yaml import YamlDoc, read_yaml

__all__ = [
    "Catalog", "CatalogError", "CodeList", "Defaults", "Department", "Item", "Resource", "Source",
    "YamlDoc", "get_catalog", "load_catalog", "read_yaml",
]
