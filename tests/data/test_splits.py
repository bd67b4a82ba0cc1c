from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from mmrec.data.splits import (
    _time_range,
    SplitFrames,
    check_leakage,
    holdout_validation,
    load_split,
    save_split,
    split_interactions,
)
from mmrec.errors import DataError, SplitError
from mmrec.settings import SPLIT_STRATEGIES, SplitSettings


@st.composite
def interaction_frames(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 10))
    pairs = draw(
        st.sets(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), min_size=1, max_size=40)
    )
    rows = sorted(pairs)
    times = draw(st.lists(st.integers(0, 50), min_size=len(rows), max_size=len(rows)))
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u, _ in rows],
            "item_id": [f"i{i}" for _, i in rows],
            "timestamp": pd.Series(times, dtype="int64"),
        }
    )


def _keys(frame):
    return sorted(zip(frame["user_id"], frame["item_id"], strict=True))


@pytest.mark.parametrize("strategy", SPLIT_STRATEGIES)
@hyp_settings(max_examples=25, deadline=None)
@given(frame=interaction_frames(), seed=st.integers(0, 3))
def test_disjoint_covering_and_deterministic(strategy, frame, seed):
    settings = SplitSettings(strategy=strategy, seed=seed)
    parts = split_interactions(frame, settings)
    train, val, test = (set(_keys(p)) for p in (parts.train, parts.val, parts.test))
    assert not (train & val) and not (train & test) and not (val & test)
    assert sorted(train | val | test) == _keys(frame)  # every interaction in exactly one part
    again = split_interactions(frame, settings)
    for a, b in zip(parts.parts().values(), again.parts().values(), strict=True):
        pd.testing.assert_frame_equal(a, b)
    if strategy in ("stratified", "temporal_user", "leave_one_out"):
        assert set(frame["user_id"]) == set(parts.train["user_id"])  # every user keeps a training item
    if strategy == "item":
        assert not (set(parts.test["item_id"]) & set(parts.train["item_id"]))
    if strategy == "user":
        assert not (set(parts.test["user_id"]) & set(parts.train["user_id"]))
    if strategy == "temporal" and len(parts.train) and len(parts.test):
        assert parts.test["timestamp"].min() >= parts.train["timestamp"].max()


