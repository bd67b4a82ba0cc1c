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
