"""A run whose standalone cluster dies under it fails, naming the master, and the next run finishes it.

Spark's driver waits for a lost master with no limit: without govlake's master watch (govlake.engine,
GOVLAKE_SPARK_MASTER_WAIT) a ``govlake run`` whose cluster was killed waited for executors for ever. The cluster
here is one of its own (one worker of one core, infra/spark_cluster.py), so that killing it leaves the tests'
shared cluster (tests/_spark_cluster.py) alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from _spark_cluster import CLUSTER_ENV, cli_env, cluster_cli, free_port, leftovers
from govlake import pipeline, storage
from govlake.config import SettingsError, get_settings
from govlake.engine import check_spark
from govlake.generate import generate_city

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = dt.date(2026, 11, 20)
WAIT = 10
GOVLAKE = str(Path(sys.executable).with_name("govlake"))


def _apps(ui_port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=10) as answer:
        return json.loads(answer.read())["activeapps"]


EXECUTOR = "org.apache.spark.executor.CoarseGrainedExecutorBackend"


def _kill_all(folder: Path) -> list[str]:
    """Kill -9 every process of the cluster in ``folder`` (master, worker, executor, …), again until none is left:
    the lines of those killed."""
    killed: list[str] = []
    for _ in range(20):
        if not (found := leftovers(folder, width=100_000)):
            return killed
        for line in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
        killed += found
        time.sleep(0.5)
    raise AssertionError(f"the cluster's processes outlived 20 rounds of kill -9: {leftovers(folder)}")


def test_a_run_whose_cluster_is_killed_fails_naming_the_master_and_the_next_run_finishes(tmp_path, spark_defaults,
                                                                                          monkeypatch):
    var, folder = tmp_path / "var", tmp_path / "cluster"
    env = cli_env(var, GOVLAKE_INBOX=str(tmp_path / "inbox"), GOVLAKE_AS_OF=AS_OF.isoformat()) | spark_defaults
    for key, value in env.items():
        if key.startswith("GOVLAKE_"):
            monkeypatch.setenv(key, value)
    try:
        check_spark(get_settings())
    except SettingsError as exc:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no Spark engine here: {exc}")
    # one resource landed on DuckDB (quick): the run on the cluster starts at its process step, then derives gold,
    # credit and the extract from it (on the cluster's one core a run takes a minute or more per resource)
    generate_city(tmp_path / "inbox", scale=120, seed=5, as_of=AS_OF, only="credit.penalty")
    settings = get_settings()
    pipeline.ingest("credit.penalty", settings=settings)

    ui_port, master_port = free_port(), free_port()
    start = ["start", "--dir", folder, "--master-port", master_port, "--ui-port", ui_port, "--worker-ui-port", 0,
             "--workers", 1, "--worker-cores", 1, "--stop-with", os.getpid(), "--json"]
    started = cluster_cli(*start, env=env)
    assert started.returncode == 0, started.stderr[-3000:]
    master = json.loads(started.stdout)["master"]
    on_cluster = env | CLUSTER_ENV | {"GOVLAKE_ENGINE": "spark", "GOVLAKE_SPARK_MASTER": master,
                                      "GOVLAKE_SPARK_CORES_MAX": "1", "GOVLAKE_SPARK_MASTER_WAIT": str(WAIT)}
    run = None
    try:
        run = subprocess.Popen([GOVLAKE, "run"], env=on_cluster, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        deadline = time.monotonic() + 600
        # the master gives the run cores before the worker starts its executor's JVM: a kill in between would leave
        # an executor, started a moment later by the dying worker, serving the driver to the end of the run
        while not (any(a["name"] == "govlake" and a["cores"] > 0 for a in _apps(ui_port))
                   and any(EXECUTOR in line for line in leftovers(folder, width=100_000))):
            assert run.poll() is None, run.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the run's driver got no executor in 600 s"
            time.sleep(1)
        time.sleep(3)
        killed_lines = _kill_all(folder)
        killed = time.monotonic()
        assert any(EXECUTOR in line for line in killed_lines) and any(".Master " in line for line in killed_lines)
        _, err = run.communicate(timeout=WAIT + 300)
        took = time.monotonic() - killed
        assert run.returncode == 1, err[-3000:]
        assert f"error: the Spark cluster's master {master} has not answered for {WAIT} s" in err, err[-3000:]
        assert "GOVLAKE_SPARK_MASTER_WAIT=10" in err and "run the same command again" in err
        assert "Traceback" not in err and "Py4JJavaError" not in err
        assert WAIT <= took < WAIT + 120, took

        # the cluster started again: the same command finishes the run, and every resource balances
        assert cluster_cli("stop", "--dir", folder, env=env).returncode == 0
        restarted = cluster_cli(*start, env=env)
        assert restarted.returncode == 0, restarted.stderr[-3000:]
        done = subprocess.run([GOVLAKE, "run"], env=on_cluster, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        if run and run.poll() is None:  # still waiting: what the watch is there to end
            run.kill()
        cluster_cli("stop", "--dir", folder, env=env)
    con = duckdb.connect()
    storage.register(con, "recon", settings.lake / "meta" / "reconciliation")
    last = con.sql("select max(run_id) from recon").fetchone()[0]
    assert con.sql("select count(*), bool_and(balanced) from recon where run_id = $r",
                   params={"r": last}).fetchone() == (1, True)
    storage.register(con, "published", settings.lake / "gold" / "theme" / "penalty_publication")
    assert con.sql("select count(*) from published").fetchone()[0] > 0
