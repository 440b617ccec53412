"""What the credit step reads and writes, for lineage (table level)."""

from __future__ import annotations

from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.credit._build import INPUTS, OUTPUTS
from govlake.lineage import JobPlan, table_job_plan


def lineage_plan(settings: Settings, *, rebuild: bool = False) -> JobPlan:
    """The credit step: its silver inputs and 法人库 → its gold outputs."""
    catalog = get_catalog(settings.catalog_dir)
    reads = [("silver", catalog.resource(code).slug) for code in INPUTS] + [("gold", "legal_entity")]
    return table_job_plan(settings, "credit", reads=reads, writes=[("gold", name) for name in OUTPUTS],
                          owner="credit", overwrite=rebuild,
                          description="双公示 lifecycles and publications, credit repairs, withdrawals and "
                          "一企一档 credit profiles (catalog/credit_rules.yml)")
