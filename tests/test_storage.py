"""govlake.storage: what every Delta write through delta-rs guarantees beyond the rows themselves."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from govlake import storage


def _row_groups(path) -> list[int]:
    dt = storage.open_table(path)
    return [pq.ParquetFile(uri.removeprefix("file://")).metadata.row_group(i).num_rows
            for uri in dt.file_uris() for i in range(pq.ParquetFile(uri.removeprefix("file://")).num_row_groups)]


def test_writes_and_merges_keep_row_groups_small(tmp_path):
    """delta-rs holds a file's open row group in memory: writes and merges cap it at ROW_GROUP_ROWS rows."""
    n = storage.ROW_GROUP_ROWS * 2 + 10
    path = tmp_path / "t"
    storage.write_table(path, pa.table({"k": pa.array(range(n)), "v": pa.array(["a"] * n)}), mode="append",
                        run_id="r1")
    written = _row_groups(path)
    assert sum(written) == n and len(written) >= 3 and max(written) <= storage.ROW_GROUP_ROWS

    # a merge that matches a row in every row group rewrites the file: its row groups are capped too
    updates = pa.table({"k": pa.array([0, storage.ROW_GROUP_ROWS, n - 1, n]), "v": pa.array(["b"] * 4)})
    storage.merge_table(path, updates, key=["k"], run_id="r2")
    merged = _row_groups(path)
    assert sum(merged) == n + 1 and max(merged) <= storage.ROW_GROUP_ROWS
    assert storage.open_table(path).to_pyarrow_table().column("v").to_pylist().count("b") == 4
