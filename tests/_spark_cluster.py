"""A Spark standalone cluster for the tests, started and stopped by infra/spark_cluster.py.

``spark_cluster`` (session scope) starts one master and two workers on 127.0.0.1, on free ports, in a scratch
folder, for the whole test session; the workers have 2 cores each and the drivers take one 1-core executor of
512m on each worker (:data:`CLUSTER_ENV`), so the engine's own driver and the Spark Connect server run side by
side. ``--stop-with`` is pytest's pid: a test run killed with ``kill -9`` leaves no cluster behind. At the end
``stop`` must leave no process of the cluster (:func:`leftovers`), else the session errors.
``spark_connect`` adds the Spark Connect server to it (``start --connect-port``) when a test asks for it.

pyspark, Java or the jars (var/jars, or GOVLAKE_SPARK_JARS) missing fails under CI and skips elsewhere.
A pytest plugin of tests/conftest.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from _jvm import QUICK_JVM
from govlake.config import DEFAULT_SPARK_JARS, REPO_ROOT, Settings, SettingsError, java_home

CLUSTER_PY = REPO_ROOT / "infra" / "spark_cluster.py"
CLUSTER_ENV = {
    "GOVLAKE_SPARK_EXECUTOR_MEMORY": "512m",
    "GOVLAKE_SPARK_EXECUTOR_CORES": "1",
    "GOVLAKE_SPARK_CORES_MAX": "2",
}
"""The settings of every driver on the test cluster (the engine's and the Connect server)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(var: Path, **more: str) -> dict[str, str]:
    """The environment of a process on the test cluster: no GOVLAKE_ setting of the caller's but the jars',
    :data:`CLUSTER_ENV`, var/ under ``var``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVLAKE_") or k == "GOVLAKE_SPARK_JARS"}
    return env | CLUSTER_ENV | {"GOVLAKE_VAR": str(var)} | more


def cluster_cli(*args: object, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """infra/spark_cluster.py with ``args``, run to its end."""
    return subprocess.run([sys.executable, str(CLUSTER_PY), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def leftovers(folder: Path, width: int = 200) -> list[str]:
    """Processes still working in ``folder`` (their cwd) or naming it (their command line): what the cluster in
    ``folder`` left running, each as ``pid: command line`` (its first ``width`` characters). Every process of the
    cluster works in its folder: the daemons, the Connect server, the executors (worker-N/work/<app>/<id>) and
    their Python workers."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cwd, cmd = proc.info["cwd"] or "", " ".join(proc.info["cmdline"] or [])
        if proc.pid != os.getpid() and (Path(cwd).is_relative_to(folder) or str(folder) in cmd):
            found.append(f"{proc.pid}: {cmd[:width]}")
    return found


@dataclass
class Cluster:
    folder: Path
    var: Path
    master: str
    ui_port: int
    start_args: list[str]

    def status(self) -> dict:
        done = cluster_cli("status", "--dir", self.folder, "--json")
        return json.loads(done.stdout)


def _can_run_spark(var: Path) -> None:
    from govlake.engine import spark_jars

    jars = Path(os.environ["GOVLAKE_SPARK_JARS"]) if os.environ.get("GOVLAKE_SPARK_JARS") else DEFAULT_SPARK_JARS
    try:
        if importlib.util.find_spec("pyspark") is None or java_home() is None:
            raise SettingsError("GOVLAKE_ENGINE", "spark", "needs pyspark (the uv spark group) and a Java")
        spark_jars(Settings(var=var, engine="spark", spark_jars=jars))
    except SettingsError as exc:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no Spark cluster here: {exc}")


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A master and two workers on 127.0.0.1 for the test session (see the module's docstring)."""
    folder = tmp_path_factory.mktemp("spark-cluster")
    var = tmp_path_factory.mktemp("spark-cluster-var")
    _can_run_spark(var)
    ui_port = free_port()
    args = ["start", "--dir", folder, "--master-port", free_port(), "--ui-port", ui_port, "--worker-ui-port", 0,
            "--worker-cores", 2, "--timeout", 300]
    done = cluster_cli(*args, "--stop-with", os.getpid(), "--json", env=cli_env(var))
    if done.returncode:
        pytest.fail(f"infra/spark_cluster.py start failed ({done.returncode}):\n{done.stderr[-3000:]}")
    info = json.loads(done.stdout)
    try:
        yield Cluster(folder, var, info["master"], ui_port, [str(a) for a in args])
    finally:
        stopped = cluster_cli("stop", "--dir", folder)
        assert stopped.returncode == 0, stopped.stderr
        assert leftovers(folder) == [], "infra/spark_cluster.py stop left processes of the cluster running"


@pytest.fixture(scope="session")
def spark_connect(spark_cluster: Cluster) -> str:
    """The Spark Connect server on the test cluster (``start --connect-port`` again); its ``sc://`` URL."""
    done = cluster_cli(*spark_cluster.start_args, "--connect-port", free_port(), "--json",
                       "--connect-conf", f"spark.driver.extraJavaOptions={QUICK_JVM}",
                       "--connect-conf", f"spark.executor.extraJavaOptions={QUICK_JVM}", env=cli_env(spark_cluster.var))
    if done.returncode:
        pytest.fail(f"infra/spark_cluster.py start --connect-port failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)["connect"]
