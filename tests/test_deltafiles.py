"""govlake.deltafiles: tables' data files written by pyarrow, committed by delta-rs — what delta-rs's own
writer did (file statistics, file sizes, schema merging, nothing left behind by a failure) checked against it."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from govlake import deltafiles, storage

UTC = dt.UTC


def _varied(n: int) -> pa.Table:
    """Every kind of column govlake's tables hold, with nulls, a row group of nothing but nulls in some, CJK text
    and long strings."""
    def nullable(values, every):
        return [None if i % every == 0 else v for i, v in enumerate(values)]

    return pa.table({
        "s": pa.array(nullable([f"名称{i:06d}" for i in range(n)], 7)),
        "long": pa.array([("长" * 3000) + str(i) if i % 2 else "a" for i in range(n)]),
        "first_null": pa.array([None] * (n // 2) + [f"v{i}" for i in range(n - n // 2)], pa.string()),
        "all_null": pa.nulls(n, pa.string()),
        "i64": pa.array(nullable(list(range(-n, n, 2)), 5), pa.int64()),
        "i32": pa.array(list(range(n)), pa.int32()),
        "d": pa.array(nullable([dt.date(2004, 1, 1) + dt.timedelta(days=i) for i in range(n)], 3), pa.date32()),
        "ts": pa.array([dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=i * 7.5) for i in range(n)],
                       pa.timestamp("us", tz="UTC")),
        "zoned": pa.array([dt.datetime(2026, 1, 1, 8, tzinfo=UTC)] * n, pa.timestamp("ms", tz="Asia/Shanghai")),
        "dec": pa.array([Decimal(i) / 8 for i in range(n)], pa.decimal128(18, 4)),
        "f": pa.array([i / 3 for i in range(n)], pa.float64()),
        "b": pa.array([i % 2 == 0 for i in range(n)]),
        "l": pa.array([[f"x{i}", None] for i in range(n)], pa.list_(pa.string())),
    })


def _actions(path: Path) -> list[dict]:
    return pa.table(storage.open_table(path).get_add_actions(flatten=True)).to_pylist()


def test_file_statistics_agree_with_delta_rs(tmp_path, monkeypatch):
    """Counts and null counts of every primitive column as delta-rs's writer keeps them; the bounds of strings,
    integers and dates equal to its own; none for the types it would round (decimals, floats, timestamps), for a
    column of nulls, nor for strings past Parquet's 4 KiB of statistics (delta-rs truncates them)."""
    monkeypatch.setattr(storage, "ROW_GROUP_ROWS", 1_000)
    data = _varied(5_000)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    storage.write_table(ours, data, mode="overwrite", run_id="r")
    write_deltalake(str(theirs), data, mode="overwrite")
    (mine,), (rs,) = _actions(ours), _actions(theirs)
    assert pq.read_metadata(ours / mine["path"]).num_row_groups == 5
    assert mine["size_bytes"] == (ours / mine["path"]).stat().st_size
    assert mine["num_records"] == rs["num_records"] == 5_000
    for column in ("s", "long", "first_null", "all_null", "i64", "i32", "d", "ts", "dec", "f", "b"):
        assert mine[f"null_count.{column}"] == rs[f"null_count.{column}"], column
    for column in ("s", "first_null", "i64", "i32", "d"):
        assert (mine[f"min.{column}"], mine[f"max.{column}"]) == (rs[f"min.{column}"], rs[f"max.{column}"]), column
    assert rs["min.long"] == "a" and rs["max.long"].startswith("长" * 20)
    for column in ("long", "all_null", "ts", "dec", "f", "b"):
        assert mine.get(f"min.{column}") is None and mine.get(f"max.{column}") is None, column
    # the table reads back as written (a zoned timestamp as the same instant in UTC microseconds, as delta-rs's
    # writer keeps it)
    back = storage.open_table(ours).to_pyarrow_table().sort_by("i32")
    assert back.schema.field("zoned").type == pa.timestamp("us", tz="UTC")
    assert back.equals(data.cast(back.schema))
    assert back.column("zoned")[0].as_py() == dt.datetime(2026, 1, 1, 8, tzinfo=UTC)


