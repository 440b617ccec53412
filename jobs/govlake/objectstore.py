"""The lake's location: a local folder or an S3 prefix (``GOVLAKE_LAKE=s3://bucket/prefix``).

A location under the lake is a :data:`Location`: a ``Path`` for a local lake, a ``str`` URI
(``s3://bucket/prefix/silver/credit_penalty``) for a lake on S3. Everything that touches the lake goes
through govlake.storage (Delta tables) or this module (plain objects: step intents, the steps' history),
so the rest of govlake never asks which one it has. ``var/`` (locks, scratch space, reports, the extract,
lineage files) stays local whatever GOVLAKE_LAKE says.

How each reader and writer reaches S3, with the standard AWS variables read once by
:func:`govlake.config.s3_options` (credentials, region, endpoint; never logged, never pasted into SQL):

- delta-rs (writes, merges, reads): ``storage_options`` (:func:`delta_options`). delta-rs 1.x commits a
  version by writing ``_delta_log/<version>.json`` with a conditional put (``If-None-Match: *``, which S3
  has honoured since 2024 and MinIO, Ceph and moto honour too): of two writers racing for one version, one
  gets ``412 Precondition Failed`` and retries on the next version after checking for conflicts. No locking
  provider (delta-rs 1.x removed its DynamoDB one), no ``AWS_S3_ALLOW_UNSAFE_RENAME``.
- DuckDB (reads a table's Parquet data files): the httpfs extension from the ``duckdb-extension-httpfs``
  wheel, loaded from the installed package (no download at run time), and a temporary S3 secret whose
  values are bound as parameters (:func:`duckdb_s3`).
- plain objects: pyarrow's S3 filesystem (:func:`filesystem`); a put is atomic (the object appears whole
  or not at all), which is all the step intents need.
- delta-spark: the S3A connector (:func:`spark_s3_conf`, used by govlake.engine).

Commands that copy the lake as folders (backup, restore, drill) refuse a lake on S3 with
:func:`refuse_on_s3` (exit code 2) before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pyarrow.fs as pafs

from govlake.config import S3Options, Settings, SettingsError, join_location, s3_options

Location = Path | str
"""A place under the lake: a local Path, or an ``s3://`` URI."""
SECRET = "govlake_lake"
"""The DuckDB secret holding the lake's S3 credentials (temporary: in memory, for one connection)."""


# ---- locations -------------------------------------------------------------------------------------


def is_s3(location: Location) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


def join(location: Location, *parts: str) -> Location:
    """``location`` / ``parts`` for a Path or a URI."""
    return join_location(location, *parts)


def name(location: Location) -> str:
    """The last segment: a table's name, a file's name."""
    return location.name if isinstance(location, Path) else location.rstrip("/").rsplit("/", 1)[-1]


def parent(location: Location) -> Location:
    if isinstance(location, Path):
        return location.parent
    head = location.rstrip("/").rsplit("/", 1)[0]
    return head if head.count("/") >= 2 and head != "s3:/" else location


