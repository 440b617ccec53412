"""Settings: where govlake keeps its outputs and which engine runs the SQL models.

One place chooses the resources: every job asks ``get_settings()``; nothing else reads
environment variables, and each is validated before use (a ``SettingsError`` names the variable
and its value). ``GOVLAKE_VAR`` moves every output; ``GOVLAKE_LAKE`` moves the lake alone, to another
folder or to object storage (``s3://bucket/prefix``, with the standard AWS variables read by
:func:`s3_options`; govlake.objectstore); ``GOVLAKE_ENGINE`` selects ``duckdb`` (default, one machine) or
``spark`` (delta-spark at scale: GOVLAKE_SPARK_MASTER or GOVLAKE_SPARK_REMOTE, GOVLAKE_SPARK_JARS).
"""

from __future__ import annotations

import datetime as dt
import glob
import ipaddress
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from govlake.layout import gold_layer

REPO_ROOT = Path(__file__).resolve().parents[2]
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
"""The bureau's time zone: business dates are its calendar days."""
BUSINESS_DATE_FILE = "business_date"
"""Under GOVLAKE_VAR: the lake's business date (``YYYY-MM-DD``), written by ``govlake generate`` (the
demo city's as-of date) and used when GOVLAKE_AS_OF is not set."""

Engine = Literal["duckdb", "spark"]
SparkIngest = Literal["executors", "driver"]
DEFAULT_SPARK_MASTER = "local[2]"
DEFAULT_SPARK_JARS = REPO_ROOT / "var" / "jars"
"""Where ``make setup`` (``make jars``) copies the jars of infra/spark/pom.xml: part of the installation, like
.venv, so GOVLAKE_VAR (the lake and its outputs) does not move it; GOVLAKE_SPARK_JARS does."""


