"""Shared fixtures: a fresh govlake var/ folder per test, the PostgreSQL server fixture, one Spark session,
one generated city run through the pipeline for the whole session."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _jvm import QUICK_JVM  # noqa: E402
from govlake.config import Settings  # noqa: E402

pytest_plugins = ["conftest_pg"] if (Path(__file__).parent / "conftest_pg.py").exists() else []
# the S3 test server (tests/_s3.py: s3, s3_lake) and the Spark standalone cluster (tests/_spark_cluster.py:
# spark_cluster, spark_connect)
pytest_plugins += ["_s3", "_spark_cluster"]


# `make test` runs the suite on two pytest-xdist workers (`-n 2`). The unit of work a worker takes is a group: a
# module's tests stay together (its module fixtures are built once), and the modules sharing an expensive session
# fixture form one group (one standalone Spark cluster, one built city per test session). xdist's own
# `--dist loadgroup` cannot do it under pytest 9 (it renames node ids through an attribute pytest 9 no longer
# reads), so the scheduler is LoadScopeScheduling with the scope below.
SHARED_GROUPS = {
    "spark_cluster": ("tests/test_deploy.py::test_a_celery_worker", "tests/test_spark_cluster.py",
                      "tests/test_spark_pipeline.py"),
    "built_city": ("tests/test_lineage.py", "tests/test_pipeline.py", "tests/test_report.py", "tests/test_themes.py"),
}
"""Session fixture → the modules (or tests: a node id's start) using it, which run on one worker; checked
against the tests at collection."""
# How long a test takes, roughly, by what it runs: the heaviest groups go first, so that neither worker is
# left with a long group at the end while the other sits idle.
WEIGHTS = (("spark_cluster", 60), ("spark", 20), ("slow", 8), ("integration", 8), ("airflow", 8), ("browser", 4))


def _group(nodeid: str) -> str:
    shared = (f for f, starts in SHARED_GROUPS.items() if any(nodeid.startswith(start) for start in starts))
    return next(shared, nodeid.split("::")[0])


def _weight(item: pytest.Item) -> int:
    names = set(item.fixturenames) | {mark.name for mark in item.iter_markers()}
    return next((w for name, w in WEIGHTS if name in names), 1)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """Whole groups to a worker, in the collection's order (heaviest first, below)."""

        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in SHARED_GROUPS:
            if fixture in item.fixturenames and _group(item.nodeid) != fixture:
                raise pytest.UsageError(f"{item.nodeid} uses the {fixture} fixture: add it to "
                                        f"SHARED_GROUPS[{fixture!r}] in tests/conftest.py (one worker per group)")
    weight: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        group = _group(item.nodeid)
        weight[group] = weight.get(group, 0) + _weight(item)
        first.setdefault(group, index)
    # Heaviest group first, a group's tests together in the collection's order (a stable sort).
    items.sort(key=lambda item: (-weight[group := _group(item.nodeid)], first[group]))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose every output lands under tmp_path."""
    return Settings(var=tmp_path / "var", inbox=tmp_path / "inbox")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean GOVLAKE_ environment with var/ under tmp_path; returns monkeypatch to set more."""
    for key in list(os.environ):
        if key.startswith("GOVLAKE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GOVLAKE_VAR", str(tmp_path / "var"))
    return monkeypatch


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


SPARK_TEST_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    # The inputs are tiny and the queries many: planning and compiling dominate. C1 and the serial
    # collector start the JVM faster; interpreted expressions (no code generation, no adaptive
    # re-planning) save a third of the time. The results are the same either way.
    "spark.driver.extraJavaOptions": QUICK_JVM,
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
    # Delta rebuilds a table's state from its log in 50 tasks by default: for logs of a few commits, 2 tasks
    # read a table in a tenth of the time (tests/test_spark_delta.py).
    "spark.databricks.delta.snapshotPartitions": "2",
}


