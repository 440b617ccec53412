"""delta-spark's side of govlake.storage: writes and merges of Spark DataFrames, stamped as delta-rs's are.

Every commit carries the run id (delta-rs: ``govlake.run_id`` in the commit info; delta-spark: the
commit's ``userMetadata``, a JSON object holding the same key; govlake.lineage reads both) and, for a
step's output, the step's transaction identifier (Delta ``txn``: ``txnAppId``/``txnVersion`` on a
write, the session's ``spark.databricks.delta.write.txnAppId``/``txnVersion`` for a merge — Spark SQL's
``MERGE``, which also runs through Spark Connect), which
delta-rs and delta-spark both record and read: a step replayed on either engine skips what either
engine committed.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from govlake.objectstore import Location

USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"


def user_metadata(run_id: str) -> str:
    """The commit's userMetadata: the run id under the key delta-rs writes it with."""
    return json.dumps({"govlake.run_id": run_id})


def write(path: Location, df: DataFrame, *, mode: str, run_id: str, txn: tuple[str, int] | None = None) -> None:
    """``df`` as one commit to the Delta table at ``path`` (created when absent), as storage.write_table."""
    writer = df.write.format("delta").mode(mode).option("userMetadata", user_metadata(run_id))
    if txn:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", str(txn[1]))
    writer = writer.option("mergeSchema", "true") if mode == "append" else writer.option("overwriteSchema", "true")
    writer.save(str(path))


@contextlib.contextmanager
def _session_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """``conf`` set on the session for one command, then unset (a merge takes its stamps from there)."""
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in conf:
            spark.conf.unset(key)


def merge(path: Location, source: DataFrame, *, key: Sequence[str], run_id: str, delete_flag: str | None = None,
          txn: tuple[str, int] | None = None) -> dict:
    """Upsert ``source`` into the Delta table at ``path`` by ``key``, as storage.merge_table (the same
    clauses: a row flagged ``delete_flag`` deletes its key's row; new columns are added first). Spark SQL's
    ``MERGE INTO``, so it runs through Spark Connect as well (delta-spark's Python ``DeltaTable`` needs a
    Connect server plugin). Returns Delta's operation metrics of the commit."""
    from govlake import storage

    spark = source.sparkSession
    columns = [c for c in source.columns if c != delete_flag]
    if storage.open_table(path) is None:
        rows = source.where(f"not coalesce({delete_flag}, false)") if delete_flag else source
        write(path, rows.select(columns), mode="append", run_id=run_id, txn=txn)
        return {"created": True}
    target = _table(path)
    have = set(storage.open_table(path).schema().to_arrow().names)
    added = [f for f in source.schema if f.name in columns and f.name not in have]
    if added:  # a column the models gained since the table was created is added, not dropped
        spark.sql(f"alter table {target} add columns ("
                  + ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in added) + ")")
    view = f"govlake_merge_source_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    keep = f" and not s.{delete_flag}" if delete_flag else ""
    clauses = [f"when matched and s.{delete_flag} then delete"] if delete_flag else []
    clauses += [f"when matched{keep} then update set " + ", ".join(f"t.{c} = s.{c}" for c in columns),
                f"when not matched{keep} then insert ({', '.join(columns)}) values ("
                + ", ".join(f"s.{c}" for c in columns) + ")"]
    conf = {USER_METADATA: user_metadata(run_id)}
    if txn:
        conf |= {TXN_APP_ID: txn[0], TXN_VERSION: str(txn[1])}
    try:
        with _session_conf(spark, conf):
            spark.sql(f"merge into {target} as t using {view} as s on "
                      + " and ".join(f"t.{k} = s.{k}" for k in key) + "\n" + "\n".join(clauses))
    finally:
        spark.catalog.dropTempView(view)
    last = spark.sql(f"describe history {target} limit 1").select("operationMetrics").first()
    return {k: int(v) for k, v in (last[0] or {}).items() if str(v).isdigit()}


def _table(path: Location) -> str:
    """The Delta table at ``path`` as Spark SQL names it: delta.`<path>`."""
    return "delta.`" + str(path).replace("`", "``") + "`"
