"""The production deployment (infra/deploy.py): brought up, run by its own scheduler, torn down.

On a fresh GOVLAKE_VAR with a small generated city, `infra/deploy.sh up` starts Airflow's api-server,
scheduler, dag-processor and triggerer as separate processes on a PostgreSQL metadata database of its
own (infra/pg.py), with the settings of infra/deploy/govlake.env.example (only ports, parallelism and
pausing overridden). Through the REST API (a token from the generated login) the test unpauses the
daily feeds and the two publish DAGs; the scheduler then runs each feed on its schedule (its latest
@daily interval, at once: no catchup) with the LocalExecutor, and the feeds' silver Assets trigger
publish_gold, whose 法人库 Asset with theirs triggers publish_credit. Checked: every run succeeded
with the run type the schedule gives, the lake (silver, gold, reconciliation balanced, the extract),
both OpenLineage files; then `down` stops every process (none left, the database server included).

The Celery test is the shape that adds machines: a CeleryExecutor deployment (Redis broker, a Celery
worker taking the tasks) whose tasks run on the Spark engine, their drivers on the test cluster
(tests/_spark_cluster.py) and the lake on the S3 test server (tests/_s3.py). The scheduler runs one feed;
its process task is a Spark application of the cluster writing silver on S3 with delta-spark. Then it kills
a service and the supervisor with SIGKILL and checks that `down` still leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from deltalake import DeltaTable

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "infra" / "deploy.sh"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg():
    spec = importlib.util.spec_from_file_location("govlake_infra_pg", REPO / "infra" / "pg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unavailable(reason: str) -> None:
    (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{reason} (make setup installs it)")


def _deploy(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEPLOY), *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


class Api:
    """The deployment's REST API with a token from its generated login (SimpleAuthManager)."""

    def __init__(self, base: str, passwords: Path) -> None:
        self.base = base
        password = json.loads(passwords.read_text())["admin"]
        self.token = self._call("POST", "/auth/token", {"username": "admin", "password": password},
                                auth=False)["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, *, auth: bool = True) -> dict:
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body)

    def runs(self) -> list[dict]:
        return self.get("/api/v2/dags/~/dagRuns?limit=100")["dag_runs"]

    def task_instances(self) -> list[dict]:
        return self.get("/api/v2/dags/~/dagRuns/~/taskInstances?limit=200")["task_instances"]


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVLAKE_", "AIRFLOW", "OPENLINEAGE"))}
    return env | {
        "GOVLAKE_VAR": str(tmp_path / "var"),
        "GOVLAKE_DEPLOY_ENV": str(REPO / "infra" / "deploy" / "govlake.env.example"),
        # free ports: other clones, and other deployments, may run on this machine
        "AIRFLOW__API__PORT": str(_free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        # a small machine: one API worker, few task slots; the test unpauses only what it runs
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
        "GOVLAKE_DEPLOY_STOP_TIMEOUT": "30",
        **extra,
    }


def _processes(deploy_dir: Path) -> list[psutil.Process]:
    """Every process of the deployment: the supervisor's tree, and the PostgreSQL server's."""
    state = json.loads((deploy_dir / "run" / "state.json").read_text())
    found = []
    supervisor = psutil.Process(state["supervisor"]["pid"])
    found += [supervisor, *supervisor.children(recursive=True)]
    pid_file = _pg()._existing_root(deploy_dir / "pg") / "data" / "postmaster.pid"
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    found += [postmaster, *postmaster.children(recursive=True)]
    return found


def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
        except psutil.Error:
            continue
    return left


def _mentioning(path: Path) -> list[str]:
    """Live processes whose command line names ``path`` (a leftover server of this test)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(path) in cmdline:
            found.append(f"{proc.info['pid']} {cmdline[:100]}")
    return found


def _not_logged(log: Path, expected: list[tuple[str, ...]], timeout: float = 60) -> list[str]:
    """The names of ``expected`` (name, fragment…) with no line of ``log`` holding all its fragments, after
    waiting up to ``timeout`` seconds for them to appear."""
    deadline = time.time() + timeout
    while True:
        lines = log.read_text(errors="replace").splitlines()
        missing = [name for name, *fragments in expected
                   if not any(all(f in line for f in fragments) for line in lines)]
        if not missing or time.time() > deadline:
            return missing
        time.sleep(2)


@pytest.fixture
def deployment(tmp_path):
    """Tear-down whatever the test brought up, even when it failed: `clean` (down, then the folder and
    the database cluster removed)."""
    if _pg().bindir() is None:
        _unavailable("no PostgreSQL server binaries")
    envs: list[dict[str, str]] = []
    yield envs
    for env in envs:
        _deploy(env, "clean", timeout=300)


def _cluster_apps(cluster) -> set[str]:
    """The ids of the applications the Spark cluster's master knows (running and completed)."""
    apps = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{cluster.ui_port}/json/", timeout=10).read())
    return {a["id"] for a in apps["activeapps"] + apps["completedapps"]}


def _wait(api: Api, done, *, timeout: float, what: str, deploy_dir: Path) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = api.runs()
        failed = [r for r in runs if r["state"] == "failed"]
        if failed:
            tis = [f"{t['dag_id']}.{t['task_id']}: {t['state']}" for t in api.task_instances()
                   if t["state"] not in ("success", None)]
            pytest.fail(f"{what}: failed runs {[(r['dag_id'], r['dag_run_id']) for r in failed]}; tasks: {tis}")
        if done(runs):
            return runs
        time.sleep(5)
    tail = (deploy_dir / "logs" / "scheduler.log").read_text(errors="replace").splitlines()[-30:]
    pytest.fail(f"{what}: not done after {timeout:.0f} s: "
                f"{[(r['dag_id'], r['state']) for r in api.runs()]}\n" + "\n".join(tail))


def test_the_deployment_runs_the_feeds_and_the_asset_triggered_publish_dags(tmp_path, deployment):
    from govlake.catalog import get_catalog
    from govlake.generate import generate_city
    from govlake.lineage import validate_file

    # the scheduler runs each daily feed for its latest interval: today, in the bureau's time zone
    today = dt.datetime.now(SHANGHAI).date()
    var = tmp_path / "var"
    generate_city(var / "city", scale=200, as_of=today)
    env = _environment(tmp_path)
    deployment.append(env)
    deploy_dir = var / "deploy"

    start = time.monotonic()
    up = _deploy(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    up_seconds = time.monotonic() - start

    # settings and secrets: generated at the first start, 0600 in a 0700 folder, nowhere else
    secrets_dir = deploy_dir / "secrets"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    for name in ("secrets.env", "passwords.json"):
        assert (secrets_dir / name).stat().st_mode & 0o777 == 0o600, name
    generated = dict(line.split("=", 1) for line in (secrets_dir / "secrets.env").read_text().splitlines()
                     if line and not line.startswith("#"))
    assert {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"} <= set(generated)
    assert not any(value.strip("'") in (deploy_dir / "airflow" / "airflow.cfg").read_text()
                   for value in generated.values())

    report = json.loads(_deploy(env, "status", "--json").stdout)
    assert report["healthy"] and report["executor"] == "LocalExecutor"
    assert report["database"].startswith("postgresql+psycopg://")
    assert set(report["services"]) == {"api-server", "scheduler", "dag-processor", "triggerer"}
    pids = {name: s["pid"] for name, s in report["services"].items()}
    assert len(set(pids.values())) == 4  # four processes, not one
    assert report["api_health"]["metadatabase"]["status"] == "healthy"
    assert {report["api_health"][c]["status"] for c in ("scheduler", "dag_processor", "triggerer")} == {"healthy"}

    api = Api(report["api_url"], secrets_dir / "passwords.json")
    catalog = get_catalog(REPO / "catalog")
    daily = sorted(f"feed_{r.slug}" for r in catalog.resources.values() if r.update_cycle in ("daily", "realtime"))
    deadline = time.time() + 120  # the dag-processor parses the DAG files first
    while {d["dag_id"] for d in api.get("/api/v2/dags?limit=100")["dags"]} < {*daily, "publish_gold",
                                                                               "publish_credit"}:
        assert time.time() < deadline, "the DAGs were not parsed within 120 s"
        time.sleep(3)
    for dag_id in [*daily, "publish_gold", "publish_credit"]:
        assert api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})["is_paused"] is False

    # publish_credit starts on the gold task's Assets, so it may finish while publish_gold still runs its
    # later tasks (conflicts, returns): wait for both
    runs = _wait(api, lambda runs: all(any(r["dag_id"] == d and r["state"] == "success" for r in runs)
                                       for d in ("publish_gold", "publish_credit")),
                 timeout=1200, what="the feeds, publish_gold and publish_credit", deploy_dir=deploy_dir)
    run_seconds = time.monotonic() - start - up_seconds
    by_dag = {r["dag_id"]: r for r in sorted(runs, key=lambda r: r["state"] != "success", reverse=True)}
    # each feed ran on its schedule (the scheduler made the run), the publish DAGs on their Assets
    for dag_id in daily:
        assert (by_dag[dag_id]["run_type"], by_dag[dag_id]["state"]) == ("scheduled", "success"), dag_id
        # (or tomorrow's, when midnight in Shanghai fell during the test)
        ran_for = dt.datetime.fromisoformat(by_dag[dag_id]["logical_date"]).astimezone(SHANGHAI).date()
        assert ran_for in (today, today + dt.timedelta(days=1)), dag_id
    for dag_id in ("publish_gold", "publish_credit"):
        assert (by_dag[dag_id]["run_type"], by_dag[dag_id]["state"]) == ("asset_triggered", "success"), dag_id
    assert not {r["dag_id"] for r in runs} - {*daily, "publish_gold", "publish_credit"}
    # every task ran under the scheduler's executor (LocalExecutor), none through `dags test`: the
    # scheduler received its executor's event of each (logged just after the task reported its state)
    tis = [t for t in api.task_instances() if (t["dag_id"], t["dag_run_id"]) in {
        (r["dag_id"], r["dag_run_id"]) for r in by_dag.values()}]
    # ingest + process per feed; publish_gold: gold, conflicts, returns; publish_credit: credit, themes,
    # extract, open_data, kpis
    assert len(tis) == 2 * len(daily) + 3 + 5 and {t["state"] for t in tis} == {"success"}
    assert _not_logged(deploy_dir / "logs" / "scheduler.log", [
        (f"{t['dag_id']}.{t['task_id']}", "Received executor event with state success for task instance "
         f"TaskInstanceKey(dag_id='{t['dag_id']}', task_id='{t['task_id']}'") for t in tis]) == []

    # the lake: silver of every feed, gold, reconciliation balanced, the analyst extract
    lake = var / "lake"
    for dag_id in daily:
        silver = lake / "silver" / dag_id.removeprefix("feed_")
        assert DeltaTable(str(silver)).to_pyarrow_table().num_rows > 0, silver
    assert DeltaTable(str(lake / "gold" / "base" / "legal_entity")).to_pyarrow_table().num_rows > 0
    assert DeltaTable(str(lake / "gold" / "theme" / "penalty_publication")).to_pyarrow_table().num_rows > 0
    recon = DeltaTable(str(lake / "meta" / "reconciliation")).to_pyarrow_table().to_pylist()
    assert {r["resource"] for r in recon} == {catalog.resources[c].code for c in catalog.resources
                                              if f"feed_{catalog.resources[c].slug}" in daily}
    assert all(r["balanced"] for r in recon)
    assert (var / "extracts" / "analyst.duckdb").is_file()

    # OpenLineage from both sides: the provider's file transport and govlake's own events, linked
    events = [json.loads(line) for line in (var / "lineage" / "airflow.jsonl").read_text().splitlines()]
    completed = {e["job"]["name"] for e in events if e["eventType"] == "COMPLETE"}
    assert {"feed_credit_penalty.ingest", "feed_credit_penalty.process", "publish_gold.gold",
            "publish_credit.credit", "publish_credit.extract", "publish_credit.kpis"} <= completed
    ours = [json.loads(line) for line in (var / "lineage" / "govlake.jsonl").read_text().splitlines()]
    task_runs = {(e["job"]["name"], e["run"]["runId"]) for e in events}
    parents = {e["job"]["name"]: (p["job"]["name"], p["run"]["runId"]) for e in ours
               if e["eventType"] == "COMPLETE" and (p := e["run"]["facets"].get("parent"))}
    for job, task in [("process.credit.penalty", "feed_credit_penalty.process"), ("gold", "publish_gold.gold"),
                      ("credit", "publish_credit.credit")]:
        assert parents[job][0] == task and parents[job] in task_runs, job
    assert validate_file(var / "lineage" / "airflow.jsonl") == {}
    assert validate_file(var / "lineage" / "govlake.jsonl") == {}

    # down: every process stops, the database server too; nothing of this deployment is left
    procs = _processes(deploy_dir)
    assert len(procs) > 6
    start_down = time.monotonic()
    down = _deploy(env, "down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert _alive(procs) == []
    assert _mentioning(tmp_path) == []
    assert not (deploy_dir / "run" / "state.json").exists()
    print(f"up {up_seconds:.0f} s, runs {run_seconds:.0f} s, down {time.monotonic() - start_down:.0f} s")


@pytest.mark.spark
def test_a_celery_worker_runs_a_feed_on_the_spark_cluster_over_s3_and_down_stops_everything(
        tmp_path, deployment, s3, spark_cluster, spark_defaults, monkeypatch):
    if shutil.which("redis-server") is None:
        _unavailable("no redis-server")
    if importlib.util.find_spec("airflow.providers.celery") is None:
        _unavailable("no Celery provider (the uv `celery` group)")
    from _spark_cluster import CLUSTER_ENV
    from govlake import objectstore, storage
    from govlake.generate import generate_city

    today = dt.datetime.now(SHANGHAI).date()
    var = tmp_path / "var"
    generate_city(var / "city", scale=200, as_of=today, only="credit.penalty")
    on_spark = {"GOVLAKE_ENGINE": "spark", "GOVLAKE_SPARK_MASTER": spark_cluster.master, **CLUSTER_ENV,
                **s3.env(f"deploy-{tmp_path.name}"), **spark_defaults}
    lake = on_spark["GOVLAKE_LAKE"]
    for key, value in on_spark.items():  # this process reads the lake on S3 too
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    apps_before = _cluster_apps(spark_cluster)
    env = _environment(tmp_path, GOVLAKE_EXECUTOR="celery", GOVLAKE_REDIS_PORT=str(_free_port()), **on_spark)
    deployment.append(env)
    deploy_dir = var / "deploy"
    up = _deploy(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    report = json.loads(_deploy(env, "status", "--json").stdout)
    assert report["healthy"] and report["executor"] == "CeleryExecutor"
    assert set(report["services"]) == {"redis", "api-server", "scheduler", "dag-processor", "triggerer", "worker"}

    api = Api(report["api_url"], deploy_dir / "secrets" / "passwords.json")
    deadline = time.time() + 120
    while "feed_credit_penalty" not in {d["dag_id"] for d in api.get("/api/v2/dags?limit=100")["dags"]}:
        assert time.time() < deadline, "the DAGs were not parsed within 120 s"
        time.sleep(3)
    api.patch("/api/v2/dags/feed_credit_penalty", {"is_paused": False})
    runs = _wait(api, lambda runs: any(r["dag_id"] == "feed_credit_penalty" and r["state"] == "success"
                                       for r in runs),
                 timeout=1500, what="feed_credit_penalty on Celery and Spark", deploy_dir=deploy_dir)
    # the feed is hourly: a run that crosses the hour has the next hour's run queued or running beside it
    done = next(r["dag_run_id"] for r in runs if r["dag_id"] == "feed_credit_penalty" and r["state"] == "success")
    tis = [t for t in api.task_instances() if t["dag_id"] == "feed_credit_penalty" and t["dag_run_id"] == done]
    assert {(t["task_id"], t["state"]) for t in tis} == {("ingest", "success"), ("process", "success")}
    # the Celery worker ran both: each task instance is a workload it finished with success (it logs so
    # just after the task has reported its state)
    assert _not_logged(deploy_dir / "logs" / "worker.log", [
        (t["task_id"], "Workload finished", "final_state=success", f"workload_id={t['id']}") for t in tis]) == []
    # both tasks were Spark applications of the cluster: Spark tasks decoded the files and delta-spark wrote
    # bronze, then silver, on S3
    for layer in ("bronze", "silver"):
        table = storage.open_table(objectstore.join(lake, layer, "credit_penalty"))
        assert table is not None and table.to_pyarrow_table().num_rows > 0, layer
        assert any(c.get("engineInfo", "").startswith("Apache-Spark") for c in table.history()), layer
    assert not (var / "lake").exists()
    assert _cluster_apps(spark_cluster) - apps_before, "no application ran on the cluster"

    # a process that dies is started again by the supervisor
    killed = report["services"]["triggerer"]["pid"]
    os.kill(killed, signal.SIGKILL)
    deadline = time.time() + 120
    while True:
        triggerer = json.loads(_deploy(env, "status", "--json").stdout)["services"]["triggerer"]
        if triggerer["running"] and triggerer["pid"] != killed:
            break
        assert time.time() < deadline, f"the triggerer was not restarted: {triggerer}"
        time.sleep(2)
    assert triggerer["restarts"] == 1
    # after stopping what the killed one left in its session (its log server, which holds the port)
    assert "triggerer: stopped what it left: " in (deploy_dir / "logs" / "supervisor.log").read_text()

    # the supervisor dies without a word (kill -9): `down` still finds and stops everything
    procs = _processes(deploy_dir)
    supervisor = json.loads((deploy_dir / "run" / "state.json").read_text())["supervisor"]["pid"]
    os.kill(supervisor, signal.SIGKILL)
    down = _deploy(env, "down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert _alive(procs) == []
    assert _mentioning(tmp_path) == []
