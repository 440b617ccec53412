"""The data resource catalog: what each department supplies, and who is authoritative for each item.

Browsing it over the lake (search, show, lineage) is ``govlake.browse``, a service above the steps.
"""

from govlake.catalog._loader import Catalog, CatalogError, get_catalog, load_catalog
from govlake.catalog._loader import _parse as parse_document
from govlake.catalog._loader import _read as read_document
from govlake.catalog._models import AlertThresholds, CodeList, Defaults, Department, Item, ItemType, Resource, Source
from govlake.catalog._sql import REFERENCE_TABLES, SQL_TYPES, Binder, condition_columns, condition_problem
from govlake.catalog._yaml import YamlDoc, read_yaml

__all__ = [
    "REFERENCE_TABLES", "SQL_TYPES", "AlertThresholds", "Binder", "Catalog", "CatalogError", "CodeList",
    "Defaults", "Department", "Item", "ItemType", "Resource", "Source", "YamlDoc", "condition_columns",
    "condition_problem",
    "get_catalog", "load_catalog", "parse_document", "read_document", "read_yaml",
]
