"""Settings: where govlake keeps its outputs and which engine runs the SQL models.

One place chooses the resources: every job asks ``get_settings()``; nothing else reads
environment variables, and each is validated before use (a ``SettingsError`` names the variable
and its value). ``GOVLAKE_VAR`` moves every output; ``GOVLAKE_ENGINE`` selects ``duckdb``
(default, one machine) or ``spark`` (delta-spark at scale).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

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
    """DuckDB spills to var/work beyond this, so memory stays flat as inputs grow (``4GB``, ``512MiB``,
    or ``80%`` of the machine's memory; see ``memory_bytes``)."""
    inbox: Path | None = None
    source_db_url: str | None = None
    lock_url: str | None = None
    """PostgreSQL URL whose advisory locks coordinate writers on several machines (govlake.locks);
    None: ``flock`` files under var/locks (one machine)."""
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


class SettingsError(ValueError):
    """A setting from the environment is unusable; the message names the variable and its value."""

    def __init__(self, variable: str, value: str, reason: str):
        self.variable, self.value = variable, value
        shown = value if len(value) <= 120 else value[:117] + "..."
        super().__init__(f"{variable}={shown!r}: {reason}")


_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib|k|m|g|t)$", re.IGNORECASE)
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
_UNITS = {"b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
MIN_DUCKDB_MEMORY = 64 * 2**20
"""Below this DuckDB cannot hold the pipeline's working set."""
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def memory_bytes(value: str, *, variable: str = "GOVLAKE_DUCKDB_MEMORY") -> int:
    """Bytes of a DuckDB memory size (``4GB``, ``512MiB``) or share of this machine's memory (``80%``).

    Raises:
        SettingsError: anything else, or less than 64 MiB.
    """
    text = value.strip()
    if m := _PERCENT.match(text):
        share = float(m.group(1))
        if not 0 < share <= 100:
            raise SettingsError(variable, value, "a share of memory must be between 0% and 100%")
        size = int(_machine_memory() * share / 100)
    elif m := _MEMORY.match(text):
        unit = m.group(2).lower()
        size = int(float(m.group(1)) * _UNITS[unit if unit in _UNITS else unit[0]])
    else:
        raise SettingsError(variable, value, "not a DuckDB memory size; write e.g. 4GB, 512MiB or 80% "
                                             "(of this machine's memory)")
    if size < MIN_DUCKDB_MEMORY:
        raise SettingsError(variable, value, "DuckDB needs at least 64MiB")
    return size


def _machine_memory() -> int:
    """Physical memory, or the container's (cgroup v2) limit when that is smaller."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _as_of(value: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise SettingsError("GOVLAKE_AS_OF", value, "not an ISO date; write YYYY-MM-DD, e.g. 2026-11-20")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise SettingsError("GOVLAKE_AS_OF", value, f"not a date ({exc})") from None


def _folder(variable: str, value: str) -> Path:
    if _URL.match(value.strip()):
        raise SettingsError(variable, value, "object storage (URLs) is not supported yet; give a local folder")
    if not value.strip():
        raise SettingsError(variable, value, "empty; give a folder or unset the variable")
    return Path(value).expanduser().resolve()


def _http_url(variable: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = parts._replace(netloc=parts.hostname or "").geturl() if parts.password else value
        raise SettingsError(variable, shown, "not an http(s) URL, e.g. http://localhost:5000")
    return value


def get_settings() -> Settings:
    """Settings from the environment, each validated before use.

    GOVLAKE_VAR, GOVLAKE_INBOX, GOVLAKE_CATALOG_DIR, GOVLAKE_EXPECTATIONS_DIR (local folders),
    GOVLAKE_ENGINE (duckdb|spark), GOVLAKE_SOURCE_DB_URL, GOVLAKE_LINEAGE_URL (http(s)),
    GOVLAKE_LOCK_URL (PostgreSQL, for locks shared by several machines),
    GOVLAKE_DUCKDB_MEMORY (``4GB``, ``512MiB``, ``80%``), GOVLAKE_AS_OF (YYYY-MM-DD).

    Raises:
        SettingsError: a variable holds an unusable value (named with the value in the message).
    """
    env = os.environ
    var = _folder("GOVLAKE_VAR", env["GOVLAKE_VAR"]) if "GOVLAKE_VAR" in env else (REPO_ROOT / "var").resolve()
    engine = env.get("GOVLAKE_ENGINE", "duckdb")
    if engine not in get_args(Engine):
        raise SettingsError("GOVLAKE_ENGINE", engine, "must be duckdb or spark")
    memory = env.get("GOVLAKE_DUCKDB_MEMORY", "4GB")
    memory_bytes(memory)
    folders = {key: _folder(f"GOVLAKE_{key.upper()}", env[f"GOVLAKE_{key.upper()}"])
               for key in ("inbox", "catalog_dir", "expectations_dir") if env.get(f"GOVLAKE_{key.upper()}")}
    lineage_url = env.get("GOVLAKE_LINEAGE_URL") or None
    lock_url = env.get("GOVLAKE_LOCK_URL") or None
    if lock_url and not lock_url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise SettingsError("GOVLAKE_LOCK_URL", urlsplit(lock_url)._replace(netloc=urlsplit(lock_url).hostname or "")
                            .geturl(), "must be a PostgreSQL URL (postgresql://user@host:port/db)")
    return Settings(
        lock_url=lock_url,
        var=var,
        engine=engine,  # type: ignore[arg-type]
        source_db_url=env.get("GOVLAKE_SOURCE_DB_URL") or None,
        lineage_url=lineage_url and _http_url("GOVLAKE_LINEAGE_URL", lineage_url),
        duckdb_memory_limit=memory.strip(),
        as_of=_as_of(env["GOVLAKE_AS_OF"]) if env.get("GOVLAKE_AS_OF") else None,
        **folders,
    )