def _frame(n_users=20, per_user=10):
    rows = [(f"u{u}", f"i{(u * 7 + k) % 50}", 1000 * u + k) for u in range(n_users) for k in range(per_user)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.mark.parametrize("strategy", ["stratified", "leave_one_out", "user", "item"])
def test_a_split_made_again_after_new_rows_leaves_the_untouched_users_as_they_were(strategy):
    """Nightly: one appended row (a new user) reshuffled a third of the users when draws followed row order."""
    frame = _frame(n_users=60).drop(columns="timestamp").sample(frac=1.0, random_state=1)  # random file order
    grown = pd.concat([frame, pd.DataFrame({"user_id": ["new"], "item_id": ["i3"]})], ignore_index=True)
    settings = SplitSettings(strategy=strategy, seed=5)

    def part_of(parts):
        return {key: name for name, part in parts.parts().items() for key in _keys(part)}

    before, after = part_of(split_interactions(frame, settings)), part_of(split_interactions(grown, settings))
    moved = [key for key, name in before.items() if after[key] != name]
    if strategy == "item":  # whole items: i3's users can change with it, and the cut-off may move by one item
        assert len(moved) <= 2 * 12
    elif strategy == "user":  # whole users, by their draw: one more user moves the cut-off by at most one user
        assert len(moved) <= 10
    else:  # per user: the other users' rows keep their parts
        assert moved == []
    shuffled = split_interactions(frame.sample(frac=1.0, random_state=2), settings)  # the same rows, reordered
    assert part_of(shuffled) == before
    holdout = holdout_validation(frame, 0.2, "stratified", seed=3)[1]
    assert _keys(holdout_validation(grown, 0.2, "stratified", seed=3)[1]) == _keys(holdout)


def test_stratified_ratios_and_temporal_user_takes_latest():
    frame = _frame()
    parts = split_interactions(frame, SplitSettings(strategy="stratified"))
    assert (len(parts.train), len(parts.val), len(parts.test)) == (160, 20, 20)
    latest = split_interactions(frame, SplitSettings(strategy="temporal_user"))
    assert (latest.test["timestamp"] % 1000).eq(9).all()


@pytest.mark.parametrize("strategy", ["stratified", "temporal_user"])
def test_users_with_a_handful_of_rows_still_give_test_and_val_their_share(strategy):
    # 5 rows x 0.1 rounds to 0 for every user: 1,500 rows split into an empty test and val part.
    frame = _frame(n_users=400, per_user=5)
    parts = split_interactions(frame, SplitSettings(strategy=strategy, seed=1))
    assert 0.08 < len(parts.test) / len(frame) < 0.12 and 0.08 < len(parts.val) / len(frame) < 0.12
    assert parts.train.groupby("user_id").size().min() >= 1 and parts.train["user_id"].nunique() == 400
    assert set(parts.test.groupby("user_id").size()) == {1}  # 0 or 1 of 5 rows: one draw per user
    again = split_interactions(frame, SplitSettings(strategy=strategy, seed=1))
    assert again.test.equals(parts.test)  # seeded


def test_a_split_by_time_says_when_file_order_broke_timestamp_ties():
    from mmrec.data.splits import time_ties_note

    frame = _frame()
    for strategy in ("temporal", "temporal_user", "leave_one_out", "stratified"):  # distinct times: nothing to say
        assert time_ties_note(split_interactions(frame, SplitSettings(strategy=strategy)), strategy) is None
    same = frame.assign(timestamp=1_650_000_000)
    note = time_ties_note(split_interactions(same, SplitSettings(strategy="temporal")), "temporal")
    assert note.startswith("Every interaction has the same timestamp") and "--strategy stratified" in note
    dated = frame.assign(timestamp=frame["timestamp"] // 5000 * 86400)  # dates: 5 users a day
    note = time_ties_note(split_interactions(dated, SplitSettings(strategy="temporal")), "temporal")
    assert note is not None and "share the timestamp at the cut" in note
    # Distinct times but for a run of equal ones across the validation | test cut: said too (it was not).
    tail = frame.assign(timestamp=frame["timestamp"].where(frame["timestamp"] < frame["timestamp"].quantile(0.85),
                                                           frame["timestamp"].max()))
    note = time_ties_note(split_interactions(tail, SplitSettings(strategy="temporal")), "temporal")
    assert note is not None and "at the cut between validation and test" in note and "train and the" not in note
    per_day = frame.assign(timestamp=frame["timestamp"] // 1000 * 1000)  # each user's rows on one date
    note = time_ties_note(split_interactions(per_day, SplitSettings(strategy="temporal_user")), "temporal_user")
    assert note.startswith("20 of the 20 users with held-out rows have one at the same timestamp as a row of theirs "
                           "on the other side of the cut (20 with a training row, ")
    # Leave-one-out: the test row tied with the validation row only (the training rows earlier) is counted too; the
    # note had counted ties with training rows alone (316 of 942 users where 471 were decided by file order).
    rows = pd.DataFrame({"user_id": ["a"] * 4 + ["b"] * 4, "item_id": list("wxyz") * 2,
                         "timestamp": [1, 2, 3, 3, 1, 2, 3, 4]})
    note = time_ties_note(split_interactions(rows, SplitSettings(strategy="leave_one_out")), "leave_one_out")
    assert note.startswith("1 of the 2 users with held-out rows have one at the same timestamp as a row of theirs on "
                           "the other side of the cut (0 with a training row, 1 a test row with a validation row, so "
                           "file order also decided which is test)")


def test_training_can_load_a_split_without_opening_its_test_part(tmp_path, monkeypatch):
    frame = _frame()
    save_split(split_interactions(frame, SplitSettings(strategy="stratified")), tmp_path)
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    loaded = load_split(tmp_path, test=False)
    assert len(loaded.train) and len(loaded.val) and loaded.test.empty and "test.csv" not in opened
    monkeypatch.undo()
    (tmp_path / "test.csv").unlink()  # a train/val-only split trains
    assert len(load_split(tmp_path, test=False).train) == len(loaded.train)
    with pytest.raises(DataError, match="test.csv does not exist"):
        load_split(tmp_path)
    (tmp_path / "test.csv").mkdir()  # said "not found" too
    with pytest.raises(DataError, match="test.csv is a folder, not a file"):
        load_split(tmp_path)
    (tmp_path / "val.csv").unlink()
    (tmp_path / "val.csv").mkdir()  # was read as "no validation rows", unsaid
    with pytest.raises(DataError, match="val.csv is a folder, not a file"):
        load_split(tmp_path, test=False)


def test_leave_one_out_without_timestamps_is_random_but_seeded():
    frame = _frame().drop(columns="timestamp")
    parts = split_interactions(frame, SplitSettings(strategy="leave_one_out", seed=3))
    assert parts.test.groupby("user_id").size().eq(1).all() and len(parts.val) == 20


def test_holdout_validation_follows_the_split_strategy():
    frame = _frame()  # 20 users x 10 rows, timestamps 1000 * user + k
    train, val = holdout_validation(frame, 0.2, "stratified", seed=1)
    assert len(val) == 40 and val.groupby("user_id").size().eq(2).all()  # per user, rounded
    assert not set(_keys(train)) & set(_keys(val)) and sorted(_keys(train) + _keys(val)) == _keys(frame)
    again, _ = holdout_validation(frame, 0.2, "stratified", seed=1)
    other, _ = holdout_validation(frame, 0.2, "stratified", seed=2)
    pd.testing.assert_frame_equal(train, again)  # seeded
    assert _keys(train) != _keys(other)
    _, latest = holdout_validation(frame, 0.2, "temporal_user", seed=1)
    assert set(latest["timestamp"] % 1000) == {8, 9}  # each user's two latest rows
    _, last = holdout_validation(frame, 0.2, "leave_one_out", seed=1)
    assert (last["timestamp"] % 1000).eq(9).all() and len(last) == 20
    train_u, users = holdout_validation(frame, 0.2, "user", seed=1)
    assert users["user_id"].nunique() == 4 and not set(users["user_id"]) & set(train_u["user_id"])
    # unknown strategies (a hand-made split) and time-ordered ones without timestamps: per user at random
    _, unknown = holdout_validation(frame.drop(columns="timestamp"), 0.2, "temporal_user", seed=1)
    assert unknown.groupby("user_id").size().eq(2).all()
    one = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": [1]})
    assert holdout_validation(one, 0.5, "stratified", seed=0)[1].empty  # a user keeps a training row


def test_temporal_without_timestamps_is_a_clear_error():
    with pytest.raises(DataError, match="needs a timestamp"):
        split_interactions(_frame().drop(columns="timestamp"), SplitSettings(strategy="temporal"))


def test_sample_n_limits_rows():
    parts = split_interactions(_frame(), SplitSettings(sample_n=50))
    assert sum(len(p) for p in parts.parts().values()) == 50


def test_duplicate_pairs_are_refused_as_leakage():
    frame = pd.concat([_frame()] * 2, ignore_index=True)
    with pytest.raises(SplitError, match="Leakage"):
        split_interactions(frame, SplitSettings(strategy="stratified"))


def test_temporal_leakage_check():
    early = pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [5]})
    late = pd.DataFrame({"user_id": ["u"], "item_id": ["b"], "timestamp": [9]})
    with pytest.raises(SplitError, match="earlier"):
        check_leakage(SplitFrames(late, early.iloc[:0], early), "temporal")


def test_save_and_load_keep_string_ids(tmp_path):
    frame = pd.DataFrame(
        {"user_id": ["007", "007", "8"], "item_id": ["01", "02", "01"], "timestamp": [1, 2, 3]}
    )
    save_split(SplitFrames(frame, frame.iloc[:0], frame.iloc[2:]), tmp_path)
    loaded = load_split(tmp_path)
    assert loaded.train["user_id"].tolist() == ["007", "007", "8"] and loaded.val.empty
    assert loaded.test["item_id"].tolist() == ["01"] and loaded.train["timestamp"].dtype == "int64"
    (tmp_path / "test.csv").unlink()
    with pytest.raises(DataError, match="mmrec split"):
        load_split(tmp_path)


def test_unrated_interactions_preprocess_kept_load_as_missing_ratings(tmp_path):
    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["i1", "i2", "i1"],
                          "rating": [5.0, float("nan"), 4.0]})  # data.unrated: positive keeps a blank rating
    save_split(SplitFrames(frame, frame.iloc[:0], frame.iloc[2:]), tmp_path)
    loaded = load_split(tmp_path)
    assert loaded.train["rating"].tolist()[::2] == [5.0, 4.0] and pd.isna(loaded.train["rating"].iloc[1])
    (tmp_path / "train.csv").write_text("user_id,item_id,rating\nu1,i1,five\n")  # edited by hand
    (tmp_path / "split_files.json").unlink(missing_ok=True)  # (a hand-made split has no manifest)
    with pytest.raises(DataError, match="1 rating\\(s\\) that are not numbers \\(e.g. 'five'\\)"):
        load_split(tmp_path)


