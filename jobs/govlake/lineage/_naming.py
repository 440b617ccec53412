"""Dataset names after the OpenLineage naming spec (spec/Naming.md).

- Files (department exports, the analyst extract): namespace ``file``, name the absolute path.
- Delta tables in the lake: a directory of files, so namespace ``file`` and the table's absolute
  path (``/…/var/lake/silver/amr_enterprise``); on S3 (GOVLAKE_LAKE=s3://…) namespace ``s3://{bucket}``
  and the table's key (``lake/silver/amr_enterprise``).
- Database tables from their SQLAlchemy URL: PostgreSQL ``postgres://{host}:{port}`` +
  ``{database}.{schema}.{table}``, MySQL ``mysql://{host}:{port}`` + ``{database}.{table}``. The spec
  has no SQLite entry; a SQLite database is a file, so its namespace is ``sqlite://{absolute path}``
  and the name ``main.{table}`` (SQLite's schema name).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from govlake.config import Settings
from govlake.layout import LAYERS, gold_layer
from govlake.objectstore import Location, bucket_key

FILE = "file"


@dataclass(frozen=True)
class DatasetRef:
    """One dataset as OpenLineage names it, plus what govlake knows about it."""

    namespace: str
    name: str
    kind: str
    """``lake`` (a Delta table), ``file`` (an export or the extract) or ``db`` (a source table)."""
    label: str
    """How people name it: ``silver.amr_enterprise``, ``db:amr_enterprise``, a file path."""
    layer: str | None = None
    path: Location | None = None
    """The Delta table's or file's location (an ``s3://`` URI for a table of a lake on S3)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def lake_table(settings: Settings, layer: str, name: str) -> DatasetRef:
    """A Delta table of the lake: ``file`` + its absolute path, or ``s3://bucket`` + its key."""
    if layer == "gold":
        layer = gold_layer(name)
    location = settings.table_path(layer, name)
    if isinstance(location, str):
        bucket, key = bucket_key(location)
        return DatasetRef(f"s3://{bucket}", key, "lake", table_label(layer, name), layer, location)
    path = location.resolve()
    return DatasetRef(FILE, str(path), "lake", table_label(layer, name), layer, path)


def table_label(layer: str, name: str) -> str:
    """How people name a lake table: ``silver.amr_enterprise``, ``gold.legal_entity`` (whichever gold library
    holds it)."""
    return f"{layer.split('/')[0]}.{name}"


def _lake_layer(parts: list[str]) -> str | None:
    """The layer of a table path's parts (``…/gold/base/legal_entity`` → ``gold/base``), or None."""
    if len(parts) >= 3 and "/".join(parts[-3:-1]) in LAYERS:
        return "/".join(parts[-3:-1])
    return parts[-2] if len(parts) >= 2 and parts[-2] in LAYERS else None


def file_dataset(path: Path | str) -> DatasetRef:
    """A file: ``file`` + its absolute path."""
    resolved = Path(path).resolve()
    return DatasetRef(FILE, str(resolved), "file", str(resolved), None, resolved)


def db_table(url: str, table: str) -> DatasetRef:
    """A table of the database at SQLAlchemy ``url``."""
    import sqlalchemy as sa  # here: every job imports this module, few name a database (0.2 s of a new process)

    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    label = f"db:{table}"
    if backend == "sqlite":
        database = parsed.database or ":memory:"
        location = str(Path(database).resolve()) if database != ":memory:" else database
        return DatasetRef(f"sqlite://{location}", f"main.{table}", "db", label)
    host = parsed.host or "localhost"
    scheme = "postgres" if backend == "postgresql" else backend
    port = parsed.port or {"postgres": 5432, "mysql": 3306}.get(scheme)
    namespace = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    if scheme == "postgres":
        return DatasetRef(namespace, f"{parsed.database}.public.{table}", "db", label)
    return DatasetRef(namespace, f"{parsed.database}.{table}", "db", label)


def ref_from_event(namespace: str, name: str) -> DatasetRef:
    """The ref of a dataset read back from an event: a lake table when its path is ``…/lake/<layer>/<t>``."""
    if namespace == FILE:
        path = Path(name)
        layer = _lake_layer(list(path.parts))
        if layer is not None and path.parents[layer.count("/") + 1].name == "lake":
            return DatasetRef(FILE, name, "lake", table_label(layer, path.name), layer, path)
        return DatasetRef(FILE, name, "file", name, None, path)
    if namespace.startswith("s3://"):
        parts = name.strip("/").split("/")
        layer = _lake_layer(parts)
        if layer is not None:
            return DatasetRef(namespace, name, "lake", table_label(layer, parts[-1]), layer, f"{namespace}/{name}")
        return DatasetRef(namespace, name, "file", f"{namespace}/{name}")
    if namespace.startswith("sqlite://") and name.startswith("main."):
        return DatasetRef(namespace, name, "db", f"db:{name.removeprefix('main.')}")
    return DatasetRef(namespace, name, "db", f"db:{name.rsplit('.', 1)[-1]}")
