"""The whole pipeline on the Spark engine gives the DuckDB engine's tables, and survives a kill -9.

One generated city is landed in bronze once (on the Spark engine: a Spark task per file;
tests/test_spark_ingest.py compares that with DuckDB's ingest) and the lake copied: ``govlake run`` then
runs on each engine over the same bronze — process (the standardize model, rules, Great Expectations on the
engine, held batches, the contest, silver merges, quarantine), gold, credit, conflicts, the extract and the
KPIs. Every silver, quarantine and gold table must hold the same rows (content hashes, the run's own ids and
clocks left out) with the same schema, and DuckDB's delta extension — a reader independent of both writers —
must read what delta-spark wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from govlake import objectstore, pipeline, storage
from govlake.catalog import get_catalog
from govlake.config import DEFAULT_SPARK_JARS, Settings
from govlake.generate import generate_city

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = dt.date(2026, 11, 20)
VOLATILE = {"_run_id", "run_id", "first_seen", "last_seen", "computed_at", "withdrawn_at", "validated_at",
            "checked_at", "at", "_record_version", "_silver_id", "_silver_version"}
"""Columns a run stamps with its own id or clock, and the table and version gold/penalty_totals and
gold/base/penalty_subjects count (the engines commit the same rows in a different number of commits, to tables of
their own): the same on no two runs."""
LAYERS = ("silver", "quarantine", "gold/base", "gold/theme", "gold")
SCALE = int(os.environ.get("GOVLAKE_PARITY_SCALE", "120"))
"""The generated city's scale: small in `make test`; `make parity` runs these tests on the demo's (2000)."""


JARS = Path(os.environ["GOVLAKE_SPARK_JARS"]) if os.environ.get("GOVLAKE_SPARK_JARS") else DEFAULT_SPARK_JARS
"""Read once: the ``env`` fixture (under ``s3_lake``) clears the GOVLAKE_ variables of the test's environment."""


def lake_digest(lake: objectstore.Location) -> dict[str, tuple[int, str, pa.Schema]]:
    """Per table of silver, quarantine and gold: (rows, content hash of the sorted rows, schema)."""
    out = {}
    for layer in LAYERS:
        for name in objectstore.delta_tables(objectstore.join(lake, layer)):
            table = storage.open_table(objectstore.join(lake, layer, name)).to_pyarrow_table()
            table = table.drop_columns([c for c in table.column_names if c in VOLATILE])
            rows = sorted(repr(sorted(r.items())) for r in table.to_pylist())
            out[f"{layer}/{name}"] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest(),
                                           table.schema.remove_metadata())
    return out


@pytest.fixture(scope="module")
def bronze(tmp_path_factory, spark) -> Settings:
    """A small generated city (failing, duplicated and re-sent rows, repairs, copies) landed in bronze."""
    root = tmp_path_factory.mktemp("spark-pipeline")
    generate_city(root / "inbox", scale=SCALE, seed=11, as_of=AS_OF)
    settings = Settings(var=root / "bronze", as_of=AS_OF, inbox=root / "inbox", engine="spark", spark_jars=JARS)
    for code in get_catalog(settings.catalog_dir).resources:
        pipeline.ingest(code, settings=settings)   # on the Spark engine: a Spark task reads each file
    return settings


