"""delta-spark on the lake on S3 (the test server of tests/_s3.py): the Spark engine's session with S3A
(govlake.objectstore.spark_s3_conf) writes a Delta table that delta-rs and DuckDB read, reads and merges a
table delta-rs wrote, and a Spark writer and a delta-rs writer committing to one table at once lose no commit.

The Spark session runs in a process of its own (tests/_spark_s3.py): its JVM starts with the S3 jars, which
the tests' shared session (tests/conftest.py's ``spark``) does not load.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from govlake import objectstore, storage
from govlake.config import SettingsError, get_settings
from govlake.engine import LOGSTORE_JAR, check_spark, spark_conf

pytestmark = [pytest.mark.spark, pytest.mark.slow]

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import _s3_writer  # noqa: E402
from _spark_s3 import ROWS  # noqa: E402

SCHEMA = pa.schema([("k", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(18, 4)),
                    ("day", pa.date32())])
EXPECTED = [{"k": k, "name": n, "amount": a, "day": d} for k, n, a, d in ROWS]


class Driver:
    """The delta-spark process: send a command, get its result."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        with open(log, "wb") as err:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, str(HERE / "_spark_s3.py")], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the Spark process did not start: {line}{log.read_text(errors='replace')[-3000:]}")

    def send(self, *words: object):
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:  # the process ended: say why, not a JSON error
            raise RuntimeError(f"the Spark process ended (exit {self.proc.poll()}) on {words}: "
                               f"{self.log.read_text(errors='replace')[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"Spark: {answer['error']}\n{answer.get('trace', '')}")
        return answer["ok"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def lake(s3, tmp_path_factory):
    """The environment of a lake on the test server (a prefix of its own), applied to this process too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVLAKE_", "AWS_"))}
    env |= s3.env(f"spark-{uuid.uuid4().hex[:8]}") | {"GOVLAKE_VAR": str(tmp_path_factory.mktemp("spark-s3-var"))}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def spark_s3(lake, tmp_path_factory):
    settings = get_settings()
    try:
        check_spark(settings)
    except SettingsError as exc:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no Spark engine here: {exc}")
    driver = Driver(lake, tmp_path_factory.mktemp("spark-s3") / "spark.log")
    yield driver
    driver.stop()


def test_the_session_settings_of_a_lake_on_s3(lake):
    conf = spark_conf(get_settings())
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == lake["AWS_ENDPOINT_URL"]
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.create.conditional.enabled"] == "true"
    assert conf["spark.delta.logStore.s3.impl"] == objectstore.LOGSTORE_CLASS
    assert "bundle-2.35.4.jar" in conf["spark.driver.extraClassPath"]  # local master: no copy of the SDK
    assert "bundle" not in conf["spark.jars"]
    # the LogStore extends delta-storage's class: loaded by the same loader (spark.jars), else NoClassDefFoundError
    assert LOGSTORE_JAR in conf["spark.jars"] and LOGSTORE_JAR not in conf["spark.driver.extraClassPath"]
    # no secret in Spark's settings: the SDK reads the JVM's environment
    assert not any(lake["AWS_SECRET_ACCESS_KEY"] in v for v in conf.values())
    cluster = spark_conf(dataclasses.replace(get_settings(), spark_master="spark://h:7077"))
    assert "bundle-2.35.4.jar" in cluster["spark.jars"] and "spark.driver.extraClassPath" not in cluster


def test_delta_spark_writes_a_table_delta_rs_and_duckdb_read(spark_s3):
    settings = get_settings()
    uri = storage.table_path(settings, "gold", "from_spark")
    spark_s3.send("write", uri)
    rows = storage.open_table(uri).to_pyarrow_table().select(SCHEMA.names).to_pylist()
    assert sorted(rows, key=lambda r: r["k"]) == EXPECTED
    con = storage.connect(settings)
    assert storage.register(con, "t", uri)
    assert sorted(con.sql("select k, name, amount, day from t").fetchall()) == sorted(ROWS)
    # delta-rs merges after delta-spark; Spark reads the merge
    storage.merge_table(uri, pa.Table.from_pylist([{"k": 2, "name": "by delta-rs", "amount": decimal.Decimal("1"),
                                                    "day": dt.date(2026, 1, 1)}], schema=SCHEMA),
                        key=["k"], run_id="rs-merge")
    read = {r["k"]: r for r in spark_s3.send("read", uri)}
    assert read[2]["name"] == "by delta-rs" and read[1]["name"] == "统一社会信用代码" and len(read) == 3


def test_delta_spark_reads_and_merges_a_table_delta_rs_wrote(spark_s3):
    settings = get_settings()
    uri = storage.table_path(settings, "silver", "from_rs")
    storage.write_table(uri, pa.Table.from_pylist(EXPECTED, schema=SCHEMA), mode="append", run_id="rs-write",
                        txn=("step", 7))
    read = spark_s3.send("read", uri)
    assert [(r["k"], r["name"], r["amount"], r["day"]) for r in read] == [
        (k, n, None if a is None else str(a), None if d is None else str(d)) for k, n, a, d in ROWS]
    spark_s3.send("merge", uri)
    table = storage.open_table(uri)
    assert table.transaction_version("step") == 7  # the step's stamp survives delta-spark's commit
    names = {r["k"]: r["name"] for r in table.to_pyarrow_table().to_pylist()}
    assert names == {1: "merged by Spark", 2: None, 3: "O'Brien", 99: "new"}
    con = storage.connect(settings)
    storage.register(con, "t", uri)
    assert con.sql("select count(*), count(*) filter (where name = 'merged by Spark') from t").fetchone() == (4, 1)


def _commits(uri: str) -> dict[int, dict]:
    out = {}
    log = objectstore.join(uri, "_delta_log")
    for name in objectstore.children(log):
        if name.endswith(".json") and name[:-5].isdigit():
            actions = [json.loads(x) for x in (objectstore.read_text(objectstore.join(log, name)) or "").splitlines()
                       if x.strip()]
            out[int(name[:-5])] = next(a["commitInfo"] for a in actions if "commitInfo" in a)
    return out


def test_a_spark_writer_and_a_delta_rs_writer_lose_no_commit(spark_s3, lake, s3):
    """delta-spark (govlake's S3ConditionalPutLogStore) and delta-rs (conditional put) append to one table at
    once: every commit file is put with If-None-Match: *, a version taken by the other writer is refused (412)
    and committed again at the next, and every commit keeps its own version and every row is there.

    With Delta's own S3SingleDriverLogStore this lost a commit in 2 of 2 runs (a version replaced by the other
    writer's put, or a commit file left unreadable): its put is not conditional."""
    settings = get_settings()
    uri = storage.table_path(settings, "silver", "both_engines")
    storage.write_table(uri, _s3_writer.rows([(0, 0)], "w0"), mode="append", run_id="create")
    ops, rs_ops = 10, 80
    # delta-rs commits every 0.3 s for about 25 s; Spark's appends start while it does (after their plan's first
    # compilation, 3 to 12 s on 2 shared cores) and take ~0.4 to 4 s each: the two overlap
    rs = subprocess.Popen([sys.executable, str(HERE / "_s3_writer.py"), uri, "w1", str(rs_ops), "append", "0.3"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lake)
    time.sleep(1.0)
    started = time.monotonic()
    spark_s3.send("append", uri, ops, "spark")
    out, err = rs.communicate(timeout=300)
    assert rs.returncode == 0, out + err[-3000:]
    commits = _commits(uri)
    assert sorted(commits) == list(range(ops + rs_ops + 1)), "a version is missing"
    ids = sorted(c.get("govlake.run_id") or c.get("userMetadata") for c in commits.values())
    assert ids == sorted(["create"] + [f"w1-{i}" for i in range(rs_ops)] + [f"spark-{i}" for i in range(ops)])
    # they committed at the same time: Spark's commits were prepared while delta-rs committed (commitInfo's
    # timestamp is taken before the commit is tried), and a Spark commit had to move past versions delta-rs
    # had taken since it read the table (its readVersion is older than the version before its own)
    spark = {v: c for v, c in commits.items() if str(c.get("userMetadata")).startswith("spark-")}
    rs_times = [c["timestamp"] for c in commits.values() if str(c.get("govlake.run_id")).startswith("w1-")]
    assert min(c["timestamp"] for c in spark.values()) < max(rs_times), (
        f"the writers did not overlap (Spark took {time.monotonic() - started:.1f}s): {commits}")
    assert any(c["readVersion"] < v - 1 for v, c in spark.items()), "no Spark commit met a concurrent one"
    puts = [w for w in s3.writes(uri.split("/", 3)[3] + "/_delta_log/") if w["method"] == "PUT"
            and w["path"].rsplit("/", 1)[1].removesuffix(".json").isdigit() and w["path"].endswith(".json")]
    assert puts and all(w["if-none-match"] == "*" for w in puts), [w for w in puts if w["if-none-match"] != "*"]
    assert sorted(w["status"] for w in puts).count("200") == ops + rs_ops + 1
    assert any(w["status"] == "412" for w in puts), "no commit was refused: the writers never met on a version"
    rows = storage.open_table(uri).to_pyarrow_table().to_pylist()
    assert len(rows) == 1 + ops + rs_ops
    assert {(r["k"], r["writer"]) for r in rows} == ({(0, "w0")} | {(10_000 + i, "w1") for i in range(rs_ops)}
                                                     | {(1_000_000 + i, "spark") for i in range(ops)})
