"""pytest plugin: a real PostgreSQL server for the tests marked ``postgres``.

``pg_url`` (session scope) is a SQLAlchemy URL (``postgresql+psycopg://…``) of an empty database:
``GOVLAKE_TEST_PG_URL`` when set, else a throwaway server started here from the binaries under
``/usr/lib/postgresql/*/bin`` (or on PATH) — initdb into a temporary folder, trust auth, listening
on 127.0.0.1 at a free port, fsync off — and stopped at the end of the session. PostgreSQL refuses
to run as root, so as root the server runs as the ``postgres`` user through ``runuser``.
Without binaries the tests are skipped.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SKIP_REASON = "PostgreSQL server binaries not found; run infra/pg.sh or set GOVLAKE_TEST_PG_URL"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server (GOVLAKE_TEST_PG_URL or local binaries)")


def _bindir() -> Path | None:
    """The newest PostgreSQL bin folder with initdb and pg_ctl."""
    def version(path: str) -> tuple:
        part = Path(path).parent.parent.name
        return tuple(int(p) for p in part.split(".") if p.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version)
    candidates = [Path(p).parent for p in reversed(found)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    return next((d for d in candidates if (d / "initdb").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get("GOVLAKE_TEST_PG_URL")
    if url:
        yield url
        return
    bindir = _bindir()
    if bindir is None:
        pytest.skip(SKIP_REASON)
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="govlake-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the PostgreSQL server as")
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    pg_ctl = str(bindir / "pg_ctl")
    try:
        _run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
              "-E", "UTF8", "--locale=C"])
        options = (f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off")
        _run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
              "-o", options, "start"])
        try:
            import psycopg

            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                                 autocommit=True) as conn:
                conn.execute("create database govlake_test")
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/govlake_test"
        finally:
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
