from pathlib import Path

import pandas as pd
import pytest

from mmrec.data.tables import load_interactions, load_items, record_in_manifest, save_interactions, save_items
from mmrec.errors import DataError


def test_items_round_trip_with_absolute_image_paths(tmp_path: Path):
    items = pd.DataFrame(
        {
            "item_id": ["1", "2"],
            "title": ["a", "b"],
            "description": ["", ""],
            "text": ["a", "b"],
            "image_path": ["images/1.jpg", None],
            "has_image": [True, False],
            "image_fingerprint": ["f", None],
            "text_fingerprint": ["t1", "t2"],
            "year": [1999.0, 2000.0],
        }
    )
    save_items(items, tmp_path)
    loaded = load_items(tmp_path)
    assert loaded["image_path"].tolist() == [str(tmp_path.resolve() / "images/1.jpg"), None]
    assert loaded["has_image"].tolist() == [True, False] and loaded["year"].dtype == "float64"


def test_missing_tables_hint_preprocess(tmp_path: Path):
    with pytest.raises(DataError, match="mmrec preprocess"):
        load_items(tmp_path)
    with pytest.raises(DataError, match="mmrec preprocess"):
        load_interactions(tmp_path)
    (tmp_path / "interactions.parquet").write_bytes(b"garbage")  # no manifest vouches for it
    with pytest.raises(DataError, match="no manifest"):
        load_interactions(tmp_path)
    record_in_manifest(tmp_path / "interactions.parquet")
    with pytest.raises(DataError, match="cannot be read"):
        load_interactions(tmp_path)


def test_a_table_the_manifest_does_not_vouch_for_is_refused(tmp_path: Path):
    save_interactions(pd.DataFrame({"user_id": ["1"], "item_id": ["2"]}), tmp_path)
    other = tmp_path / "other"
    save_interactions(pd.DataFrame({"user_id": ["3"], "item_id": ["4"]}), other)
    (other / "interactions.parquet").replace(tmp_path / "interactions.parquet")
    with pytest.raises(DataError, match="interactions.parquet does not match"):
        load_interactions(tmp_path)
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(DataError, match="not a processed-folder manifest"):
        load_interactions(tmp_path)


def test_interactions_round_trip(tmp_path: Path):
    save_interactions(pd.DataFrame({"user_id": ["01"], "item_id": ["02"], "timestamp": [5]}), tmp_path)
    loaded = load_interactions(tmp_path)
    assert loaded.values.tolist() == [["01", "02", 5]]


def test_reading_a_table_without_memory_says_so_instead_of_hanging(tmp_path, monkeypatch):
    """Under `ulimit -v` pyarrow's threaded read hung forever; read in line it fails, and is said to be memory."""
    import pyarrow as pa
    from typer.testing import CliRunner

    from mmrec.cli.app import app
    from mmrec.data import tables
    from mmrec.errors import SystemResourceError

    items = pd.DataFrame({"item_id": ["a"], "title": ["A"], "description": [""], "text": ["A"], "image_path": [None],
                          "has_image": [False], "image_fingerprint": [""], "text_fingerprint": [""]})
    tables.save_items(items, tmp_path / "processed")
    tables.save_interactions(pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}), tmp_path / "processed")
    calls = []

    def no_threads(path, **kwargs):
        calls.append(kwargs)
        raise pa.lib.ArrowException("Unknown error: Failed to launch worker thread: Resource temporarily unavailable")

    monkeypatch.setattr(tables.pd, "read_parquet", no_threads)
    with pytest.raises(SystemResourceError, match="out of memory"):
        tables.load_items(tmp_path / "processed")
    assert calls == [{"pre_buffer": False, "use_threads": False}]

    def no_memory(path, **kwargs):
        raise MemoryError

    monkeypatch.setattr(tables.pd, "read_parquet", no_memory)
    (tmp_path / "c.yaml").write_text(f"paths:\n  processed_dir: {tmp_path / 'processed'}\n  splits_dir: {tmp_path}/s\n")
    result = CliRunner().invoke(app, ["split", "-c", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2 and "This command ran out of memory." in result.output
