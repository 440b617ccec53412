#!/usr/bin/env python3
"""govlake's production deployment on one machine, without containers: Airflow 3 as separate processes.

    infra/deploy.sh up [--env FILE]        prepare, start every process, wait until all report healthy
    infra/deploy.sh run [--env FILE]       the same in the foreground (under systemd: Type=simple)
    infra/deploy.sh status [--json]        each process, its pid, uptime and restarts; the API's health
    infra/deploy.sh down                   stop them all (and this deployment's PostgreSQL server)
    infra/deploy.sh airflow ARGS…          the Airflow CLI against this deployment
    infra/deploy.sh clean                  down, then delete $GOVLAKE_VAR/deploy (database included)

Processes: Airflow's ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer``; with
``GOVLAKE_EXECUTOR=celery`` also ``redis`` (``redis-server``, the broker) and ``worker`` (``airflow celery
worker``). Settings come from one env file (``infra/deploy/govlake.env.example`` lists them all; the
environment wins over it) and go to every process, so to every task. The metadata database is
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, or a PostgreSQL server of this deployment started from
``infra/pg.py`` in ``$GOVLAKE_VAR/deploy/pg`` (durable settings, 127.0.0.1, a free port).

``up`` migrates the database, then starts a supervisor in the background that starts the processes
(each in its own session, with its log in ``deploy/logs/<name>.log`` and its pid in ``deploy/run/``),
restarts one that dies (backing off up to a minute), and on SIGTERM stops them in reverse order.
Each process starts a session of its own, and what it starts stays in that session (Airflow's task
runners take a process group of their own, not a session); the supervisor records every session in
``deploy/run/state.json``, and every process also carries ``GOVLAKE_DEPLOY_ID`` (the deployment folder)
in its environment. ``down`` stops the supervisor, then finds and stops whatever is still in one of
those sessions or carries the mark, so a supervisor killed with ``kill -9`` leaves nothing behind that
``down`` does not stop; its direct children also get SIGTERM from the kernel when it dies
(PR_SET_PDEATHSIG) and stop by themselves.

Secrets (Fernet key, JWT and API secret keys, Redis password, the web login's password) are generated
at the first ``up`` into ``$GOVLAKE_VAR/deploy/secrets/`` (0700 folder, 0600 files), unless the settings
or the environment give them. Health: ``GET /api/v2/monitor/health`` of the api-server (metadata
database, scheduler, dag-processor, triggerer heartbeats), a PING for Redis, the pid for the rest.
Runs with the project's environment (psutil, Airflow): ``infra/deploy.sh`` picks it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import datetime as dt
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlsplit

import psutil

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "infra" / "deploy" / "govlake.env.example"
LOCAL_ENV = REPO / "infra" / "deploy" / "govlake.env"
MARK = "GOVLAKE_DEPLOY_ID"
ORDER = ("redis", "api-server", "scheduler", "dag-processor", "triggerer", "worker")
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
HEALTH = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}


class DeployError(RuntimeError):
    """A setting or a step of the deployment that cannot go on; the message says which and why."""


def _say(message: str) -> None:
    print(f"deploy: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ settings

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def read_env_file(path: Path, environ: dict[str, str]) -> dict[str, str]:
    """``KEY=VALUE`` lines of ``path``: comments and blank lines skipped, quotes removed, ``${NAME}`` and
    ``${NAME:-default}`` expanded (from the file's earlier lines, then ``environ``) except in single quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = _LINE.match(raw)
        if not match:
            raise DeployError(f"{path}:{number}: not KEY=VALUE: {raw.strip()[:80]}")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            values[key] = value[1:-1]
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"')
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = _REF.sub(lambda m: values.get(m[1]) or environ.get(m[1]) or (m[2] or ""), value)
    return values


def _mask(url: str) -> str:
    """A URL as it may be printed: the password replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


class Deployment:
    """One deployment: its settings (file < environment < the secrets it generated) and its folders."""

    def __init__(self, env_file: Path | None = None, environ: dict[str, str] | None = None) -> None:
        environ = dict(os.environ if environ is None else environ)
        self.environ = environ
        env_file = env_file or (Path(environ["GOVLAKE_DEPLOY_ENV"]) if environ.get("GOVLAKE_DEPLOY_ENV") else None)
        self.env_file = env_file or (LOCAL_ENV if LOCAL_ENV.exists() else EXAMPLE)
        if not self.env_file.is_file():
            raise DeployError(f"{self.env_file}: no such settings file")
        from_file = read_env_file(self.env_file, environ)
        # the environment wins over the file; an empty value is "not set"
        self.settings = {k: v for k, v in {**from_file, **environ}.items() if v != ""}
        var = Path(self.settings.get("GOVLAKE_VAR") or REPO / "var").expanduser().resolve()
        self.settings["GOVLAKE_VAR"] = str(var)
        self.var = var
        self.dir = var / "deploy"
        self.secrets_dir = self.dir / "secrets"
        self.logs = self.dir / "logs"
        self.run_dir = self.dir / "run"
        self.state_file = self.run_dir / "state.json"
        executor = self.settings.get("GOVLAKE_EXECUTOR", "local")
        if executor not in EXECUTORS:
            raise DeployError(f"GOVLAKE_EXECUTOR={executor!r}: must be local or celery")
        self.executor = executor
        listed = self.settings.get("GOVLAKE_DEPLOY_SERVICES")
        broker = "AIRFLOW__CELERY__BROKER_URL" in self.settings  # an existing broker: no Redis of ours
        services = ([s.strip() for s in listed.split(",") if s.strip()] if listed else
                    ["api-server", "scheduler", "dag-processor", "triggerer"]
                    + ([] if executor != "celery" else ["worker"] if broker else ["redis", "worker"]))
        unknown = sorted(set(services) - set(ORDER))
        if unknown:
            raise DeployError(f"GOVLAKE_DEPLOY_SERVICES: unknown {', '.join(unknown)} (known: {', '.join(ORDER)})")
        if executor == "local" and {"redis", "worker"} & set(services):
            raise DeployError("GOVLAKE_DEPLOY_SERVICES: redis and worker are for GOVLAKE_EXECUTOR=celery")
        self.services = [s for s in ORDER if s in services]
        self.start_timeout = float(self.settings.get("GOVLAKE_DEPLOY_START_TIMEOUT", 300))
        self.stop_timeout = float(self.settings.get("GOVLAKE_DEPLOY_STOP_TIMEOUT", 60))

    # ---- what the processes get

    @property
    def local_database(self) -> bool:
        """Whether this deployment runs its own PostgreSQL server (no metadata database URL given)."""
        return "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in self.settings

    @property
    def api_port(self) -> int:
        return int(self.settings.get("AIRFLOW__API__PORT", 8080))

    @property
    def api_url(self) -> str:
        host = self.settings.get("AIRFLOW__API__HOST", "127.0.0.1")
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{self.api_port}"

    def secrets(self, *, create: bool) -> dict[str, str]:
        """The generated secrets (``secrets/secrets.env``), created on first use when ``create``."""
        path = self.secrets_dir / "secrets.env"
        if not path.exists():
            if not create:
                return {}
            self.secrets_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.secrets_dir, 0o700)
            generated = {
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
                "GOVLAKE_REDIS_PASSWORD": secrets.token_urlsafe(32),
            }
            text = ("# Generated by infra/deploy.py at the first `up`: keep it secret, never commit it; every\n"
                    "# machine of this deployment needs the same values.\n"
                    + "".join(f"{k}='{v}'\n" for k, v in generated.items()))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            _say(f"generated the deployment's secrets in {path} (mode 0600)")
        return read_env_file(path, {})

    def passwords_file(self, *, create: bool) -> Path:
        """SimpleAuthManager's passwords (``secrets/passwords.json``, 0600): one generated per user."""
        path = self.secrets_dir / "passwords.json"
        users = [u.split(":")[0] for u in self.settings.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
                                                            "admin:admin").split(",") if u.strip()]
        if create:
            known = json.loads(path.read_text() or "{}") if path.exists() else {}
            missing = [u for u in users if u not in known]
            if missing or not path.exists():
                known |= {u: secrets.token_urlsafe(18) for u in missing}
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(json.dumps(known) + "\n")
            os.chmod(path, 0o600)
        return path

    def environment(self, *, create: bool = False) -> dict[str, str]:
        """The environment of every process: the caller's, the settings, the secrets, what follows from them."""
        env = dict(self.environ)
        env |= {k: v for k, v in self.secrets(create=create).items() if k not in self.settings}
        env |= self.settings
        home = self.settings.get("AIRFLOW_HOME") or str(self.dir / "airflow")
        env |= {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": self.settings.get("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags")),
            "AIRFLOW__CORE__LOAD_EXAMPLES": self.settings.get("AIRFLOW__CORE__LOAD_EXAMPLES", "False"),
            "AIRFLOW__CORE__EXECUTOR": EXECUTORS[self.executor],
            # resolved here: the supervisor, given this environment (a broker URL derived below included),
            # must start the same processes
            "GOVLAKE_DEPLOY_SERVICES": ",".join(self.services),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file(create=create)),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": self.settings.get("AIRFLOW__OPENLINEAGE__NAMESPACE", "govlake"),
            "AIRFLOW__OPENLINEAGE__TRANSPORT": self.settings.get("AIRFLOW__OPENLINEAGE__TRANSPORT") or json.dumps(
                {"type": "file", "log_file_path": str(self.var / "lineage" / "airflow.jsonl"), "append": True}),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": self.settings.get(
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{self.api_url}/execution/"),
            MARK: str(self.dir),
        }
        sync = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or self._local_url()
        if sync:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sync
            if sync.startswith("postgresql+psycopg:") and "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC" not in env:
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = sync  # psycopg 3 is async too: no asyncpg
        if self.executor == "celery":
            password = env.get("GOVLAKE_REDIS_PASSWORD", "")
            env.setdefault("AIRFLOW__CELERY__BROKER_URL", f"redis://:{quote(password, safe='')}@{self._redis_host()}:"
                                                          f"{self.settings.get('GOVLAKE_REDIS_PORT', 6379)}/0")
            if sync:
                env.setdefault("AIRFLOW__CELERY__RESULT_BACKEND", f"db+{sync}")
        venv_bin = REPO / ".venv" / "bin"
        if venv_bin.is_dir():
            env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _redis_host(self) -> str:
        bind = self.settings.get("GOVLAKE_REDIS_BIND", "127.0.0.1").split()[0]
        return "127.0.0.1" if bind in ("0.0.0.0", "*") else bind

    def _local_url(self) -> str | None:
        """The local database's URL when it has been started (``run/database``), else None."""
        path = self.run_dir / "database"
        return path.read_text().strip() if self.local_database and path.exists() else None

    # ---- commands of each process

    def command(self, service: str) -> list[str]:
        airflow = [str(REPO / ".venv" / "bin" / "airflow")] if (REPO / ".venv" / "bin" / "airflow").exists() else [
            "uv", "run", "--frozen", "--project", str(REPO), "airflow"]
        if service == "redis":
            return [_redis_server(), str(self._redis_conf())]
        if service == "worker":
            return [*airflow, "celery", "worker"]
        if service == "api-server":
            return [*airflow, "api-server", "--host", self.settings.get("AIRFLOW__API__HOST", "127.0.0.1"),
                    "--port", str(self.api_port)]
        return [*airflow, service]

    def _redis_conf(self) -> Path:
        folder = self.dir / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "redis.conf"
        password = self.environment().get("GOVLAKE_REDIS_PASSWORD", "")
        text = (f"# Generated by infra/deploy.py from the settings; holds the Redis password (0600).\n"
                f"bind {self.settings.get('GOVLAKE_REDIS_BIND', '127.0.0.1')}\n"
                f"port {self.settings.get('GOVLAKE_REDIS_PORT', 6379)}\n"
                f"daemonize no\nprotected-mode yes\ndir {folder}\nappendonly yes\nsave \"\"\n"
                f"requirepass {password}\n")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return conf