def test_a_split_without_val_csv_loads_with_an_empty_validation_part(tmp_path):
    frame = _frame()
    save_split(split_interactions(frame, SplitSettings()), tmp_path)
    (tmp_path / "val.csv").unlink()
    parts = load_split(tmp_path)
    assert parts.val.empty and list(parts.val.columns) == list(parts.train.columns)


def test_time_range_of_a_table_processed_before_the_timestamp_range_check():
    part = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "timestamp": [1700000000, 1700000000000]})
    assert _time_range(part) == ["2023-11-14T22:13:20+00:00", "1700000000000 (unix seconds, outside years 1-9999)"]


def test_parts_of_two_splits_are_refused_and_a_killed_splits_temps_are_cleared(tmp_path):
    """A split killed between its files (the pipeline walkthrough: train.csv of seed 8 beside val/test of seed 7, 428
    test pairs in train) leaves files the manifest does not name: loading refuses them; a new split clears the
    killed one's temp files."""
    frame = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "a"], "timestamp": [1, 2, 3]})
    save_split(SplitFrames(frame, frame.iloc[:0], frame.iloc[2:]), tmp_path)
    frame.iloc[:1].to_csv(tmp_path / "train.csv", index=False)  # another split's train.csv
    (tmp_path / ".val.csv.0badf00d.tmp").write_text("half")
    with pytest.raises(DataError, match=r"not the ones `mmrec split` wrote together \(train.csv differs"):
        load_split(tmp_path)
    save_split(SplitFrames(frame, frame.iloc[:0], frame.iloc[2:]), tmp_path)
    assert len(load_split(tmp_path).train) == 3 and not list(tmp_path.glob(".*.tmp"))
    frame.iloc[:1].to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "split_files.json").unlink()  # files replaced by hand on purpose: the hint's way out
    assert len(load_split(tmp_path).train) == 1
