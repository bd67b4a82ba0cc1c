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
    (tmp_path / "splits" / "test.csv").unlink()  # a train/val split: the encoders are fitted on train alone
    again = run_encoders_extract(settings)
    assert again.items.fingerprint == encoders.items.fingerprint and again.unknown["test"]["items"] == 0


def test_split_before_preprocess_hints_preprocess(tmp_path):
    settings = load_settings(None, {"paths.processed_dir": tmp_path / "none"}).settings
    with pytest.raises(DataError, match="mmrec preprocess"):
        run_split(settings)


def test_a_per_user_split_of_mostly_single_interaction_users_says_its_parts_came_out_small():
    """An event log where most users have one positive: per user, each keeps it in train, so val and test hold far
    less than asked; the report says so (and a split near the ratios says nothing)."""
    import pandas as pd

    from mmrec.data.splits import split_interactions, split_report
    from mmrec.pipeline.split import short_parts_note
    from mmrec.settings import SplitSettings

    rows = [(f"s{u}", f"i{u % 7}") for u in range(80)] + [(f"m{u}", f"i{j}") for u in range(10) for j in range(10)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    settings = SplitSettings()
    report = split_report(split_interactions(frame, settings), settings, len(frame))
    note = short_parts_note(report, frame, settings)
    assert note is not None and "80 of 90 users have a single interaction" in note
    assert "not the 0.8 / 0.1 / 0.1 asked" in note
    many = pd.DataFrame([(f"m{u}", f"i{j}") for u in range(10) for j in range(10)], columns=["user_id", "item_id"])
    assert short_parts_note(split_report(split_interactions(many, settings), settings, 100), many, settings) is None


def test_per_user_splits_count_the_users_without_a_test_row():
    # 70% of a shop's buyers buy once: their row stays in train, and neither split nor evaluate said they are never
    # evaluated (leave_one_out did).
    import pandas as pd

    from mmrec.data.splits import split_interactions
    from mmrec.pipeline.split import untested_users_note
    from mmrec.settings import SplitSettings

    singles = [(f"s{u}", f"i{u % 7}", u) for u in range(30)]
    rows = singles + [(f"m{u}", f"i{j}", j) for u in range(10) for j in range(20)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    for strategy in ("stratified", "temporal_user"):
        split = SplitSettings(strategy=strategy)
        frames = split_interactions(frame, split)
        note = untested_users_note(frames, split)
        untested = 40 - frames.test["user_id"].nunique()
        assert note.startswith(f"{untested} of 40 users ({untested / 40:.0%}) have no test row: "
                               + ("each has a single interaction" if untested == 30 else "30 have a single "
                                  "interaction, which stays in train, and the others'"))
        assert f"evaluate scores the {40 - untested} others" in note
    many = frame[frame["user_id"].str.startswith("m")]
    assert untested_users_note(split_interactions(many, SplitSettings()), SplitSettings()) is None
    split = SplitSettings(strategy="temporal_user")  # only the singles untested: no "others" to speak of
    few = pd.concat([frame.head(3), many])
    assert untested_users_note(split_interactions(few, split), split).startswith(
        "3 of 13 users (23%) have no test row: each has a single interaction, which stays in train (strategy")
    assert untested_users_note(split_interactions(frame, SplitSettings(strategy="temporal")),
                               SplitSettings(strategy="temporal")) is None


def test_leave_one_out_counts_the_users_too_short_for_a_test_or_validation_row():
    import pandas as pd

    from mmrec.data.splits import split_interactions
    from mmrec.pipeline.split import leave_one_out_note
    from mmrec.settings import SplitSettings

    rows = [("a", "i1", 1)] + [("b", f"i{k}", k) for k in (1, 2)] + [("c", f"i{k}", k) for k in (1, 2, 3, 4)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    split = SplitSettings(strategy="leave_one_out")
    frames = split_interactions(frame, split)
    assert sorted(frames.test["user_id"]) == ["b", "c"] and list(frames.val["user_id"]) == ["c"]
    assert leave_one_out_note(frames, split) == (
        "leave_one_out: 1 user(s) with a single interaction keep it for training (no test row); 1 user(s) with two "
        "give a test row but no validation row, as every user keeps a training interaction.")
    no_val = SplitSettings(strategy="leave_one_out", train_ratio=0.9, val_ratio=0.0, test_ratio=0.1)
    assert leave_one_out_note(split_interactions(frame, no_val), no_val).count("user(s)") == 1
    assert leave_one_out_note(split_interactions(frame[frame["user_id"] == "c"], split), split) is None
    assert leave_one_out_note(frames, SplitSettings()) is None  # another strategy
