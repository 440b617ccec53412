"""Settings: where govlake keeps its outputs and which engine runs the SQL models.

One place chooses the resources (STYLE.md §4): every job asks ``get_settings()``; nothing
else reads environment variables. ``GOVLAKE_VAR`` moves every output; ``GOVLAKE_ENGINE``
selects ``duckdb`` (default, one machine) or ``spark`` (delta-spark at scale).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parents[2]

Engine = Literal["duckdb", "spark"]


@dataclass(frozen=True)
class Settings:
    """Resolved locations and choices for one govlake process."""

    var: Path
    engine: Engine = "duckdb"
    catalog_dir: Path = field(default=REPO_ROOT / "catalog")
    sql_dir: Path = field(default=REPO_ROOT / "sql")
    expectations_dir: Path = field(default=REPO_ROOT / "expectations")
    # Department-side inputs of the demo city (files and the registry database).
    as_of: dt.date | None = None
    """The run's business date (dates after it are 'in the future'); default: today."""
    duckdb_memory_limit: str = "4GB"
    """DuckDB spills to var/work beyond this, so memory stays flat as inputs grow."""
    inbox: Path | None = None
    source_db_url: str | None = None
    lineage_url: str | None = None
    """Marquez-compatible OpenLineage API (events POSTed to <url>/api/v1/lineage as well as written
    to var/lineage/govlake.jsonl); None: the file only."""

    @property
    def today(self) -> dt.date:
        return self.as_of or dt.date.today()

    @property
    def lake(self) -> Path:
        return self.var / "lake"

    def layer(self, name: str) -> Path:
        """Folder of one lake layer: bronze, silver, gold, quarantine or meta."""
        return self.lake / name

    def table_path(self, layer: str, name: str) -> Path:
        return self.layer(layer) / name

    @property
    def extracts(self) -> Path:
        return self.var / "extracts"

    @property
    def reports(self) -> Path:
        return self.var / "reports"

    @property
    def work(self) -> Path:
        """Scratch space (DuckDB working database, spill files); safe to delete."""
        return self.var / "work"

    @property
    def city(self) -> Path:
        """Where ``govlake generate`` writes the departments' exports by default."""
        return self.inbox or self.var / "city"

    @property
    def db_url(self) -> str:
        """The department registry database (SQLAlchemy URL)."""
        return self.source_db_url or f"sqlite:///{self.city / 'amr_registry.sqlite'}"


def get_settings() -> Settings:
    """Settings from the environment: GOVLAKE_VAR, GOVLAKE_ENGINE, GOVLAKE_INBOX, GOVLAKE_SOURCE_DB_URL,
    GOVLAKE_DUCKDB_MEMORY, GOVLAKE_LINEAGE_URL,
    GOVLAKE_AS_OF (YYYY-MM-DD)."""
    var = Path(os.environ.get("GOVLAKE_VAR", REPO_ROOT / "var")).resolve()
    engine = os.environ.get("GOVLAKE_ENGINE", "duckdb")
    if engine not in ("duckdb", "spark"):
        raise ValueError(f"GOVLAKE_ENGINE must be duckdb or spark, not {engine!r}")
    inbox = os.environ.get("GOVLAKE_INBOX")
    return Settings(
        var=var,
        engine=engine,  # type: ignore[arg-type]
        inbox=Path(inbox).resolve() if inbox else None,
        source_db_url=os.environ.get("GOVLAKE_SOURCE_DB_URL") or None,
        lineage_url=os.environ.get("GOVLAKE_LINEAGE_URL") or None,
        duckdb_memory_limit=os.environ.get("GOVLAKE_DUCKDB_MEMORY", "4GB"),
        as_of=dt.date.fromisoformat(os.environ["GOVLAKE_AS_OF"]) if os.environ.get("GOVLAKE_AS_OF") else None,
    )
