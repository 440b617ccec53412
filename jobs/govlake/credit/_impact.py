"""Publicity regimes: their listing, and the records another regime would change (``govlake credit …``).

``regime_listing`` is what ``govlake credit regimes`` prints. ``regime_impact`` re-derives every
record of gold/penalty_record twice with ``sql/gold/penalty_record.sql.j2`` on the business date,
once under the regime its date chooses and once under the regime asked for, over the same silver
repairs, and returns the records whose publication end or status differ, with the rules that differ.
Nothing is written. The subject's name is masked as the extract masks it (unless the row's
行政相对人类别 shows a legal entity); ID numbers are never shown.
"""

from __future__ import annotations

import datetime as dt

from govlake import storage
from govlake.catalog import get_catalog
from govlake.compute import open_compute
from govlake.config import Settings
from govlake.contracts import silver_schema
from govlake.credit._build import PENALTY, _deadlines, context
from govlake.credit._rules import ClassRule, CreditRules, Regime, load_credit_rules
from govlake.engine import get_engine
from govlake.gold import GoldError
from govlake.masking import mask_value, scrub_text
from govlake.silver import register_silver
from govlake.transform import ModelRunner


def _class(regime: Regime, name: str, rule: ClassRule) -> dict:
    return {"class": name, "when": rule.criterion(), "min_months": rule.min_months, "max_months": rule.max_months,
            "published": name not in regime.unpublished(), "source": regime.source(rule)}


def regime_listing(rules: CreditRules) -> list[dict]:
    """Every regime with its dates, classes (what puts a penalty in each, periods, published) and sources."""
    out = []
    regimes = rules.publicity.regimes
    for i, r in enumerate(regimes):
        until = r.until or (regimes[i + 1].effective_from - dt.timedelta(days=1) if i + 1 < len(regimes) else None)
        out.append({"id": r.id, "name": r.name, "document": r.document, "effective_from": r.effective_from,
                    "until": until, "regime_date": rules.publicity.regime_date, "notes": list(r.notes),
                    "classes": [_class(r, name, rule) for name, rule in r.classes.items()]})
    return out


def _rules_that_differ(now: Regime, new: Regime, before: str, after: str) -> list[str]:
    """Why a record changes from class ``before`` under ``now`` to class ``after`` under ``new``."""
    old_rule, new_rule = now.classes.get(before), new.classes.get(after)
    if old_rule is None or new_rule is None:  # a record without a class (no decision date): nothing to say
        return []
    if before != after:
        return [f"class {before} → {after}: {new.id} {after} is {new_rule.criterion()} ({new.source(new_rule)})"]
    differ = []
    for field in ("min_months", "max_months"):
        a, b = getattr(old_rule, field), getattr(new_rule, field)
        if a != b:
            differ.append(f"{after} {field} {a} → {b} ({new.source(new_rule)})")
    if (after in now.unpublished()) != (after in new.unpublished()):
        shown = "not published" if after in new.unpublished() else "published"
        differ.append(f"{after} {shown} under {new.id} ({new.source(new_rule)})")
    return differ


def regime_impact(settings: Settings, regime_id: str, as_of: dt.date) -> list[dict]:
    """The records of gold/penalty_record whose publication end or status would change, judged on
    ``as_of``, if regime ``regime_id`` applied to them instead of the one their date chooses."""
    rules = load_credit_rules(settings.catalog_dir)
    target = rules.publicity.regime(regime_id)
    path = storage.table_path(settings, "gold", PENALTY.record)
    if storage.open_table(path) is None:
        raise GoldError("gold/theme/penalty_record does not exist yet: run the credit step first")
    catalog = get_catalog(settings.catalog_dir)
    columns = ", ".join(silver_schema(catalog.resource(PENALTY.resource)).names)
    key = ", ".join(PENALTY.key)
    runner = ModelRunner(settings.sql_dir)
    con = open_compute(get_engine(settings))
    try:
        register_silver(con, settings, catalog)
        con.register_delta("penalty_record_current", path)
        con.create("penalty_input", f"select {columns} from penalty_record_current")
        _deadlines(con, rules, ("penalty_input",))
        runner.run(con, f"gold/{PENALTY.record}", into="now_penalty_record", **context(rules, as_of))
        runner.run(con, f"gold/{PENALTY.record}", into="alt_penalty_record",
                   **context(rules, as_of, regime=regime_id))
        found = con.rows(f"""
            select n.decision_no, n.authority_uscc, n.uscc, n.subject_name, n.subject_type, n.decision_date,
                   n.regime, n.severity, n.publish_end, n.publicity_status,
                   a.severity, a.publish_end, a.publicity_status
            from now_penalty_record as n join alt_penalty_record as a using ({key})
            where n.publish_end is distinct from a.publish_end
               or n.publicity_status is distinct from a.publicity_status
            order by n.decision_date, n.decision_no, n.authority_uscc""")
    finally:
        con.close()
    subject = next(i for i in catalog.resource(PENALTY.resource).items if i.column == "subject_name")
    out = []
    for (no, authority, uscc, name, subject_type, decided, regime, severity, end, status,
         new_severity, new_end, new_status) in found:
        now = rules.publicity.regime(regime)
        out.append({"decision_no": no, "authority_uscc": authority, "uscc": uscc,
                    "subject": scrub_text(mask_value(subject, name, {"subject_type": subject_type})),
                    "decision_date": decided,
                    "regime": regime, "severity": severity, "publish_end": end, "publicity_status": status,
                    "new_regime": target.id, "new_severity": new_severity, "new_publish_end": new_end,
                    "new_publicity_status": new_status,
                    "rules": _rules_that_differ(now, target, severity, new_severity)})
    return out
