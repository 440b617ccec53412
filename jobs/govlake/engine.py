"""The engine switch: which engine runs the SQL models, chosen in one place from the settings.

``get_engine(settings)`` hands the steps an :class:`Engine`: its SQL dialect (govlake.transform, the
only place that knows how the engines' SQL differs) and a way to open a session. DuckDB over Arrow
and delta-rs runs everything on one machine (the default). A setting that cannot be honoured — an
engine this installation cannot run — is refused with a clear error (exit code 2 at the command
line), never silently replaced by another.

The Spark engine (GOVLAKE_ENGINE=spark) opens a SparkSession with Delta Lake (:meth:`Engine.session`:
the master of GOVLAKE_SPARK_MASTER, local or a standalone cluster, the jars of :data:`DELTA_JARS` from
GOVLAKE_SPARK_JARS, the dialect layer's SPARK_CONF and :data:`DELTA_CONF`, under which delta-spark and
delta-rs read each other's tables; or a Spark Connect client of GOVLAKE_SPARK_REMOTE: docs/spark.md).
The steps that run SQL models — process, gold, credit, conflicts — compute in a session of the engine
(govlake.compute). Ingest decodes the departments' files with govlake's own readers and appends them to
bronze with delta-rs, and the extract, the report and the KPIs read Delta with DuckDB, whatever the
engine (they are small reads of published tables).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb

from govlake import objectstore, storage
from govlake.config import (
    Settings,
    SettingsError,
    java_home,
    on_loopback,
    shown_remote,
    spark_master_addresses,
    spark_remote_address,
)
from govlake.transform import DUCKDB, SPARK, SPARK_CONF, Dialect

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
EngineName = Literal["duckdb", "spark"]

DELTA_JARS: tuple[str, ...] = (
    "delta-spark_4.2_2.13-4.4.0.jar",
    "delta-storage-4.4.0.jar",
    "delta-kernel-api-4.4.0.jar",
    "delta-kernel-defaults-4.4.0.jar",
    "delta-kernel-unitycatalog-4.4.0.jar",
    "unitycatalog-client-0.6.0.jar",
    "unitycatalog-hadoop-0.6.0.jar",
    "jackson-datatype-jdk8-2.21.2.jar",
)
"""The jars every Spark session of govlake loads (``spark.jars``): Delta Lake 4.4 for Spark 4.2 and what it
needs beyond pyspark's own jars. infra/spark/pom.xml locks them (tests/test_spark_jars.py checks both agree)."""
LOGSTORE_JAR = "govlake-delta-s3-logstore-1.jar"
"""govlake's Delta LogStore for S3 (infra/spark/logstore, built by ``make jars``): commits put with
``If-None-Match: *`` (govlake.objectstore.spark_s3_conf)."""
S3_JARS: tuple[str, ...] = (
    "hadoop-aws-3.5.0.jar",
    "bundle-2.35.4.jar",
    "analyticsaccelerator-s3-1.3.1.jar",
    "wildfly-openssl-2.2.5.Final.jar",
    LOGSTORE_JAR,
)
"""The jars of a lake on S3 (Hadoop 3.5.0's S3A and the AWS SDK v2 it is built with, and govlake's LogStore),
fetched and built by ``make jars`` too, and loaded only when GOVLAKE_LAKE is an ``s3://`` URI (:func:`s3_jars`):
on ``spark.jars`` for a cluster, on the driver's class path for a local master (which runs its executors in the
driver's JVM), so a local session does not copy the SDK bundle (650 MiB) into its scratch space; the LogStore's
jar always on ``spark.jars``, beside the delta-storage class it extends."""

DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Spark's default writes timestamps as INT96, which delta-rs and DuckDB's delta extension read back
    # as UTC (the Delta schema says so) but govlake's own reader, DuckDB over the data files
    # (storage.register), reads as a naive timestamp: INT64 micros marked UTC, as delta-rs writes them.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Tables delta-spark creates stay readable by delta-rs and by govlake's reader, which reads a
    # table's data files as they are: no deletion vectors (rows deleted in a file only by a side
    # file), no column mapping (Parquet column names that are not the table's), classic checkpoints.
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    "spark.databricks.delta.properties.defaults.columnMapping.mode": "none",
    "spark.databricks.delta.properties.defaults.checkpointPolicy": "classic",
}
"""The Delta settings of every Spark session of govlake (docs/spark.md#reading-each-others-tables)."""