def test_files_are_cut_at_the_target_size_in_row_groups_of_the_set_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "ROW_GROUP_ROWS", 10_000)
    monkeypatch.setattr(storage, "FILE_BYTES", 1 << 20)
    n = 300_000
    data = pa.table({"k": pa.array([f"key-{i * 7919 % n:08d}" for i in range(n)]), "v": pa.array(range(n))})
    storage.write_table(tmp_path / "t", data.to_batches(max_chunksize=3_000), schema=data.schema, mode="append",
                        run_id="r")
    actions = _actions(tmp_path / "t")
    assert sum(a["num_records"] for a in actions) == n and len(actions) >= 3
    *whole, last = sorted(actions, key=lambda a: a["size_bytes"], reverse=True)
    assert all(0.9 * (1 << 20) <= a["size_bytes"] <= 1.2 * (1 << 20) for a in whole), actions
    for a in actions:
        meta = pq.read_metadata(tmp_path / "t" / a["path"])
        assert max(meta.row_group(g).num_rows for g in range(meta.num_row_groups)) <= 10_000


def test_an_append_merges_the_schema_and_an_overwrite_replaces_it(tmp_path):
    path = tmp_path / "t"
    storage.write_table(path, pa.table({"a": pa.array([1, 2], pa.int64()), "b": ["x", "y"]}), mode="append",
                        run_id="r1")
    # a column the table lacks is added (a commit of its own, before the data's, without the step's stamp), one the
    # data lacks stays; a narrower integer is widened to the table's
    storage.write_table(path, pa.table({"a": pa.array([3], pa.int32()), "c": [dt.date(2026, 1, 2)]}), mode="append",
                        run_id="r2", txn=("step", 5))
    t = storage.open_table(path)
    assert t.schema().to_arrow().names == ["a", "b", "c"]
    assert [c["operation"] for c in t.history()] == ["WRITE", "ADD COLUMN", "CREATE TABLE"]
    assert t.transaction_version("step") == 5
    assert storage.open_table(path, version=1).transaction_version("step") is None
    assert sorted(t.to_pyarrow_table().to_pylist(), key=lambda r: r["a"]) == [
        {"a": 1, "b": "x", "c": None}, {"a": 2, "b": "y", "c": None}, {"a": 3, "b": None, "c": dt.date(2026, 1, 2)}]
    storage.write_table(path, pa.table({"z": ["only"]}), mode="overwrite", run_id="r3")
    t = storage.open_table(path)
    assert t.schema().to_arrow().names == ["z"] and t.to_pyarrow_table().to_pylist() == [{"z": "only"}]
    assert [storage.commit_run_id(c) for c in t.history()] == ["r3", "r2", "r2", "r1"]
    # nothing at all: an empty table with the data's schema, or an overwrite that empties it
    storage.write_table(tmp_path / "empty", pa.table({"k": pa.array([], pa.string())}), mode="append", run_id="r")
    assert storage.open_table(tmp_path / "empty").to_pyarrow_table().num_rows == 0
    storage.write_table(path, pa.table({"z": pa.array([], pa.string())}), mode="overwrite", run_id="r4")
    assert storage.row_count(path) == 0


@pytest.mark.parametrize("file_bytes", [4 << 10, 1 << 20])  # several files closed before it fails; one still open
def test_a_write_whose_data_fails_commits_nothing_and_leaves_no_file(tmp_path, monkeypatch, file_bytes):
    monkeypatch.setattr(storage, "ROW_GROUP_ROWS", 1_000)
    monkeypatch.setattr(storage, "FILE_BYTES", file_bytes)
    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": ["a"]}), mode="append", run_id="r1")
    before = sorted(p.name for p in path.glob("*.parquet"))
    schema = pa.schema([("k", pa.string())])

    def batches():
        for i in range(20):  # row groups written before it fails
            yield pa.record_batch([pa.array([f"{i}-{j}" for j in range(1_000)])], schema=schema)
        raise ValueError("the department's file broke here")

    with pytest.raises(ValueError, match="broke here"):
        storage.write_table(path, batches(), schema=schema, mode="append", run_id="r2")
    assert storage.open_table(path).version() == 0
    assert sorted(p.name for p in path.glob("*.parquet")) == before


def _append_many(path: str, writer: int, times: int, start) -> None:
    start.wait(60)  # the first writes (each creating the table) at one moment
    for i in range(times):
        storage.write_table(Path(path), pa.table({"w": [writer] * 10, "i": [i] * 10}), mode="append",
                            run_id=f"w{writer}-{i}")