def bucket_key(uri: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI."""
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


# ---- plain objects (pyarrow.fs) --------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _s3(options: S3Options) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=options.access_key_id, secret_key=options.secret_access_key, session_token=options.session_token,
        region=options.region, endpoint_override=options.endpoint_host,
        scheme="https" if options.use_ssl else "http", allow_bucket_creation=False, allow_bucket_deletion=False,
        # a test server on loopback answers at once; AWS retries with back-off as usual
        connect_timeout=10, request_timeout=60)


def filesystem(location: Location) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for ``location`` and the path within it."""
    if isinstance(location, Path):
        return pafs.LocalFileSystem(), str(location)
    bucket, key = bucket_key(location)
    return _s3(s3_options()), f"{bucket}/{key}".rstrip("/")


def exists(location: Location) -> bool:
    if isinstance(location, Path):
        return location.exists()
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_text(location: Location) -> str | None:
    """The text of the file or object at ``location``; None when there is none."""
    if isinstance(location, Path):
        try:
            return location.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
    fs, path = filesystem(location)
    try:
        with fs.open_input_stream(path) as f:
            return f.read().decode("utf-8")
    except FileNotFoundError:
        return None


PART = ".part"
"""Suffix of a file being written (``.<name>.<pid>.part`` beside the target); a killed writer leaves only such
a file, never a half file under the final name."""


def fsync(path: Path) -> None:
    """fsync a file, or a folder (so that the renames in it survive a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace the local file ``path`` with ``data`` atomically: written beside under a :data:`PART` name,
    fsync'd, renamed, and the folder fsync'd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{PART}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync(path.parent)


def write_text(location: Location, text: str) -> None:
    """Replace the file or object at ``location`` with ``text``, atomically: a reader sees the old
    content or the new, never a part. A local file is written beside, fsync'd and renamed (the folder
    fsync'd too); an S3 object is one put, which S3 makes visible whole."""
    data = text.encode("utf-8")
    if isinstance(location, Path):
        write_atomic(location, data)
        return
    fs, path = filesystem(location)
    with fs.open_output_stream(path) as f:
        f.write(data)


def delete(location: Location) -> None:
    """Delete the file or object at ``location`` (nothing when it is absent)."""
    if isinstance(location, Path):
        location.unlink(missing_ok=True)
        return
    fs, path = filesystem(location)
    with contextlib.suppress(FileNotFoundError):
        fs.delete_file(path)


def children(location: Location) -> list[str]:
    """Names of what lies directly under the folder or prefix ``location``, sorted; [] when absent."""
    if isinstance(location, Path):
        return sorted(p.name for p in location.iterdir()) if location.is_dir() else []
    fs, path = filesystem(location)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    return sorted(info.base_name for info in infos)


def size(location: Location) -> int:
    """Bytes of the file or object at ``location`` (0 when absent)."""
    fs, path = filesystem(location)
    info = fs.get_file_info(path)
    return 0 if info.type == pafs.FileType.NotFound else int(info.size or 0)


def delta_tables(folder: Location) -> list[str]:
    """Names of the Delta tables directly under ``folder`` (a layer), sorted."""
    if isinstance(folder, Path):
        return [n for n in children(folder) if (folder / n / "_delta_log").is_dir()]
    fs, path = filesystem(folder)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    found = []
    for info in infos:
        if info.type == pafs.FileType.Directory:
            log = fs.get_file_info(pafs.FileSelector(f"{info.path}/_delta_log", allow_not_found=True))
            if log:
                found.append(info.base_name)
    return sorted(found)


def append_event(folder: Location, event: dict) -> None:
    """Record ``event`` under ``folder`` as one object of its own (S3 has no append): named by its time,
    so listing the folder gives the events in order (govlake.steps' history on S3)."""
    now = dt.datetime.now(dt.UTC)
    stem = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}-{os.urandom(4).hex()}"
    write_text(join(folder, f"{stem}.json"), json.dumps(event, ensure_ascii=False, default=str))


def read_events(folder: Location) -> list[dict]:
    """Every event :func:`append_event` recorded under ``folder``, oldest first (unreadable ones skipped)."""
    events = []
    for entry in children(folder):
        if entry.endswith(".json"):
            try:
                events.append(json.loads(read_text(join(folder, entry)) or ""))
            except ValueError:
                continue
    return events


# ---- delta-rs --------------------------------------------------------------------------------------


def delta_options(location: Location) -> dict[str, str] | None:
    """delta-rs ``storage_options`` for the table at ``location`` (None for a local one).

    ``conditional_put=etag``: commits are put with ``If-None-Match: *`` (see the module docstring); said
    explicitly, though delta-rs 1.x does it by default, so a default changing cannot silently make
    concurrent commits unsafe."""
    if not is_s3(location):
        return None
    o = s3_options()
    options = {"AWS_ACCESS_KEY_ID": o.access_key_id, "AWS_SECRET_ACCESS_KEY": o.secret_access_key,
               "AWS_REGION": o.region, "conditional_put": "etag"}
    if o.session_token:
        options["AWS_SESSION_TOKEN"] = o.session_token
    if o.endpoint:
        options |= {"AWS_ENDPOINT_URL": o.endpoint, "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false"}
    if o.allow_http:
        options["AWS_ALLOW_HTTP"] = "true"
    return options


# ---- DuckDB ----------------------------------------------------------------------------------------


def httpfs_extension() -> Path:
    """The httpfs extension file of the installed ``duckdb-extension-httpfs`` wheel, for this DuckDB.

    Raises:
        SettingsError: the wheel is missing or built for another DuckDB (named, with what to do).
    """
    try:
        import duckdb_extension_httpfs
    except ImportError:
        raise SettingsError("GOVLAKE_LAKE", "s3://…", "DuckDB reads a lake on S3 with the httpfs extension of the "
                            "duckdb-extension-httpfs package, which is not installed: run `make setup` (uv sync)"
                            ) from None
    path = (Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}"
            / "httpfs.duckdb_extension")
    if not path.is_file():
        raise SettingsError("GOVLAKE_LAKE", "s3://…", f"duckdb-extension-httpfs has no build for DuckDB "
                            f"{duckdb.__version__} ({path.parent} is missing); install the version pinned in "
                            "pyproject.toml (make setup)")
    return path


