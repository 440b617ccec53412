"""Quality: rules from the catalog and expectations/, GX validation, silver/quarantine split."""

from govlake.quality._process import ProcessResult, QualityError, process_resource
from govlake.quality._rules import Rule, RuleSet, rules_for

__all__ = ["ProcessResult", "QualityError", "Rule", "RuleSet", "process_resource", "rules_for"]
