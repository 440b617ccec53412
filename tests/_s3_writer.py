"""One writer of the concurrent-commit tests (tests/test_s3_lake.py, tests/test_spark_s3.py), run as a process:

    python tests/_s3_writer.py TABLE_URI WRITER OPS [append|mixed] [PAUSE]

Commits OPS times to the Delta table at TABLE_URI with govlake.storage (delta-rs), each commit stamped
``govlake.run_id = <WRITER>-<i>``: ``append`` appends one row per commit; ``mixed`` alternates an append
and a merge (an upsert of the row appended before, and one new row) by key ``WRITER * 10_000 + i``. A
commit delta-rs gives up on (a conflict after its retries) is tried again, up to 20 times, as a
scheduler would retry a step; PAUSE seconds between commits (default none) spread them out in time. Prints
one JSON line: the writer, its commits and its retries.
"""

from __future__ import annotations

import json
import sys
import time

import pyarrow as pa
from deltalake.exceptions import CommitFailedError

from govlake import storage

SCHEMA = pa.schema([("k", pa.int64()), ("v", pa.int64()), ("writer", pa.string())])


def rows(pairs: list[tuple[int, int]], writer: str) -> pa.Table:
    return pa.Table.from_pylist([{"k": k, "v": v, "writer": writer} for k, v in pairs], schema=SCHEMA)


def main(uri: str, writer: str, ops: int, mode: str, pause: float = 0.0) -> int:
    base = int(writer.lstrip("w")) * 10_000
    retries = 0
    for i in range(ops):
        time.sleep(pause)
        run_id = f"{writer}-{i}"
        for _attempt in range(20):
            try:
                if mode == "append" or i % 2 == 0:
                    storage.write_table(uri, rows([(base + i, i)], writer), mode="append", run_id=run_id)
                else:
                    storage.merge_table(uri, rows([(base + i - 1, -i), (base + i, i)], writer), key=["k"],
                                        run_id=run_id)
                break
            except CommitFailedError:
                retries += 1
        else:
            print(json.dumps({"writer": writer, "error": f"commit {i} failed 20 times"}), flush=True)
            return 1
    print(json.dumps({"writer": writer, "commits": ops, "retries": retries}), flush=True)
    return 0


def expected(writer: str, ops: int, mode: str) -> set[tuple[int, int, str]]:
    """The rows one writer leaves (its keys are its own)."""
    base = int(writer.lstrip("w")) * 10_000
    out: dict[int, int] = {}
    for i in range(ops):
        if mode == "append" or i % 2 == 0:
            out[base + i] = i
        else:
            out[base + i - 1], out[base + i] = -i, i
    return {(k, v, writer) for k, v in out.items()}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "append",
                  float(sys.argv[5]) if len(sys.argv) > 5 else 0.0))
