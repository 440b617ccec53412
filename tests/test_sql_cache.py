"""What is derived from a model's SQL is kept on disk for the next process (govlake.transform._cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govlake.lineage._columns import column_sources, tables_read
from govlake.transform import referenced_relations

JOBS = Path(__file__).resolve().parents[1] / "jobs"

# each test its own SQL: the functions keep their answers in the process too (functools.lru_cache)
SQL = """-- grain: x | key: id unique | owner: test
-- inputs: orders, customers
with recent as (select id, customer_id, amount from orders where amount > {n})
select r.id, c.name, case when r.amount > 10 then r.amount end as big
from recent as r join customers as c on c.id = r.customer_id"""
SCHEMA = {"orders": ["id", "customer_id", "amount"], "customers": ["id", "name"]}

CHILD = """
import json, sys
import sqlglot
from govlake.lineage._columns import column_sources, tables_read
from govlake.transform import referenced_relations
if sys.argv[2] == "no-parse":  # the second process must not parse a model at all
    def refuse(*a, **k):
        raise AssertionError("parsed again")
    sqlglot.parse_one = refuse
sql, schema = json.loads(sys.argv[1])
sources = column_sources(sql, schema)
print(json.dumps({"relations": sorted(referenced_relations(sql)), "tables": tables_read(sql),
                  "sources": {c: sorted([*k, v] for k, v in s.items()) for c, s in sources.items()}}))
"""


def _child(folder: Path, sql: str, mode: str) -> dict:
    env = {**os.environ, "GOVLAKE_SQL_CACHE": str(folder), "PYTHONPATH": str(JOBS)}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([sql, SCHEMA]), mode], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_next_process_reads_what_the_first_derived(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    sql = SQL.format(n=1)
    first = _child(folder, sql, "parse")
    assert first["relations"] == ["customers", "orders"]
    assert first["tables"] == ["customers", "orders"]  # in the order sqlglot meets them
    assert first["sources"]["big"] == [["orders", "amount", True]]
    assert first["sources"]["name"] == [["customers", "name", True]]
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["column", "relations", "tables"]
    # a new process answers the same without parsing (sqlglot's parser refuses to run there)
    assert _child(folder, sql, "no-parse") == first
    # another SQL is another entry: parsed, not answered from the first's
    other = _child(folder, sql.replace("amount > 1", "amount > 2"), "parse")
    assert other == first and len(list(folder.iterdir())) == 6


def test_a_damaged_entry_is_derived_again_and_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GOVLAKE_SQL_CACHE", str(folder))
    sql = SQL.format(n=3)
    _child(folder, sql, "parse")
    (entry,) = folder.glob("relations-*.json")
    entry.write_text('["orders", "custo')  # a crash mid-write would not leave this (rename), a bad disk might
    assert referenced_relations(sql) == frozenset({"orders", "customers"})
    assert json.loads(entry.read_text()) == ["customers", "orders"]


def test_no_cache_where_it_cannot_be_written_or_is_turned_off(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GOVLAKE_SQL_CACHE", str(blocker / "cache"))  # a folder under a file: mkdir fails
    assert tables_read(SQL.format(n=4)) == ["customers", "orders"]
    assert not (blocker / "cache").exists()
    monkeypatch.setenv("GOVLAKE_SQL_CACHE", "")
    assert set(column_sources(SQL.format(n=5), SCHEMA)) == {"id", "name", "big"}
    assert list(tmp_path.iterdir()) == [blocker]


def test_entries_of_past_days_are_removed_when_another_is_written(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GOVLAKE_SQL_CACHE", str(folder))
    referenced_relations(SQL.format(n=6))
    (old,) = folder.iterdir()
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    referenced_relations(SQL.format(n=7))
    assert not old.exists() and len(list(folder.iterdir())) == 1
