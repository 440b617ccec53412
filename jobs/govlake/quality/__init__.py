"""Quality: rules from the catalog and expectations/, GX validation, silver/quarantine split.

The rule pack's Great Expectations classes (``ExpectColumnValuesToBeValidUscc`` …) are exported
here too, imported on first use so that importing govlake.quality does not load GX.
"""

from govlake.quality._batches import Batch, BatchError
from govlake.quality._batches import actor as batch_actor
from govlake.quality._listing import rule_listing, rules_markdown
from govlake.quality._process import (
    HeldBatch,
    ProcessResult,
    QualityError,
    decide_batch,
    gx_validation_page,
    process_resource,
)
from govlake.quality._rules import Rule, RuleSet, check_expectations, rules_for

_EXPECTATIONS = (
    "ExpectColumnPairValuesAToNotBeAfterB", "ExpectColumnValuesToBeMultiValuedInSet",
    "ExpectColumnValuesToBeParseable", "ExpectColumnValuesToBePositiveWhen", "ExpectColumnValuesToBeValidIdNumber",
    "ExpectColumnValuesToBeValidRegionCode", "ExpectColumnValuesToBeValidUscc",
    "ExpectColumnValuesToFullyMatchRegex", "ExpectColumnValuesToHaveKnownIdNumberCounty",
    "ExpectColumnValuesToHaveValidUsccOrganizationCode", "ExpectColumnValuesToNotBeAfterDate",
    "ExpectColumnValuesToNotBeInTheFuture", "ExpectColumnValuesToNotBeNullWhen", "PackExpectation",
)


def __getattr__(name: str):
    if name in _EXPECTATIONS:
        from govlake.quality import _expectations

        return getattr(_expectations, name)
    raise AttributeError(f"module 'govlake.quality' has no attribute {name!r}")


__all__ = ["Batch", "BatchError", "HeldBatch", "ProcessResult", "QualityError", "Rule", "RuleSet", "batch_actor",
           "check_expectations", "decide_batch", "gx_validation_page", "lineage_plan", "process_resource",
           "rule_listing", "rules_for", "rules_markdown", *_EXPECTATIONS]


def lineage_plan(settings, code, *, rebuild=False):
    """What this step reads and writes, for lineage (see govlake.quality._lineage); imported on use."""
    from govlake.quality._lineage import lineage_plan as plan

    return plan(settings, code, rebuild=rebuild)
