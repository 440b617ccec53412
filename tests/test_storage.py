"""govlake.storage: what every Delta write through delta-rs guarantees beyond the rows themselves."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from govlake import locks, steps, storage
from govlake.config import Settings


def _row_groups(path) -> list[int]:
    dt = storage.open_table(path)
    return [pq.ParquetFile(uri.removeprefix("file://")).metadata.row_group(i).num_rows
            for uri in dt.file_uris() for i in range(pq.ParquetFile(uri.removeprefix("file://")).num_row_groups)]


def test_writes_and_merges_keep_row_groups_small(tmp_path):
    """delta-rs holds a file's open row group in memory: writes and merges cap it at ROW_GROUP_ROWS rows."""
    n = storage.ROW_GROUP_ROWS * 2 + 10
    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": pa.array(range(n)), "v": pa.array(["a"] * n)}), mode="append",
                        run_id="r1")
    written = _row_groups(path)
    assert sum(written) == n and len(written) >= 3 and max(written) <= storage.ROW_GROUP_ROWS

    # a merge that matches a row in every row group rewrites the file: its row groups are capped too
    updates = pa.table({"k": pa.array([0, storage.ROW_GROUP_ROWS, n - 1, n]), "v": pa.array(["b"] * 4)})
    storage.merge_table(path, updates, key=["k"], run_id="r2")
    merged = _row_groups(path)
    assert sum(merged) == n + 1 and max(merged) <= storage.ROW_GROUP_ROWS
    assert storage.open_table(path).to_pyarrow_table().column("v").to_pylist().count("b") == 4


def test_a_merge_rewrites_only_the_files_holding_the_source_s_keys(tmp_path, monkeypatch):
    """merge_table on delta-rs replaces the rows of the source's keys in one commit that removes the files holding
    one of them and adds their other rows with the source's (not a MERGE, which holds the table in memory, nor a
    predicate overwrite): a row the span's lists also select (a composite key's values paired otherwise) is kept
    as it was, its file untouched, and so is the value of a column the source lacks; a key with a quote in it is
    a literal, not SQL. With more values than it lists, the span is the whole table and the result is the same."""
    path = tmp_path / "t"
    for f in range(10):
        ids = range(f * 100, f * 100 + 100)
        storage.write_table(path, pa.table({"a": [f"a{i}" for i in ids], "b": [i % 3 for i in ids],
                                            "v": ["old"] * 100, "extra": [f"x{i}" for i in ids]}),
                            mode="append", run_id=f"r{f}")
    # (a5, 1): a5 is in the source's list of a, 1 in its list of b, but the source has no such key
    storage.write_table(path, pa.table({"a": ["a5"], "b": [1], "v": ["other key"], "extra": ["kept"]}),
                        mode="append", run_id="r10")
    source = pa.table({"a": ["a5", "a250", "a'new"], "b": [2, 1, 0], "v": ["new"] * 3,
                       "_gone": [False, True, False]})
    assert storage.key_span(source, ["a", "b"]) == "(a in ('a5', 'a250', 'a''new')) and (b in (2, 1, 0))"
    metrics = storage.merge_table(path, source, key=["a", "b"], run_id="r11", delete_flag="_gone")
    # the files of a5 and a250 rewritten (their 198 other rows copied), not the other key's
    assert (metrics["num_target_rows_written"], metrics["num_target_rows_removed"],
            metrics["num_target_rows_copied"], metrics["num_removed_files"]) == (2, 2, 198, 2)
    assert _last_commit(path) == {"removed": 2, "added": 1, "run_id": "r11"}

    def content() -> dict:
        t = storage.open_table(path).to_pyarrow_table()
        return {(r["a"], r["b"]): (r["v"], r["extra"]) for r in t.to_pylist()}

    after = content()
    expected = {(f"a{i}", i % 3): ("old", f"x{i}") for i in range(1000) if i != 250}
    expected |= {("a5", 2): ("new", None), ("a'new", 0): ("new", None), ("a5", 1): ("other key", "kept")}
    assert after == expected and storage.row_count(path) == len(expected)

    # more values than key_span lists: the whole table is the span, rewritten, the same upsert
    monkeypatch.setattr(storage, "KEY_LIST_VALUES", 1)
    again = pa.table({"a": ["a6", "a7"], "b": [0, 1], "v": ["again"] * 2, "_gone": [False, False]})
    assert storage.key_span(again, ["a", "b"]) == "true"
    storage.merge_table(path, again, key=["a", "b"], run_id="r12", delete_flag="_gone")
    assert content() == after | {("a6", 0): ("again", None), ("a7", 1): ("again", None)}

    # a stream with its keys apart (the process step's): streamed, the same upsert; a new table made from one
    monkeypatch.setattr(storage, "KEY_LIST_VALUES", 20_000)
    stream = pa.table({"a": ["a8", "a9", "a10"], "b": [2, 0, 1], "v": ["streamed"] * 3, "_gone": [False, True, False]})
    metrics = storage.merge_table(path, stream.to_reader(max_chunksize=1), key=["a", "b"], run_id="r13",
                                  delete_flag="_gone", keys=stream.select(["a", "b"]))
    assert (metrics["num_target_rows_written"], metrics["num_target_rows_removed"]) == (2, 3)
    assert content() == {k: v for k, v in after.items() if k != ("a9", 0)} | {
        ("a6", 0): ("again", None), ("a7", 1): ("again", None), ("a8", 2): ("streamed", None),
        ("a10", 1): ("streamed", None)}
    fresh = tmp_path / "fresh"
    storage.merge_table(fresh, stream.to_reader(max_chunksize=1), key=["a", "b"], run_id="r14", delete_flag="_gone",
                        keys=stream.select(["a", "b"]))
    assert sorted(storage.open_table(fresh).to_pyarrow_table().to_pylist(), key=lambda r: r["a"]) == [
        {"a": "a10", "b": 1, "v": "streamed"}, {"a": "a8", "b": 2, "v": "streamed"}]


