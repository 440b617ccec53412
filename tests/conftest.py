"""Shared fixtures: a fresh govlake var/ folder per test, the PostgreSQL server fixture, one Spark session."""

from __future__ import annotations

import glob
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from govlake.config import Settings  # noqa: E402

pytest_plugins = ["conftest_pg"] if (Path(__file__).parent / "conftest_pg.py").exists() else []


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose every output lands under tmp_path."""
    return Settings(var=tmp_path / "var", inbox=tmp_path / "inbox")


@pytest.fixture
def small_disk(tmp_path: Path, request) -> Path:
    """A small tmpfs for full-disk tests, for real (needs root to mount, else the test is skipped).

    Its size in MB comes from ``@pytest.mark.disk_mb(N)`` (default 40)."""
    import subprocess

    marker = request.node.get_closest_marker("disk_mb")
    size = marker.args[0] if marker else 40
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}M", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _java_home() -> str | None:
    """JAVA_HOME when it holds a java, else an installed Java 17 or 21 (what Spark 4 runs on), else the
    java on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return home
    found = sorted(glob.glob("/usr/lib/jvm/*17*/bin/java")) + sorted(glob.glob("/usr/lib/jvm/*21*/bin/java"))
    java = found[0] if found else shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> Iterator[object]:
    """One local[2] Spark session for the whole test session (tests marked ``spark``), set with the
    dialect layer's SPARK_CONF. Missing pyspark or Java fails under CI and skips elsewhere."""
    def unavailable(reason: str):
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{reason} (make setup installs the spark group)")

    try:
        from pyspark.sql import SparkSession
    except ImportError:
        unavailable("pyspark is not installed")
    java_home = _java_home()
    if java_home is None:
        unavailable("no Java: no JAVA_HOME, no Java 17 or 21 under /usr/lib/jvm, no java on PATH")
    from govlake.transform import SPARK_CONF

    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAVA_HOME", java_home)
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (SparkSession.builder.master("local[2]").appName("govlake-tests")
                   .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
                   .config("spark.sql.shuffle.partitions", "2")
                   # The inputs are tiny and the queries many: planning and compiling dominate. C1 and the
                   # serial collector start the JVM faster; interpreted expressions (no code generation, no
                   # adaptive re-planning) save a third of the time. The results are the same either way.
                   .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
                   .config("spark.sql.codegen.wholeStage", "false")
                   .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
                   .config("spark.sql.adaptive.enabled", "false"))
        for key, value in SPARK_CONF.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
