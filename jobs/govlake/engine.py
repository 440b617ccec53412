"""The engine switch: which engine runs the SQL models, chosen in one place from the settings.

``get_engine(settings)`` hands the steps an :class:`Engine`: its SQL dialect (govlake.transform, the
only place that knows how the engines' SQL differs) and a way to open a session. DuckDB over Arrow
and delta-rs runs everything on one machine (the default). A setting that cannot be honoured — an
engine this installation cannot run — is refused with a clear error (exit code 2 at the command
line), never silently replaced by another.

The extract, the report and the KPIs read Delta with DuckDB whatever the engine (they are small
reads of published tables); only the steps that run models use the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import duckdb

from govlake import storage
from govlake.config import Settings, SettingsError
from govlake.transform import DUCKDB, Dialect

EngineName = Literal["duckdb", "spark"]


@dataclass(frozen=True)
class Engine:
    """One engine: its name, its SQL dialect and its sessions."""

    name: EngineName
    dialect: Dialect
    settings: Settings

    def connect(self, *, database: str | None = None) -> duckdb.DuckDBPyConnection:
        """A session of this engine (DuckDB: a connection spilling to var/work)."""
        return storage.connect(self.settings, database=database)


def get_engine(settings: Settings) -> Engine:
    """The engine ``settings`` choose (GOVLAKE_ENGINE); SettingsError when it cannot run here."""
    if settings.engine == "duckdb":
        return Engine("duckdb", DUCKDB, settings)
    raise SettingsError("GOVLAKE_ENGINE", settings.engine,
                        "the Spark engine is not part of this installation yet; unset GOVLAKE_ENGINE (or set it "
                        "to duckdb) to run on DuckDB")
