"""The engine switch: GOVLAKE_ENGINE=spark gives the Spark engine (its session: tests/test_spark_delta.py;
the pipeline on it: tests/test_spark_pipeline.py) when this installation can start it, and refuses it,
naming what is missing, when it cannot; a session of one engine is never handed out for the other.
None of these start a JVM."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from govlake.config import Settings, SettingsError, java_home
from govlake.engine import (
    DELTA_CONF,
    DELTA_JARS,
    S3_JARS,
    SERVER_CONF,
    WrongEngine,
    get_engine,
    remote_conf,
    snapshot_conf,
    spark_conf,
    submit_args,
)
from govlake.transform import DUCKDB, SPARK, SPARK_CONF

can_start_spark = pytest.mark.skipif(importlib.util.find_spec("pyspark") is None or java_home() is None,
                                     reason="needs pyspark (the uv spark group) and a Java")


@pytest.fixture
def jars(tmp_path) -> Path:
    """A folder with a file of each jar's name: enough for the checks, which start no JVM."""
    folder = tmp_path / "jars"
    folder.mkdir()
    for name in DELTA_JARS:
        (folder / name).write_bytes(b"")
    return folder


def test_duckdb_is_the_default(settings):
    engine = get_engine(settings)
    assert (engine.name, engine.dialect) == ("duckdb", DUCKDB)
    with pytest.raises(WrongEngine):
        engine.session()


def test_a_missing_jar_is_named_with_what_to_do(tmp_path, jars):
    (jars / "delta-storage-4.4.0.jar").unlink()
    settings = Settings(var=tmp_path / "var", engine="spark", spark_jars=jars)
    if importlib.util.find_spec("pyspark") is None or java_home() is None:
        pytest.skip("pyspark or Java missing: checked before the jars")
    with pytest.raises(SettingsError) as info:
        get_engine(settings)
    assert str(info.value) == (f"GOVLAKE_SPARK_JARS={str(jars)!r}: delta-storage-4.4.0.jar is missing; run "
                               "`make setup` (it copies the jars of infra/spark/pom.xml into var/jars), or point "
                               "GOVLAKE_SPARK_JARS at a folder holding them")


