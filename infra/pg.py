#!/usr/bin/env python3
"""The throwaway PostgreSQL server of one clone, for the tests marked ``postgres``.

    infra/pg.py [start]   start (or reuse) this clone's server; print its SQLAlchemy URL on stdout
    infra/pg.py stop      stop it
    infra/pg.py clean     stop it and delete its cluster (``make clean``)

``make test`` sets ``GOVLAKE_TEST_PG_URL`` from ``start``, and ``tests/conftest_pg.py`` calls the same
``start`` when a bare ``pytest`` runs without it: one implementation, one server per clone, reused by
every run until ``make clean`` (or ``stop``). ``infra/pg.sh`` runs this file.
``infra/deploy.py`` starts its metadata database with the same code: ``start(var/deploy, database="airflow",
durable=True, given_url=False)``, a cluster of its own in ``var/deploy/pg`` with PostgreSQL's durable defaults.

When ``GOVLAKE_TEST_PG_URL`` is set and answers, that server is used and nothing starts. Otherwise the
cluster lives in ``$GOVLAKE_VAR/pg`` (default ``<repo>/var/pg``) and listens on 127.0.0.1 only, on a port
picked free when it is first started and remembered in ``var/pg/port`` (picked again if another program
took it while the server was down), so two clones on one machine never collide. Trust authentication,
superuser ``postgres``, database ``govlake_test``; fsync off (it is for tests). PostgreSQL refuses to run
as root, so as root it runs as the ``postgres`` user (``runuser``), and when that user cannot write
``var/pg`` (a clone under /root) the cluster goes to ``$TMPDIR/govlake-pg-<hash of var/pg>``. Binaries:
the newest ``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql``; ``make setup`` installs it), else
``initdb`` on PATH. Two starts in one clone wait for each other (a lock file). Standard library only;
messages go to stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATABASE = "govlake_test"
CONF = """
# govlake tests (infra/pg.py): local TCP only, no socket file, durability traded for speed.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
"""
DURABLE_CONF = """
# govlake deployment (infra/deploy.py): local TCP only, no socket file, PostgreSQL's durable defaults.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
"""


class Unavailable(RuntimeError):
    """No server can be started here (no binaries, no ``postgres`` user as root, initdb failed)."""


def _say(message: str) -> None:
    print(f"pg: {message}", file=sys.stderr)


def bindir() -> Path | None:
    """The newest PostgreSQL bin folder with initdb and pg_ctl."""
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(p) for p in Path(path).parent.parent.name.split(".") if p.isdigit())

    found = [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version, reverse=True)]
    if on_path := shutil.which("pg_ctl"):
        found.append(Path(on_path).parent)
    return next((d for d in found if (d / "initdb").exists()), None)


def home(var: Path | None = None) -> Path:
    """``var/pg`` of this clone (``GOVLAKE_VAR`` or ``<repo>/var``): lock, port file, usually the cluster."""
    return Path(var or os.environ.get("GOVLAKE_VAR") or REPO / "var").resolve() / "pg"


def _as_postgres() -> list[str]:
    """The command prefix that runs a server command as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root but there is no 'postgres' user to run the server as") from None
    return ["runuser", "-u", "postgres", "--"]


def _elsewhere(pg_home: Path) -> Path:
    """The cluster's folder when the ``postgres`` user cannot write ``var/pg``: one per clone, under $TMPDIR."""
    return Path(tempfile.gettempdir()) / f"govlake-pg-{hashlib.sha256(str(pg_home).encode()).hexdigest()[:12]}"


def _root(pg_home: Path, as_pg: list[str]) -> Path:
    """Where the cluster lives (created): ``var/pg``, or :func:`_elsewhere` when ``postgres`` cannot write it."""
    if not as_pg:
        return pg_home
    shutil.chown(pg_home, "postgres", "postgres")
    if subprocess.run([*as_pg, "test", "-w", str(pg_home)], check=False).returncode == 0:
        return pg_home
    tmp = _elsewhere(pg_home)
    tmp.mkdir(exist_ok=True)
    shutil.chown(tmp, "postgres", "postgres")
    return tmp


def _existing_root(pg_home: Path) -> Path:
    """Where the cluster is, creating nothing (for stop and clean)."""
    tmp = _elsewhere(pg_home)
    return tmp if (tmp / "data").exists() and not (pg_home / "data").exists() else pg_home


