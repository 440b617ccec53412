"""The Spark engine on a real standalone cluster: infra/spark_cluster.py starts a master and two workers on
127.0.0.1 (tests/_spark_cluster.py, one cluster for the session), the engine's session from the environment
(GOVLAKE_SPARK_MASTER=spark://…) runs its tasks on both workers with the venv's Python, and the Delta table its
executors write, and delta-spark merges into, is what delta-rs reads; through Spark Connect
(GOVLAKE_SPARK_REMOTE=sc://…) a server on the same cluster creates and merges a Delta table. A second start
starts nothing, and a starter killed with ``kill -9`` leaves nothing running once its owner has ended."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from deltalake import DeltaTable

from _jvm import QUICK_JVM
from _spark_cluster import Cluster, cli_env, cluster_cli, free_port, leftovers
from govlake.config import REPO_ROOT, java_home

pytestmark = [pytest.mark.spark, pytest.mark.slow]

JOB = Path(__file__).with_name("_spark_cluster_job.py")
CONNECT_CLIENT = Path(__file__).with_name("_spark_connect_client.py")


def _rows(table: Path, version: int | None = None) -> list[tuple]:
    rows = DeltaTable(str(table), version=version).to_pyarrow_table().to_pylist()
    return sorted((r["id"], r["name"], r["amount"], r["decided_on"], r["received_at"]) for r in rows)


@pytest.fixture(scope="module")
def job(spark_cluster: Cluster, tmp_path_factory) -> tuple[dict, Path]:
    """The engine's own driver on the cluster (tests/_spark_cluster_job.py), run once: its report and table."""
    table = tmp_path_factory.mktemp("cluster-lake") / "silver_penalty"
    env = cli_env(spark_cluster.var, GOVLAKE_ENGINE="spark", GOVLAKE_SPARK_MASTER=spark_cluster.master)
    done = subprocess.run([sys.executable, str(JOB), str(table)], capture_output=True, text=True, env=env,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), table


def test_the_engine_runs_its_tasks_on_both_workers_with_the_venv_python(spark_cluster, job):
    report, _ = job
    executors = {Path(cwd).relative_to(spark_cluster.folder).parts for cwd, _ in report["tasks"]}
    # worker-N/work/<app>/<executor>: two executors of one app, on two different workers
    assert {parts[0] for parts in executors} == {"worker-1", "worker-2"}
    assert len({parts[2] for parts in executors}) == 1 and len({parts[3] for parts in executors}) == 2
    assert {python for _, python in report["tasks"]} == {report["driver_python"]} == {sys.executable}
    assert report["conf"] == {"spark.master": spark_cluster.master, "spark.driver.host": "127.0.0.1",
                              "spark.executor.memory": "512m", "spark.executor.cores": "1", "spark.cores.max": "2",
                              "spark.pyspark.python": sys.executable}


def test_delta_rs_reads_what_the_executors_wrote_and_delta_spark_merged(job):
    from _spark_cluster_job import ROWS, UPDATES

    report, table = job
    assert _rows(table, version=0) == sorted(ROWS, key=lambda r: r[0])
    merged = {r[0]: r for r in ROWS} | {r[0]: r for r in UPDATES}
    assert _rows(table) == sorted(merged.values()) and report["merged_rows_read_by_spark"] == 4
    assert DeltaTable(str(table)).history()[0]["operation"] == "MERGE"
    assert merged[2][1] == "上海浦东新区示例贸易商行" and merged[4][2] == Decimal("-1.2500")


def test_spark_submit_with_the_engine_s_arguments_runs_a_driver_on_the_cluster(spark_cluster, tmp_path):
    """A driver spark-submit starts has its class path before govlake reads its settings: ``submit-args`` gives
    it Delta's jars and delta-spark's Python API; without them the session is refused, naming what to do."""
    from _spark_cluster_job import ROWS

    env = cli_env(spark_cluster.var, GOVLAKE_ENGINE="spark", GOVLAKE_SPARK_MASTER=spark_cluster.master,
                  JAVA_HOME=str(java_home()))
    args = cluster_cli("submit-args", env=env)
    assert args.returncode == 0, args.stderr
    submit = [str(Path(sys.executable).with_name("spark-submit")), *shlex.split(args.stdout)]
    assert submit[1:3] == ["--master", spark_cluster.master]
    submit += ["--driver-java-options", QUICK_JVM]  # starts sooner (tests only)
    done = subprocess.run([*submit, str(JOB), str(tmp_path / "t"), "--submitted"], capture_output=True, text=True,
                          env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "rows": len(ROWS), "master": spark_cluster.master, "deploy_mode": "client",
        "app_name": "govlake spark-submit test"}
    assert _rows(tmp_path / "t") == sorted(ROWS, key=lambda r: r[0])


def test_a_second_start_starts_nothing_and_another_is_refused(spark_cluster, tmp_path):
    before = spark_cluster.status()
    again = cluster_cli(*spark_cluster.start_args, env=cli_env(spark_cluster.var))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == spark_cluster.master and "already running" in again.stderr
    after = spark_cluster.status()
    assert {n: p["pid"] for n, p in after["processes"].items()} == {n: p["pid"] for n, p in before["processes"].items()}
    assert [w["state"] for w in after["workers"]] == ["ALIVE", "ALIVE"]  # two workers, not four
    other = cluster_cli(*spark_cluster.start_args, "--worker-cores", 3, env=cli_env(spark_cluster.var))
    assert other.returncode == 1 and f"a cluster already runs in {spark_cluster.folder}" in other.stderr
    assert "worker_cores=2" in other.stderr
    port = spark_cluster.master.rsplit(":", 1)[1]
    elsewhere = cluster_cli("start", "--dir", tmp_path / "other", "--master-port", port, "--ui-port", free_port(),
                            env=cli_env(spark_cluster.var))
    assert elsewhere.returncode == 1 and f"port {port} on 127.0.0.1 is taken" in elsewhere.stderr
    assert "--master-port" in elsewhere.stderr and not (tmp_path / "other" / "pids").exists()