def _dated(keys, day0, step: int, value: str) -> pa.Table:
    import datetime as dt

    return pa.table({"k": pa.array([f"k{i:07d}" for i in keys]),
                     "c": pa.array([None if i % 997 == 0 else dt.date(2020, 1, 1) + dt.timedelta(days=day0 + i // step)
                                    for i in keys], pa.date32()),
                     "v": pa.array([value] * len(keys))})


def _last_commit(path) -> dict:
    """The files the table's last commit removed and added, and its run id (from the log)."""
    import json

    version = storage.open_table(path).version()
    actions = [json.loads(line) for line in (path / "_delta_log" / f"{version:020d}.json").read_text().splitlines()]
    return {"removed": sum("remove" in a for a in actions), "added": sum("add" in a for a in actions),
            "run_id": next(a["commitInfo"]["govlake.run_id"] for a in actions if "commitInfo" in a)}


def _content(path) -> list[tuple]:
    t = storage.open_table(path).to_pyarrow_table().sort_by("k")
    return list(zip(*(t.column(c).to_pylist() for c in ("k", "c", "v"))))


def _merged(settings, table: str, data: pa.Table, run_id: str, cluster_by: str | None) -> dict:
    """``data`` merged by ``k`` into lake table ``table`` by a step's intent (govlake.steps), as the credit step
    merges."""
    return steps.run(settings, "test", lock=locks.PUBLISH, run_id=run_id, params=dict, reads=lambda _: [],
                     body=lambda intent: intent.merge_table(table, data, key=["k"], delete_flag="_gone",
                                                           cluster_by=cluster_by))


def test_a_clustered_merge_rewrites_only_the_files_of_its_dates_and_matches_a_plain_merge(tmp_path, monkeypatch):
    """cluster_by: the day's changes share a span of the clustering column; only the files overlapping that span
    are read and rewritten, and the table ends exactly as a merge by key alone leaves it — rows whose date
    changed included, null dates included; the new rows are appended apart (they would widen the files)."""
    monkeypatch.setattr(storage, "CLUSTERED_FILE_BYTES", 64 << 10)
    settings = Settings(var=tmp_path / "var")
    n = 200_000
    base = _dated(range(n), 0, 200, "old")            # 1,000 dates, 200 rows each, sorted (null dates last)
    base = base.sort_by("c")
    for table, cluster in (("silver/clustered", "c"), ("silver/plain", None)):
        storage.write_table(settings.lake / table, base, mode="overwrite", run_id="r0", cluster_by=cluster)
    files = len(storage.open_table(settings.lake / "silver/clustered").file_uris())
    assert files >= 10

    # a day, all on one date: 300 rows updated (one of them deleted instead), a row whose date moves there, a
    # null-dated row, new keys
    day = pa.concat_tables([
        _dated(range(50_000, 50_300), 0, 200, "updated"),
        # dated 50 days on in the table, it moves to the day's date: found where it was, not added again
        pa.table({"k": ["k0060000"], "c": _dated([50_000], 0, 200, "")["c"], "v": ["moved"]}),
        pa.table({"k": [f"k{997 * 40:07d}"], "c": pa.array([None], pa.date32()), "v": ["null date"]}),
        _dated(range(n + 1, n + 501), 250 - n // 200, 200, "new"),
    ]).append_column("_gone", pa.array([i == 7 for i in range(300)] + [False] * 502))
    plain = _merged(settings, "silver/plain", day, "r1", None)
    metrics = _merged(settings, "silver/clustered", day, "r1", "c")
    # 302 of the table's rows replaced: 301 written again (299 updated, the moved row, the null-dated one), 1 deleted
    assert (metrics["num_target_rows_written"], metrics["num_target_rows_removed"],
            metrics["num_target_rows_inserted"]) == (299 + 2, 302, 500)
    assert (plain["num_target_rows_written"], plain["num_target_rows_removed"]) == (299 + 2 + 500, 302), plain
    # two commits: the files holding the day's keys replaced, then the new rows appended apart; the span (from the
    # day's date to the moved row's old date, and the null dates) only narrows the search for those files
    appended, replaced = storage.open_table(settings.lake / "silver/clustered").history(2)
    assert (replaced["operationParameters"]["mode"], appended["operationParameters"]["mode"]) == ("Append", "Append")
    assert 0 < metrics["num_removed_files"] <= 4 < files / 2, metrics
    assert _last_commit(settings.lake / "silver/clustered") == {"removed": 0, "added": 1, "run_id": "r1"}
    assert _content(settings.lake / "silver/clustered") == _content(settings.lake / "silver/plain")
    assert len(_content(settings.lake / "silver/clustered")) == n + 500 - 1

    # keys of two distant dates (a department re-sending old decisions): the dates between them select most
    # files, but only the two holding the keys are rewritten
    far = pa.concat_tables([_dated(range(10, 13), 0, 200, "resent"), _dated(range(n - 300, n - 297), 0, 200, "resent")])
    far = far.append_column("_gone", pa.array([False] * 6))
    before = len(storage.open_table(settings.lake / "silver/clustered").file_uris())
    views = []  # what DuckDB is given to read: the span's search reads the two files the lookup named, no other
    real_view = storage._parquet_view
    monkeypatch.setattr(storage, "_parquet_view", lambda con, name, files, **kw: views.append((name, list(files)))
                        or real_view(con, name, files, **kw))
    for table, cluster in (("silver/clustered", "c"), ("silver/plain", None)):
        _merged(settings, table, far, "r3", cluster)
    monkeypatch.setattr(storage, "_parquet_view", real_view)
    assert _last_commit(settings.lake / "silver/clustered")["removed"] == 2
    searched = [files for name, files in views if name == "target"]
    assert len(searched[0]) == before
    assert len(searched[1]) == 2  # the lookup read every file's hash and date; the search, the two found
    assert _content(settings.lake / "silver/clustered") == _content(settings.lake / "silver/plain")

    # only new keys: appended, no merge
    fresh = _dated(range(n + 600, n + 700), 0, 1, "fresh").append_column("_gone", pa.array([False] * 100))
    _merged(settings, "silver/clustered", fresh, "r2", "c")
    (last,) = storage.open_table(settings.lake / "silver/clustered").history(1)
    assert last["operationParameters"]["mode"] == "Append"
    assert len(_content(settings.lake / "silver/clustered")) == n + 599


def test_a_clustered_table_is_read_back_in_its_order_without_a_sort(tmp_path, monkeypatch):
    """clustered_rows: the rows of a query of a clustered table come in the table's order (the clustering date
    ascending, nulls last) — its files taken by their ranges of the date, whatever order the log lists them in
    (here the later dates were committed first), and each file's rows as they lie — filtered and projected."""
    monkeypatch.setattr(storage, "CLUSTERED_FILE_BYTES", 64 << 10)
    path = tmp_path / "clustered"
    rows = _dated(range(60_000), 0, 100, "v").sort_by([("c", "ascending", "at_end")])
    rows = rows.append_column("n", pa.array(range(rows.num_rows), pa.int64()))  # the sorted position
    later, earlier = rows.slice(30_000), rows.slice(0, 30_000)
    storage.write_table(path, later, mode="append", run_id="r1", cluster_by="c")
    storage.write_table(path, earlier, mode="append", run_id="r2", cluster_by="c")
    files = storage.open_table(path).file_uris()
    assert len(files) >= 6
    read = storage.clustered_rows(path, "c", "select n, c, k from t where n % 3 <> 0").read_all()
    assert read.column_names == ["n", "c", "k"]
    assert read["n"].to_pylist() == [i for i in range(60_000) if i % 3]  # every row of the filter, in order
    dates = read["c"].to_pylist()
    assert dates.index(None) == len(dates) - dates.count(None)  # the null dates last

    # a file of null dates only (no range), and a table without files
    plain = tmp_path / "plain"
    storage.write_table(plain, pa.table({"k": ["a"], "c": pa.array([None], pa.date32())}), mode="append",
                        run_id="r1")
    assert storage.clustered_rows(plain, "c", "select * from t").read_all().num_rows == 1
    empty = tmp_path / "empty"
    storage.write_table(empty, rows.slice(0, 0), mode="append", run_id="r1", schema=rows.schema)
    assert storage.clustered_rows(empty, "c", "select * from t").read_all().num_rows == 0


def test_two_tables_are_written_from_one_stream_and_a_failure_commits_nothing_derived(tmp_path):
    """write_with_derived: the rows of one stream go to a table, and a batch derived from each (a filter and a
    projection) to a second, written at the same time on a thread of its own; both keep the stream's order. When
    the stream fails, neither table is committed and no file is left; when the derived write fails, the first table
    is still written whole and the error raised; a write that reads nothing (it had been done) stops nothing."""
    import pytest

    n = 50_000
    rows = pa.table({"n": pa.array(range(n), pa.int64()), "even": pa.array([i % 2 == 0 for i in range(n)])})
    derived_schema = pa.schema([pa.field("n", pa.int64())])

    def derive(batch):
        return batch.filter(batch["even"]).select(["n"])

    def stream(fail_at=None):
        def batches():
            for i, batch in enumerate(rows.to_batches(max_chunksize=1_000)):
                if i == fail_at:
                    raise OSError("the query failed")
                yield batch
        return pa.RecordBatchReader.from_batches(rows.schema, batches())

    def write_to(path):
        return lambda reader: storage.write_table(path, reader, mode="overwrite", run_id="r1")

    main, side = tmp_path / "main", tmp_path / "side"
    storage.write_with_derived(stream(), write_to(main), derive=derive, schema=derived_schema,
                               write_derived=write_to(side))
    assert storage.open_table(main).to_pyarrow_table()["n"].to_pylist() == list(range(n))
    assert storage.open_table(side).to_pyarrow_table()["n"].to_pylist() == list(range(0, n, 2))

    # the stream fails half-way: nothing committed to either table, no data file left behind
    a, b = tmp_path / "a", tmp_path / "b"
    with pytest.raises(OSError, match="the query failed"):
        storage.write_with_derived(stream(fail_at=25), write_to(a), derive=derive, schema=derived_schema,
                                   write_derived=write_to(b))
    for path in (a, b):
        assert storage.open_table(path) is None and not list(path.glob("*.parquet"))

    # the derived write fails on its third batch: the first table is written whole, the failure raised
    c, d = tmp_path / "c", tmp_path / "d"

    def failing(reader):
        def batches():
            for i, batch in enumerate(reader):
                if i == 2:
                    raise OSError("No space left on device")
                yield batch
        storage.write_table(d, pa.RecordBatchReader.from_batches(derived_schema, batches()), mode="overwrite",
                            run_id="r1")

    with pytest.raises(OSError, match="No space left"):
        storage.write_with_derived(stream(), write_to(c), derive=derive, schema=derived_schema, write_derived=failing)
    assert storage.open_table(c).to_pyarrow_table().num_rows == n
    assert storage.open_table(d) is None and not list(d.glob("*.parquet"))

    # a derived write that reads nothing (its table had been written) does not hold up the other
    e = tmp_path / "e"
    storage.write_with_derived(stream(), write_to(e), derive=derive, schema=derived_schema,
                               write_derived=lambda reader: None)
    assert storage.open_table(e).to_pyarrow_table().num_rows == n
    # a first write that reads nothing: the derived one is not committed, and the error says why
    f = tmp_path / "f"
    with pytest.raises(RuntimeError, match="not all written"):
        storage.write_with_derived(stream(), lambda reader: None, derive=derive, schema=derived_schema,
                                   write_derived=write_to(f))
    assert storage.open_table(f) is None


def test_a_lake_in_a_folder_with_a_blank_or_a_percent_sign_is_read(tmp_path):
    """delta-rs gives a local data file's path percent-encoded (``my lake`` as ``my%20lake``); DuckDB reads the
    files by the decoded path — the whole table, the files a version added, and a clustered table in its order."""
    import duckdb

    path = tmp_path / "my lake 100%" / "t"
    import datetime as dt

    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i // 10) for i in range(1_000)]
    rows = pa.table({"k": pa.array(range(1_000), pa.int64()), "c": pa.array(days, pa.date32())})
    storage.write_table(path, rows, mode="append", run_id="r1", cluster_by="c")
    storage.write_table(path, rows.slice(0, 10), mode="append", run_id="r2", cluster_by="c")
    assert any("%20" in uri for uri in storage.open_table(path).file_uris())  # what delta-rs gives
    con = duckdb.connect()
    assert storage.register(con, "t", path)
    assert con.execute("select count(*) from t").fetchone() == (1_010,)
    _, added = storage.files_since(path, 0)
    storage.register_files(con, "added", added, rows.schema)
    assert con.execute("select count(*) from added").fetchone() == (10,)
    assert storage.clustered_rows(path, "c", "select k from t").read_all().num_rows == 1_010


def test_row_count_is_the_log_s_record_counts_and_the_footers_where_the_log_lacks_one(tmp_path):
    import json

    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": pa.array(range(3))}), mode="append", run_id="r1")
    storage.write_table(path, pa.table({"k": pa.array(range(3, 5))}), mode="append", run_id="r2")
    assert storage.row_count(path) == 5 and storage.row_count(path, version=0) == 3
    assert storage.row_count(tmp_path / "absent") == 0
    # counted from the log: no data file is opened (a file made unreadable does not change the count)
    first = Path(storage.open_table(path, version=0).file_uris()[0].removeprefix("file://"))
    data = first.read_bytes()
    first.write_bytes(b"not parquet")
    assert storage.row_count(path) == 5
    first.write_bytes(data)
    # a file whose count the log lacks (a writer that kept no statistics): every file's footer is read
    log = path / "_delta_log" / f"{1:020d}.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    for action in actions:
        if "add" in action:
            action["add"]["stats"] = None
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n")
    assert storage.row_count(path) == 5 and storage.row_count(path, version=0) == 3


def _key_hash(*values: str) -> int:
    """storage.KEY_HASH of a key, computed apart from DuckDB: the first 15 hex digits of the md5 of its values
    joined by a unit separator."""
    import hashlib

    return int(hashlib.md5("\x1f".join(values).encode()).hexdigest()[:15], 16)


def test_a_clustered_table_s_keys_are_found_by_their_hash_and_then_compared(tmp_path):
    """split_matched finds a day's keys by the table's KEY_HASH column, then compares the keys themselves in the
    files of the dates found: a row whose hash is a day's key's but whose key is not stays unmatched (and
    untouched), and rows written without the hash (a table from before it, or delta-spark's inserts) are still
    found by their key. Every row the day writes carries its key's hash."""
    import datetime as dt

    import duckdb

    settings = Settings(var=tmp_path / "var")
    path = settings.lake / "silver/keyed"
    base = _dated(range(20_000), 0, 200, "old").sort_by("c")
    con = duckdb.connect()
    con.register("base", base)
    hashed = con.sql(f"select *, {storage.key_hash_sql(['k'])} as {storage.KEY_HASH} from base").to_arrow_table()
    assert hashed[storage.KEY_HASH].to_pylist()[:3] == [_key_hash(k) for k in base["k"].to_pylist()[:3]]
    # one row whose stored hash is that of a key the day brings new (as two keys sharing a hash would be)
    impostor = pa.table({"k": ["impostor"], "c": pa.array([dt.date(2020, 3, 1)], pa.date32()), "v": ["old"],
                         storage.KEY_HASH: pa.array([_key_hash("k9999999")], pa.int64())})
    storage.write_table(path, pa.concat_tables([hashed, impostor]).sort_by("c"), mode="overwrite", run_id="r0",
                        cluster_by="c")
    # rows appended by a writer that does not know the column: their hash is null
    storage.write_table(path, _dated(range(30_000, 30_010), 40 - 30_000, 1, "no hash"), mode="append",
                        run_id="r0b")
    assert storage.open_table(path).to_pyarrow_table().column(storage.KEY_HASH).null_count == 10

    day = pa.concat_tables([_dated(range(5_000, 5_100), 0, 200, "updated"),     # hashed rows of one date
                            _dated([30_003], 40 - 30_000, 1, "updated"),        # a row without the hash
                            _dated([9_999_999], 25 - 9_999_999, 1, "new")])     # new; the impostor has its hash
    matched, new, span, files, version = storage.split_matched(path, day, key=["k"], cluster_by="c")
    assert sorted(matched["k"].to_pylist()) == [f"k{i:07d}" for i in (*range(5_000, 5_100), 30_003)]
    assert new["k"].to_pylist() == ["k9999999"]
    # the files named are those holding the matched keys, every one of them, in the version looked up
    table = storage.open_table(path)
    assert version == table.version() and set(files) <= set(table.file_uris())
    keys = set(matched["k"].to_pylist())
    holding = {f for f in table.file_uris()
               if keys & set(pq.read_table(f.removeprefix("file://"), columns=["k"])["k"].to_pylist())}
    assert set(files) == holding and len(files) == 2  # the hashed rows' file and the one written without
    for part in (matched, new):
        assert part[storage.KEY_HASH].to_pylist() == [_key_hash(k) for k in part["k"].to_pylist()]

    _merged(settings, "silver/keyed", day.append_column("_gone", pa.array([False] * day.num_rows)), "r1", "c")
    table = storage.open_table(path).to_pyarrow_table()
    rows = {k: (v, h) for k, v, h in zip(*(table.column(c).to_pylist() for c in ("k", "v", storage.KEY_HASH)))}
    assert table.num_rows == 20_000 + 1 + 10 + 1
    assert rows["impostor"] == ("old", _key_hash("k9999999"))
    assert rows["k9999999"] == ("new", _key_hash("k9999999"))
    assert rows["k0030003"] == ("updated", _key_hash("k0030003"))
    assert [rows[f"k{i:07d}"] for i in (5_000, 5_099)] == [("updated", _key_hash(f"k{i:07d}")) for i in (5_000, 5_099)]
    # rows written without the hash that the day's span rewrote got theirs; the others keep none
    assert sum(h is None for _v, h in rows.values()) < 10


def test_a_replace_given_files_its_version_lacks_writes_nothing(tmp_path):
    """replace_span searches only the files split_matched named, in the version it named: one that version does not
    hold (removed since, or never there) fails the replace before anything is written, rather than missing rows."""
    import pytest

    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": ["a", "b"], "v": [1, 1]}), mode="append", run_id="r0")
    (present,) = storage.open_table(path).file_uris()
    with pytest.raises(ValueError, match="does not hold every file"):
        storage.replace_span(path, pa.table({"k": ["a"], "v": [2]}), key=["k"], span="true", run_id="r1",
                             files=[present, present.replace("part-", "gone-part-")], version=0)
    assert storage.open_table(path).version() == 0
    metrics = storage.replace_span(path, pa.table({"k": ["a"], "v": [2]}), key=["k"], span="true", run_id="r1",
                                   files=[present], version=0)
    assert (metrics["num_target_rows_removed"], metrics["num_target_rows_copied"]) == (1, 1)
    assert sorted(storage.open_table(path).to_pyarrow_table().to_pylist(), key=lambda r: r["k"]) == [
        {"k": "a", "v": 2}, {"k": "b", "v": 1}]


def test_a_merge_whose_stream_is_cut_short_writes_nothing(tmp_path):
    """A stream source ends when its DuckDB connection runs another query; merge_table counts its rows against
    the keys given and fails the write instead of committing a table that lost the rows it replaced."""
    import duckdb
    import pytest

    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": list(range(100)), "v": ["a"] * 100}), mode="append", run_id="r0")
    con = duckdb.connect()
    con.execute("create table src as select range as k, 'b' as v from range(50, 150000)")
    keys = con.sql("select k from src").to_arrow_table()
    stream = con.sql("select * from src").to_arrow_reader(1000)
    con.sql("select 1").fetchall()   # ends the stream
    with pytest.raises(Exception, match="the rows to merge ended after 0 of 149,950; nothing was written"):
        storage.merge_table(path, stream, key=["k"], run_id="r1", keys=keys)
    assert storage.open_table(path).version() == 0 and storage.row_count(path) == 100


def test_the_spill_folder_of_a_killed_process_is_removed_by_the_next_lookup(tmp_path):
    """storage's own DuckDB connections spill to govlake-duckdb/<pid>-… in the system's temporary folder (not
    the working directory); a process killed (kill -9) holding one cannot remove it: the next one does."""
    import os
    import signal
    import subprocess
    import sys

    env = dict(os.environ, TMPDIR=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", "from govlake import storage; import time\n"
                              "with storage._probe():\n    print('open', flush=True); time.sleep(120)"],
                             stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert child.stdout.readline().strip() == "open"
    root = tmp_path / "govlake-duckdb"
    (left,) = root.iterdir()
    assert left.name.startswith(f"{child.pid}-")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert left.exists() and not (tmp_path / ".tmp").exists()
    done = subprocess.run([sys.executable, "-c", "from govlake import storage\nwith storage._probe(): pass"],
                          env=env, cwd=tmp_path, check=True)
    assert done.returncode == 0 and list(root.iterdir()) == []


def test_an_upsert_keeps_the_columns_the_source_lacks_in_the_table_s_order(tmp_path):
    """The rewritten files' rows keep a column the source lacks, wherever the table has it, beside the key's
    hash the source brings (made for the kept rows written without one)."""
    import duckdb

    path = tmp_path / "t"
    con = duckdb.connect()
    base = con.sql(f"select 'k' || range as k, range as c, {storage.key_hash_sql(['k'])} as {storage.KEY_HASH}, "
                   "'x' || range as extra from (select range, 'k' || range as k from range(100))").to_arrow_table()
    storage.write_table(path, base, mode="append", run_id="r0")
    storage.write_table(path, pa.table({"k": ["old"], "c": [7], "extra": ["no hash"]}), mode="append", run_id="r1")
    source = con.sql(f"select 'k' || range as k, range + 1000 as c, {storage.key_hash_sql(['k'])} as "
                     f"{storage.KEY_HASH} from (select range, 'k' || range as k from range(3))").to_arrow_table()
    metrics = storage.replace_span(path, source, key=["k"], span="true", run_id="r2")
    assert metrics["num_removed_files"] == 1 and metrics["num_target_rows_copied"] == 97
    rows = {r["k"]: r for r in storage.open_table(path).to_pyarrow_table().to_pylist()}
    assert len(rows) == 101
    assert rows["k1"]["c"] == 1001 and rows["k1"]["extra"] is None
    assert rows["k50"]["extra"] == "x50" and rows["k50"][storage.KEY_HASH] == base[storage.KEY_HASH][50].as_py()
    assert rows["old"][storage.KEY_HASH] is None  # not in a rewritten file: left as it was
