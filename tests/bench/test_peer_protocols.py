"""bench/peers/protocols.py: the split writer every benchmarked system reads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from bench.peers.data import k_core
from bench.peers.protocols import PROTOCOLS, load_split, verify_split, write_protocol
from mmrec.errors import SplitError


def synthetic_positives(n_users: int = 40, n_items: int = 60, per_user: int = 12, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for t, item in enumerate(rng.choice(n_items, size=per_user, replace=False)):
            rows.append((f"u{u}", f"i{item}", 1_000 + 10 * t + u))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_k_core_is_stable():
    frame = pd.DataFrame({"user_id": ["a"] * 5 + ["b"] * 2, "item_id": ["x"] * 5 + ["y"] * 2,
                          "timestamp": range(7)})
    frame = pd.concat([frame, pd.DataFrame({"user_id": [f"u{i}" for i in range(4)], "item_id": ["x"] * 4,
                                            "timestamp": range(4)})])
    kept = k_core(frame, k=5)
    assert (kept["user_id"].value_counts() >= 5).all() and (kept["item_id"].value_counts() >= 5).all()
    assert set(kept["user_id"]) == {"a"} or kept.empty


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_parts_are_disjoint_and_cover_the_data(tmp_path, protocol):
    frame = synthetic_positives()
    split = load_split(write_protocol(frame, protocol, tmp_path, seed=3))
    keys = [set(zip(f["user_id"], f["item_id"])) for f in split.frames.values()]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert sum(len(k) for k in keys) == len(frame)
    assert split.n_items == frame["item_id"].nunique()
    assert set(split.frames["test"]["user_id"]) <= set(split.frames["train"]["user_id"])


@pytest.mark.parametrize("protocol", ["random", "temporal"])
def test_per_user_shares(tmp_path, protocol):
    split = load_split(write_protocol(synthetic_positives(), protocol, tmp_path, seed=3))
    for name, expected in (("train", 10), ("val", 1), ("test", 1)):  # 12 positives: round(1.2) = 1 held out
        assert (split.frames[name].groupby("user_id").size() == expected).all()


def test_temporal_holds_out_each_users_latest(tmp_path):
    split = load_split(write_protocol(synthetic_positives(), "temporal", tmp_path))
    last_train = split.frames["train"].groupby("user_id")["timestamp"].max()
    first_val = split.frames["val"].groupby("user_id")["timestamp"].min()
    first_test = split.frames["test"].groupby("user_id")["timestamp"].min()
    assert (last_train < first_val).all() and (first_val < first_test).all()


def test_coldstart_items_never_in_train(tmp_path):
    split = load_split(write_protocol(synthetic_positives(), "coldstart", tmp_path, seed=5))
    cold = {split.items[i] for i in split.cold_items}
    assert len(cold) == round(0.2 * split.n_items)
    assert not cold & set(split.frames["train"]["item_id"])
    assert set(split.frames["val"]["item_id"]) | set(split.frames["test"]["item_id"]) <= cold


def test_same_seed_same_files(tmp_path):
    a = write_protocol(synthetic_positives(), "random", tmp_path / "a", seed=7)
    b = write_protocol(synthetic_positives(), "random", tmp_path / "b", seed=7)
    assert (a / "test.csv").read_text() == (b / "test.csv").read_text()


def test_verify_split_catches_leaks():
    part = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [0]})
    empty = part.iloc[:0]
    with pytest.raises(SplitError, match="both train and test"):
        verify_split({"train": part, "val": empty, "test": part}, [], "random")
    with pytest.raises(SplitError, match="cold item"):
        verify_split({"train": part, "val": empty, "test": empty}, ["i"], "coldstart")


def test_unknown_protocol_is_a_user_error(tmp_path):
    with pytest.raises(SplitError, match="unknown protocol"):
        write_protocol(synthetic_positives(), "global-time", tmp_path)