SmtpSecurity = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class AlertChannels:
    """Where ``govlake alerts`` sends alerts (docs/alerts.md); a channel without its settings is off.

    The webhook URL and the SMTP password may hold secrets: they are kept out of ``repr`` and never
    printed or stored (deliveries record the host only)."""

    webhook_url: str | None = field(default=None, repr=False)
    """GOVLAKE_ALERT_WEBHOOK_URL: each alert is POSTed to it as JSON."""
    smtp_host: str | None = None
    """GOVLAKE_ALERT_SMTP_HOST: each alert is mailed through it to ``email_to``."""
    smtp_port: int = 587
    smtp_security: SmtpSecurity = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    email_from: str = "govlake@localhost"
    email_to: tuple[str, ...] = ()
    timeout: float = 10.0
    """GOVLAKE_ALERT_TIMEOUT: seconds a channel may take before it counts as failed."""

    @property
    def names(self) -> tuple[str, ...]:
        """The channels configured, in sending order."""
        return tuple(n for n, on in (("webhook", self.webhook_url), ("email", self.smtp_host)) if on)


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
    """The run's business date (dates after it are 'in the future'): GOVLAKE_AS_OF, else the date
    recorded in var/business_date, else (None) today."""
    duckdb_memory_limit: str = "768MB"
    """DuckDB spills to var/work beyond this, so memory stays flat as inputs grow (``1GB``, ``512MiB``,
    or ``80%`` of the machine's memory; see ``memory_bytes``). 768 MB by default, so that a step's whole
    process stays within 2 GB: on the benchmark (2 cores) 1 GB was as fast as 4 GB at 1M records and faster
    at 10M (435 s against 471 s end to end), with half the peak; 768 MB against 1 GB, the 10M credit step
    (a rebuild) took 113 s against 115 s with a peak of 1,618 against 2,113 MiB, the 1M process step 21.0
    against 23.0 s (1,502 against 1,726 MiB). 512 MB spills too much: the benchmark's 10M process step took
    259 s against 211 s (CPU +25%), a day's credit 9.3 against 4.9 s, for a peak of 2,129 against 2,333 MiB."""
    inbox: Path | None = None
    source_db_url: str | None = None
    lock_url: str | None = None
    """PostgreSQL URL whose advisory locks coordinate writers on several machines (govlake.locks);
    None: ``flock`` files under var/locks (one machine)."""
    lineage_url: str | None = None
    """Marquez-compatible OpenLineage API (events POSTed to <url>/api/v1/lineage as well as written
    to var/lineage/govlake.jsonl); None: the file only."""
    spark_master: str = DEFAULT_SPARK_MASTER
    """The Spark engine's master (GOVLAKE_SPARK_MASTER): ``local[N]``, ``local[*]`` or ``spark://host:port``."""
    spark_jars: Path = DEFAULT_SPARK_JARS
    """The folder holding the Spark engine's jars (GOVLAKE_SPARK_JARS; govlake.engine names the ones it needs)."""
    spark_remote: str | None = None
    """A Spark Connect server (GOVLAKE_SPARK_REMOTE, ``sc://host:port``): the engine's session is its client and
    Delta Lake is set up where the server starts; None: govlake starts its own driver on ``spark_master``."""
    spark_executor_memory: str | None = None
    """``spark.executor.memory`` on a cluster (GOVLAKE_SPARK_EXECUTOR_MEMORY, e.g. ``2g``); None: Spark's 1g."""
    spark_driver_memory: str | None = None
    """``spark.driver.memory`` of the driver govlake starts (GOVLAKE_SPARK_DRIVER_MEMORY, e.g. ``4g``); on a local
    master the executors' tasks run in it too. None: Spark's 1g."""
    spark_executor_cores: int | None = None
    """``spark.executor.cores`` (GOVLAKE_SPARK_EXECUTOR_CORES); None: on a standalone cluster, every free core
    of a worker goes to one executor."""
    spark_cores_max: int | None = None
    """``spark.cores.max`` (GOVLAKE_SPARK_CORES_MAX): the cores the session takes from a standalone cluster;
    None: all it can get, as long as it runs."""
    spark_driver_host: str | None = None
    """``spark.driver.host`` (GOVLAKE_SPARK_DRIVER_HOST): the address a cluster's executors reach the driver at;
    None: 127.0.0.1 for a local master or one on loopback, else the address Spark finds for this machine."""
    spark_master_wait: int = 120
    """Seconds a driver on a standalone cluster waits with jobs to run, no executor and no master answering
    (GOVLAKE_SPARK_MASTER_WAIT) before it cancels its jobs and the command fails naming the master: Spark's own
    driver waits for a lost master with no limit."""
    spark_python: str | None = None
    """The Python the executors run (GOVLAKE_SPARK_PYTHON, PYSPARK_PYTHON): a path or command on the workers;
    None: this process's interpreter (the venv's), right for a local master and a cluster on this machine."""
    spark_ingest: SparkIngest = "executors"
    """Where the Spark engine decodes department files (GOVLAKE_SPARK_INGEST): ``executors``, a Spark task per file
    (the inbox at the same path on every executor), or ``driver``, govlake's own process as on DuckDB."""
    lake_at: Path | str | None = None
    """GOVLAKE_LAKE: the lake's folder, or its ``s3://bucket/prefix`` URI; None: ``var/lake``."""
    alert_channels: AlertChannels = field(default_factory=AlertChannels)
    """GOVLAKE_ALERT_*: the channels of ``govlake alerts check`` (see :func:`alert_channels`)."""
    feed_run_deadline: dt.timedelta | None = None
    """GOVLAKE_FEED_RUN_DEADLINE (minutes): a feed DAG run not finished this long after it was queued raises a
    ``run_overdue`` alert (an Airflow deadline alert); None: no deadline. Off unless set, because
    ``airflow dags test`` of a DAG with a deadline exits 1 in Airflow 3.3 (apache/airflow#73428)."""

    @property
    def today(self) -> dt.date:
        """The business date: ``as_of``, else today in the bureau's time zone (Asia/Shanghai) whatever the
        machine's own: on a server kept in UTC the local date is the day before from 00:00 to 08:00 in the
        city, and a decision dated that morning would be judged "in the future"."""
        return self.as_of or dt.datetime.now(BUSINESS_TZ).date()

    def landing_time(self, now: dt.datetime | None = None) -> dt.datetime:
        """The received time of a file landed at ``now``: ``now``, except in a run for a business date
        that has already ended (the demo's recorded date, a backfill's GOVLAKE_AS_OF), where the file
        lands on that date, at its last microsecond in Asia/Shanghai. A file is never received after
        the business date it is judged on (及时率 without 报送时间, the month of submission)."""
        now = now or dt.datetime.now(dt.UTC)
        if self.as_of is None:
            return now
        end = dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time(), BUSINESS_TZ) - dt.timedelta(
            microseconds=1)
        return min(now, end.astimezone(dt.UTC))

    @property
    def business_date_file(self) -> Path:
        return self.var / BUSINESS_DATE_FILE

    @property
    def lake(self) -> Path | str:
        """The lake's root: a local folder (``var/lake`` unless GOVLAKE_LAKE says otherwise) or an
        ``s3://bucket/prefix`` URI (a ``str``; govlake.objectstore works on both)."""
        return self.lake_at if self.lake_at is not None else self.var / "lake"

    @property
    def lake_on_s3(self) -> bool:
        return isinstance(self.lake, str)

    def lake_location(self, *parts: str) -> Path | str:
        """A location under the lake (``silver/credit_penalty``, ``_steps/x.json``): a Path, or a URI."""
        return join_location(self.lake, *parts)

    def layer(self, name: str) -> Path | str:
        """Folder (or S3 prefix) of one lake layer: bronze, silver, gold, quarantine or meta."""
        return self.lake_location(name)

    def table_path(self, layer: str, name: str) -> Path | str:
        """The location of table ``name`` of ``layer``; ``gold`` places the table in its library
        (``gold/base/legal_entity``, ``gold/theme/penalty_record``: govlake.layout.gold_layer)."""
        if layer == "gold":
            layer = gold_layer(name)
        return self.lake_location(layer, name)

    @property
    def extracts(self) -> Path:
        return self.var / "extracts"

    @property
    def returns(self) -> Path:
        """Folder of the returns (回流): one subfolder per district or department (govlake.returns)."""
        return self.var / "returns"

    @property
    def reports(self) -> Path:
        return self.var / "reports"

    @property
    def open_data(self) -> Path:
        """The published open datasets and their DCAT catalog (``govlake open``, govlake.opendata)."""
        return self.var / "open"

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


