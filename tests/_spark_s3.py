"""A delta-spark process for tests/test_spark_s3.py: the Spark engine's session (govlake.engine) on the lake of
the environment (GOVLAKE_LAKE=s3://… on the test server), driven by commands on stdin, one per line:

    write URI              create a Delta table of ROWS at URI (userMetadata spark-create)
    append URI N TAG       N appends of one row (k = 1_000_000 + i, v = i, writer = TAG) each, userMetadata
                           TAG-i, to a table of tests/_s3_writer.py's schema
    read URI               the table's rows
    merge URI              upsert: key 1 gets name 'merged by Spark', key 99 is inserted

After the session starts it prints ``ready``; after each command one JSON line (``{"ok": …}`` or
``{"error": …}``). Those answers are all its stdout carries: everything else the process writes there — the JVM's
own warnings, such as "CodeCache is full" — goes to its stderr (the test's log).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import sys
import traceback

from _jvm import QUICK_JVM
from govlake.config import get_settings
from govlake.engine import spark_session

# tiny inputs: as tests/conftest.py's SPARK_TEST_CONF
CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.extraJavaOptions": QUICK_JVM,
    "spark.sql.adaptive.enabled": "false",
    "spark.databricks.delta.snapshotPartitions": "2",
}
DDL = "k bigint, name string, amount decimal(18,4), day date"
APPEND_DDL = "k bigint, v bigint, writer string"
ROWS = [(1, "统一社会信用代码", decimal.Decimal("12.5000"), dt.date(2026, 11, 20)),
        (2, None, decimal.Decimal("-0.0001"), None),
        (3, "O'Brien", None, dt.date(1999, 1, 1))]


def main() -> int:
    # the answers get a descriptor of their own; descriptor 1, which the JVM started below inherits and writes its
    # warnings to, becomes stderr
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    spark = spark_session(get_settings(), app_name="govlake-s3-test", conf=CONF)
    print("ready", file=answers)
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "write":
                (spark.createDataFrame(ROWS, DDL).coalesce(1).write.format("delta").mode("append")
                 .option("userMetadata", "spark-create").save(args[0]))
                result = None
            elif cmd == "append":
                uri, n, tag = args[0], int(args[1]), args[2]
                for i in range(n):
                    (spark.createDataFrame([(1_000_000 + i, i, tag)], APPEND_DDL).coalesce(1).write.format("delta")
                     .mode("append").option("userMetadata", f"{tag}-{i}").save(uri))
                result = n
            elif cmd == "read":
                rows = spark.read.format("delta").load(args[0]).collect()
                result = sorted([r.asDict() for r in rows], key=lambda r: r["k"])
            elif cmd == "merge":
                from delta.tables import DeltaTable

                source = spark.createDataFrame([(1, "merged by Spark", None, None), (99, "new", None, None)], DDL)
                (DeltaTable.forPath(spark, args[0]).alias("t").merge(source.alias("s"), "t.k = s.k")
                 .whenMatchedUpdate(set={"name": "s.name"}).whenNotMatchedInsertAll().execute())
                result = None
            else:
                raise ValueError(f"unknown command {cmd!r}")
            print(json.dumps({"ok": result}, default=str, ensure_ascii=False), file=answers)
        except Exception as exc:  # noqa: BLE001 — reported to the test
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-3000:]}),
                  file=answers)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