def test_processes_appending_at_once_lose_no_commit(tmp_path):
    """Three processes create the table and append to it at once: every append is in the table once (delta-rs
    retries an append that lost the race for a version, and a creation that lost it appends instead)."""
    path = str(tmp_path / "t")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_append_many, args=(path, w, 12, start)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    rows = storage.open_table(Path(path)).to_pyarrow_table().to_pylist()
    assert len(rows) == 3 * 12 * 10
    assert sorted({(r["w"], r["i"]) for r in rows}) == [(w, i) for w in range(3) for i in range(12)]
    assert len(storage.open_table(Path(path)).file_uris()) == 36
    # a writer that found no table, whose creation finds one made meanwhile, commits into it
    t = pa.table({"w": [9], "i": [0]})
    deltafiles.write(Path(path), pa.RecordBatchReader.from_batches(t.schema, t.to_batches()), mode="append",
                     table=None, commit=storage._commit("late", None), target_bytes=1 << 20, row_group_rows=1_000)
    assert storage.row_count(Path(path)) == 3 * 12 * 10 + 1


def _create_each(root: str, writer: int, tables: int, start) -> None:
    for t in range(tables):
        start.wait(60)  # every writer finds no table t, and creates it, at one moment
        storage.write_table(Path(root) / f"t{t}", pa.table({"w": [writer]}), mode="append", run_id=f"w{writer}")


def test_of_processes_creating_a_table_at_once_one_creates_it_and_the_others_append(tmp_path):
    """The creation that loses the race for version 0 appends to the winner's table, not a second CREATE on top of
    it: delta-rs retried a lost creation as version 1 (its own table id, protocol and schema), and an append read
    before that commit then failed with "Metadata changed since last commit" (two in three tables had one here)."""
    import json

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_create_each, args=(str(tmp_path), w, 10, start)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    for t in range(10):
        log = sorted((tmp_path / f"t{t}" / "_delta_log").glob("*.json"))
        actions = [{*json.loads(line)} for commit in log for line in commit.read_text().splitlines()]
        assert sum("metaData" in a for a in actions) == sum("protocol" in a for a in actions) == 1, log
        assert sorted(storage.open_table(tmp_path / f"t{t}").to_pyarrow_table()["w"].to_pylist()) == [0, 1, 2]


def test_the_bounds_are_what_a_reader_skips_files_by(tmp_path):
    """delta-rs reads the bounds kept: of three files, a filter on a date or a key selects the one holding it."""
    import pyarrow.dataset as ds

    path = tmp_path / "t"
    for month in (1, 2, 3):
        storage.write_table(path, pa.table({"d": [dt.date(2026, month, day) for day in range(1, 29)],
                                            "k": [f"k{month}{day:02d}" for day in range(1, 29)]}),
                            mode="append", run_id=f"m{month}")
    data = storage.open_table(path).to_pyarrow_dataset()
    assert len(list(data.get_fragments())) == 3
    for where in (ds.field("d") == pa.scalar(dt.date(2026, 2, 14)), ds.field("k") == "k305"):
        (fragment,) = data.get_fragments(filter=where)
        assert fragment.to_table(filter=where).num_rows == 1


def test_the_read_ahead_thread_ends_with_the_writing():
    """The batches are read on a thread of their own; when the writing stops early (a full disk, say), the thread
    stops too, and an error reading them is raised to the writer."""
    import itertools
    import threading

    def endless():
        for i in itertools.count():
            yield pa.table({"i": [i]})

    ahead = deltafiles._ahead(endless(), depth=2)
    assert [next(ahead)["i"][0].as_py() for _ in range(3)] == [0, 1, 2]
    ahead.close()
    assert not [t for t in threading.enumerate() if t.name == "govlake-read-ahead"]

    def broken():
        yield pa.table({"i": [0]})
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        list(deltafiles._ahead(broken()))


