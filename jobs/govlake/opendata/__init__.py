"""Open data (数据开放): de-identified, k-anonymous datasets of the resources the catalog opens.

``publish_open_data`` (``govlake open``) reads ``catalog/open_data.yml`` (which columns of which resources,
k, the suppression allowance), opens what each resource's ``open_type`` allows (无条件开放; 有条件开放 only
with a recorded approval; 不予开放 never), leaves out personal and L3/L4 items by their classification,
generalizes the quasi-identifiers step by step until every combination appears at least k times,
suppresses the rest, and writes CSV, JSON and DCAT (JSON-LD) under var/open/. See docs/open-data.md.
"""

from govlake.opendata._config import CONFIG_FILE, DatasetSpec, OpenConfig, load_config
from govlake.opendata._kanon import LADDERS
from govlake.opendata._publish import (
    CATALOG_FILE,
    META_TABLE,
    Closed,
    DatasetResult,
    OpenResult,
    lineage_plan,
    open_data_runs,
    plan,
    publish_open_data,
)

__all__ = ["CATALOG_FILE", "CONFIG_FILE", "LADDERS", "META_TABLE", "Closed", "DatasetResult", "DatasetSpec",
           "OpenConfig", "OpenResult", "lineage_plan", "load_config", "open_data_runs", "plan", "publish_open_data"]
