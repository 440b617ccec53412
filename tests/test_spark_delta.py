"""Delta both ways, for real: the Spark engine's session (delta-spark 4.4 on Spark 4.2, govlake.engine) and
delta-rs (``deltalake``, govlake's storage layer) read, and merge into, each other's tables, and DuckDB's delta
extension and govlake's own reader (DuckDB over the data files, ``storage.register``) read the same rows.

The rows hold the column types govlake's tables have: decimal(18,4), date, timestamps in UTC (``_received_at``)
and naive ones (silver's ``timestamp`` items, Delta's timestamp_ntz), Chinese text, a list of strings
(``_failed_rules``) and nulls. docs/spark.md says which Delta features each side reads and how the
writers are set so that both do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from govlake import storage

pytestmark = [pytest.mark.spark, pytest.mark.slow]

UTC = dt.UTC
SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("uscc", pa.string()),
    ("name", pa.string()),
    ("amount", pa.decimal128(18, 4)),
    ("decided_on", pa.date32()),
    ("_received_at", pa.timestamp("us", tz="UTC")),
    ("punished_at", pa.timestamp("us")),
    ("_failed_rules", pa.list_(pa.string())),
])
"""Delta types: long, string, string, decimal(18,4), date, timestamp, timestamp_ntz, array<string>."""


def _row(i: int, name: str, amount: str | None, **more) -> dict:
    return {"id": i, "uscc": f"91110108MA0{i:07d}", "name": name, "amount": None if amount is None else Decimal(amount),
            "decided_on": dt.date(2026, 10, i % 28 + 1),
            "_received_at": dt.datetime(2026, 11, 19, 16, 0, i % 60, 123456, tzinfo=UTC),
            "punished_at": dt.datetime(2026, 10, 1, 9, 30, i % 60), "_failed_rules": None} | more


ROWS = [
    _row(1, "北京市海淀区某某科技有限公司", "12000.5000"),
    _row(2, "上海浦东新区示例贸易商行（个体工商户）", "0.0001", _failed_rules=["date.future", "uscc.checksum"]),
    _row(3, "廣州市天河區測試餐飲店", None, decided_on=None, punished_at=None, _failed_rules=[]),
    _row(4, "深圳市南山区🚀创新中心", "-99999999999999.9999", _received_at=dt.datetime(2026, 12, 31, 23, 59, 59,
                                                                                     999999, tzinfo=UTC)),
    _row(5, None, "99999999999999.9999", _received_at=None, uscc=None),
]


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def content_hash(table: pa.Table) -> str:
    """The rows of ``table`` in any order, as read back in SCHEMA's types (a reader that changed a value, a
    time zone or a type changes the hash; large and view strings are the same strings)."""
    rows = table.select(SCHEMA.names).cast(SCHEMA).to_pylist()
    lines = sorted(json.dumps(r, default=str, ensure_ascii=False, sort_keys=True) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _types(schema: pa.Schema) -> dict[str, str]:
    """Each column's type, time zones and string layouts named alike."""
    def name(t: pa.DataType) -> str:
        if pa.types.is_timestamp(t):
            return f"timestamp[{t.unit}{', UTC' if t.tz in ('UTC', 'Etc/UTC', '+00:00') else ''}]"
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
            return f"list<{name(t.value_type)}>"
        if t in (pa.large_string(), pa.string_view()):
            return "string"
        return str(t)
    return {f.name: name(f.type) for f in schema}


def _duckdb() -> duckdb.DuckDBPyConnection:
    """DuckDB with its delta extension (the wheel of duckdb-extension-delta), times shown in UTC."""
    import duckdb_extension_delta

    ext = (Path(duckdb_extension_delta.__file__).parent / "extensions" / f"v{duckdb.__version__}"
           / "delta.duckdb_extension")
    con = duckdb.connect()
    con.execute(f"load '{ext}'")
    con.execute("set TimeZone = 'UTC'")
    return con


def _read_everywhere(path: Path) -> dict[str, pa.Table]:
    """The table at ``path`` as delta-rs, DuckDB's delta extension and govlake's reader see it."""
    con = _duckdb()
    assert storage.register(con, "t", path)
    return {"delta-rs": DeltaTable(str(path)).to_pyarrow_table(),
            "duckdb delta_scan": con.sql("select * from delta_scan($p)", params={"p": str(path)}).to_arrow_table(),
            "govlake storage.register": con.sql("select * from t").to_arrow_table()}


