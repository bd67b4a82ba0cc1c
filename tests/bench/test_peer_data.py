"""bench/peers/data.py: the MovieLens layouts through mmrec's importer, and the two text variants."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from movielens_fixtures import write_ml100k, write_ml_dat, write_ml_latest

from bench.peers.data import available_variants, dataset_name, load_dataset
from mmrec.errors import DataError


def test_ml100k_layout_is_read_and_named(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    assert available_variants(data) == ["no-tags"]
    dataset = load_dataset(data, "no-tags", tmp_path / "work")
    assert dataset.flavour == "ml-100k" and dataset.name == "ml-100k"
    assert "ml-100k" in dataset.describe() and "ml-latest-small" not in dataset.describe()
    assert len(dataset.positives) > 0
    assert set(dataset.positives.columns) == {"user_id", "item_id", "timestamp"}
    text = dataset.item_texts(["1"])[0]
    assert text.startswith("Movie 1. Genres: ") and "Tags" not in text
    with pytest.raises(DataError, match="no tags file"):
        load_dataset(data, "tags", tmp_path / "work2")


def test_ml_latest_variants_differ_only_in_tags(tmp_path):
    data = write_ml_latest(tmp_path / "small")
    assert available_variants(data) == ["tags", "no-tags"]
    tagged = load_dataset(data, "tags", tmp_path / "w" / "tags")
    plain = load_dataset(data, "no-tags", tmp_path / "w" / "no-tags")
    assert tagged.flavour == plain.flavour == "ml-latest"
    assert tagged.positives.equals(plain.positives)
    assert tagged.item_texts(["1"]) == ["Film 1. Genres: Drama, Comedy. Tags: classic, funny."]
    assert plain.item_texts(["1"]) == ["Film 1. Genres: Drama, Comedy."]
    assert (data / "tags.csv").is_file()  # the no-tags view never touches the original folder


def test_ml1m_layout_with_tags_dat_has_both_variants(tmp_path):
    data = write_ml_dat(tmp_path / "ml-10m")
    assert available_variants(data) == ["tags", "no-tags"]
    tagged = load_dataset(data, "tags", tmp_path / "w" / "tags")
    plain = load_dataset(data, "no-tags", tmp_path / "w" / "no-tags")
    assert tagged.flavour == plain.flavour == "ml-1m" and tagged.positives.equals(plain.positives)
    assert tagged.item_texts(["1"]) == ["Film 1. Genres: Drama, Comedy. Tags: classic, funny."]
    assert plain.item_texts(["1"]) == ["Film 1. Genres: Drama, Comedy."]
    assert available_variants(write_ml_dat(tmp_path / "ml-1m", tags=False)) == ["no-tags"]


def test_dataset_name_is_path_safe(tmp_path):
    assert dataset_name(tmp_path / "my data..") == "my_data"
    assert "/" not in dataset_name(Path("/"))


def _catalogue(folder: Path, timestamps: bool = True, threshold: float | None = 4.0) -> Path:
    """A synthetic shop in mmrec's input format, with its own mmrec.yaml (a rating threshold)."""
    import pandas as pd

    from mmrec.data.synth import generate_synthetic

    generate_synthetic(folder, users=40, items=30, seed=5, mean_interactions=12)
    if not timestamps:
        frame = pd.read_csv(folder / "interactions.csv", dtype=str)
        frame.drop(columns="timestamp").to_csv(folder / "interactions.csv", index=False)
    if threshold is not None:
        (folder / "mmrec.yaml").write_text(f"data:\n  positive_rating_threshold: {threshold}\n")
    return folder


def test_a_catalogue_in_mmrecs_input_format_is_read_through_preprocess(tmp_path):
    import pandas as pd

    data = _catalogue(tmp_path / "shop")
    assert available_variants(data) == ["catalogue"]
    dataset = load_dataset(data, "catalogue", tmp_path / "work")
    raw = pd.read_csv(data / "interactions.csv", dtype={"user_id": str, "item_id": str})
    liked = raw[raw["rating"] >= 4.0]  # the folder's own threshold, through preprocess
    assert set(map(tuple, dataset.positives[["user_id", "item_id"]].values)) <= set(
        map(tuple, liked[["user_id", "item_id"]].values))
    assert dataset.timestamps and dataset.positives["timestamp"].gt(0).all() and dataset.n_ratings == len(raw)
    assert dataset.numeric == ("view_number", "comment_number", "thumbup_number")
    assert "catalogue shop (mmrec input folder)" in dataset.describe()
    item = dataset.positives["item_id"].iloc[0]
    assert (dataset.posters / f"{item}.jpg").is_file()  # the processed image, as the peers' features read it
    assert dataset.item_texts([item])[0].startswith(str(dataset.items.loc[item, "title"]))
    with pytest.raises(DataError, match="an mmrec input folder has one, `catalogue`"):
        load_dataset(data, "no-tags", tmp_path / "work2")
    bare = load_dataset(_catalogue(tmp_path / "bare", timestamps=False), "catalogue", tmp_path / "work3")
    assert not bare.timestamps and bare.positives["timestamp"].eq(0).all() and "no timestamps" in bare.describe()
    with pytest.raises(DataError, match="neither a MovieLens folder nor an mmrec input folder"):
        available_variants(tmp_path / "work")
