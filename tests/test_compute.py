"""A step's DuckDB session (govlake.compute): ``file`` relations — a large table computed once, kept as a Parquet
file of the session's scratch folder and read back — and that folder's life: removed when the session closes,
and by the next session when a killed process could not."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from govlake.compute import open_compute
from govlake.engine import get_engine

ROWS = """select i as n, 'batch-' || (i % 3) as b, repeat('字', i % 7) as text from range(1000) as t(i)"""

HOLD = """
import sys, time
from pathlib import Path
import pyarrow as pa

from govlake.compute import open_compute
from govlake.config import Settings
from govlake.engine import get_engine
con = open_compute(get_engine(Settings(var=Path(sys.argv[1]))))
con.create("kept", "select 1 as n", kind="file")
print(con._files["kept"][0], flush=True)
time.sleep(600)
"""


def _child_env() -> dict[str, str]:
    """The environment of a child Python that imports this checkout's govlake."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "jobs"),
                                                         os.environ.get("PYTHONPATH", "")])}


def _folders(settings) -> list[Path]:
    root = settings.work / "relations"
    return sorted(root.iterdir()) if root.exists() else []


def test_a_file_relation_is_read_back_shared_and_its_rows_can_be_left_out(settings):
    con = open_compute(get_engine(settings))
    try:
        con.create("big", ROWS, kind="file", shared=True)
        (folder,) = _folders(settings)
        assert (folder / "big.parquet").is_file() and folder.name.startswith(f"{os.getpid()}-")
        assert con.one("select count(*), sum(n), max(length(text)) from big") == (1000, 499500, 6)
        con.delete_where("big", "b", ["batch-0"])
        assert con.one("select count(*), count(*) filter (where b = 'batch-0') from big") == (666, 0)
        con.delete_where("big", "b", ["batch-1"])  # the rows left out before stay out
        assert con.one("select count(*), count(distinct b) from big") == (333, 1)
        con.delete_where("big", "b", [])
        assert con.one("select count(*) from big") == (333,)
        # shared: another cursor of the session (Great Expectations') sees the same rows
        assert con.con.cursor().execute("select count(*) from big").fetchone() == (333,)
        assert "big" in con.relations() and con.columns("big") == ["n", "b", "text"]
        # an empty result is a relation with its columns and no rows
        con.create("none", "select * from big where n < 0", kind="file")
        assert con.one("select count(*) from none") == (0,) and con.columns("none") == ["n", "b", "text"]
        # made again from itself, its file written again: read with its new rows and columns (the connection keeps
        # the footers of the files it read, which DuckDB checks against the file)
        con.create("big", "select n * 2 as n, b from big where n < 500", kind="file")
        assert con.one("select count(*), sum(n) from big") == (166, 2 * sum(i for i in range(500) if i % 3 == 2))
        assert con.columns("big") == ["n", "b"]
    finally:
        con.close()
    assert _folders(settings) == []


def test_the_scratch_folder_of_a_killed_step_is_removed_by_the_next_one_and_a_running_step_s_is_kept(settings):
    env = _child_env()
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, str(settings.var)], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        killed, running = procs
        files = [Path(p.stdout.readline().strip()) for p in procs]
        assert all(f.is_file() for f in files)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert files[0].exists()  # nothing removed it: the process had no chance to
        con = open_compute(get_engine(settings))
        try:
            con.create("mine", "select 2 as n", kind="file")
            assert not files[0].parent.exists()
            assert files[1].is_file()  # the running step's relation is untouched
            assert con.one("select n from mine") == (2,)
        finally:
            con.close()
        assert _folders(settings) == [files[1].parent]
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)


RELEASE = """
import gc, weakref
from govlake.compute import release_memory
from govlake.transform._models import parsed, referenced_relations
assert referenced_relations("select * from a join b on a.x = b.x") == {"a", "b"}
tree = parsed("select * from a join b on a.x = b.x")
kept = weakref.ref(tree)
del tree
release_memory()
print(kept() is None, parsed.cache_info().currsize, gc.get_freeze_count() > 0,
      referenced_relations.cache_info().currsize)
"""


def test_a_job_s_end_frees_its_sql_trees_and_freezes_what_survives():
    """release_memory empties the cache of sqlglot trees before it collects and freezes (a tree is cyclic: kept
    past the collection it would be frozen, and never collected once evicted); the relations a query reads
    stay cached."""
    env = _child_env()
    done = subprocess.run([sys.executable, "-c", RELEASE], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "0", "True", "1"]


def test_dropped_relations_are_gone_with_their_files(settings):
    con = open_compute(get_engine(settings))
    try:
        con.create("big", ROWS, kind="file")
        con.delete_where("big", "b", ["batch-0"])
        con.create("keys", "select n from big")
        con.create("names", "select b from big", kind="view")
        path = Path(con._files["big"][0])
        con.drop("names", "keys", "big", "never_made")
        assert not {"big", "big__deleted", "keys", "names"} & con.relations()
        assert not path.exists() and "big" not in con._files
        con.create("big", ROWS, kind="file")  # the name can be used again, with no rows left out
        assert con.one("select count(*) from big") == (1000,)
    finally:
        con.close()