def _as_of(value: str, variable: str = "GOVLAKE_AS_OF") -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise SettingsError(variable, value, "not an ISO date; write YYYY-MM-DD, e.g. 2026-11-20")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise SettingsError(variable, value, f"not a date ({exc})") from None


def recorded_business_date(var: Path) -> dt.date | None:
    """The business date recorded in ``var/business_date`` (``govlake generate``), None without one.

    Raises:
        SettingsError: the file holds no ISO date (named by its path).
    """
    path = var / BUSINESS_DATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return _as_of(text, str(path))


def join_location(base: Path | str, *parts: str) -> Path | str:
    """``base`` / ``parts``: Path joining for a folder, ``/``-joining for a URI (``s3://b/p`` + ``x/y``)."""
    if isinstance(base, Path):
        return base.joinpath(*parts)
    tail = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return f"{base.rstrip('/')}/{tail}" if tail else base


def _folder(variable: str, value: str) -> Path:
    if _URL.match(value.strip()):
        also = ("; the lake alone may be on S3: GOVLAKE_LAKE=s3://bucket/prefix"
                if variable == "GOVLAKE_VAR" else "")
        raise SettingsError(variable, value, f"must be a local folder, not a URL{also}")
    if not value.strip():
        raise SettingsError(variable, value, "empty; give a folder or unset the variable")
    return Path(value).expanduser().resolve()


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY_PART = re.compile(r"^[A-Za-z0-9!_.*'()=+,;@-]+$")


def lake_location(value: str, variable: str = "GOVLAKE_LAKE") -> Path | str:
    """GOVLAKE_LAKE: a local folder (resolved Path) or ``s3://bucket[/prefix]`` (a normalized URI, no
    trailing slash).

    Raises:
        SettingsError: another URL scheme, credentials or a query in the URI, a bucket name S3 refuses,
            an empty or ``..`` path segment.
    """
    text = value.strip()
    if not text:
        raise SettingsError(variable, value, "empty; give a folder or s3://bucket/prefix, or unset the variable")
    if not _URL.match(text):
        return Path(text).expanduser().resolve()
    parts = urlsplit(text)
    if parts.scheme != "s3":
        raise SettingsError(variable, _no_userinfo(value), "only s3:// URIs are supported (s3://bucket/prefix; "
                            "Spark's s3a:// is derived from it), or a local folder")
    if "@" in parts.netloc or parts.password is not None:
        raise SettingsError(variable, _no_userinfo(value), "credentials do not go in the URI: set AWS_ACCESS_KEY_ID "
                            "and AWS_SECRET_ACCESS_KEY")
    if parts.query or parts.fragment or ":" in parts.netloc:
        raise SettingsError(variable, value, "write s3://bucket/prefix: no port, query or fragment (the endpoint "
                            "goes in AWS_ENDPOINT_URL)")
    if not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        raise SettingsError(variable, value, "not an S3 bucket name (3-63 lower-case letters, digits, dots and "
                            "hyphens)")
    segments = [p for p in parts.path.split("/")]
    segments = segments[1:] if segments and segments[0] == "" else segments
    if segments and segments[-1] == "":
        segments = segments[:-1]
    if any(seg in ("", ".", "..") or not _KEY_PART.match(seg) for seg in segments):
        raise SettingsError(variable, value, "the prefix has an empty, '.' or '..' segment, or characters S3 keys "
                            "should not hold; write s3://bucket/some/prefix")
    return "/".join([f"s3://{parts.netloc}", *segments])


