"""infra/pg.py, the tests' PostgreSQL server: one per clone, on a free port, reused, moved when its port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from conftest_pg import _pg

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(monkeypatch):
    module = _pg()
    if module.bindir() is None:
        pytest.skip("PostgreSQL server binaries not found")
    monkeypatch.delenv("GOVLAKE_TEST_PG_URL", raising=False)
    return module


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3) as conn:
            return conn.execute("select current_database()").fetchone() == ("govlake_test",)
    except psycopg.OperationalError:
        return False


def test_two_clones_get_two_servers_each_reused_then_stopped_and_moved_off_a_taken_port(pg, tmp_path):
    one, two = tmp_path / "one" / "var", tmp_path / "two" / "var"
    try:
        first, second = pg.start(one), pg.start(two)
        assert _port(first) != _port(second) and _answers(first) and _answers(second)
        # below the ephemeral range, so no other program's outgoing connection takes it between two starts
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        assert max(_port(first), _port(second)) < ephemeral
        assert (one / "pg" / "port").read_text().strip() == str(_port(first))
        assert pg.start(one) == first   # the running server of the same clone, not a new one

        pg.stop(one)
        assert not _answers(first) and _answers(second)
        assert pg.start(one) == first   # back on the port it remembered

        pg.stop(one)
        with socket.socket() as squatter:   # another program took the port meanwhile
            # (our own closed connections leave the port in TIME_WAIT; a server sets SO_REUSEADDR for that)
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", _port(first)))
            squatter.listen()
            moved = pg.start(one)
        assert _port(moved) != _port(first) and _answers(moved)
        assert (one / "pg" / "port").read_text().strip() == str(_port(moved))
    finally:
        pg.stop(one, remove=True)
        pg.stop(two, remove=True)
    assert not (one / "pg").exists() and not _answers(second)


def test_a_given_url_that_answers_is_used_as_is(pg, tmp_path, monkeypatch, pg_url):
    monkeypatch.setenv("GOVLAKE_TEST_PG_URL", pg_url)
    assert pg.start(tmp_path / "var") == pg_url
    assert not (tmp_path / "var" / "pg").exists()
