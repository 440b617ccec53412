"""Sample-data generator: the demo city's department exports, with recorded defects.

``generate_city(out)`` writes what the departments deliver to the inbox — the market
regulation registry database, the tax bureau's xlsx, HRSS JSON lines, the PSB population
CSV, and the 双公示 CSVs of six departments (GBK or UTF-8 with BOM) — plus
``manifest.json``: files, rows and every injected defect (:class:`DefectKind`), so tests
can check that the pipeline quarantines, standardizes, deduplicates and reports exactly
those rows. The public-credit platform's 信用修复 CSVs refer to generated penalties and the
court's 失信被执行人 JSON lines to registry enterprises; the manifest records each repair's
expected outcome (:class:`RepairOutcome`) and the enterprises currently listed.
"""

from govlake.generate._city import enterprise_rows, generate_city, load_registry
from govlake.generate._context import AS_OF, GENERATED, SHARES, plan_rows
from govlake.generate._defects import (
                                        INVALID_KINDS,
                                        DefectEffect,
                                        DefectKind,
                                        to_full_width,
)
from govlake.generate._manifest import (
                                        RECORDS_LIMIT,
                                        DefectRecord,
                                        Disagreement,
                                        FileInfo,
                                        Manifest,
                                        RepairOutcome,
                                        ResourceInfo,
)
from govlake.generate._repair import OUTCOMES as REPAIR_OUTCOMES

__all__ = [
    "AS_OF", "GENERATED", "INVALID_KINDS", "RECORDS_LIMIT", "REPAIR_OUTCOMES", "SHARES",
    "DefectEffect", "DefectKind", "DefectRecord", "Disagreement", "FileInfo", "Manifest", "RepairOutcome",
    "ResourceInfo",
    "enterprise_rows", "generate_city", "load_registry", "plan_rows", "to_full_width",
]