DROPPED = """
import sys, time
from pathlib import Path
import pyarrow as pa

from govlake.compute import open_compute
from govlake.config import Settings
from govlake.engine import get_engine

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

con = open_compute(get_engine(Settings(var=Path(sys.argv[1]))))
con.create("wide", "select i, repeat(chr(19968 + (i % 5000)::int), 40) || i as text from range(3000000) as t(i)")
held = rss()
con.drop("wide")
for _ in range(50):
    time.sleep(0.1)
    if held - rss() > 200:
        break
print(held, rss())
"""


def test_a_dropped_table_s_memory_goes_back_to_the_system(settings):
    """A table dropped mid-step lowers the process's resident memory (DuckDB's allocator keeps freed pages unless
    its background thread is on: storage.connect), so the writes at a process step's end no longer stack on a
    buffer pool filled by tables nothing reads any more."""
    env = _child_env()
    done = subprocess.run([sys.executable, "-c", DROPPED, str(settings.var)], env=env, capture_output=True,
                          text=True, check=True)
    held, after = map(int, done.stdout.split())
    assert held > 500, done.stdout  # the table was in memory
    assert held - after > 200, done.stdout


QUIET = """
import sys
from pathlib import Path
from govlake import storage
from govlake.config import Settings

setting = "select current_setting('enable_progress_bar')"
con = storage.connect(Settings(var=Path(sys.argv[1])))
with storage._probe() as probe:
    print(*[c.sql(setting).fetchone()[0] for c in (con, con.cursor(), probe)])
"""


def test_duckdb_draws_no_progress_bar_on_standard_output(settings):
    """DuckDB draws its progress bar on standard output whether or not it is a terminal, for any query past two
    seconds (a test's child printing numbers got "100%" among them): govlake's connections — the engine's, their
    cursors (GX's), the lookups' — have it off, so a command's --json output and a task's log hold only what
    govlake writes. Asked in a process of its own, as a command starts (under pytest's captured output DuckDB
    starts with the bar off; and its ``progress_bar_time``, set to provoke the bar, turns it back on)."""
    done = subprocess.run([sys.executable, "-c", QUIET, str(settings.var)], env=_child_env(), capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["False", "False", "False"], done.stdout


def test_a_large_ordered_result_is_sorted_in_slices_of_its_order_column_in_order_with_nulls_last(settings):
    """DuckDB's sort of wide rows needs memory that grows with the rows (the credit step's 24.6 million records
    failed at 768 MB): beyond ``sort_rows`` rows an ordered result is written once and sorted a slice of the order
    column's values at a time. The rows come in the order one sort gives, each once; a value holding more rows than a
    slice is a slice of its own; nulls come last; the memory limit sets the slice."""
    con = open_compute(get_engine(settings))
    try:
        assert con.sort_rows == 5_000_000  # at the default limit, 768 MB
        # 1,000 rows over 40 dates, one date holding 300 rows, and 50 rows without a date
        con.create("t", """select i as n, case when i < 50 then null when i < 350 then date '2026-03-01'
                                 else date '2026-01-01' + cast(i % 40 as integer) end as d, repeat('字', i % 7) as text
                           from range(1000) as t(i)""")
        one_sort = con.rows("select n, d from t order by d nulls last, n")
        con.sort_rows = 100
        rows = con.data("select * from t", order_by="d")
        assert len(rows.parts) > 5  # sliced (the last: the nulls)
        got = pa.Table.from_batches(list(rows.reader()))
        dates = got["d"].to_pylist()
        assert dates == [d for _, d in one_sort]  # in order, nulls last
        assert sorted(got["n"].to_pylist()) == list(range(1000))  # each row once
        sizes = [con.one(f"select count(*), count(distinct d) from ({part})") for part in rows.parts]
        assert all(n <= 100 or distinct == 1 for n, distinct in sizes) and (300, 1) in sizes
        # told how many rows (or more) there are, a small result is one sort, not a scratch file
        con.sort_rows = 1000
        small = con.data("select * from t", order_by="d", rows=1000)
        assert len(small.parts) == 1 and pa.Table.from_batches(list(small.reader()))["d"].to_pylist() == dates
        # whole: the same rows in the same order
        con.sort_rows = 100
        assert con.data("select * from t", order_by="d", whole=True)["d"].to_pylist() == dates
    finally:
        con.close()
    half = open_compute(get_engine(dataclasses.replace(settings, duckdb_memory_limit="384MB")))
    assert half.sort_rows == 2_500_000
    half.close()