def test_a_commit_that_landed_and_then_failed_keeps_its_files(tmp_path, monkeypatch):
    """A commit can land and its call still fail after (a checkpoint written on a full disk, say): the files the
    log now names stay; a commit that did not land leaves no file."""
    from deltalake import DeltaTable

    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": ["a"]}), mode="append", run_id="r1")
    real = DeltaTable.create_write_transaction

    def landed_then_failed(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise OSError("No space left on device (writing the checkpoint)")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", landed_then_failed)
    with pytest.raises(OSError, match="No space left"):
        storage.write_table(path, pa.table({"k": ["b", "c"]}), mode="append", run_id="r2")
    assert sorted(storage.open_table(path).to_pyarrow_table()["k"].to_pylist()) == ["a", "b", "c"]

    def failed(self, *args, **kwargs):
        raise OSError("No space left on device (writing the commit)")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", failed)
    with pytest.raises(OSError, match="writing the commit"):
        storage.write_table(path, pa.table({"k": ["d"]}), mode="append", run_id="r3")
    monkeypatch.setattr(DeltaTable, "create_write_transaction", real)
    assert sorted(storage.open_table(path).to_pyarrow_table()["k"].to_pylist()) == ["a", "b", "c"]
    assert len(list(path.glob("*.parquet"))) == len(storage.open_table(path).file_uris()) == 2


def _duck_rows(table: pa.Table, sql: str = "select * from src", schema: pa.Schema | None = None):
    """``table`` as a DuckDB session's relation ``src``, and the rows of ``sql`` over it as govlake.compute hands
    them to storage."""
    import duckdb

    from govlake.compute import DuckCompute

    con = duckdb.connect(config={"preserve_insertion_order": False})  # as storage.connect's: parallel writes
    con.register("src_arrow", table)
    con.execute("create table src as select * from src_arrow")
    return DuckCompute(con).data(sql, schema=schema)


def _writers(path: Path) -> set[str]:
    return {pq.read_metadata(f).created_by.split(" ")[0] for f in path.glob("*.parquet")}


def test_a_queries_rows_are_written_by_duckdb_with_the_same_log_as_pyarrows(tmp_path, monkeypatch):
    """A DuckDB query's rows bound for a local table are written by DuckDB's COPY, in files cut near the target
    size, committed with the statistics pyarrow's files get: the same counts and null counts, the same bounds of
    strings, integers and dates; a string too long for exact bounds gets bounds that still hold every value (a
    prefix below, a raised prefix above) or none. The table reads back as the rows, types and all."""
    monkeypatch.setattr(storage, "ROW_GROUP_ROWS", 2_048)  # DuckDB's least: its vector of rows
    monkeypatch.setattr(deltafiles, "FILE_ROWS", 4_096)
    n = 12_000
    data = _varied(n)
    ours, arrow = tmp_path / "duck", tmp_path / "arrow"
    storage.write_table(ours, _duck_rows(data), mode="overwrite", run_id="r")
    storage.write_table(arrow, data, mode="overwrite", run_id="r")
    assert _writers(ours) == {"DuckDB"} and _writers(arrow) == {"parquet-cpp-arrow"}
    duck = _actions(ours)
    # a new table's files are planned at FILE_ROWS rows (DuckDB writes in parallel: a file may take a little more)
    assert sum(a["num_records"] for a in duck) == n and len(duck) >= 3
    assert all(pq.read_metadata(ours / a["path"]).num_row_groups <= 3 for a in duck)
    assert all(a["size_bytes"] == (ours / a["path"]).stat().st_size for a in duck)
    for a in duck:  # each file's statistics are its own
        rows = pq.read_table(ours / a["path"])
        assert a["num_records"] == rows.num_rows
        for column in ("s", "first_null", "all_null", "i64", "d", "ts", "dec", "f", "b"):
            assert a[f"null_count.{column}"] == rows[column].null_count, column
        for column in ("s", "i64", "i32", "d"):
            values = rows[column].drop_null()
            assert (a[f"min.{column}"], a[f"max.{column}"]) == (
                pa.compute.min(values).as_py(), pa.compute.max(values).as_py()), column
        if a.get("min.long") is not None:
            assert a["min.long"] <= pa.compute.min(rows["long"]).as_py()
            assert a["max.long"] >= pa.compute.max(rows["long"]).as_py()
        for column in ("all_null", "ts", "dec", "f", "b"):
            assert a.get(f"min.{column}") is None and a.get(f"max.{column}") is None, column
    back = storage.open_table(ours).to_pyarrow_table().sort_by("i32")
    assert storage.open_table(ours).schema().to_arrow() == storage.open_table(arrow).schema().to_arrow()
    assert back.equals(storage.open_table(arrow).to_pyarrow_table().sort_by("i32").cast(back.schema))
    # an existing table's files are planned from its bytes per row: near the target size
    per_row = sum(a["size_bytes"] for a in duck) / n
    monkeypatch.setattr(storage, "FILE_BYTES", int(per_row * 6_144))
    storage.write_table(ours, _duck_rows(data), mode="overwrite", run_id="r2")
    assert 2 <= len(_actions(ours)) <= 3


def test_rows_of_other_types_than_the_tables_are_cast_and_written_by_pyarrow(tmp_path):
    """An append whose query gives a column another type than the table's (an int32 into an int64 column), a cast
    to a schema the query's types are not, and a table written in order (clustered) go through pyarrow, cast."""
    path = tmp_path / "t"
    storage.write_table(path, pa.table({"a": pa.array([1], pa.int64())}), mode="append", run_id="r1")
    storage.write_table(path, _duck_rows(pa.table({"a": pa.array([2, 3], pa.int32())})), mode="append",
                        run_id="r2")
    assert _writers(path) == {"parquet-cpp-arrow"}
    assert sorted(storage.open_table(path).to_pyarrow_table()["a"].to_pylist()) == [1, 2, 3]
    cast = pa.schema([("a", pa.string())])
    storage.write_table(tmp_path / "cast", _duck_rows(pa.table({"a": [1, 2]}), schema=cast), mode="append",
                        run_id="r")
    assert sorted(storage.open_table(tmp_path / "cast").to_pyarrow_table()["a"].to_pylist()) == ["1", "2"]
    assert _writers(tmp_path / "cast") == {"parquet-cpp-arrow"}
    ordered = pa.table({"d": [dt.date(2026, 1, day) for day in range(1, 29)]})
    storage.write_table(tmp_path / "c", _duck_rows(ordered, "select * from src order by d"), mode="append",
                        run_id="r", cluster_by="d")
    assert _writers(tmp_path / "c") == {"parquet-cpp-arrow"}
    assert storage.open_table(tmp_path / "c").to_pyarrow_table()["d"].to_pylist() == ordered["d"].to_pylist()


def test_a_copy_that_fails_commits_nothing_and_leaves_no_file(tmp_path, monkeypatch):
    """DuckDB's COPY failing after it wrote files (a value its query cannot compute, far into the rows) leaves the
    table as it was: no commit, no file of the write; no rows at all: no file either."""
    monkeypatch.setattr(storage, "ROW_GROUP_ROWS", 1_000)
    monkeypatch.setattr(storage, "FILE_BYTES", 4 << 10)
    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": ["a"]}), mode="append", run_id="r1")
    before = sorted(p.name for p in path.glob("*.parquet"))
    many = pa.table({"i": pa.array(range(200_000), pa.int64())})
    failing = _duck_rows(many, "select case when i < 190000 then i::varchar else error('broke at row ' || i) end "
                               "as k from src")
    with pytest.raises(Exception, match="broke at row"):
        storage.write_table(path, failing, mode="append", run_id="r2")
    assert storage.open_table(path).version() == 0
    assert sorted(p.name for p in path.glob("*.parquet")) == before
    storage.write_table(path, _duck_rows(many, "select i::varchar as k from src where i < 0"), mode="append",
                        run_id="r3")
    assert storage.open_table(path).version() == 1 and storage.row_count(path) == 1
    assert sorted(p.name for p in path.glob("*.parquet")) == before


_KILLED_COPY = """
import sys
import duckdb
from pathlib import Path
from govlake import deltafiles, storage
from govlake.compute import DuckCompute
deltafiles.FILE_ROWS = 4_096
storage.ROW_GROUP_ROWS = 2_048
con = duckdb.connect(config={"preserve_insertion_order": False, "threads": 1})
rows = DuckCompute(con).data("select 'k' || range as k, md5(range::varchar) as v from range(50000000)")
print("writing", flush=True)
storage.write_table(Path(sys.argv[1]), rows, mode="append", run_id="killed")
"""


def test_a_copy_killed_midway_leaves_the_table_as_it_was_and_vacuum_takes_its_files(tmp_path):
    """kill -9 while DuckDB's COPY writes a table's files: the table reads as before (its log names none of them),
    the next write commits, and a full vacuum removes the killed write's files."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": ["a"], "v": ["b"]}), mode="append", run_id="r1")
    before = {p.name for p in path.glob("*.parquet")}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_COPY, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 120
    while len({p.name for p in path.glob("*.parquet")} - before) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    left = {p.name for p in path.glob("*.parquet")} - before
    assert len(left) >= 3, "the COPY was not caught writing"
    table = storage.open_table(path)
    assert table.version() == 0 and table.to_pyarrow_table().to_pylist() == [{"k": "a", "v": "b"}]
    storage.write_table(path, _duck_rows(pa.table({"k": ["c"], "v": ["d"]})), mode="append", run_id="r2")
    assert sorted(storage.open_table(path).to_pyarrow_table()["k"].to_pylist()) == ["a", "c"]
    storage.open_table(path).vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
    assert not left & {p.name for p in path.glob("*.parquet")}
    assert sorted(storage.open_table(path).to_pyarrow_table()["k"].to_pylist()) == ["a", "c"]
