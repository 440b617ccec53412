"""The Spark Connect client of tests/test_spark_cluster.py, run as a process of its own: pyspark allows one kind
of session per process (a Connect client cannot start where a classic session runs, and turns the process to
Connect mode for good), so the test's process keeps its classic session whatever ran before.

    python tests/_spark_connect_client.py TABLE      (GOVLAKE_SPARK_REMOTE=sc://… in the environment)

Opens the engine's session on the server (govlake.engine, with the tests' settings for tiny inputs), creates a
Delta table at TABLE and merges two rows into it; prints one JSON line: the session's module, its time zone
(the dialect layer's setting) and the merge's counts.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal

from govlake.config import get_settings
from govlake.engine import get_engine

TINY = {"spark.sql.shuffle.partitions": "2", "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        "spark.sql.adaptive.enabled": "false"}
"""Session settings for tiny inputs (as the tests' local session), set by the client of the Connect server."""


def main(table: str) -> int:
    session = get_engine(get_settings()).session(conf=TINY)
    try:
        session.createDataFrame([(1, "北京", Decimal("1.5000"), dt.date(2026, 10, 1)), (2, "上海", None, None)],
                                "id long, name string, amount decimal(18,4), decided_on date") \
            .write.format("delta").save(table)
        merged = session.sql(f"MERGE INTO delta.`{table}` t USING (SELECT 2L AS id, '上海市' AS name, "
                             "CAST(2 AS DECIMAL(18,4)) AS amount, DATE'2026-10-02' AS decided_on UNION ALL "
                             "SELECT 3L, '广州', NULL, NULL) s ON t.id = s.id "
                             "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *").collect()
        print(json.dumps({"module": type(session).__module__,
                          "timezone": session.conf.get("spark.sql.session.timeZone"),
                          "updated": merged[0]["num_updated_rows"], "inserted": merged[0]["num_inserted_rows"]}))
    finally:
        session.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