def test_without_pyspark_the_spark_engine_is_refused(tmp_path, jars, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(SettingsError, match=r"^GOVLAKE_ENGINE='spark': pyspark is not installed; `make setup`"):
        get_engine(Settings(var=tmp_path / "var", engine="spark", spark_jars=jars))


@can_start_spark
def test_the_spark_session_settings(tmp_path, jars):
    settings = Settings(var=tmp_path / "var", engine="spark", spark_jars=jars, spark_master="local[*]")
    engine = get_engine(settings)
    assert (engine.name, engine.dialect) == ("spark", SPARK)
    with pytest.raises(WrongEngine):
        engine.connect()
    conf = spark_conf(settings, conf={"spark.sql.shuffle.partitions": "2"})
    # the jars from GOVLAKE_SPARK_JARS, never resolved at run time (no spark.jars.packages: no Ivy)
    assert conf["spark.jars"].split(",") == [str(jars / name) for name in DELTA_JARS]
    assert not any(key.startswith("spark.jars.") for key in conf)
    assert conf["spark.submit.pyFiles"] == str(jars / "delta-spark_4.2_2.13-4.4.0.jar")
    assert conf["spark.master"] == "local[*]" and conf["spark.driver.host"] == "127.0.0.1"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert conf.items() >= (DELTA_CONF | SPARK_CONF).items()
    assert conf["spark.local.dir"] == str(settings.work / "spark") and conf["spark.sql.shuffle.partitions"] == "2"
    cluster = spark_conf(Settings(var=tmp_path / "var", engine="spark", spark_jars=jars,
                                  spark_master="spark://spark-master:7077"))
    assert cluster["spark.master"] == "spark://spark-master:7077" and "spark.driver.host" not in cluster
    # Delta reads a table's log in one task per core the session has: local threads, or the cluster's
    # GOVLAKE_SPARK_CORES_MAX; a cluster share not known keeps Delta's default (50)
    assert conf["spark.databricks.delta.snapshotPartitions"] == str(os.cpu_count())
    assert "spark.databricks.delta.snapshotPartitions" not in cluster
    assert [snapshot_conf(m) for m in ("local", "local[3]", "local[4,2]", "yarn", "spark://h:7077")] == [
        {"spark.databricks.delta.snapshotPartitions": n} for n in ("1", "3", "4")] + [{}, {}]
    assert snapshot_conf("spark://h:7077", 6) == {"spark.databricks.delta.snapshotPartitions": "6"}
    assert snapshot_conf("local[2]", 6) == {"spark.databricks.delta.snapshotPartitions": "2"}
    assert not set(S3_JARS) & {Path(j).name for j in conf["spark.jars"].split(",")}
    # the executors run this process's Python (the venv's); Spark's defaults for their size
    assert conf["spark.pyspark.python"] == sys.executable and "spark.executor.memory" not in conf


def test_a_driver_on_a_cluster(tmp_path, jars):
    """On loopback the driver listens on 127.0.0.1 (executors of a cluster on this machine reach it there);
    elsewhere at GOVLAKE_SPARK_DRIVER_HOST; the executors' size and Python as set."""
    conf = spark_conf(Settings(var=tmp_path / "var", engine="spark", spark_jars=jars,
                               spark_master="spark://127.0.0.1:7077"))
    assert (conf["spark.driver.host"], conf["spark.driver.bindAddress"]) == ("127.0.0.1", "127.0.0.1")
    both = Settings(var=tmp_path / "var", engine="spark", spark_jars=jars,
                    spark_master="spark://localhost:7077,127.0.0.2:7077")
    assert spark_conf(both)["spark.driver.host"] == "127.0.0.1"
    conf = spark_conf(Settings(var=tmp_path / "var", engine="spark", spark_jars=jars,
                               spark_master="spark://spark-master:7077", spark_driver_host="10.0.0.5",
                               spark_executor_memory="4g", spark_executor_cores=2, spark_cores_max=8,
                               spark_python="/opt/govlake/.venv/bin/python", spark_driver_memory="3g"))
    assert conf["spark.driver.host"] == "10.0.0.5" and "spark.driver.bindAddress" not in conf
    assert {k: conf[k] for k in ("spark.driver.memory", "spark.executor.memory", "spark.executor.cores",
                                 "spark.cores.max", "spark.pyspark.python")} == {
        "spark.driver.memory": "3g", "spark.executor.memory": "4g", "spark.executor.cores": "2", "spark.cores.max": "8",
        "spark.pyspark.python": "/opt/govlake/.venv/bin/python"}


def test_spark_submit_gets_the_session_s_settings_as_its_arguments(tmp_path, jars):
    settings = Settings(var=tmp_path / "var", engine="spark", spark_jars=jars, spark_master="spark://127.0.0.1:7077",
                        spark_cores_max=2)
    args = submit_args(settings, app_name="nightly")
    conf = spark_conf(settings, app_name="nightly")
    assert args[:8] == ["--master", "spark://127.0.0.1:7077", "--name", "nightly", "--jars", conf["spark.jars"],
                        "--py-files", conf["spark.submit.pyFiles"]]
    rest = dict(a.split("=", 1) for a in args[9::2])
    assert args[8::2] == ["--conf"] * len(rest)
    assert rest == {k: v for k, v in conf.items() if k not in ("spark.master", "spark.app.name", "spark.jars",
                                                                  "spark.submit.pyFiles")}
    assert rest["spark.cores.max"] == "2" and rest["spark.sql.extensions"] == DELTA_CONF["spark.sql.extensions"]


def test_a_spark_connect_session_sets_only_session_settings():
    """A client cannot set static settings: Delta's extension and catalog are the server's (checked when the
    session opens); the rest of DELTA_CONF and SPARK_CONF are set on the session."""
    conf = remote_conf({"spark.sql.shuffle.partitions": "2"})
    assert SERVER_CONF.items() <= DELTA_CONF.items() and not SERVER_CONF.keys() & conf.keys()
    assert conf == {k: v for k, v in (DELTA_CONF | SPARK_CONF).items() if k not in SERVER_CONF} | {
        "spark.sql.shuffle.partitions": "2"}


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="needs pyspark (the uv spark group)")
def test_no_spark_connect_server_is_refused_at_once(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(var=tmp_path / "var", engine="spark", spark_remote=f"sc://127.0.0.1:{port}/;token=s3cret",
                        spark_jars=tmp_path / "no-jars")  # a client needs no jars and no Java
    engine = get_engine(settings)
    started = time.monotonic()
    with pytest.raises(SettingsError) as info:
        engine.session()
    assert time.monotonic() - started < 15
    assert str(info.value).startswith(f"GOVLAKE_SPARK_REMOTE='sc://127.0.0.1:{port}/;…': no Spark Connect server "
                                      f"answers at 127.0.0.1:{port} (Connection refused); start one")
