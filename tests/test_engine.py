"""The engine switch: GOVLAKE_ENGINE=spark gives the Spark engine (its session: tests/test_spark_delta.py;
the pipeline on it: tests/test_spark_pipeline.py) when this installation can start it, and refuses it,
naming what is missing, when it cannot; a session of one engine is never handed out for the other.
None of these start a JVM."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from govlake.config import Settings, SettingsError, java_home
from govlake.engine import (
    DELTA_CONF,
    DELTA_JARS,
    S3_JARS,
    WrongEngine,
    get_engine,
    spark_conf,
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
    assert not set(S3_JARS) & {Path(j).name for j in conf["spark.jars"].split(",")}