def _no_userinfo(value: str) -> str:
    parts = urlsplit(value.strip())
    return parts._replace(netloc=parts.hostname or "").geturl() if "@" in parts.netloc else value


_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class S3Options:
    """How to reach the lake's S3 store, from the standard AWS variables (:func:`s3_options`). The secret
    and the session token are kept out of ``repr`` and never logged or printed."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"
    endpoint: str | None = None
    """AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL: an S3-compatible server (MinIO, Ceph, moto); None: AWS."""
    allow_http: bool = False
    session_token: str | None = field(default=None, repr=False)

    @property
    def use_ssl(self) -> bool:
        return not (self.endpoint or "").startswith("http://")

    @property
    def endpoint_host(self) -> str | None:
        """``host:port`` of the endpoint (DuckDB's ``ENDPOINT``), None for AWS."""
        return urlsplit(self.endpoint).netloc if self.endpoint else None


def s3_options(env: Mapping[str, str] | None = None) -> S3Options:
    """The S3 options of the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (both required),
    AWS_SESSION_TOKEN, AWS_REGION (else AWS_DEFAULT_REGION, else us-east-1), AWS_ENDPOINT_URL_S3 (else
    AWS_ENDPOINT_URL), AWS_ALLOW_HTTP (``true`` to reach an ``http://`` endpoint, e.g. a server on loopback).

    Raises:
        SettingsError: a missing key, an endpoint that is not an http(s) URL, an ``http://`` endpoint
            without AWS_ALLOW_HTTP=true. A secret's value is never shown.
    """
    env = os.environ if env is None else env
    key_id, secret = env.get("AWS_ACCESS_KEY_ID", "").strip(), env.get("AWS_SECRET_ACCESS_KEY", "").strip()
    for variable, value in (("AWS_ACCESS_KEY_ID", key_id), ("AWS_SECRET_ACCESS_KEY", secret)):
        if not value:
            raise SettingsError(variable, "", "a lake on S3 (GOVLAKE_LAKE=s3://…) needs AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY (instance profiles and SSO are not supported yet)")
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1").strip()
    if not re.fullmatch(r"[a-z0-9-]{2,32}", region):
        variable = "AWS_REGION" if env.get("AWS_REGION") else "AWS_DEFAULT_REGION"
        raise SettingsError(variable, region, "not a region name, e.g. us-east-1 or cn-north-1")
    raw_http = env.get("AWS_ALLOW_HTTP", "").strip().lower()
    if raw_http not in _TRUE + _FALSE:
        raise SettingsError("AWS_ALLOW_HTTP", env["AWS_ALLOW_HTTP"], "write true or false")
    allow_http = raw_http in _TRUE
    variable = "AWS_ENDPOINT_URL_S3" if env.get("AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"
    endpoint = (env.get(variable) or "").strip().rstrip("/") or None
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            raise SettingsError(variable, _no_userinfo(endpoint), "not an S3 endpoint; write http(s)://host:port")
        if "@" in parts.netloc:
            raise SettingsError(variable, _no_userinfo(endpoint), "credentials do not go in the endpoint URL")
        if parts.scheme == "http" and not allow_http:
            raise SettingsError(variable, endpoint, "an http:// endpoint sends requests unencrypted: set "
                                "AWS_ALLOW_HTTP=true to allow it (a server on loopback), or use https://")
    return S3Options(access_key_id=key_id, secret_access_key=secret, region=region, endpoint=endpoint,
                     allow_http=allow_http, session_token=(env.get("AWS_SESSION_TOKEN") or "").strip() or None)


_SPARK_MASTER = re.compile(r"^(?:local(?:\[(?:[1-9]\d*|\*)(?:,[1-9]\d*)?\])?"
                           r"|spark://[A-Za-z0-9.-]+:\d{1,5}(?:,[A-Za-z0-9.-]+:\d{1,5})*)$")


def _spark_master(value: str) -> str:
    if not _SPARK_MASTER.match(value.strip()):
        raise SettingsError("GOVLAKE_SPARK_MASTER", value, "not a Spark master govlake runs on; write local[2], "
                                                           "local[*] or spark://host:7077")
    return value.strip()


def spark_master_addresses(master: str) -> list[tuple[str, int]]:
    """The (host, port) of each master of a ``spark://host:port[,host:port]`` master (none for a local one)."""
    if not master.startswith("spark://"):
        return []
    return [(host, int(port)) for host, port in
            (address.rsplit(":", 1) for address in master.removeprefix("spark://").split(","))]


def on_loopback(master: str) -> bool:
    """Whether a master runs in this process (``local…``) or every host of a ``spark://`` one is this
    machine's loopback (``127.x.y.z``, ``localhost``): the driver then listens on 127.0.0.1 only."""
    def loopback(host: str) -> bool:
        try:
            return host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    return master.startswith("local") or all(loopback(h) for h, _ in spark_master_addresses(master))


_SPARK_REMOTE = re.compile(r"^sc://(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?(?P<params>/(?:;[^;=/]+=[^;]*)*)?$")
SPARK_CONNECT_PORT = 15002
"""Spark Connect's port when ``sc://host`` names none."""


def spark_remote_address(url: str) -> tuple[str, int]:
    """Host and port of a valid ``sc://host[:port][/;param=value…]`` URL."""
    m = _SPARK_REMOTE.match(url)
    assert m, url
    return m["host"], int(m["port"] or SPARK_CONNECT_PORT)


def shown_remote(url: str) -> str:
    """A Spark Connect URL fit for a message: its parameters (a ``token=``, say) left out."""
    head, sep, _ = url.partition("/;")
    return f"{head}/;…" if sep else head


def _spark_remote(value: str) -> str:
    m = _SPARK_REMOTE.match(value.strip())
    if not m or not 0 < int(m["port"] or SPARK_CONNECT_PORT) < 65536:
        raise SettingsError("GOVLAKE_SPARK_REMOTE", shown_remote(value.strip()),
                            "not a Spark Connect URL; write sc://host:15002 (parameters after /;, e.g. "
                            "sc://host:15002/;use_ssl=true)")
    return value.strip()


_SPARK_MEMORY = re.compile(r"^(\d+)([kmgt])b?$", re.IGNORECASE)
MIN_SPARK_EXECUTOR_MEMORY = 450 * 2**20
"""Spark refuses to start a driver or an executor with less (1.5 times its 300 MiB of reserved memory)."""


def _spark_memory(variable: str, value: str) -> str:
    m = _SPARK_MEMORY.match(value.strip())
    if not m:
        raise SettingsError(variable, value, "not a Spark memory size; write e.g. 2g or 512m")
    if int(m[1]) * 1024 ** ("kmgt".index(m[2].lower()) + 1) < MIN_SPARK_EXECUTOR_MEMORY:  # Spark's k is KiB
        raise SettingsError(variable, value, "Spark starts no driver or executor with less than 450m")
    return value.strip().lower()


def _count(variable: str, value: str) -> int:
    if not re.fullmatch(r"[1-9]\d{0,4}", value.strip()):
        raise SettingsError(variable, value, "not a number of cores; write a whole number from 1, e.g. 2")
    return int(value)


def _host(variable: str, value: str) -> str:
    text = value.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", text):
            raise SettingsError(variable, value, "not a host name or IP address, e.g. 10.0.0.5") from None
    return text


def _python(value: str, master: str) -> str:
    text = value.strip()
    if not (text.startswith("/") or re.fullmatch(r"[\w.+-]+", text)):
        raise SettingsError("GOVLAKE_SPARK_PYTHON", value, "not a Python for the executors; give an absolute "
                                                           "path (/opt/govlake/.venv/bin/python) or a command name")
    if on_loopback(master) and shutil.which(text) is None:
        raise SettingsError("GOVLAKE_SPARK_PYTHON", value, "no such Python on this machine, where the master "
                                                           "runs its executors")
    return text


def java_home() -> Path | None:
    """The Java the Spark engine starts: JAVA_HOME when it holds a java, else an installed Java 17 or 21
    (what Spark 4 runs on), else the java on PATH; None without one."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return Path(home)
    found = sorted(glob.glob("/usr/lib/jvm/*17*/bin/java")) + sorted(glob.glob("/usr/lib/jvm/*21*/bin/java"))
    java = found[0] if found else shutil.which("java")
    return Path(java).resolve().parent.parent if java else None


def _http_url(variable: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = parts._replace(netloc=parts.hostname or "").geturl() if parts.password else value
        raise SettingsError(variable, shown, "not an http(s) URL, e.g. http://localhost:5000")
    return value


_EMAIL = re.compile(r"^[^@\s<>,]+@[^@\s<>,]+$")


def alert_channels(env: Mapping[str, str] | None = None) -> AlertChannels:
    """The alert channels of the environment (docs/alerts.md).

    GOVLAKE_ALERT_WEBHOOK_URL (http(s)); GOVLAKE_ALERT_SMTP_HOST with GOVLAKE_ALERT_EMAIL_TO (comma-separated
    addresses, required with a host), GOVLAKE_ALERT_SMTP_PORT (587), GOVLAKE_ALERT_SMTP_SECURITY (``starttls``
    by default, ``ssl``, or ``none`` for a relay on loopback), GOVLAKE_ALERT_SMTP_USER and
    GOVLAKE_ALERT_SMTP_PASSWORD (both or neither), GOVLAKE_ALERT_EMAIL_FROM, GOVLAKE_ALERT_TIMEOUT (seconds).

    Raises:
        SettingsError: an unusable value; a password is never shown, a URL's path and query neither.
    """
    env = os.environ if env is None else env
    out: dict[str, object] = {}
    if url := (env.get("GOVLAKE_ALERT_WEBHOOK_URL") or "").strip():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            head = (f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme
                    else re.split(r"[/?#]", url, maxsplit=1)[0])
            shown = head + ("/…" if len(head) < len(url) else "")  # a token in the path or query stays secret
            raise SettingsError("GOVLAKE_ALERT_WEBHOOK_URL", shown,
                                "not an http(s) URL without credentials, e.g. https://hooks.example.cn/alerts")
        out["webhook_url"] = url
    if timeout := (env.get("GOVLAKE_ALERT_TIMEOUT") or "").strip():
        try:
            out["timeout"] = float(timeout)
        except ValueError:
            out["timeout"] = 0.0
        if not 0 < out["timeout"] <= 300:  # type: ignore[operator]
            raise SettingsError("GOVLAKE_ALERT_TIMEOUT", timeout, "not a number of seconds between 0 and 300")
    host = (env.get("GOVLAKE_ALERT_SMTP_HOST") or "").strip()
    mail_settings = [v for v in ("GOVLAKE_ALERT_EMAIL_TO", "GOVLAKE_ALERT_SMTP_USER", "GOVLAKE_ALERT_SMTP_PASSWORD")
                     if env.get(v)]
    if not host:
        if mail_settings:
            raise SettingsError(mail_settings[0], "…" if "PASSWORD" in mail_settings[0] else env[mail_settings[0]],
                                "e-mail alerts need GOVLAKE_ALERT_SMTP_HOST too")
        return AlertChannels(**out)  # type: ignore[arg-type]
    out["smtp_host"] = _host("GOVLAKE_ALERT_SMTP_HOST", host)
    if port := (env.get("GOVLAKE_ALERT_SMTP_PORT") or "").strip():
        if not re.fullmatch(r"\d{1,5}", port) or not 0 < int(port) < 65536:
            raise SettingsError("GOVLAKE_ALERT_SMTP_PORT", port, "not a port number (1-65535), e.g. 587")
        out["smtp_port"] = int(port)
    security = (env.get("GOVLAKE_ALERT_SMTP_SECURITY") or "starttls").strip().lower()
    if security not in get_args(SmtpSecurity):
        raise SettingsError("GOVLAKE_ALERT_SMTP_SECURITY", security, "must be starttls, ssl or none")
    out["smtp_security"] = security
    user, password = env.get("GOVLAKE_ALERT_SMTP_USER") or None, env.get("GOVLAKE_ALERT_SMTP_PASSWORD") or None
    if bool(user) != bool(password):
        raise SettingsError("GOVLAKE_ALERT_SMTP_USER" if password else "GOVLAKE_ALERT_SMTP_PASSWORD",
                            user or "…" if password else "", "give both the SMTP user and its password, or neither")
    if password and security == "none" and not on_loopback(f"spark://{host}:0"):
        raise SettingsError("GOVLAKE_ALERT_SMTP_SECURITY", security, "would send the SMTP password unencrypted to "
                            f"{host}: use starttls or ssl (none is for a relay on loopback)")
    out["smtp_user"], out["smtp_password"] = user, password
    sender = (env.get("GOVLAKE_ALERT_EMAIL_FROM") or "govlake@localhost").strip()
    recipients = tuple(a.strip() for a in (env.get("GOVLAKE_ALERT_EMAIL_TO") or "").split(",") if a.strip())
    if not recipients:
        raise SettingsError("GOVLAKE_ALERT_EMAIL_TO", "", "e-mail alerts need at least one address to send to")
    for variable, address in [("GOVLAKE_ALERT_EMAIL_FROM", sender), *(("GOVLAKE_ALERT_EMAIL_TO", a)
                                                                      for a in recipients)]:
        if not _EMAIL.match(address):
            raise SettingsError(variable, address, "not an e-mail address, e.g. ops@dsj.example.cn")
    out["email_from"], out["email_to"] = sender, recipients
    return AlertChannels(**out)  # type: ignore[arg-type]


def _minutes(variable: str, value: str) -> dt.timedelta | None:
    if not value.strip():
        return None
    if not re.fullmatch(r"[1-9]\d{0,4}", value.strip()):
        raise SettingsError(variable, value, "not a number of minutes; write a whole number from 1, e.g. 60")
    return dt.timedelta(minutes=int(value))


def get_settings() -> Settings:
    """Settings from the environment, each validated before use.

    GOVLAKE_VAR, GOVLAKE_INBOX, GOVLAKE_CATALOG_DIR, GOVLAKE_EXPECTATIONS_DIR (local folders),
    GOVLAKE_LAKE (a local folder, or ``s3://bucket/prefix`` with the AWS variables of :func:`s3_options`),
    GOVLAKE_ENGINE (duckdb|spark), GOVLAKE_SOURCE_DB_URL, GOVLAKE_LINEAGE_URL (http(s)),
    GOVLAKE_LOCK_URL (PostgreSQL, for locks shared by several machines),
    GOVLAKE_DUCKDB_MEMORY (``4GB``, ``512MiB``, ``80%``), GOVLAKE_AS_OF (YYYY-MM-DD; without it the
    business date recorded in var/business_date, else today), GOVLAKE_SPARK_MASTER (``local[2]`` by
    default, ``local[*]``, ``spark://host:port``) and GOVLAKE_SPARK_JARS (a local folder; default the
    repository's var/jars), read whatever the engine (the engine checks the jars are there);
    GOVLAKE_SPARK_DRIVER_MEMORY (``4g``; its executors' too on a local master), and on a cluster
    GOVLAKE_SPARK_EXECUTOR_MEMORY (``2g``), GOVLAKE_SPARK_EXECUTOR_CORES, GOVLAKE_SPARK_CORES_MAX,
    GOVLAKE_SPARK_DRIVER_HOST, GOVLAKE_SPARK_PYTHON and GOVLAKE_SPARK_MASTER_WAIT (seconds, 120); or
    GOVLAKE_SPARK_REMOTE (``sc://host:15002``, a Spark
    Connect server, refused together with those, which are its own).
    GOVLAKE_ALERT_* (the channels of ``govlake alerts``: :func:`alert_channels`), GOVLAKE_FEED_RUN_DEADLINE
    (minutes a feed DAG run may take before a ``run_overdue`` alert; unset: none).

    Raises:
        SettingsError: a variable holds an unusable value (named with the value in the message).
    """
    env = os.environ
    var = _folder("GOVLAKE_VAR", env["GOVLAKE_VAR"]) if "GOVLAKE_VAR" in env else (REPO_ROOT / "var").resolve()
    engine = env.get("GOVLAKE_ENGINE", "duckdb")
    if engine not in get_args(Engine):
        raise SettingsError("GOVLAKE_ENGINE", engine, "must be duckdb or spark")
    memory = env.get("GOVLAKE_DUCKDB_MEMORY", "768MB")
    memory_bytes(memory)
    folders = {key: _folder(f"GOVLAKE_{key.upper()}", env[f"GOVLAKE_{key.upper()}"])
               for key in ("inbox", "catalog_dir", "expectations_dir") if env.get(f"GOVLAKE_{key.upper()}")}
    lineage_url = env.get("GOVLAKE_LINEAGE_URL") or None
    lock_url = env.get("GOVLAKE_LOCK_URL") or None
    if lock_url and not lock_url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise SettingsError("GOVLAKE_LOCK_URL", urlsplit(lock_url)._replace(netloc=urlsplit(lock_url).hostname or "")
                            .geturl(), "must be a PostgreSQL URL (postgresql://user@host:port/db)")
    spark_master = _spark_master(env.get("GOVLAKE_SPARK_MASTER") or DEFAULT_SPARK_MASTER)
    spark_jars = (_folder("GOVLAKE_SPARK_JARS", env["GOVLAKE_SPARK_JARS"]) if "GOVLAKE_SPARK_JARS" in env
                  else DEFAULT_SPARK_JARS)
    spark_ingest = env.get("GOVLAKE_SPARK_INGEST") or "executors"
    if spark_ingest not in get_args(SparkIngest):
        raise SettingsError("GOVLAKE_SPARK_INGEST", spark_ingest, "must be executors (a Spark task decodes each file; "
                            "the inbox at the same path on every executor) or driver (govlake's own process)")
    lake = lake_location(env["GOVLAKE_LAKE"]) if "GOVLAKE_LAKE" in env else None
    if isinstance(lake, str):
        s3_options(env)
    return Settings(
        lake_at=lake,
        lock_url=lock_url,
        spark_master=spark_master,
        spark_jars=spark_jars,
        spark_ingest=spark_ingest,  # type: ignore[arg-type]
        var=var,
        engine=engine,  # type: ignore[arg-type]
        source_db_url=env.get("GOVLAKE_SOURCE_DB_URL") or None,
        lineage_url=lineage_url and _http_url("GOVLAKE_LINEAGE_URL", lineage_url),
        duckdb_memory_limit=memory.strip(),
        as_of=_as_of(env["GOVLAKE_AS_OF"]) if env.get("GOVLAKE_AS_OF") else recorded_business_date(var),
        **folders,
        alert_channels=alert_channels(env),
        feed_run_deadline=_minutes("GOVLAKE_FEED_RUN_DEADLINE", env.get("GOVLAKE_FEED_RUN_DEADLINE") or ""),
        **_spark_cluster_settings(env, spark_master),
    )


SESSION_SETTINGS = ("GOVLAKE_SPARK_MASTER", "GOVLAKE_SPARK_DRIVER_MEMORY", "GOVLAKE_SPARK_EXECUTOR_MEMORY",
                    "GOVLAKE_SPARK_EXECUTOR_CORES",
                    "GOVLAKE_SPARK_CORES_MAX", "GOVLAKE_SPARK_DRIVER_HOST", "GOVLAKE_SPARK_PYTHON",
                    "GOVLAKE_SPARK_MASTER_WAIT")
"""The settings of a Spark driver govlake starts itself: a Spark Connect server (GOVLAKE_SPARK_REMOTE) has its own."""


def _spark_cluster_settings(env: Mapping[str, str], master: str) -> dict[str, object]:
    """GOVLAKE_SPARK_REMOTE, or the settings of govlake's own driver on a cluster (docs/spark.md)."""
    if remote := env.get("GOVLAKE_SPARK_REMOTE"):
        remote = _spark_remote(remote)
        for variable in SESSION_SETTINGS:
            if env.get(variable):
                raise SettingsError(variable, env[variable],
                                    "has no effect with GOVLAKE_SPARK_REMOTE, whose Spark Connect server runs the "
                                    "driver with its own settings (set them where it starts); unset one of the two")
        return {"spark_remote": remote}
    out: dict[str, object] = {}
    for key in ("executor_memory", "driver_memory"):
        if memory := env.get(f"GOVLAKE_SPARK_{key.upper()}"):
            out[f"spark_{key}"] = _spark_memory(f"GOVLAKE_SPARK_{key.upper()}", memory)
    for key in ("executor_cores", "cores_max"):
        if value := env.get(f"GOVLAKE_SPARK_{key.upper()}"):
            out[f"spark_{key}"] = _count(f"GOVLAKE_SPARK_{key.upper()}", value)
    if out.get("spark_cores_max", 10**6) < out.get("spark_executor_cores", 1):  # type: ignore[operator]
        raise SettingsError("GOVLAKE_SPARK_CORES_MAX", env["GOVLAKE_SPARK_CORES_MAX"],
                            "fewer cores than one executor takes (GOVLAKE_SPARK_EXECUTOR_CORES): no executor "
                            "would start")
    if host := env.get("GOVLAKE_SPARK_DRIVER_HOST"):
        if master.startswith("local"):
            raise SettingsError("GOVLAKE_SPARK_DRIVER_HOST", host, f"only for a cluster's master; the driver of "
                                                                   f"GOVLAKE_SPARK_MASTER={master!r} is 127.0.0.1")
        out["spark_driver_host"] = _host("GOVLAKE_SPARK_DRIVER_HOST", host)
    if python := env.get("GOVLAKE_SPARK_PYTHON"):
        out["spark_python"] = _python(python, master)
    if wait := env.get("GOVLAKE_SPARK_MASTER_WAIT", "").strip():
        if not master.startswith("spark://"):
            raise SettingsError("GOVLAKE_SPARK_MASTER_WAIT", wait, f"only for a cluster's master; GOVLAKE_SPARK_"
                                                                   f"MASTER={master!r} runs in the driver")
        if not re.fullmatch(r"[1-9]\d{0,5}", wait):
            raise SettingsError("GOVLAKE_SPARK_MASTER_WAIT", wait, "not a number of seconds; write a whole number "
                                                                   "from 1, e.g. 120")
        out["spark_master_wait"] = int(wait)
    return out