class WrongEngine(SettingsError):
    """A session of one engine was asked of the other (a defect of the caller)."""


@dataclass(frozen=True)
class Engine:
    """One engine: its name, its SQL dialect and its sessions."""

    name: EngineName
    dialect: Dialect
    settings: Settings

    def connect(self, *, database: str | None = None) -> duckdb.DuckDBPyConnection:
        """A session of the DuckDB engine: a connection spilling to var/work."""
        if self.name != "duckdb":
            raise WrongEngine("GOVLAKE_ENGINE", self.name, "a DuckDB connection was asked of the Spark engine")
        return storage.connect(self.settings, database=database)

    def session(self, *, app_name: str = "govlake", conf: Mapping[str, str] | None = None) -> SparkSession:
        """A SparkSession of the Spark engine (the process's one session, made on first use; ``conf`` is
        added to govlake's settings, for a new session only: Spark fixes most of them at start)."""
        if self.name != "spark":
            raise WrongEngine("GOVLAKE_ENGINE", self.name, "a Spark session was asked of the DuckDB engine")
        return spark_session(self.settings, app_name=app_name, conf=conf)


def get_engine(settings: Settings) -> Engine:
    """The engine ``settings`` choose (GOVLAKE_ENGINE); SettingsError when it cannot run here."""
    if settings.engine == "duckdb":
        return Engine("duckdb", DUCKDB, settings)
    check_spark(settings)
    return Engine("spark", SPARK, settings)


# ---- the Spark engine's session ----------------------------------------------------------------