def _protocol(path: Path) -> dict:
    """The table's current protocol action, from its log."""
    protocol = {}
    for commit in sorted((path / "_delta_log").glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            protocol = json.loads(line).get("protocol", protocol)
    return protocol


def _assert_plain_features(path: Path) -> None:
    """Nothing either side (or govlake's reader of data files) cannot read: no deletion vectors, column
    mapping or v2 checkpoints; timestamp_ntz (naive timestamps) is read by all three."""
    protocol = _protocol(path)
    assert set(protocol.get("readerFeatures", [])) <= {"timestampNtz"}, protocol
    assert not {"deletionVectors", "columnMapping", "v2Checkpoint"} & set(protocol.get("writerFeatures", [])), protocol


def test_delta_spark_writes_tables_delta_rs_and_duckdb_read(spark, tmp_path):
    path = tmp_path / "spark_written"
    first, second = _table(ROWS[:3]), _table(ROWS[3:])
    # a checkpoint every 2 commits: the third commit (the delete) leaves one for the readers to start from
    spark.createDataFrame(first).write.format("delta").option("delta.checkpointInterval", "2").save(str(path))
    spark.createDataFrame(second).write.format("delta").mode("append").save(str(path))
    from delta.tables import DeltaTable as SparkDeltaTable

    SparkDeltaTable.forPath(spark, str(path)).delete("id = 2")   # rewrites the file: no deletion vector
    assert list((path / "_delta_log").glob("*.checkpoint.parquet"))
    _assert_plain_features(path)

    expected = _table([r for r in ROWS if r["id"] != 2])
    seen = _read_everywhere(path) | {"delta-spark": spark.read.format("delta").load(str(path)).toArrow()}
    for reader, table in seen.items():
        assert _types(table.schema) == _types(SCHEMA), reader
        assert content_hash(table) == content_hash(expected), reader


def test_delta_spark_reads_and_merges_into_tables_delta_rs_writes(spark, tmp_path):
    from delta.tables import DeltaTable as SparkDeltaTable

    path = tmp_path / "govlake_written"
    # written by govlake's storage layer, as a step writes it: run id and the step's txn in the commit
    storage.write_table(path, _table(ROWS[:4]), mode="append", run_id="run-1", txn=("process:credit.penalty", 7))
    assert content_hash(spark.read.format("delta").load(str(path)).toArrow()) == content_hash(_table(ROWS[:4]))

    changed = [_row(2, "上海浦东新区示例贸易商行（已更名）", "0.0002", _failed_rules=None),
               _row(3, "廣州市天河區測試餐飲店", "1.5000", decided_on=dt.date(2026, 11, 20)), ROWS[4]]
    source = spark.createDataFrame(_table(changed))
    (SparkDeltaTable.forPath(spark, str(path)).alias("t").merge(source.alias("s"), "t.id = s.id")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    merged = {r["id"]: r for r in ROWS[:4]} | {r["id"]: r for r in changed}
    _assert_plain_features(path)
    for reader, table in _read_everywhere(path).items():
        assert _types(table.schema) == _types(SCHEMA), reader
        assert content_hash(table) == content_hash(_table(list(merged.values()))), reader
    history = DeltaTable(str(path)).history()
    # govlake's first write of a table: its files, written by pyarrow, committed as the table's creation
    assert [h["operation"] for h in history][:2] == ["MERGE", "CREATE TABLE"]
    # the step's stamp survives delta-spark's commit (govlake.steps reads it to skip a replayed commit)
    assert DeltaTable(str(path)).transaction_version("process:credit.penalty") == 7

    # and delta-rs merges after delta-spark, the way govlake's steps merge by key
    again = [_row(1, "北京市海淀区某某科技有限公司", "13000.0000"), _row(6, "杭州市西湖区新设企业", "8.8000")]
    storage.merge_table(path, _table(again), key=["id"], run_id="run-2", txn=("process:credit.penalty", 8))
    merged |= {r["id"]: r for r in again}
    final = spark.read.format("delta").load(str(path)).toArrow()
    assert content_hash(final) == content_hash(_table(list(merged.values())))
