import json

import pytest

from mmrec.data.splits import load_split, stale_split_note
from mmrec.data.synth import generate_synthetic
from mmrec.data.tables import interactions_sha256
from mmrec.errors import DataError
from mmrec.pipeline.encoders import run_encoders_extract, run_encoders_show
from mmrec.pipeline.preprocess import run_preprocess
from mmrec.pipeline.split import run_split
from mmrec.settings import load_settings


@pytest.fixture
def processed(tmp_path):
    generate_synthetic(tmp_path / "raw", users=15, items=20, seed=2)
    values = {
        "paths.data_dir": tmp_path / "raw",
        "paths.processed_dir": tmp_path / "processed",
        "paths.splits_dir": tmp_path / "splits",
        "paths.checkpoint_dir": tmp_path / "ckpt",
        "preprocess.num_workers": 1,
    }
    run_preprocess(load_settings(None, values).settings)
    return values


def test_item_split_report_and_encoders(processed, tmp_path):
    settings = load_settings(None, {**processed, "split.strategy": "item"}).settings
    result = run_split(settings)
    report = json.loads(result.report_path.read_text())
    assert report["parts"]["test"]["cold_items"] == report["parts"]["test"]["items"] > 0
    assert report["parts"]["train"]["time_range"] is not None
    frames = load_split(tmp_path / "splits")
    assert sum(len(p) for p in frames.parts().values()) == report["input_interactions"]
    assert report["input_sha256"] == interactions_sha256(tmp_path / "processed")  # what a later preprocess changes
    assert stale_split_note(tmp_path / "splits", tmp_path / "processed") is None
    encoders = run_encoders_extract(settings)
    assert len(encoders.items) == frames.train["item_id"].nunique() + 1
    assert encoders.unknown["test"]["items"] == report["parts"]["test"]["items"]
    shown = run_encoders_show(settings)
    assert shown.items.fingerprint == encoders.items.fingerprint


def test_split_before_preprocess_hints_preprocess(tmp_path):
    settings = load_settings(None, {"paths.processed_dir": tmp_path / "none"}).settings
    with pytest.raises(DataError, match="mmrec preprocess"):
        run_split(settings)