def duckdb_s3(con: duckdb.DuckDBPyConnection, location: Location) -> None:
    """Let ``con`` read ``s3://`` objects of ``location``'s bucket: httpfs loaded from its wheel, and a
    temporary secret (this connection only, in memory) scoped to the bucket. The credentials are bound
    parameters, never SQL text. Idempotent."""
    if not is_s3(location):
        return
    if con.execute("select count(*) from duckdb_secrets() where name = ?", [SECRET]).fetchone()[0]:
        return
    con.load_extension(str(httpfs_extension()))
    o = s3_options()
    bucket, _ = bucket_key(location)
    params: dict[str, object] = {"key_id": o.access_key_id, "secret": o.secret_access_key, "region": o.region,
                                 "scope": f"s3://{bucket}/", "use_ssl": o.use_ssl}
    if o.session_token:
        params["session_token"] = o.session_token
    if o.endpoint_host:
        params |= {"endpoint": o.endpoint_host, "url_style": "path"}
    fields = ", ".join(f"{k} ${k}" for k in params)
    con.execute(f"create or replace temporary secret {SECRET} (type s3, {fields})", params)


# ---- Spark (S3A) -----------------------------------------------------------------------------------


LOGSTORE_CLASS = "govlake.delta.S3ConditionalPutLogStore"


def spark_s3_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings of a session whose lake is on S3 ({} for a local lake): Hadoop's S3A for
    ``s3://`` and ``s3a://`` paths (so the lake's URIs need no rewriting), the endpoint with path-style
    access, the credentials from the JVM's own environment (the SDK's EnvironmentVariableCredentialsProvider
    reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN: for a local master no secret is in
    Spark's settings; a cluster's executors get them as ``spark.executorEnv``, redacted by Spark in its UI
    and event log), and conditional puts for Delta's commits (see docs/storage.md).

    Delta's commits go through govlake's LogStore (``govlake.delta.S3ConditionalPutLogStore``, the jar
    infra/spark/logstore builds): it puts a new version's commit file with ``If-None-Match: *`` through S3A's
    conditional create (``fs.s3a.create.conditional.enabled``), as delta-rs does, so a Spark driver and any
    other writer (delta-rs, another driver) can commit to one table at once: the loser of a version gets
    FileAlreadyExistsException and Delta retries at the next. Delta 4.4's own S3SingleDriverLogStore checks,
    then puts unconditionally: safe inside one JVM only."""
    if not settings.lake_on_s3:
        return {}
    o = s3_options()
    conf = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
        "spark.hadoop.fs.s3a.endpoint.region": o.region,
        "spark.hadoop.fs.s3a.create.conditional.enabled": "true",
        # Delta's LogStore for s3 and s3a: conditional puts (above)
        "spark.delta.logStore.s3.impl": LOGSTORE_CLASS,
        "spark.delta.logStore.s3a.impl": LOGSTORE_CLASS,
    }
    if o.endpoint:
        conf |= {"spark.hadoop.fs.s3a.endpoint": o.endpoint, "spark.hadoop.fs.s3a.path.style.access": "true",
                 "spark.hadoop.fs.s3a.connection.ssl.enabled": "true" if o.use_ssl else "false"}
    if not settings.spark_master.startswith("local"):
        # a cluster's executors run in JVMs the workers start, with the workers' environment: they get the
        # driver's credentials as executor environment variables (Spark's spark.redaction.regex, which
        # matches "secret" and "token", keeps the secret and the token out of its UI and event log)
        keys = {"AWS_ACCESS_KEY_ID": o.access_key_id, "AWS_SECRET_ACCESS_KEY": o.secret_access_key,
                "AWS_SESSION_TOKEN": o.session_token}
        conf |= {f"spark.executorEnv.{k}": v for k, v in keys.items() if v}
    return conf


# ---- what does not work on S3 yet ------------------------------------------------------------------


BACKUP = ("back a lake on S3 up with the store's own means (bucket versioning or replication; `aws s3 sync` of the "
          "prefix while no step runs), or set GOVLAKE_LAKE to a local folder to use govlake's backups")
RESTORE = ("restore a lake on S3 with the store's own means (bucket versioning: the objects as of a time), or set "
           "GOVLAKE_LAKE to a local folder to use govlake's restores")


class LakeOnS3(SettingsError):
    """A command that cannot work on a lake on S3 yet (exit code 2, nothing written)."""


def refuse_on_s3(settings: Settings, what: str, instead: str) -> None:
    """Raise :class:`LakeOnS3` naming GOVLAKE_LAKE when the lake is on S3; nothing otherwise."""
    if settings.lake_on_s3:
        raise LakeOnS3("GOVLAKE_LAKE", str(settings.lake), f"{what} does not work on a lake on S3 yet, so nothing "
                       f"was done; {instead}")