def spark_jars(settings: Settings) -> list[Path]:
    """The jars a Spark session loads, from GOVLAKE_SPARK_JARS.

    Raises:
        SettingsError: a jar is missing (named, with what to do).
    """
    folder = settings.spark_jars
    missing = [name for name in DELTA_JARS if not (folder / name).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if missing[1:] else ""
        raise SettingsError("GOVLAKE_SPARK_JARS", str(folder),
                            f"{missing[0]} is missing{more}; run `make setup` (it copies the jars of "
                            "infra/spark/pom.xml into var/jars), or point GOVLAKE_SPARK_JARS at a folder "
                            "holding them")
    return [folder / name for name in DELTA_JARS]


def s3_jars(settings: Settings) -> list[Path]:
    """The jars of :data:`S3_JARS` from GOVLAKE_SPARK_JARS when the lake is on S3, else [].

    Raises:
        SettingsError: a jar is missing (named, with what to do).
    """
    if not settings.lake_on_s3:
        return []
    folder = settings.spark_jars
    missing = [name for name in S3_JARS if not (folder / name).is_file()]
    if missing:
        raise SettingsError("GOVLAKE_SPARK_JARS", str(folder),
                            f"{', '.join(missing)} missing, which a lake on S3 (GOVLAKE_LAKE) needs; run `make setup` "
                            "(it copies the jars of infra/spark/pom.xml into var/jars and builds infra/spark/logstore)")
    return [folder / name for name in S3_JARS]


def check_spark(settings: Settings) -> None:
    """Whether this installation can start the Spark engine: pyspark, a Java, the jars.

    Raises:
        SettingsError: what is missing, naming GOVLAKE_ENGINE (or GOVLAKE_SPARK_JARS for a jar).
    """
    if importlib.util.find_spec("pyspark") is None:
        raise SettingsError("GOVLAKE_ENGINE", settings.engine, "pyspark is not installed; `make setup` installs "
                            "it (uv sync --group spark), or unset GOVLAKE_ENGINE to run on DuckDB")
    if settings.spark_remote:  # a client of a Spark Connect server: no Java, no jars here
        try:
            import pyspark.sql.connect.session  # noqa: F401  (grpcio, pyarrow, pandas: pyspark[connect])
        except ImportError as exc:
            raise SettingsError("GOVLAKE_SPARK_REMOTE", shown_remote(settings.spark_remote),
                                f"the Spark Connect client cannot load ({exc}); `make setup` installs "
                                "pyspark[connect]") from None
        return
    if java_home() is None:
        raise SettingsError("GOVLAKE_ENGINE", settings.engine, "no Java for Spark: set JAVA_HOME to a Java 17 or "
                            "21, or install one (Debian: openjdk-17-jre-headless)")
    spark_jars(settings)
    s3_jars(settings)


def spark_conf(settings: Settings, *, app_name: str = "govlake",
               conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every setting of a govlake SparkSession: master, jars, Delta, the dialect layer's SPARK_CONF,
    scratch space under var/work, S3A for a lake on S3 (govlake.objectstore.spark_s3_conf), then ``conf``."""
    local, loopback = settings.spark_master.startswith("local"), on_loopback(settings.spark_master)
    driver_host = settings.spark_driver_host or ("127.0.0.1" if loopback else None)
    jars, s3 = spark_jars(settings), s3_jars(settings)
    # the LogStore extends a class of delta-storage, which spark.jars loads: it must come from there too
    classpath = [p for p in s3 if p.name != LOGSTORE_JAR] if local else []
    jars += [p for p in s3 if p not in classpath]
    out = {
        "spark.master": settings.spark_master,
        "spark.app.name": app_name,
        "spark.jars": ",".join(str(p) for p in jars),
        **({"spark.driver.extraClassPath": ":".join(str(p) for p in classpath)} if classpath else {}),
        # delta-spark's Python API (delta.tables) from its own jar, as spark-submit --packages does: the
        # PyPI package delta-spark would pin pyspark to 4.2.0 and importlib-metadata below 8.8
        "spark.submit.pyFiles": str(jars[0]),
        # spill and shuffle files, and the jars' copies, in govlake's scratch space; no metastore
        "spark.local.dir": str(settings.work / "spark"),
        "spark.sql.warehouse.dir": str(settings.work / "spark-warehouse"),
        "spark.ui.showConsoleProgress": "false",
        # a local master, or a cluster on this machine's loopback: the driver listens on 127.0.0.1 only; a
        # cluster elsewhere reaches it at GOVLAKE_SPARK_DRIVER_HOST, else at the address Spark finds
        **({"spark.driver.host": driver_host} if driver_host else {}),
        **({"spark.driver.bindAddress": "127.0.0.1"} if loopback else {}),
        # the executors run this Python (the venv's) unless GOVLAKE_SPARK_PYTHON names the workers' own;
        # pyspark reads PYSPARK_PYTHON (_launch_env), the JVM this
        "spark.pyspark.python": spark_python(settings),
        **{key: str(value) for key, value in (("spark.driver.memory", settings.spark_driver_memory),
                                              ("spark.executor.memory", settings.spark_executor_memory),
                                              ("spark.executor.cores", settings.spark_executor_cores),
                                              ("spark.cores.max", settings.spark_cores_max)) if value},
        **DELTA_CONF,
        **snapshot_conf(settings.spark_master, settings.spark_cores_max),
        **SPARK_CONF,
        **objectstore.spark_s3_conf(settings),
    }
    return out | dict(conf or {})


def snapshot_conf(master: str, cores_max: int | None = None) -> dict[str, str]:
    """How many tasks rebuild a Delta table's state from its log (``spark.databricks.delta.snapshotPartitions``,
    50 by default, sized for a large cluster): one per core the session has, which run at once — N for
    ``local[N]``, GOVLAKE_SPARK_CORES_MAX on a cluster. A table of a few dozen commits then reads several times
    faster (tests/test_spark_delta.py) and a large log no slower; a cluster whose share is not known keeps
    Delta's default."""
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master.strip())
    if m:
        cores = {None: 1, "*": os.cpu_count() or 1}.get(m.group(1)) or int(m.group(1))
    elif cores_max:
        cores = cores_max
    else:
        return {}
    return {"spark.databricks.delta.snapshotPartitions": str(max(cores, 1))}


