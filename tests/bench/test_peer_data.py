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
