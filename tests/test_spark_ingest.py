"""Ingest on the Spark engine: each department file is decoded by a Spark task (govlake.ingest._spark) and lands
in bronze through delta-spark — with the rows, row numbers, log and rejections of the driver's ingest.

The city is generated once and landed twice from the same inbox: on the DuckDB engine (govlake's readers in
this process, delta-rs writing) and on the Spark engine (the same readers in the executors' Python workers,
delta-spark writing). Bronze and the ingest log must agree but for the batch's own ids and clocks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from govlake import pipeline, storage
from govlake.catalog import get_catalog
from govlake.config import DEFAULT_SPARK_JARS, Settings
from govlake.generate import generate_city
from govlake.ingest import IngestError, ingest_resource
from govlake.ingest._bronze import Provenance
from govlake.ingest._encoding import sniff
from govlake.ingest._paths import open_source
from govlake.ingest._spark import FileTask, read
from test_ingest import HEADER, _csv_text, _row, _write

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = dt.date(2026, 11, 20)
JARS = Path(os.environ["GOVLAKE_SPARK_JARS"]) if os.environ.get("GOVLAKE_SPARK_JARS") else DEFAULT_SPARK_JARS
PER_BATCH = {"_batch_id", "_received_at"}
"""Bronze columns a landing stamps with its own id and clock."""
LOGGED = ("source", "status", "rows", "source_hash", "encoding", "fields", "error")


def _bronze(settings: Settings, slug: str) -> list[tuple]:
    table = storage.open_table(storage.table_path(settings, "bronze", slug))
    if table is None:
        return []
    rows = table.to_pyarrow_table()
    return sorted(tuple(sorted((k, v) for k, v in r.items() if k not in PER_BATCH)) for r in rows.to_pylist())


def _log(settings: Settings) -> list[tuple]:
    table = storage.open_table(storage.table_path(settings, "meta", "ingest_log")).to_pyarrow_table()
    return sorted(tuple(repr(r.get(k)) for k in LOGGED) for r in table.to_pylist() if r["status"] != "landing")


@pytest.fixture(scope="module")
def landed(tmp_path_factory, spark) -> tuple[Settings, Settings]:
    """(the DuckDB engine's lake, the Spark engine's lake), every resource of one city ingested into each."""
    root = tmp_path_factory.mktemp("spark-ingest")
    generate_city(root / "inbox", scale=120, seed=5, as_of=AS_OF)
    duck = Settings(var=root / "duck", inbox=root / "inbox", as_of=AS_OF)
    on_spark = dataclasses.replace(duck, var=root / "spark", engine="spark", spark_jars=JARS)
    for settings in (duck, on_spark):
        for code in get_catalog(settings.catalog_dir).resources:
            pipeline.ingest(code, settings=settings, run_id=f"ingest-{code}")
    return duck, on_spark


def test_every_file_lands_the_same_rows_and_log_as_on_the_driver(landed):
    duck, on_spark = landed
    catalog = get_catalog(duck.catalog_dir)
    kinds = set()
    for res in catalog.resources.values():
        assert _bronze(on_spark, res.slug) == _bronze(duck, res.slug), res.code
        kinds.add(res.source.kind)
    assert {"csv", "xlsx", "jsonl"} <= kinds
    assert _log(on_spark) == _log(duck)
    assert sum(1 for r in _log(duck) if r[1] == "'landed'") >= 10


def test_delta_spark_wrote_the_files_and_the_driver_the_database_window(landed):
    _, on_spark = landed
    catalog = get_catalog(on_spark.catalog_dir)
    for res in catalog.resources.values():
        table = storage.open_table(storage.table_path(on_spark, "bronze", res.slug))
        writers = {"Apache-Spark" if c.get("engineInfo", "").startswith("Apache-Spark") else "delta-rs"
                   for c in table.history() if c.get("operation") in ("WRITE", "CREATE TABLE")}
        assert writers == ({"delta-rs"} if res.source.kind == "db" else {"Apache-Spark"}), res.code
        assert {storage.commit_run_id(c) for c in table.history()} == {f"ingest-{res.code}"}, res.code


@pytest.mark.parametrize("name, data", [
    # the reader refuses a JSON array in the middle of its elements (in the Spark task)
    ("broken.json", b'[{"a": "1"}, {"b": '),
    # Python's csv module refuses a record longer than its field limit (in the Spark task)
    ("endless.csv", (_csv_text(HEADER, [_row(1)]) + "a" * (9 << 20)).encode()),
    # the driver refuses an undecodable file before any task runs
    ("gbk.csv", _csv_text(HEADER, [_row(i) for i in range(1, 3000)]).encode("gbk") + b"\xff\xfe,\r\n"),
])
def test_a_broken_file_is_rejected_with_the_drivers_message_and_nothing_lands(tmp_path, spark, name, data):
    errors = {}
    for engine in ("duckdb", "spark"):
        settings = Settings(var=tmp_path / engine, inbox=tmp_path / "inbox", engine=engine, spark_jars=JARS)
        path = _write(settings.inbox / name, data)
        with pytest.raises(IngestError) as info:
            ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
        [batch] = info.value.result.batches
        assert (batch.status, batch.rows) == ("rejected", 0)
        assert _bronze(settings, "credit_penalty") == []
        assert [r[:2] for r in _log(settings)] == [(repr(str(path)), "'rejected'")]
        errors[engine] = batch.error
    assert errors["spark"] == errors["duckdb"] and name in errors["spark"]


def test_good_files_still_land_beside_a_broken_one(tmp_path, spark):
    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", engine="spark", spark_jars=JARS)
    good = _write(settings.inbox / "a.csv", _csv_text(HEADER, [_row(1), _row(2)]))
    bad = _write(settings.inbox / "b.json", b'[{"a": "1"}, {"b": ')
    with pytest.raises(IngestError):
        ingest_resource("credit.penalty", files=[good, bad], settings=settings, run_id="r1")
    assert [(r[0], r[1], r[2]) for r in _log(settings)] == [
        (repr(str(good)), "'landed'", "2"), (repr(str(bad)), "'rejected'", "0")]
    assert [dict(r)["_row_number"] for r in _bronze(settings, "credit_penalty")] == [1, 2]


def _task(settings: Settings, path: Path) -> FileTask:
    with open_source(path, inbox=settings.inbox) as source:
        facts = sniff(source)
        mtime = source.stat.st_mtime_ns
    provenance = Provenance("credit.penalty", "b1", str(path), facts.sha256, dt.datetime.now(dt.UTC))
    return FileTask(str(path), str(settings.inbox), "csv", facts, mtime, get_catalog().resource("credit.penalty"),
                    provenance)


def test_a_task_refuses_a_file_that_is_not_the_one_the_driver_hashed(settings):
    path = _write(settings.inbox / "a.csv", _csv_text(HEADER, [_row(1), _row(2)]))
    task = _task(settings, path)
    assert sum(b.num_rows for b in read(task)) == 3  # two rows and the trailer
    stat = path.stat()
    path.write_bytes(path.read_bytes().replace(b"-1", b"-9"))  # same size...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the same modification time
    with pytest.raises(IngestError, match="content changed after the driver read it"):
        list(read(task))
    _write(path, _csv_text(HEADER, [_row(1), _row(2), _row(3)]))
    with pytest.raises(IngestError, match="the file changed after the driver read it"):
        list(read(task))
    path.unlink()
    with pytest.raises(IngestError, match="no such file on this Spark executor .*GOVLAKE_SPARK_INGEST=driver"):
        list(read(task))


def test_with_ingest_on_the_driver_delta_rs_lands_the_files(tmp_path, spark):
    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", engine="spark", spark_jars=JARS,
                        spark_ingest="driver")
    path = _write(settings.inbox / "a.csv", _csv_text(HEADER, [_row(1)]))
    ingest_resource("credit.penalty", files=[path], settings=settings, run_id="r1")
    table = storage.open_table(storage.table_path(settings, "bronze", "credit_penalty"))
    assert table.to_pyarrow_table().num_rows == 1
    assert not any(c.get("engineInfo", "").startswith("Apache-Spark") for c in table.history())


def test_killed_after_a_files_bronze_commit_the_next_ingest_recovers_it_and_lands_the_rest(
        tmp_path, spark, spark_defaults):
    """``govlake ingest`` on the Spark engine, killed -9 right after delta-spark committed the second file's rows
    (before the log's outcome); the next ingest finds that batch in bronze, lands the third file, and every
    row is in bronze once."""
    inbox = tmp_path / "inbox"
    files = [_write(inbox / "credit" / "penalty" / f"amr_2026112{n}.csv",
                    _csv_text(HEADER, [_row(10 * n + i) for i in range(3)])) for n in range(3)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_")}
    env |= {"GOVLAKE_VAR": str(tmp_path / "var"), "GOVLAKE_INBOX": str(inbox), "GOVLAKE_ENGINE": "spark",
            "GOVLAKE_SPARK_JARS": str(JARS), "GOVLAKE_AS_OF": AS_OF.isoformat(), **spark_defaults}
    govlake = [str(Path(sys.executable).parent / "govlake"), "ingest", "credit.penalty"]
    killed = subprocess.run(govlake, env=env | {"GOVLAKE_CRASH_AT": "commit:bronze/credit_penalty:2"},
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    settings = Settings(var=tmp_path / "var", inbox=inbox)
    assert len(_bronze(settings, "credit_penalty")) == 6
    done = subprocess.run(govlake, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [dict(r) for r in _bronze(settings, "credit_penalty")]
    assert sorted((r["_source"], r["_row_number"]) for r in rows) == [(str(f), i) for f in files for i in (1, 2, 3)]
    log = storage.open_table(storage.table_path(settings, "meta", "ingest_log")).to_pyarrow_table().to_pylist()
    assert sorted((r["source"], r["rows"], r["error"]) for r in log if r["status"] == "landed") == [
        (str(files[0]), 3, None), (str(files[1]), 3, "outcome recovered from bronze"), (str(files[2]), 3, None)]