def spark_session(settings: Settings, *, app_name: str = "govlake",
                  conf: Mapping[str, str] | None = None) -> SparkSession:
    """The process's SparkSession for ``settings`` (see :func:`spark_conf`), started with the Java of
    :func:`govlake.config.java_home` when none runs yet; with GOVLAKE_SPARK_REMOTE, a Spark Connect client
    session (:func:`remote_session`)."""
    check_spark(settings)
    if settings.spark_remote:
        return remote_session(settings, conf=conf)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(settings, app_name=app_name, conf=conf).items():
        builder = builder.config(key, value)
    (settings.work / "spark").mkdir(parents=True, exist_ok=True)
    with _launch_env(settings):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    _check_delta_classes(session, settings)
    sc = session.sparkContext
    if settings.spark_master.startswith("spark://") and not hasattr(sc, "_govlake_watch"):
        sc._govlake_watch = _MasterWatch(sc, settings.spark_master, settings.spark_master_wait)  # type: ignore[attr-defined]
        sc._govlake_watch.start()  # type: ignore[attr-defined]
    return session


_lost_master: str | None = None


def lost_master() -> str | None:
    """What the master watch said when it cancelled this process's Spark jobs (:class:`_MasterWatch`), else None:
    the command's error then says it, not the cancelled job's own message."""
    return _lost_master


class _MasterWatch(threading.Thread):
    """Cancels the jobs of a driver on a standalone cluster that have waited GOVLAKE_SPARK_MASTER_WAIT seconds with
    no executor while no master of ``spark://…`` accepts a connection.

    Spark's driver waits for a lost master with no limit ("Disconnected from Spark cluster! Waiting for
    reconnection…"), and once its executors are gone too a command would hang for ever. A cluster that is only
    busy (its master answers; another driver holds the cores) is waited for, however long."""

    def __init__(self, sc: SparkContext, master: str, wait: int) -> None:
        super().__init__(name="govlake-master-watch", daemon=True)
        self.sc, self.master, self.wait = sc, master, wait
        self.addresses = spark_master_addresses(master)

    def run(self) -> None:
        from py4j.protocol import Py4JNetworkError

        every, since = min(5.0, self.wait / 4), None
        while True:
            time.sleep(every)
            try:
                if self.sc._jsc is None:  # stopped
                    return
                jobs = self.sc.statusTracker().getActiveJobsIds()
                # from the driver's status store (no call to another process), the driver's own entry included
                executors = len(self.sc._jsc.sc().statusTracker().getExecutorInfos()) - 1
            except Py4JNetworkError:  # the driver's JVM has ended: nothing left to watch
                return
            except Exception:  # noqa: BLE001 — a stopping session, a slow answer: look again
                continue
            if not jobs or executors > 0 or self._master_answers():
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= self.wait:
                self._cancel(len(jobs))
                since = None

    def _master_answers(self) -> bool:
        for address in self.addresses:
            with contextlib.suppress(OSError), socket.create_connection(address, timeout=5):
                return True
        return False

    def _cancel(self, jobs: int) -> None:
        global _lost_master
        _lost_master = (f"the Spark cluster's master {self.master} has not answered for {self.wait} s and this "
                        f"driver has no executor left: its {jobs} waiting Spark job(s) were cancelled "
                        f"(GOVLAKE_SPARK_MASTER_WAIT={self.wait}). Start the cluster again (infra/spark_cluster.py "
                        "start, or where it runs) and run the same command again: a step interrupted here is "
                        "finished by its next run.")
        log.error(_lost_master)
        with contextlib.suppress(Exception):
            self.sc.cancelAllJobs()


