"""What depends on what: the one map ``govlake restore --table`` follows (docs/operations.md).

Each step is listed with the tables it reads and writes, as the step's code reads them:

| step | reads | writes |
|---|---|---|
| ``ingest:<code>`` | the department's files | ``bronze/<slug>`` |
| ``process:<code>`` | ``bronze/<slug>`` | ``silver/<slug>``, ``quarantine/<slug>`` |
| ``gold`` | every silver table | the base libraries: ``gold/base/legal_entity``, ``population``, ``person_profile`` |
| ``credit`` | every silver table, ``gold/base/legal_entity`` | the credit theme (``gold/theme/``), the withdrawal log |
| ``themes`` | every silver table, the base and credit tables | the model-built themes' ``gold/theme/`` tables |
| ``conflicts`` | every silver table | ``gold/conflicts`` |
| ``extract`` | the public gold tables and the lifecycle records | ``gold/withdrawal_log``, the extract file |

Restoring a table restores every output of each step that writes it (a step's outputs are
consistent only together), then everything those outputs feed, until nothing is added. A gold
table the map does not know is treated as read from every silver table. Meta tables are shared
history: they are never restored on their own (the restore appends rows that put the affected
steps back instead: see govlake.backup._tables).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from govlake.config import Settings
from govlake.layout import gold_path

EXTRACT = "extracts/analyst.duckdb"
"""The analyst extract, a node of the map like a table."""


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: the consumer name its intents and consumption rows carry."""

    consumer: str
    reads: frozenset[str]
    writes: frozenset[str]


def pipeline_steps(settings: Settings, *, tables: Iterable[str] = ()) -> list[Step]:
    """Every step with what it reads and writes; ``tables`` adds gold tables found on disk."""
    from govlake.catalog import get_catalog
    from govlake.credit import KINDS
    from govlake.credit import OUTPUTS as CREDIT_OUTPUTS
    from govlake.gold import GOLD_TABLES, PUBLIC_TABLES
    from govlake.themes import theme_tables

    catalog = get_catalog(settings.catalog_dir)
    silver = frozenset(f"silver/{r.slug}" for r in catalog.resources.values())
    out = []
    for code, res in catalog.resources.items():
        out.append(Step(f"ingest:{code}", frozenset(), frozenset({f"bronze/{res.slug}"})))
        out.append(Step(f"process:{code}", frozenset({f"bronze/{res.slug}"}),
                        frozenset({f"silver/{res.slug}", f"quarantine/{res.slug}"})))
    out.append(Step("gold", silver, frozenset(gold_path(n) for n in GOLD_TABLES)))
    out.append(Step("credit", silver | {gold_path("legal_entity")}, frozenset(gold_path(n) for n in CREDIT_OUTPUTS)))
    theme_reads = {gold_path(n) for n in (*GOLD_TABLES, *CREDIT_OUTPUTS) if n != "withdrawal_log"}
    out.append(Step("themes", silver | theme_reads, frozenset(gold_path(n) for n in theme_tables(settings))))
    out.append(Step("conflicts", silver, frozenset({"gold/conflicts"})))
    records = {gold_path(k.record) for k in KINDS}
    out.append(Step("extract", frozenset({gold_path(n) for n in PUBLIC_TABLES} | records),
                    frozenset({"gold/withdrawal_log", EXTRACT})))
    known = set().union(*(s.writes for s in out))
    for table in sorted(set(tables) - known):
        if table.startswith("gold/"):
            out.append(Step(f"unknown:{table}", silver, frozenset({table})))
    return out


@dataclass(frozen=True)
class Closure:
    """What restoring some tables takes: the tables (and extract), and the steps whose outputs they are."""

    tables: frozenset[str]
    steps: tuple[Step, ...]

    @property
    def consumers(self) -> list[str]:
        """Consumers (not ingest) whose outputs are restored: their state goes back to the backup's."""
        return [s.consumer for s in self.steps if not s.consumer.startswith(("ingest:", "unknown:"))]


def closure(steps: list[Step], tables: Iterable[str]) -> Closure:
    """``tables``, every other output of the steps writing them, and everything downstream."""
    chosen = set(tables)
    while True:
        grown = set(chosen)
        for step in steps:
            if step.writes & grown and not step.consumer.startswith("ingest:"):
                grown |= step.writes
            if step.reads & grown:
                grown |= step.writes
        if grown == chosen:
            break
        chosen = grown
    return Closure(frozenset(chosen), tuple(s for s in steps if s.writes & chosen
                                            and not s.consumer.startswith("ingest:")))
