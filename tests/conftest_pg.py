"""pytest plugin: a real PostgreSQL server for the tests marked ``postgres``.

``pg_url`` (session scope) is a SQLAlchemy URL (``postgresql+psycopg://…``) of database
``govlake_test``: ``GOVLAKE_TEST_PG_URL`` when set (``make test`` sets it from ``infra/pg.sh``), else
this clone's server from the same code, ``infra/pg.py`` — started if needed, on a free port, and left
running for the next run (``make clean`` or ``infra/pg.sh stop`` stops it). Without PostgreSQL
binaries the tests are skipped, except under ``CI``, where a missing server is an error.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

PG_PY = Path(__file__).resolve().parents[1] / "infra" / "pg.py"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server (GOVLAKE_TEST_PG_URL or local binaries)")


def _pg() -> ModuleType:
    """infra/pg.py as a module (infra/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("govlake_infra_pg", PG_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("GOVLAKE_TEST_PG_URL")
    if url:
        return url
    pg = _pg()
    try:
        return pg.start()
    except pg.Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI: no PostgreSQL server for the postgres tests: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}; run infra/pg.sh or set GOVLAKE_TEST_PG_URL")
