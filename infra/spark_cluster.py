#!/usr/bin/env python3
"""A Spark standalone cluster on this machine's loopback, for the Spark engine (docs/spark.md).

    infra/spark_cluster.py start   [--master-port 7077] [--ui-port 8080] [--worker-ui-port 8081] [--workers 2]
                                   [--worker-cores 1] [--worker-memory 2g] [--connect-port PORT]
                                   [--connect-conf spark.key=value …] [--stop-with PID] [--timeout 180] [--json]
    infra/spark_cluster.py status  [--json]     exit 0 running, 1 partly running, 3 not running
    infra/spark_cluster.py stop
    (each takes --dir, default $GOVLAKE_VAR/spark-cluster, else <repo>/var/spark-cluster)
    infra/spark_cluster.py submit-args          spark-submit's arguments for the Spark engine's GOVLAKE_SPARK_*

``start`` runs a standalone master (``org.apache.spark.deploy.master.Master``) and workers
(``org.apache.spark.deploy.worker.Worker``, each with ``--worker-cores`` and ``--worker-memory``) through the
``spark-class`` of the installed pyspark, with the Java ``govlake.config.java_home()`` finds, every one
listening on 127.0.0.1 only; it returns once the master's JSON status (``http://127.0.0.1:<ui>/json/``) lists
every worker ALIVE, printing the master's URL (``spark://127.0.0.1:7077``), or fails naming the log to read
and stops what it started. ``--connect-port`` adds a Spark Connect server, a driver on this cluster with the
Spark engine's settings (``govlake.engine.spark_conf``: the Delta jars of var/jars, Delta's settings, the
GOVLAKE_SPARK_* of the environment), for ``GOVLAKE_SPARK_REMOTE=sc://127.0.0.1:<port>``.

Everything lives in the folder: ``cluster.json`` (the ports and sizes), ``pids/`` (one record per process:
pid and start time), ``logs/`` (master.log, worker-N.log, connect.log), ``worker-N/work`` (the executors' jars,
stdout and stderr) and ``worker-N/local`` (their scratch space).

Processes. Each JVM starts in a session of its own (setsid), so a Ctrl-C or a kill of the starter does not take
it down, and records its pid before it runs (between fork and exec): whenever the starter dies, even by
``kill -9`` halfway through, every JVM it started is in ``pids/`` and ``stop`` ends it. ``stop`` signals each
session (the master or worker JVM, the executor JVMs a worker starts, their Python workers: all keep the
session), TERM then KILL after 20 s, and checks that no process of them is left. ``--stop-with PID`` also
starts a watchdog that stops the cluster when process PID ends, however it ends: the tests pass their own pid,
so a test run killed with ``kill -9`` leaves no cluster behind either. A second ``start`` of a running cluster
starts nothing (it prints the same URL, adding only a Connect server asked for anew), a ``start`` with other
ports or sizes is refused, and one on a port another program holds is refused naming the option to change.
``start`` and ``stop`` of one folder wait for each other (a lock file).

Messages go to stderr; stdout carries the URL, the status (or ``--json``). Needs the project's environment (``uv run``):
pyspark, psutil and govlake.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
CONNECT_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
GRACE = 20.0
"""Seconds ``stop`` waits after TERM before KILL."""
SIZES = ("master_port", "ui_port", "worker_ui_port", "workers", "worker_cores", "worker_memory")


class ClusterError(RuntimeError):
    """The cluster cannot be started or stopped as asked (the message says why and what to do)."""


def _say(message: str) -> None:
    print(f"spark-cluster: {message}", file=sys.stderr, flush=True)


def default_dir() -> Path:
    return Path(os.environ.get("GOVLAKE_VAR") or REPO / "var").resolve() / "spark-cluster"


# ---- records of the processes -------------------------------------------------------------------


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def records(folder: Path) -> dict[str, dict]:
    """name → {pid, since_boot, log} of every process the cluster started (alive or not)."""
    found = {p.stem: _read_json(p) for p in sorted((folder / "pids").glob("*.json"))}
    return {name: rec for name, rec in found.items() if rec}


def since_boot(proc: psutil.Process) -> float:
    """Seconds from the machine's boot to ``proc``'s start: what tells a process from a later one given its pid.
    Not ``create_time()`` alone: that is this plus the boot time as the clock gives it now, in whole seconds
    (/proc/stat's btime), so a correction of the clock by a fraction of a second can move it by one — which once
    made the watchdog take the test session for ended and stop its cluster under a running test."""
    return proc.create_time() - psutil.boot_time()


def alive(rec: dict) -> bool:
    """Whether the process of a record still runs (the same process: a reused pid has another start time)."""
    try:
        return abs(since_boot(psutil.Process(rec["pid"])) - rec["since_boot"]) < 0.5
    except (psutil.Error, KeyError):
        return False


def _running(folder: Path, recs: dict[str, dict]) -> dict[str, bool]:
    """Whether each process of the cluster in ``folder`` (cluster.json: the master, every worker, the Connect
    server if asked) runs; {} without a cluster."""
    conf = _read_json(folder / "cluster.json")
    if not conf:
        return {}
    names = ["master", *(f"worker-{i}" for i in range(1, conf["workers"] + 1))]
    names += ["connect"] if conf.get("connect_port") else []
    return {name: name in recs and alive(recs[name]) for name in names}


def members(folder: Path, recs: dict[str, dict]) -> list[psutil.Process]:
    """Every process left of the cluster: the sessions of the recorded processes (each JVM leads one; the
    executors and their Python workers stay in their worker's), limited to processes working in ``folder``."""
    sessions = {rec["pid"] for rec in recs.values()}
    out = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) in sessions and Path(proc.cwd()).is_relative_to(folder):
                out.append(proc)
        except (OSError, psutil.Error):
            continue
    return out


def _spawn(folder: Path, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start ``cmd`` in a session of its own, in ``folder``, output to logs/<name>.log; its record is written
    by the child itself before exec, so no process of the cluster ever runs unrecorded."""
    log = folder / "logs" / f"{name}.log"
    record = folder / "pids" / f"{name}.json"

    def write_record() -> None:  # in the child, between fork and exec
        _write_json(record, {"pid": os.getpid(), "since_boot": since_boot(psutil.Process()), "log": str(log)})

    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=write_record)


# ---- the cluster --------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _env(folder: Path, **more: str) -> dict[str, str]:
    """The daemons' environment: pyspark's Spark, govlake's Java, loopback only, no user configuration."""
    from govlake.config import java_home

    java = java_home()
    if java is None:
        raise ClusterError("no Java for Spark: set JAVA_HOME to a Java 17 or 21, or install one "
                           "(Debian: openjdk-17-jre-headless)")
    (folder / "conf").mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPARK_", "PYSPARK_"))}
    return env | {"SPARK_HOME": str(_spark_home()), "JAVA_HOME": str(java), "SPARK_CONF_DIR": str(folder / "conf"),
                  "SPARK_LOCAL_IP": HOST, "SPARK_PUBLIC_DNS": HOST, "SPARK_DAEMON_MEMORY": "512m",
                  # the daemons only schedule: the quick compiler and the serial collector start them sooner; C1
                  # alone reserves 48 MB for compiled code, and a daemon that fills it goes on interpreted
                  "SPARK_DAEMON_JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m",
                  } | more


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def master_status(ui_port: int, timeout: float = 3) -> dict | None:
    """The master's JSON status, None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{ui_port}/json/", timeout=timeout) as response:
            return json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _wait(what: str, ready, procs: dict[str, subprocess.Popen], folder: Path, deadline: float) -> None:
    """Poll ``ready()`` until it holds; ClusterError naming the log when a process ends or time runs out."""
    while not ready():
        for name, proc in procs.items():
            if proc.poll() is not None:
                log = folder / "logs" / f"{name}.log"
                raise ClusterError(f"{name} exited ({proc.returncode}) before {what}; read {log}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            logs = ", ".join(str(folder / "logs" / f"{name}.log") for name in procs)
            raise ClusterError(f"no {what} in time (--timeout); read {logs}")
        time.sleep(0.5)


def _alive_workers(ui_port: int) -> int:
    status = master_status(ui_port) or {}
    return sum(w.get("state") == "ALIVE" for w in status.get("workers", []))


def master_url(conf: dict) -> str:
    return f"spark://{HOST}:{conf['master_port']}"


def _connect_cmd(folder: Path, conf: dict) -> tuple[list[str], dict[str, str]]:
    """spark-submit of a Spark Connect server on this cluster with the Spark engine's settings."""
    import dataclasses

    from govlake.config import get_settings
    from govlake.engine import spark_conf, spark_python

    saved = os.environ.pop("GOVLAKE_SPARK_REMOTE", None)  # the server's settings, not a client's
    try:
        settings = dataclasses.replace(get_settings(), engine="spark", spark_master=master_url(conf))
    finally:
        if saved is not None:
            os.environ["GOVLAKE_SPARK_REMOTE"] = saved
    settings.work.joinpath("spark").mkdir(parents=True, exist_ok=True)
    spark = spark_conf(settings, app_name="govlake Spark Connect server", conf=conf.get("connect_conf")) | {
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(conf["connect_port"]),
    }
    spark.pop("spark.submit.pyFiles")  # delta's Python API is the client's business
    cmd = [str(_spark_home() / "bin" / "spark-submit"), "--class", CONNECT_CLASS]
    for key, value in spark.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, "spark-internal"], _env(folder, PYSPARK_PYTHON=spark_python(settings))


def _port_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except OSError:
        return False
    return True


def _start_connect(folder: Path, conf: dict, deadline: float) -> None:
    cmd, env = _connect_cmd(folder, conf)
    _say(f"starting a Spark Connect server on sc://{HOST}:{conf['connect_port']} (log: {folder / 'logs'})")
    proc = _spawn(folder, "connect", cmd, env)
    _wait(f"Spark Connect server on port {conf['connect_port']}", lambda: _port_open(conf["connect_port"]),
          {"connect": proc}, folder, deadline)


def start(folder: Path, conf: dict, *, stop_with: int | None = None, timeout: float = 180) -> dict:
    """Start the cluster of ``conf`` (SIZES and connect_port) in ``folder``, or reuse the one running there.

    Raises:
        ClusterError: a port is taken, another cluster runs there, or a process did not come up (its log named;
            what was started is stopped again).
    """
    folder = folder.resolve()
    with _locked(folder):
        recs = records(folder)
        running = _running(folder, recs)
        if running and all(running.values()):
            return _reuse(folder, conf, timeout)
        if any(alive(rec) for rec in recs.values()):
            down = ", ".join(name for name, up in running.items() if not up)
            raise ClusterError(f"a cluster in {folder} is partly running ({down} not running; logs in "
                               f"{folder / 'logs'}); run `{Path(__file__).name} stop --dir {folder}`, then start")
        for name in recs:
            (folder / "pids" / f"{name}.json").unlink()
        ports = {"--master-port": conf["master_port"], "--ui-port": conf["ui_port"],
                 "--connect-port": conf.get("connect_port")}
        ports |= {f"--worker-ui-port (worker {i})": conf["worker_ui_port"] + i - 1
                  for i in range(1, conf["workers"] + 1) if conf["worker_ui_port"]}
        for option, port in ports.items():
            if port and not _free(port):
                raise ClusterError(f"port {port} on {HOST} is taken (another Spark cluster?); choose another with "
                                   f"{option.split()[0]}")
        for sub in ("pids", "logs"):
            (folder / sub).mkdir(exist_ok=True)
        _write_json(folder / "cluster.json", conf)
        deadline = time.monotonic() + timeout
        try:
            if stop_with:
                _watchdog(folder, stop_with)
            _start_daemons(folder, conf, deadline)
            if conf.get("connect_port"):
                _start_connect(folder, conf, deadline)
        except BaseException:
            _say(f"start failed: stopping what it started (logs stay in {folder / 'logs'})")
            _stop(folder)
            raise
    return describe(folder)


def _start_daemons(folder: Path, conf: dict, deadline: float) -> None:
    spark_class = str(_spark_home() / "bin" / "spark-class")
    # no REST submission server (it takes port 6066 and accepts jobs without authentication); the master's
    # ports exactly as asked (Spark would otherwise try the next 16)
    env = _env(folder, SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false -Dspark.port.maxRetries=0")
    _say(f"starting a master on {master_url(conf)}, UI http://{HOST}:{conf['ui_port']} (logs: {folder / 'logs'})")
    master = _spawn(folder, "master", [spark_class, MASTER_CLASS, "--host", HOST, "--port", str(conf["master_port"]),
                                       "--webui-port", str(conf["ui_port"])], env)
    # the workers once the master leads: one registering earlier is told to retry 5 to 15 s later
    _wait("master ALIVE", lambda: (master_status(conf["ui_port"]) or {}).get("status") == "ALIVE",
          {"master": master}, folder, deadline)
    procs = {"master": master}
    for i in range(1, conf["workers"] + 1):
        home = folder / f"worker-{i}"
        for sub in ("work", "local"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        ui = conf["worker_ui_port"] + i - 1 if conf["worker_ui_port"] else 0
        # the executors' scratch space in the worker's folder; apps' folders (jars, logs) dropped a day after
        env = _env(folder, SPARK_LOCAL_DIRS=str(home / "local"),
                   SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400")
        procs[f"worker-{i}"] = _spawn(folder, f"worker-{i}", [
            spark_class, WORKER_CLASS, "--host", HOST, "--cores", str(conf["worker_cores"]),
            "--memory", conf["worker_memory"], "--webui-port", str(ui), "--work-dir", str(home / "work"),
            master_url(conf)], env)
    _say(f"starting {conf['workers']} workers ({conf['worker_cores']} core(s), {conf['worker_memory']} each)")
    _wait(f"{conf['workers']} ALIVE workers", lambda: _alive_workers(conf["ui_port"]) >= conf["workers"], procs,
          folder, deadline)


def _reuse(folder: Path, conf: dict, timeout: float) -> dict:
    running = _read_json(folder / "cluster.json") or {}
    differs = [key for key in SIZES if running.get(key) != conf[key]]
    asked, has = conf.get("connect_port"), running.get("connect_port")
    if asked and has and asked != has:
        differs.append("connect_port")
    if differs:
        shown = ", ".join(f"{key}={running.get(key)}" for key in differs)
        raise ClusterError(f"a cluster already runs in {folder} ({master_url(running)}; {shown}); use it, or stop "
                           "it first to start another")
    _say(f"already running: {master_url(running)}; nothing started")
    if asked and not has:
        running |= {"connect_port": asked, "connect_conf": conf.get("connect_conf") or {}}
        if not _free(asked):
            raise ClusterError(f"port {asked} on {HOST} is taken; choose another with --connect-port")
        _write_json(folder / "cluster.json", running)
        try:
            _start_connect(folder, running, time.monotonic() + timeout)
        except BaseException:
            _stop(folder, only=["connect"])
            running.pop("connect_port")
            running.pop("connect_conf")
            _write_json(folder / "cluster.json", running)
            raise
    return describe(folder)


def _watchdog(folder: Path, owner: int) -> None:
    """A process that stops the cluster when process ``owner`` ends (its own session: it outlives the starter)."""
    try:
        started = since_boot(psutil.Process(owner))
    except psutil.Error:
        raise ClusterError(f"--stop-with {owner}: no such process") from None
    _spawn(folder, "watchdog", [sys.executable, str(Path(__file__).resolve()), "_watch", "--dir", str(folder),
                                "--pid", str(owner), "--since-boot", repr(started)], dict(os.environ))


def _watch(folder: Path, owner: int, started: float) -> int:
    while alive({"pid": owner, "since_boot": started}):
        if not (folder / "cluster.json").exists():
            return 0  # stopped by someone else
        time.sleep(1)
    _say(f"process {owner} ended: stopping the cluster in {folder}")
    with _locked(folder):
        _stop(folder)
        (folder / "pids" / "watchdog.json").unlink(missing_ok=True)
    return 0


def stop(folder: Path) -> list[str]:
    """Stop every process of the cluster in ``folder``; the names of those that were running.

    Raises:
        ClusterError: a process survived KILL (named).
    """
    folder = folder.resolve()
    with _locked(folder):
        return _stop(folder)


def _stop(folder: Path, only: list[str] | None = None) -> list[str]:
    recs = {name: rec for name, rec in records(folder).items() if only is None or name in only}
    me = os.getpid()  # the watchdog stopping the cluster
    recs = {name: rec for name, rec in recs.items() if rec["pid"] != me}
    running = [name for name, rec in recs.items() if alive(rec)]
    for name in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(recs[name]["pid"], signal.SIGTERM)
    left = members(folder, recs)
    for proc in left:  # a member outside its leader's process group, or one whose leader has gone
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, left = psutil.wait_procs(left, timeout=GRACE)
    if left:
        _say(f"{len(left)} process(es) still running {GRACE:.0f} s after TERM: KILL")
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _, left = psutil.wait_procs(left, timeout=10)
    if left:
        raise ClusterError("could not stop " + ", ".join(f"pid {p.pid}" for p in left))
    for name in recs:
        (folder / "pids" / f"{name}.json").unlink(missing_ok=True)
    if only is None:
        (folder / "cluster.json").unlink(missing_ok=True)
    return running


def describe(folder: Path) -> dict:
    """What runs in ``folder``: URLs, processes and the workers the master lists."""
    conf = _read_json(folder / "cluster.json") or {}
    recs = records(folder)
    procs = {name: {"pid": rec["pid"], "alive": alive(rec), "log": rec.get("log")} for name, rec in recs.items()}
    up = _running(folder, recs).values()
    state = ("running" if up and all(up) else
             "partly running" if any(p["alive"] for p in procs.values()) else "not running")
    status = master_status(conf["ui_port"]) if conf and procs.get("master", {}).get("alive") else None
    return {
        "state": state,
        "dir": str(folder),
        "master": master_url(conf) if conf else None,
        "ui": f"http://{HOST}:{conf['ui_port']}" if conf else None,
        "connect": f"sc://{HOST}:{conf['connect_port']}" if conf.get("connect_port") else None,
        "processes": procs,
        "workers": [{k: w.get(k) for k in ("id", "state", "cores", "coresused", "memory", "webuiaddress")}
                    for w in (status or {}).get("workers", [])],
        "apps": [{k: a.get(k) for k in ("id", "name", "cores", "state")} for a in (status or {}).get("activeapps", [])],
        "conf": conf,
    }


def _print(info: dict) -> None:
    print(f"{info['state']}: {info['dir']}")
    if info["master"]:
        print(f"  master   {info['master']}  UI {info['ui']}")
    if info["connect"]:
        print(f"  connect  {info['connect']}")
    for name, proc in info["processes"].items():
        print(f"  {name:<9}pid {proc['pid']:<8}{'running' if proc['alive'] else 'ended'}  {proc['log']}")
    for worker in info["workers"]:
        print(f"  {worker['id']}  {worker['state']}  cores {worker['coresused']}/{worker['cores']}")


def _memory(value: str) -> str:
    if not re.fullmatch(r"[1-9]\d*[mMgG]", value):
        raise argparse.ArgumentTypeError(f"{value!r}: write e.g. 2g or 512m")
    return value.lower()


def _submit_args() -> list[str]:
    """spark-submit's arguments for the Spark engine's settings of the environment (GOVLAKE_SPARK_*)."""
    from govlake.config import SettingsError, get_settings
    from govlake.engine import check_spark, submit_args

    try:
        settings = get_settings()
        check_spark(settings)
        return submit_args(settings)
    except SettingsError as exc:
        raise ClusterError(str(exc)) from None


def _setting(value: str) -> tuple[str, str]:
    key, sep, setting = value.partition("=")
    if not sep or not key.startswith("spark."):
        raise argparse.ArgumentTypeError(f"{value!r}: write spark.key=value")
    return key, setting


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spark_cluster.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {name: sub.add_parser(name) for name in ("start", "status", "stop")}
    sub.add_parser("submit-args", help="print spark-submit's arguments for the Spark engine's settings")
    watch = sub.add_parser("_watch")  # the watchdog of --stop-with
    watch.add_argument("--pid", type=int, required=True)
    watch.add_argument("--since-boot", type=float, required=True)
    for command in [*commands.values(), watch]:
        command.add_argument("--dir", type=Path, default=default_dir(), help="the cluster's folder")
    for name in ("start", "status"):
        commands[name].add_argument("--json", action="store_true", help="print the cluster as JSON on stdout")
    opt = commands["start"].add_argument
    opt("--master-port", type=int, default=7077)
    opt("--ui-port", type=int, default=8080, help="the master's web UI and JSON status")
    opt("--worker-ui-port", type=int, default=8081, help="the first worker's UI (the next ones count up; 0: any)")
    opt("--workers", type=int, default=2)
    opt("--worker-cores", type=int, default=1)
    opt("--worker-memory", type=_memory, default="2g")
    opt("--connect-port", type=int, default=None, help="also start a Spark Connect server on this port")
    opt("--connect-conf", action="append", type=_setting, default=[], metavar="KEY=VALUE",
        help="a setting of the Spark Connect server beyond the Spark engine's (repeatable)")
    opt("--stop-with", type=int, metavar="PID", help="stop the cluster when process PID ends")
    opt("--timeout", type=float, default=180, help="seconds to wait for the cluster (default 180)")
    args = parser.parse_args(argv)
    try:
        if args.command == "submit-args":
            print(shlex.join(_submit_args()))
            return 0
        folder = args.dir.resolve()
        if args.command == "_watch":
            return _watch(folder, args.pid, args.since_boot)
        if args.command == "stop":
            stopped = stop(folder)
            _say(f"stopped {', '.join(stopped)}" if stopped else f"nothing was running in {folder}")
            return 0
        if args.command == "status":
            info = describe(folder)
            print(json.dumps(info, indent=1)) if args.json else _print(info)
            return {"running": 0, "partly running": 1}.get(info["state"], 3)
        if args.workers < 1 or args.worker_cores < 1:
            parser.error("--workers and --worker-cores: 1 or more")
        conf = {key: getattr(args, key) for key in SIZES} | {"connect_port": args.connect_port,
                                                             "connect_conf": dict(args.connect_conf)}
        info = start(folder, conf, stop_with=args.stop_with, timeout=args.timeout)
        print(json.dumps(info, indent=1) if args.json else info["master"])
        return 0
    except ClusterError as exc:
        _say(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