def _check_delta_classes(session: SparkSession, settings: Settings) -> None:
    """Delta Lake's classes load in the driver: not so when its JVM started without govlake's ``spark.jars`` (a
    driver started by spark-submit, whose class path is set before govlake's settings are read).

    Raises:
        SettingsError: they do not, naming what to do.
    """
    from py4j.protocol import Py4JJavaError

    try:
        session._jvm.org.apache.spark.util.Utils.classForName(DELTA_CONF["spark.sql.extensions"], True, False)
    except Py4JJavaError:
        raise SettingsError("GOVLAKE_SPARK_JARS", str(settings.spark_jars),
                            "Delta Lake's classes are not on the Spark driver's class path: its JVM was started "
                            "without these jars (by spark-submit?); give spark-submit the Spark engine's arguments "
                            "(`infra/spark_cluster.py submit-args`, docs/spark.md#spark-submit)") from None


def submit_args(settings: Settings, *, app_name: str = "govlake") -> list[str]:
    """The spark-submit arguments of the Spark engine's session (:func:`spark_conf`): a driver spark-submit starts
    gets Delta's jars on its class path (``--jars``) and delta-spark's Python API (``--py-files``) at launch."""
    conf = spark_conf(settings, app_name=app_name)
    args = ["--master", conf.pop("spark.master"), "--name", conf.pop("spark.app.name"),
            "--jars", conf.pop("spark.jars"), "--py-files", conf.pop("spark.submit.pyFiles")]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return args


def spark_python(settings: Settings) -> str:
    """The Python the executors run: GOVLAKE_SPARK_PYTHON, else this process's interpreter."""
    return settings.spark_python or sys.executable


SERVER_CONF = {key: DELTA_CONF[key] for key in ("spark.sql.extensions", "spark.sql.catalog.spark_catalog")}
"""The Delta settings a Spark Connect server must start with (static: a client cannot set them)."""


def remote_conf(conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """What govlake sets on a Spark Connect session: DELTA_CONF's session settings and SPARK_CONF, then ``conf``."""
    return {k: v for k, v in (DELTA_CONF | SPARK_CONF).items() if k not in SERVER_CONF} | dict(conf or {})


def remote_session(settings: Settings, *, conf: Mapping[str, str] | None = None) -> SparkSession:
    """A Spark Connect session on the server of GOVLAKE_SPARK_REMOTE, with :func:`remote_conf`.

    Raises:
        SettingsError: no server answers, or it runs without Delta Lake (:data:`SERVER_CONF`).
    """
    import socket

    from pyspark.sql import SparkSession

    url = settings.spark_remote
    assert url
    host, port = spark_remote_address(url)
    try:  # the client would retry for minutes: a closed port is an answer
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        raise SettingsError("GOVLAKE_SPARK_REMOTE", shown_remote(url),
                            f"no Spark Connect server answers at {host}:{port} ({exc.strerror or exc}); start one "
                            "(docs/spark.md#spark-connect) or unset GOVLAKE_SPARK_REMOTE") from None
    session = SparkSession.builder.remote(url).getOrCreate()
    server = {key: session.conf.get(key, None) or "" for key in SERVER_CONF}
    missing = [f"{key}={value}" for key, value in SERVER_CONF.items() if value not in server[key].split(",")]
    if missing:
        raise SettingsError("GOVLAKE_SPARK_REMOTE", shown_remote(url),
                            f"the Spark Connect server runs without Delta Lake ({', '.join(missing)} missing); "
                            "start it with the jars of var/jars and Delta's settings (docs/spark.md#spark-connect)")
    for key, value in remote_conf(conf).items():
        session.conf.set(key, value)
    return session


@contextlib.contextmanager
def _launch_env(settings: Settings) -> Iterator[None]:
    """The environment the JVM starts with (JAVA_HOME; PYSPARK_PYTHON, which pyspark hands the executors; for a
    master on loopback, SPARK_LOCAL_IP), restored afterwards: the rest of the process keeps its own."""
    launch = {"JAVA_HOME": str(java_home()), "PYSPARK_PYTHON": spark_python(settings)}
    if on_loopback(settings.spark_master):
        launch["SPARK_LOCAL_IP"] = "127.0.0.1"
    saved = {key: os.environ.get(key) for key in launch}
    os.environ.update(launch)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