def test_status_names_every_process_and_worker(spark_cluster):
    done = cluster_cli("status", "--dir", spark_cluster.folder)
    assert done.returncode == 0 and done.stdout.startswith(f"running: {spark_cluster.folder}")
    for name in ("master", "worker-1", "worker-2", "watchdog"):
        assert f"  {name}" in done.stdout
    assert done.stdout.count("  ALIVE  ") == 2
    gone = cluster_cli("status", "--dir", spark_cluster.folder.parent / "no-cluster")
    assert gone.returncode == 3 and gone.stdout.startswith("not running")


def test_spark_connect_creates_and_merges_a_delta_table_on_the_cluster(spark_cluster, spark_connect, tmp_path):
    # the client in a process of its own (tests/_spark_connect_client.py): pyspark refuses a Connect session where
    # a classic one runs, as the tests' shared session may by now
    table = tmp_path / "connect_table"
    env = cli_env(spark_cluster.var, GOVLAKE_ENGINE="spark", GOVLAKE_SPARK_REMOTE=spark_connect)
    for key in ("GOVLAKE_SPARK_EXECUTOR_MEMORY", "GOVLAKE_SPARK_EXECUTOR_CORES", "GOVLAKE_SPARK_CORES_MAX"):
        env.pop(key)  # the server's own settings: refused with GOVLAKE_SPARK_REMOTE
    done = subprocess.run([sys.executable, str(CONNECT_CLIENT), str(table)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["module"] == "pyspark.sql.connect.session"
    assert report["timezone"] == "UTC"  # the dialect layer's settings
    assert (report["updated"], report["inserted"]) == (1, 1)
    rows = sorted(DeltaTable(str(table)).to_pyarrow_table().to_pylist(), key=lambda r: r["id"])
    assert rows == [{"id": 1, "name": "北京", "amount": Decimal("1.5000"), "decided_on": dt.date(2026, 10, 1)},
                    {"id": 2, "name": "上海市", "amount": Decimal("2.0000"), "decided_on": dt.date(2026, 10, 2)},
                    {"id": 3, "name": "广州", "amount": None, "decided_on": None}]
    # the server's executors on the cluster did the work: its app holds a core on each worker
    assert any(app["name"] == "govlake Spark Connect server" and app["cores"] == 2
               for app in spark_cluster.status()["apps"])


def test_a_starter_killed_halfway_leaves_nothing_once_its_owner_ends(tmp_path):
    """``kill -9`` of ``start`` while the master comes up: the JVM it started is recorded (status: partly
    running; a new start refused), and the watchdog of ``--stop-with`` stops it when the owner ends."""
    folder = tmp_path / "cluster"
    owner = subprocess.Popen(["sleep", "600"])
    args = ["start", "--dir", folder, "--master-port", free_port(), "--ui-port", free_port(), "--worker-ui-port", 0,
            "--workers", 1]
    starter = subprocess.Popen([sys.executable, str(REPO_ROOT / "infra" / "spark_cluster.py"), *map(str, args),
                                "--stop-with", str(owner.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=cli_env(tmp_path / "var"))
    try:
        deadline = time.monotonic() + 120
        while not (folder / "pids" / "master.json").exists():
            assert starter.poll() is None and time.monotonic() < deadline, "the master was not started"
            time.sleep(0.1)
        starter.kill()
        starter.wait()
        status = cluster_cli("status", "--dir", folder, "--json")
        info = json.loads(status.stdout)
        assert status.returncode == 1 and info["state"] == "partly running"
        assert info["processes"]["master"]["alive"] and info["processes"]["watchdog"]["alive"]
        again = cluster_cli(*args, env=cli_env(tmp_path / "var"))
        assert again.returncode == 1 and "partly running (worker-1 not running" in again.stderr
        assert "spark_cluster.py stop --dir" in again.stderr
        assert leftovers(folder)  # the master JVM (and the watchdog) run on
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 60
    while leftovers(folder) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leftovers(folder) == []
    assert cluster_cli("status", "--dir", folder).returncode == 3


def test_a_clock_correction_does_not_make_a_running_process_look_ended(monkeypatch):
    """The records tell a process by the seconds from boot to its start: psutil's create_time() adds the boot time
    as the clock gives it now, in whole seconds, which a correction of the clock by a fraction of a second can move
    by one (the watchdog once stopped a cluster under a running test so)."""
    import importlib.util

    import psutil

    spec = importlib.util.spec_from_file_location("spark_cluster_cli", REPO_ROOT / "infra" / "spark_cluster.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    me = psutil.Process()
    record = {"pid": me.pid, "since_boot": cli.since_boot(me)}
    assert cli.alive(record)
    platform = psutil._psplatform  # where create_time() and boot_time() read the boot time
    booted = platform.boot_time()
    monkeypatch.setattr(platform, "boot_time", lambda: booted + 1)  # the clock set forward across a second
    assert abs(psutil.Process().create_time() - me.create_time()) > 0.9  # what the start time compared before
    assert cli.alive(record)
    assert not cli.alive({"pid": me.pid, "since_boot": record["since_boot"] - 2})  # another process, same pid