@pytest.fixture(scope="session")
def spark_defaults(tmp_path_factory) -> dict[str, str]:
    """The environment that gives the Spark drivers govlake starts in the tests' subprocesses (``govlake run`` on
    the test cluster, the deployment's tasks) the tests' quick settings — SPARK_TEST_CONF and :data:`QUICK_JVM`
    for the driver and its executors — through Spark's own ``spark-defaults.conf`` (``SPARK_CONF_DIR``, read when
    pyspark launches the driver). What govlake sets itself still wins; the results are the same either way."""
    folder = tmp_path_factory.mktemp("spark-conf")
    conf = SPARK_TEST_CONF | {"spark.driver.extraJavaOptions": QUICK_JVM, "spark.executor.extraJavaOptions": QUICK_JVM}
    (folder / "spark-defaults.conf").write_text("".join(f"{key} {value}\n" for key, value in conf.items()))
    return {"SPARK_CONF_DIR": str(folder)}


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> Iterator[object]:
    """The Spark engine's session (govlake.engine: local[2], Delta Lake, the dialect layer's SPARK_CONF),
    one for the whole test session (tests marked ``spark``), tuned for tiny inputs. pyspark, Java or the
    jars (var/jars, or GOVLAKE_SPARK_JARS) missing fails under CI and skips elsewhere."""
    from govlake.config import DEFAULT_SPARK_JARS, SettingsError
    from govlake.engine import get_engine

    jars = Path(os.environ["GOVLAKE_SPARK_JARS"]) if os.environ.get("GOVLAKE_SPARK_JARS") else DEFAULT_SPARK_JARS
    settings = Settings(var=tmp_path_factory.mktemp("spark-var"), engine="spark", spark_jars=jars)
    try:
        engine = get_engine(settings)
    except SettingsError as exc:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no Spark engine here: {exc}")
    session = engine.session(app_name="govlake-tests", conf=SPARK_TEST_CONF)
    yield session
    session.stop()


CITY_AS_OF = dt.date(2026, 11, 20)
CITY_RUN = "city-1"


@dataclass(frozen=True)
class BuiltCity:
    """A generated city (scale 1500, seed 11, as of 2026-11-20), every resource ingested (run id
    ``ingest-<code>``) and run once (``city-1``). Its lake is shared by the whole session: tests only
    read it, or work on a :meth:`copy`."""

    settings: Settings
    manifest: object
    """the generator's Manifest"""
    ingested: dict
    """resource code → pipeline.ingest's result"""
    summary: dict
    """pipeline.run's result"""

    def events(self) -> list[dict]:
        """The OpenLineage events of the ingests and the run, as the file transport wrote them."""
        path = self.settings.var / "lineage" / "govlake.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def copy(self, dest: Path) -> tuple[Settings, dict]:
        """A copy of the var folder at ``dest`` (the inbox stays shared, read-only), with the run's
        summary pointing at the copy's extract."""
        shutil.copytree(self.settings.var, dest, symlinks=True)
        settings = replace(self.settings, var=dest)
        extract = dest / Path(self.summary["extract"]).relative_to(self.settings.var)
        return settings, self.summary | {"extract": extract}


@pytest.fixture(scope="session")
def built_city(tmp_path_factory) -> BuiltCity:
    """The session's generated city, landed and run once (test_pipeline, test_report, test_lineage)."""
    from govlake import pipeline
    from govlake.catalog import get_catalog
    from govlake.generate import generate_city

    root = tmp_path_factory.mktemp("built-city")
    settings = Settings(var=root / "var", inbox=root / "inbox", as_of=CITY_AS_OF)
    manifest = generate_city(settings.city, scale=1500, seed=11, as_of=CITY_AS_OF)
    ingested = {code: pipeline.ingest(code, settings=settings, run_id=f"ingest-{code}")
                for code in get_catalog(settings.catalog_dir).resources}
    summary = pipeline.run(settings=settings, run_id=CITY_RUN)
    return BuiltCity(settings, manifest, ingested, summary)
