"""The driver of tests/test_spark_cluster.py, in a process of its own (one SparkContext per process, and pytest's
may hold the local one): the Spark engine's session as govlake opens it from the environment
(GOVLAKE_SPARK_MASTER=spark://…), tasks on every executor, a Delta table written and merged into.

    python tests/_spark_cluster_job.py TABLE     prints one JSON document on stdout
    spark-submit $(infra/spark_cluster.py submit-args) tests/_spark_cluster_job.py TABLE --submitted
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from decimal import Decimal

from _jvm import QUICK_JVM
from govlake.config import get_settings
from govlake.engine import get_engine

CONF = {
    # tiny inputs: few partitions, no code generation, Delta's state in 2 tasks (as the tests' local session)
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.driver.extraJavaOptions": QUICK_JVM,
    "spark.executor.extraJavaOptions": QUICK_JVM,
}
SCHEMA = "id long, name string, amount decimal(18,4), decided_on date, received_at timestamp"
ROWS = [
    (1, "北京市海淀区某某科技有限公司", Decimal("12000.5000"), dt.date(2026, 10, 1), dt.datetime(2026, 11, 19, 8, 0)),
    (2, "上海浦东新区示例贸易商行（个体工商户）", Decimal("0.0001"), dt.date(2026, 10, 2), None),
    (3, None, None, None, dt.datetime(2026, 11, 19, 9, 30, 15, 123456)),
]
UPDATES = [
    (2, "上海浦东新区示例贸易商行", Decimal("5.0000"), dt.date(2026, 10, 3), dt.datetime(2026, 11, 20, 10, 0)),
    (4, "廣州市天河區測試餐飲店", Decimal("-1.2500"), dt.date(2026, 10, 4), dt.datetime(2026, 11, 20, 11, 0)),
]


def where(_rows):
    """Where a task ran: its executor's folder (worker-N/work/<app>/<executor>) and its Python."""
    time.sleep(0.3)  # long enough for every executor to take tasks
    yield os.getcwd(), sys.executable


def main(table: str) -> dict:
    session = get_engine(get_settings()).session(app_name="govlake cluster test", conf=CONF)
    sc = session.sparkContext
    deadline = time.monotonic() + 240
    while sc._jsc.sc().getExecutorMemoryStatus().size() < 3:  # the driver and two executors
        if time.monotonic() > deadline:
            raise SystemExit("fewer than two executors registered in 240 s")
        time.sleep(0.5)
    tasks = sc.parallelize(range(8), 8).mapPartitions(where).collect()
    session.createDataFrame(ROWS, SCHEMA).write.format("delta").save(table)
    from delta.tables import DeltaTable

    (DeltaTable.forPath(session, table).alias("t")
     .merge(session.createDataFrame(UPDATES, SCHEMA).alias("s"), "t.id = s.id")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    merged = session.read.format("delta").load(table).count()
    conf = sc.getConf()
    out = {
        "tasks": sorted({(cwd, python) for cwd, python in tasks}),
        "driver_python": sys.executable,
        "merged_rows_read_by_spark": merged,
        "conf": {key: conf.get(key, None) for key in ("spark.master", "spark.driver.host", "spark.executor.memory",
                                                      "spark.executor.cores", "spark.cores.max",
                                                      "spark.pyspark.python")},
    }
    session.stop()
    return out


def submitted(table: str) -> dict:
    """Under spark-submit: the session govlake opens in a driver spark-submit started, a Delta table written and
    read back through delta-spark's Python API (from ``--py-files``)."""
    session = get_engine(get_settings()).session(app_name="govlake spark-submit test", conf=CONF)
    session.createDataFrame(ROWS, SCHEMA).write.format("delta").save(table)
    from delta.tables import DeltaTable

    rows = DeltaTable.forPath(session, table).toDF().count()
    conf = session.sparkContext.getConf()
    out = {"rows": rows, "master": conf.get("spark.master"), "deploy_mode": conf.get("spark.submit.deployMode"),
           "app_name": conf.get("spark.app.name")}
    session.stop()
    return out


if __name__ == "__main__":
    print(json.dumps(submitted(sys.argv[1]) if sys.argv[2:] == ["--submitted"] else main(sys.argv[1])))