def _redis_server() -> str:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found is None:
        raise DeployError("GOVLAKE_EXECUTOR=celery needs redis-server (Debian: apt-get install redis-server; "
                          "make deploy installs it as root) or AIRFLOW__CELERY__BROKER_URL of an existing broker")
    return found


def _infra(name: str) -> ModuleType:
    """infra/<name>.py as a module (infra/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"govlake_infra_{name}", REPO / "infra" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


since_boot = _infra("spark_cluster").since_boot
"""Seconds from boot to a process's start: how the state tells a process from a later one given its pid (as the
Spark cluster's records do; a wall-clock start time moves when the clock is corrected)."""


# ------------------------------------------------------------------------------------------- preparation

def prepare(dep: Deployment) -> dict[str, str]:
    """Folders, secrets, the metadata database (started and migrated); the processes' environment."""
    for folder in (dep.dir, dep.logs, dep.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    (dep.var / "lineage").mkdir(parents=True, exist_ok=True)
    if dep.local_database:
        if dep.services == ["worker"]:
            raise DeployError("a worker machine needs AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (the main machine's "
                              "metadata database) and AIRFLOW__CELERY__BROKER_URL")
        pg = _infra("pg")
        try:
            url = pg.start(dep.dir, database="airflow", durable=True, given_url=False)
        except pg.Unavailable as exc:
            raise DeployError(f"no local PostgreSQL server for the metadata database: {exc}; or set "
                              "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") from exc
        (dep.run_dir / "database").write_text(url + "\n")
    central = {"api-server", "scheduler"} & set(dep.services)
    if not central and not (dep.secrets_dir / "secrets.env").exists() and not {
            "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"} <= set(dep.settings):
        raise DeployError(f"a machine without api-server and scheduler needs the first machine's secrets: copy its "
                          f"var/deploy/secrets/secrets.env to {dep.secrets_dir / 'secrets.env'} (mode 0600)")
    env = dep.environment(create=True)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    recorded = dep.var / "business_date"
    if recorded.exists() and "GOVLAKE_AS_OF" not in dep.settings:
        _say(f"warning: {recorded} says {recorded.read_text().strip()} (written by `govlake generate` for the "
             "demo): the Asset-triggered publish runs, which have no logical date, will use it as their business "
             "date; delete it to use each day's date")
    cfg = Path(env.get("AIRFLOW_CONFIG") or Path(env["AIRFLOW_HOME"]) / "airflow.cfg")
    if not cfg.exists():  # else Airflow writes its defaults there, with secret keys of its own
        cfg.write_text("# Every setting comes from the environment: infra/deploy.py, from the settings file\n"
                       "# (infra/deploy/govlake.env.example) and the generated secrets/.\n")
    if "redis" in dep.services:
        _redis_server()
    _check_ports(dep)
    if central:
        _say(f"migrating the metadata database ({_mask(env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'])})")
        log = dep.logs / "db-migrate.log"
        with open(log, "w") as out:
            done = subprocess.run([*dep.command("scheduler")[:-1], "db", "migrate"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, check=False, timeout=900)
        if done.returncode:
            raise DeployError(f"airflow db migrate failed ({done.returncode}):\n{_tail(log, 30)}")
    return env


def _check_ports(dep: Deployment) -> None:
    """Refuse to start when a port a process of this machine would listen on is taken (it would only
    fail and be restarted until `up` gives up)."""
    ports = {"api-server": [("AIRFLOW__API__PORT", dep.api_port)],
             "redis": [("GOVLAKE_REDIS_PORT", int(dep.settings.get("GOVLAKE_REDIS_PORT", 6379)))],
             "triggerer": [("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
                            int(dep.settings.get("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", 8794)))]}
    worker_logs = ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                   int(dep.settings.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", 8793)))
    ports["worker" if dep.executor == "celery" else "scheduler"] = [worker_logs]
    for service in dep.services:
        for setting, port in ports.get(service, []):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("0.0.0.0", port))
                except OSError as exc:
                    raise DeployError(f"{setting}={port}: the port is taken ({exc.strerror}); another deployment or "
                                      f"program listens there: stop it, or set {setting} to a free port") from None


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -------------------------------------------------------------------------------------------- supervisor

def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Supervisor:
    """Starts the processes, restarts one that dies, stops them all on SIGTERM/SIGINT."""

    def __init__(self, dep: Deployment, env: dict[str, str]) -> None:
        self.dep, self.env = dep, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.started: dict[str, float] = {}
        self.restarts = dict.fromkeys(dep.services, 0)
        self.next_start: dict[str, float] = {}
        # its own session when `up` started it; in the foreground (`run`) the caller's is not ours
        self.sessions: dict[int, float] = {os.getpid(): since_boot(psutil.Process())} if os.getsid(0) == \
            os.getpid() else {}
        self.stopping = False

    def _start(self, name: str) -> None:
        log = open(self.dep.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        log.write(f"\n--- deploy: starting {name} at {dt.datetime.now().isoformat(timespec='seconds')}\n".encode())
        log.flush()
        proc = subprocess.Popen(self.dep.command(name), env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
                                cwd=self.dep.dir)
        log.close()
        self.procs[name], self.started[name] = proc, time.time()
        self.sessions[proc.pid] = _since_boot(proc.pid) or time.time() - psutil.boot_time()
        (self.dep.run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")
        _say(f"started {name} (pid {proc.pid})")
        self._write_state()

    def _write_state(self) -> None:
        me = psutil.Process()
        state = {"supervisor": {"pid": me.pid, "since_boot": since_boot(me)},
                 "executor": self.dep.executor, "api_url": self.dep.api_url,
                 "sessions_since_boot": [[sid, started] for sid, started in self.sessions.items()],
                 "services": {name: {"pid": p.pid, "since_boot": _since_boot(p.pid), "started": self.started[name],
                                     "restarts": self.restarts[name], "running": p.poll() is None}
                              for name, p in self.procs.items()}}
        tmp = self.dep.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.dep.state_file)

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        (self.dep.run_dir / "supervisor.pid").write_text(f"{os.getpid()}\n")
        for name in self.dep.services:
            if not self.stopping:
                self._start(name)
        while not self.stopping:
            time.sleep(1)
            now = time.time()
            for name, proc in list(self.procs.items()):
                if proc.poll() is None or self.stopping:
                    continue
                if name not in self.next_start:
                    # what it left in its session (its log server, workers) would hold its ports: stopped first
                    left = sweep(self.dep, {proc.pid: self.sessions.get(proc.pid, 0)}, exclude={os.getpid()},
                                 marks=False)
                    if left:
                        _say(f"{name}: stopped what it left: {', '.join(left)}")
                    self.sessions.pop(proc.pid, None)  # empty now
                    uptime = now - self.started[name]
                    if uptime > 300:
                        self.restarts[name] = 0
                    delay = min(60.0, 2.0 ** self.restarts[name])
                    _say(f"{name} (pid {proc.pid}) exited with {proc.returncode} after {uptime:.0f} s; "
                         f"restarting in {delay:.0f} s (log: {self.dep.logs / (name + '.log')})")
                    self.next_start[name] = now + delay
                    self._write_state()
                elif now >= self.next_start[name]:
                    del self.next_start[name]
                    self.restarts[name] += 1
                    self._start(name)
        self.stop_all()
        return 0

    def stop_all(self) -> None:
        _say("stopping: " + ", ".join(reversed(list(self.procs))))
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                _stop_tree(proc.pid, name, self.dep.stop_timeout)
            (self.dep.run_dir / f"{name}.pid").unlink(missing_ok=True)
        leftovers = sweep(self.dep, self.sessions, exclude={os.getpid()})
        if leftovers:
            _say(f"killed {len(leftovers)} leftover process(es): {', '.join(leftovers)}")
        self.dep.state_file.unlink(missing_ok=True)
        (self.dep.run_dir / "supervisor.pid").unlink(missing_ok=True)
        _say("stopped")


def _since_boot(pid: int) -> float | None:
    try:
        return since_boot(psutil.Process(pid))
    except psutil.Error:
        return None


def _stop_tree(pid: int, name: str, timeout: float) -> None:
    """SIGTERM to a process (it stops its own children), then SIGKILL to its session if it takes too long."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
        root.terminate()
    except psutil.Error:
        return
    _, alive = psutil.wait_procs([root], timeout=timeout)
    if alive:
        _say(f"{name} (pid {pid}) did not stop within {timeout:.0f} s: killing it")
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    # what the process left of its children after it ended: a few seconds, then killed
    _, rest = psutil.wait_procs([p for p in tree[1:] if _alive(p)], timeout=5)
    for proc in rest:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ours(sessions: dict[int, float]) -> set[int]:
    """The recorded sessions still ours: a session whose leader pid now belongs to a later process
    (the number reused after the whole session ended) is not."""
    kept = set()
    for sid, started in sessions.items():
        leader = _since_boot(sid)
        if leader is None or abs(leader - started) < 0.5:
            kept.add(sid)
    return kept


def marked(dep: Deployment, sessions: dict[int, float], exclude: set[int] = frozenset(), *,
           marks: bool = True) -> list[psutil.Process]:
    """Every live process of the deployment: in one of its ``sessions`` (sid → leader's start, since boot), or
    carrying its mark (``GOVLAKE_DEPLOY_ID``; a process that rewrites its title with setproctitle, as
    Airflow's do, loses it from /proc, hence the sessions)."""
    ours = _ours(sessions)
    found = []
    for proc in psutil.process_iter():
        if proc.pid in exclude:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if (os.getsid(proc.pid) in ours or marks and proc.environ().get(MARK) == str(dep.dir)) and _alive(proc):
                found.append(proc)
    return found


def recorded_sessions(dep: Deployment) -> dict[int, float]:
    """The sessions the last supervisor recorded (``run/state.json``): sid → its leader's start, since boot. A
    state written before these (``sessions``: the leaders' create_time) is read as such."""
    state, boot = _state(dep), psutil.boot_time()
    if "sessions_since_boot" in state:
        return {int(sid): float(started) for sid, started in state["sessions_since_boot"]}
    return {int(sid): float(created) - boot for sid, created in state.get("sessions", [])}


def sweep(dep: Deployment, sessions: dict[int, float], exclude: set[int] = frozenset(),
          timeout: float = 10, *, marks: bool = True) -> list[str]:
    """Stop every process of the deployment (SIGTERM, then SIGKILL after ``timeout``): in ``sessions``, or
    (``marks``) carrying the mark; their descriptions."""
    me = psutil.Process()
    exclude = set(exclude) | {me.pid} | {p.pid for p in me.parents()}
    procs = marked(dep, sessions, exclude, marks=marks)
    described = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            described.append(f"{proc.pid} {' '.join(a for a in proc.cmdline()[:3] if a)[:80]}")
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return described


# ----------------------------------------------------------------------------------------------- health

def api_health(dep: Deployment, timeout: float = 5) -> dict | None:
    """The api-server's ``/api/v2/monitor/health`` document, None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{dep.api_url}/api/v2/monitor/health", timeout=timeout) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def redis_ping(dep: Deployment, env: dict[str, str]) -> bool:
    try:
        with socket.create_connection((dep._redis_host(), int(dep.settings.get("GOVLAKE_REDIS_PORT", 6379))),
                                      timeout=3) as s:
            password = env.get("GOVLAKE_REDIS_PASSWORD", "")
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"PONG" not in reply and len(reply) < 200:
                chunk = s.recv(200)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


def _state(dep: Deployment) -> dict:
    try:
        return json.loads(dep.state_file.read_text())
    except (OSError, ValueError):
        return {}


def _running(entry: dict | None) -> psutil.Process | None:
    """The process a state entry names, if it is still that process (same pid and start time)."""
    if not entry:
        return None
    try:
        proc = psutil.Process(entry["pid"])
    except (psutil.Error, KeyError):
        return None
    if entry.get("since_boot") and abs(since_boot(proc) - entry["since_boot"]) >= 0.5:
        return None
    if entry.get("create_time") and abs(proc.create_time() - entry["create_time"]) > 1:  # a state of before since_boot
        return None
    return proc if _alive(proc) else None


def status(dep: Deployment) -> dict:
    """Each process (pid, running, uptime, restarts, health) and the API's health document."""
    state = _state(dep)
    env = dep.environment()
    supervisor = _running(state.get("supervisor"))
    health = api_health(dep) if "api-server" in dep.services else None
    supervisor_entry = state.get("supervisor", {})
    since = (psutil.boot_time() + supervisor_entry["since_boot"] if "since_boot" in supervisor_entry
             else supervisor_entry.get("create_time", 0))
    out = {"deploy_dir": str(dep.dir), "executor": EXECUTORS[dep.executor], "api_url": dep.api_url,
           "database": _mask(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")),
           "supervisor": {"pid": supervisor.pid if supervisor else None, "running": supervisor is not None},
           "services": {}, "api_health": health}
    for name in dep.services:
        entry = state.get("services", {}).get(name)
        proc = _running(entry)
        item = {"pid": proc.pid if proc else None, "running": proc is not None,
                "uptime_s": round(time.time() - entry["started"]) if proc else None,
                "restarts": entry.get("restarts", 0) if entry else 0}
        if name == "api-server":
            item["healthy"] = bool(proc and health and health.get("metadatabase", {}).get("status") == "healthy")
        elif name in HEALTH:
            component = (health or {}).get(HEALTH[name]) or {}
            beat = component.get(f"latest_{HEALTH[name]}_heartbeat")
            fresh = bool(beat) and dt.datetime.fromisoformat(beat).timestamp() >= since - 1
            item["healthy"] = bool(proc and component.get("status") == "healthy" and fresh)
        elif name == "redis":
            item["healthy"] = bool(proc and redis_ping(dep, env))
        else:
            item["healthy"] = bool(proc and item["uptime_s"] >= 5)
        out["services"][name] = item
    out["healthy"] = out["supervisor"]["running"] and all(s["healthy"] for s in out["services"].values())
    return out


def _print_status(report: dict) -> None:
    sup = report["supervisor"]
    print(f"govlake deployment in {report['deploy_dir']} ({report['executor']}; metadata database "
          f"{report['database'] or 'not started'})")
    print(f"  {'supervisor':<14} {'running' if sup['running'] else 'stopped':<8} pid {sup['pid'] or '-'}")
    for name, s in report["services"].items():
        up = f"up {s['uptime_s']} s" if s["running"] else ""
        print(f"  {name:<14} {'running' if s['running'] else 'stopped':<8} pid {s['pid'] or '-':<8} "
              f"{'healthy' if s['healthy'] else 'UNHEALTHY' if s['running'] else '-':<10} {up:<14} "
              f"restarts {s['restarts']}")
    if "api-server" in report["services"]:
        print(f"  UI and REST API: {report['api_url']}/  (health: {report['api_url']}/api/v2/monitor/health)")


# --------------------------------------------------------------------------------------------- commands

def up(dep: Deployment, *, foreground: bool) -> int:
    state = _state(dep)
    if _running(state.get("supervisor")):
        _say(f"already running (supervisor pid {state['supervisor']['pid']}); `down` first to restart")
        return 0
    leftovers = sweep(dep, recorded_sessions(dep))
    if leftovers:
        _say(f"stopped {len(leftovers)} process(es) left by an earlier run: {', '.join(leftovers)}")
    env = prepare(dep)
    if foreground:
        code = Supervisor(dep, env).run()
        _stop_local_database(dep)
        return code
    log = open(dep.logs / "supervisor.log", "ab")  # noqa: SIM115 - the child keeps it
    cmd = [sys.executable, str(Path(__file__).resolve()), "_supervise", "--env", str(dep.env_file)]
    supervisor = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True, cwd=dep.dir)
    log.close()
    _say(f"supervisor started (pid {supervisor.pid}; log {dep.logs / 'supervisor.log'}); waiting for "
         f"{', '.join(dep.services)} to report healthy")
    deadline = time.time() + dep.start_timeout
    report: dict = {}
    while time.time() < deadline:
        if supervisor.poll() is not None:
            raise DeployError(f"the supervisor exited ({supervisor.returncode}):\n"
                              f"{_tail(dep.logs / 'supervisor.log', 20)}")
        report = status(dep)
        if report["healthy"]:
            _print_status(report)
            _say(f"up in {time.time() - deadline + dep.start_timeout:.0f} s; web login: "
                 f"{dep.passwords_file(create=False)}; logs: {dep.logs}")
            return 0
        time.sleep(2)
    _print_status(report)
    for name, s in report.get("services", {}).items():
        if not s["healthy"]:
            _say(f"{name} is not healthy; the end of {dep.logs / (name + '.log')}:\n"
                 f"{_tail(dep.logs / (name + '.log'), 15)}")
    _say(f"the end of {dep.logs / 'supervisor.log'}:\n{_tail(dep.logs / 'supervisor.log', 15)}")
    _say(f"not healthy after {dep.start_timeout:.0f} s (GOVLAKE_DEPLOY_START_TIMEOUT); `down` stops what runs")
    return 1


def down(dep: Deployment, *, keep_database: bool = False) -> int:
    state = _state(dep)
    sessions = recorded_sessions(dep)
    supervisor = _running(state.get("supervisor"))
    if supervisor is not None:
        _say(f"stopping the supervisor (pid {supervisor.pid}) and its processes")
        supervisor.terminate()
        gone, _ = psutil.wait_procs([supervisor], timeout=dep.stop_timeout * 2 + 30)
        if not gone:
            _say("the supervisor did not stop: stopping its processes directly")
    for name, entry in reversed(list(state.get("services", {}).items())):
        proc = _running(entry)
        if proc is not None:
            _say(f"stopping {name} (pid {proc.pid}), left by a supervisor that is gone")
            _stop_tree(proc.pid, name, dep.stop_timeout)
    leftovers = sweep(dep, sessions)
    if leftovers:
        _say(f"stopped {len(leftovers)} leftover process(es): {', '.join(leftovers)}")
    for path in [dep.state_file, dep.run_dir / "supervisor.pid", *dep.run_dir.glob("*.pid")]:
        path.unlink(missing_ok=True)
    if not keep_database:
        _stop_local_database(dep)
    _say("down")
    return 0


def _stop_local_database(dep: Deployment) -> None:
    if dep.local_database and (dep.run_dir / "database").exists():
        _infra("pg").stop(dep.dir)
        (dep.run_dir / "database").unlink(missing_ok=True)
        _say("stopped the local metadata database")


def clean(dep: Deployment) -> int:
    down(dep)
    if dep.local_database:
        _infra("pg").stop(dep.dir, remove=True)
    shutil.rmtree(dep.dir, ignore_errors=True)
    _say(f"removed {dep.dir}")
    return 0


def airflow_cli(dep: Deployment, args: list[str]) -> int:
    """Run the Airflow CLI with the deployment's settings (replaces this process)."""
    env = dep.environment()
    env.pop(MARK)  # a CLI command is not one of the deployment's processes
    cmd = [*dep.command("scheduler")[:-1], *args]
    os.execvpe(cmd[0], cmd, env)
    return 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["airflow"]:  # everything after it is Airflow's
        try:
            return airflow_cli(Deployment(), argv[1:])
        except DeployError as exc:
            _say(str(exc))
            return 2
    parser = argparse.ArgumentParser(prog="infra/deploy.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "run", "status", "down", "clean", "_supervise"])
    parser.add_argument("--env", type=Path, help="the settings file (default infra/deploy/govlake.env, else "
                                                 "the example; or GOVLAKE_DEPLOY_ENV)")
    parser.add_argument("--json", action="store_true", help="status: one JSON document")
    parser.add_argument("--keep-database", action="store_true", help="down: leave the local PostgreSQL running")
    args = parser.parse_args(argv)
    try:
        dep = Deployment(args.env)
        if args.command == "up":
            return up(dep, foreground=False)
        if args.command == "run":
            return up(dep, foreground=True)
        if args.command == "_supervise":
            return Supervisor(dep, dep.environment()).run()
        if args.command == "status":
            report = status(dep)
            print(json.dumps(report, indent=1)) if args.json else _print_status(report)
            return 0 if report["healthy"] else 1
        if args.command == "down":
            return down(dep, keep_database=args.keep_database)
        return clean(dep)
    except DeployError as exc:
        _say(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
