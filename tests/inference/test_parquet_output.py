"""Recommendations streamed into parquet: one row group per chunk, atomic replacement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mmrec.inference.parquet_output import parquet_recommendations


def _lists(*rows):
    return [(np.array(idx), np.array(val, dtype=np.float32)) for idx, val in rows]


def test_chunks_become_row_groups_with_ranks_from_one(tmp_path):
    out = tmp_path / "recs.parquet"
    with parquet_recommendations(out, ["a", "b", "c"]) as table:
        table.write(["u1", "u2"], _lists(([2, 0], [0.9, 0.5]), ([1], [0.3])), [None, "popularity"])
        table.write(["u3"], _lists(([], [])))  # nothing to recommend: no rows
        table.write(["u4"], _lists(([0, 1, 2], [3, 2, 1])))
    assert table.n_rows == 6 and pq.ParquetFile(out).num_row_groups == 2
    frame = pd.read_parquet(out)
    frame["fallback"] = frame["fallback"].astype(object).where(frame["fallback"].notna(), None)
    assert frame.to_dict("list") == {
        "user_id": ["u1", "u1", "u2", "u4", "u4", "u4"], "rank": [1, 2, 1, 1, 2, 3],
        "item_id": ["c", "a", "b", "a", "b", "c"], "score": pytest.approx([0.9, 0.5, 0.3, 3, 2, 1]),
        "fallback": [None, None, "popularity", None, None, None],  # u2 got the popularity fallback's list
    }


def test_a_failure_midway_leaves_the_previous_file_and_no_temp(tmp_path):
    out = tmp_path / "recs.parquet"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError), parquet_recommendations(out, ["a"]) as table:
        table.write(["u1"], _lists(([0], [1.0])))
        raise RuntimeError("killed")
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["recs.parquet"]


def test_new_items_add_a_boolean_column(tmp_path):
    out = tmp_path / "recs.parquet"
    with parquet_recommendations(out, ["a", "b", "c"], is_new=np.array([False, False, True])) as table:
        table.write(["u1", "u2"], _lists(([2, 0], [0.9, 0.5]), ([1], [0.3])))
    frame = pd.read_parquet(out)
    assert frame["new"].tolist() == [True, False, False] and frame["new"].dtype == bool


def test_a_write_error_names_the_file_being_written(tmp_path, monkeypatch):
    """pyarrow's "Error writing bytes to file ... File too large" names no file: the error says which."""
    from mmrec.errors import os_error

    out = tmp_path / "recs.parquet"
    out.write_bytes(b"the earlier lists")

    def too_large(self, table, *args, **kwargs):
        raise OSError("Error writing bytes to file. Detail: [errno 27] File too large")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", too_large)
    with pytest.raises(OSError) as caught, parquet_recommendations(out, ["a", "b"]) as table:
        table.write(["u1"], _lists(([1, 0], [0.9, 0.5])))
    assert caught.value.filename.startswith(str(tmp_path / ".recs.parquet."))
    assert f"File too large): {tmp_path} (writing the temporary .recs.parquet." in os_error(caught.value).message
    assert out.read_bytes() == b"the earlier lists"