def _run(var: Path, *args: str, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    """``govlake <args>`` on the Spark engine over the lake of ``var`` (a process, so a JVM, of its own)."""
    env = {k: v for k, v in env.items() if not k.startswith("GOVLAKE_")}
    env |= {"GOVLAKE_VAR": str(var), "GOVLAKE_ENGINE": "spark", "GOVLAKE_AS_OF": AS_OF.isoformat(),
            "GOVLAKE_SPARK_JARS": str(JARS), **extra}
    # generous: on 2 shared cores a run on the test cluster's two 1-core executors takes many minutes
    return subprocess.run([str(Path(sys.executable).parent / "govlake"), *args], capture_output=True, text=True,
                          timeout=2400, env=env)


def _copy(bronze: Settings, name: str, engine: str) -> Settings:
    var = bronze.var.parent / name
    shutil.copytree(bronze.var, var)
    return dataclasses.replace(bronze, var=var, engine=engine)


@pytest.fixture(scope="module")
def lakes(bronze, spark) -> tuple[Settings, Settings]:
    """(DuckDB's lake, Spark's lake) after one ``govlake run`` each over the same bronze."""
    duck, on_spark = _copy(bronze, "duck", "duckdb"), _copy(bronze, "spark", "spark")
    pipeline.run(settings=duck, run_id="run-duck")
    pipeline.run(settings=on_spark, run_id="run-spark")
    return duck, on_spark


def test_every_table_has_the_same_rows_on_both_engines(lakes):
    duck, on_spark = (lake_digest(s.lake) for s in lakes)
    assert sorted(on_spark) == sorted(duck)
    assert len(duck) >= 24 and sum(n for n, _, _ in duck.values()) > SCALE  # scale ≈ rows delivered in all
    for table, (rows, digest, schema) in duck.items():
        assert on_spark[table][2] == schema, table
        assert on_spark[table][:2] == (rows, digest), table


def test_spark_wrote_them_and_they_reconcile(lakes):
    _, on_spark = lakes
    silver = storage.open_table(on_spark.lake / "silver" / "credit_penalty")
    assert any(c.get("engineInfo", "").startswith("Apache-Spark") for c in silver.history())
    assert {storage.commit_run_id(c) for c in silver.history()} >= {"run-spark"}
    con = duckdb.connect()
    storage.register(con, "recon", on_spark.lake / "meta" / "reconciliation")
    row = con.execute("select count(*), bool_and(balanced) from recon where run_id = 'run-spark'").fetchone()
    assert row == (8, True)


def test_an_independent_reader_reads_what_delta_spark_wrote(lakes):
    import duckdb_extension_delta

    _, on_spark = lakes
    ext = (Path(duckdb_extension_delta.__file__).parent / "extensions" / f"v{duckdb.__version__}"
           / "delta.duckdb_extension")
    con = duckdb.connect()
    con.execute(f"load '{ext}'")
    for layer in LAYERS:
        for name in objectstore.delta_tables(on_spark.lake / layer):
            path = on_spark.lake / layer / name
            ours = storage.open_table(path).to_pyarrow_table()
            theirs = con.sql(f"select * from delta_scan('{path}')").to_arrow_table()
            assert theirs.num_rows == ours.num_rows, path
            assert sorted(theirs.column_names) == sorted(ours.column_names), path


LANDED = "credit.penalty"
"""What the cluster run over S3 has landed: the penalty records, which every credit table, the gold penalty
subjects and the extract derive from. A run on the test cluster's two 1-core executors takes a minute or more
per resource; the ``lakes`` run covers all eight on Spark."""


def test_on_a_standalone_cluster_over_s3_a_run_killed_between_two_commits_is_finished_by_the_next(
        bronze, s3_lake, spark_cluster, spark_defaults, tmp_path):
    """The demo's shape at scale, and a crash in it: ``govlake run`` with its driver on the test cluster (master
    and two workers on 127.0.0.1, tests/_spark_cluster.py) and the executors reading and writing the lake on the
    S3 test server is killed -9 after the silver commit of credit.penalty's process step (the run's first),
    before its quarantine commit; the next ``govlake run`` finishes the step and the rest of the run, and the
    lake on S3 ends with the tables DuckDB builds from the same bronze on local disk. (Spark under local[2], on
    disk or on S3, is the same code with the executors in the driver's JVM: the ``lakes`` run covers it on disk,
    tests/test_spark_s3.py its S3A settings and concurrent writers; the DuckDB engine's crash points are
    tests/test_crash_recovery.py's.)"""
    from _spark_cluster import CLUSTER_ENV

    landed = Settings(var=tmp_path / "landed", as_of=AS_OF, inbox=bronze.inbox)
    pipeline.ingest(LANDED, settings=landed)
    duck = _copy(landed, "duck", "duckdb")
    pipeline.run(settings=duck, run_id="run-duck")
    fs, prefix = objectstore.filesystem(s3_lake)
    pafs.copy_files(str(landed.lake), prefix, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    on_cluster = {"GOVLAKE_LAKE": s3_lake, "GOVLAKE_SPARK_MASTER": spark_cluster.master, **CLUSTER_ENV,
                  **spark_defaults}
    crash = _run(tmp_path / "var", "run", env=dict(os.environ), **on_cluster,
                 GOVLAKE_CRASH_AT="process:credit.penalty:silver/credit_penalty")
    assert crash.returncode == -9, crash.stderr[-3000:]
    assert storage.open_table(objectstore.join(s3_lake, "silver", "credit_penalty")) is not None
    assert storage.open_table(objectstore.join(s3_lake, "quarantine", "credit_penalty")) is None
    done = _run(tmp_path / "var", "run", env=dict(os.environ), **on_cluster)
    assert done.returncode == 0, done.stderr[-3000:]
    built = lake_digest(duck.lake)
    assert lake_digest(s3_lake) == built
    assert built["silver/credit_penalty"][0] > 0 and built["quarantine/credit_penalty"][0] > 0
    assert built["gold/theme/penalty_publication"][0] > 0
    apps = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{spark_cluster.ui_port}/json/").read())
    assert any(a["name"] == "govlake" for a in apps["completedapps"])   # the run's driver was the cluster's app