@contextlib.contextmanager
def _locked(pg_home: Path) -> Iterator[None]:
    pg_home.mkdir(parents=True, exist_ok=True)
    with open(pg_home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _free(port: int) -> bool:
    """Whether PostgreSQL could listen on the port: nothing listens there (PostgreSQL sets SO_REUSEADDR, so
    connections of the server's last run still in TIME_WAIT do not keep it from the port; they must not
    keep the check from it either)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A free port below the kernel's ephemeral range, so that no outgoing connection of another program
    takes it between two starts of the server (a port from the range is any client socket's to take, and a
    server that remembers its port would then move each time); the kernel's choice when none is free."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(20000, max(20000, min(low, 32768))))
    random.shuffle(candidates)
    for port in candidates[:200]:
        if _free(port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], *, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise Unavailable(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
    return done


def url(port: int, database: str = DATABASE) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def reachable(sqlalchemy_url: str) -> bool:
    """Whether a server answers at the URL within a few seconds (psycopg when installed, else psql)."""
    libpq = sqlalchemy_url.replace("+psycopg", "", 1)
    try:
        import psycopg
    except ImportError:
        psql = shutil.which("psql") or (str(b / "psql") if (b := bindir()) else None)
        if psql is None:
            return False
        done = subprocess.run([psql, libpq, "-tAc", "select 1"], capture_output=True, timeout=30, check=False,
                              env={**os.environ, "PGCONNECT_TIMEOUT": "3"})
        return done.returncode == 0
    try:
        psycopg.connect(libpq, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def _running_port(data: Path, pg_ctl: Path, as_pg: list[str]) -> int | None:
    """The port of the server running on ``data``, else None (postmaster.pid's fourth line)."""
    if subprocess.run([*as_pg, str(pg_ctl), "-D", str(data), "status"], capture_output=True,
                      check=False).returncode != 0:
        return None
    lines = (data / "postmaster.pid").read_text().splitlines()
    return int(lines[3])


def start(var: Path | None = None, *, database: str = DATABASE, durable: bool = False,
          given_url: bool = True) -> str:
    """Start (or reuse) this clone's server; its SQLAlchemy URL.

    Args:
        var: the clone's var folder (default ``GOVLAKE_VAR`` or ``<repo>/var``); the cluster goes to
            ``var/pg``.
        database: the database created in it (``govlake_test`` for the tests).
        durable: a new cluster keeps PostgreSQL's durable defaults (fsync on) instead of the tests'
            speed settings (``infra/deploy.py``'s metadata database).
        given_url: use ``GOVLAKE_TEST_PG_URL`` when it is set and answers (the tests); False always
            starts this folder's own server.

    Raises:
        Unavailable: no server can run here (the message says why and what to install).
    """
    given = os.environ.get("GOVLAKE_TEST_PG_URL") if given_url else None
    if given:
        if reachable(given):
            return given
        _say("GOVLAKE_TEST_PG_URL is set but does not answer; starting this clone's server instead")
    bins = bindir()
    if bins is None:
        raise Unavailable("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin); install Debian's "
                          "postgresql (make setup does, as root)")
    pg_home = home(var)
    as_pg = _as_postgres()
    with _locked(pg_home):
        root = _root(pg_home, as_pg)
        data, pg_ctl = root / "data", bins / "pg_ctl"
        if not (data / "PG_VERSION").exists():
            _say(f"initialising a cluster in {data} ({bins})")
            _run([*as_pg, str(bins / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C"], what="initdb")
            with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(DURABLE_CONF if durable else CONF)
        port = _running_port(data, pg_ctl, as_pg)
        port_file = pg_home / "port"
        for _attempt in range(3):
            if port is not None:
                break
            remembered = int(port_file.read_text()) if port_file.exists() else None
            port = remembered if remembered and _free(remembered) else _free_port()
            _say(f"starting PostgreSQL on 127.0.0.1:{port} (log: {root / 'server.log'})")
            done = subprocess.run([*as_pg, str(pg_ctl), "-D", str(data), "-l", str(root / "server.log"), "-w",
                                   "-t", "60", "-o", f"-p {port}", "start"], capture_output=True, text=True,
                                  timeout=120, check=False)
            if done.returncode:  # e.g. another program took the port in between: pick another
                log = root / "server.log"
                _say(f"start failed on port {port}: {log.read_text()[-1000:] if log.exists() else done.stderr}")
                port = None
                port_file.unlink(missing_ok=True)
        if port is None:
            raise Unavailable(f"PostgreSQL did not start; see {root / 'server.log'}")
        port_file.write_text(f"{port}\n")
        psql = [str(bins / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-X", "-q", "-tA",
                "-d", "postgres"]
        exists = _run([*psql, "-c", f"select 1 from pg_database where datname = '{database}'"], what="psql")
        if exists.stdout.strip() != "1":
            _run([*psql, "-c", f"create database {database}"], what="create database")
    return url(port, database)


def stop(var: Path | None = None, *, remove: bool = False) -> None:
    """Stop this clone's server (when running); ``remove`` also deletes its cluster and port file."""
    pg_home = home(var)
    root = _existing_root(pg_home)
    bins = bindir()
    if (root / "data" / "postmaster.pid").exists() and bins is not None:
        subprocess.run([*_as_postgres(), str(bins / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w",
                        "stop"], stdout=subprocess.DEVNULL, timeout=120, check=False)
    else:
        _say(f"not running ({root / 'data'})")
    if remove:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_home, ignore_errors=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "start"
    try:
        if command == "start":
            print(start())
        elif command in ("stop", "clean"):
            stop(remove=command == "clean")
        else:
            print(f"usage: {sys.argv[0]} [start|stop|clean]", file=sys.stderr)
            return 2
    except Unavailable as exc:
        _say(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
