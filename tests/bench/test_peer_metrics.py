"""bench/peers/evaluation.py: one metric implementation, checked against Cornac's own."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from test_peer_protocols import synthetic_positives

from bench.peers.evaluation import check_against_cornac, evaluate
from bench.peers.protocols import load_split, write_protocol


@pytest.fixture
def random_split(tmp_path):
    return load_split(write_protocol(synthetic_positives(n_users=50, n_items=80, per_user=15), "random", tmp_path))


def test_metrics_agree_with_cornac(random_split):
    pytest.importorskip("cornac")
    check = check_against_cornac(random_split, seed=0, n_epochs=5)
    assert check["max_abs_diff"] <= 1e-9
    assert check["n_users"] == 50
    assert 0.0 < check["cornac_ndcg@10"] < 1.0  # a real comparison, not two zeros


def test_oracle_scores_are_perfect_and_masking_applies(random_split):
    test = random_split.matrices["test"].toarray()
    oracle = evaluate(random_split, lambda rows: test[rows].astype(np.float32), "test")
    assert oracle["recall@20"] == pytest.approx(1.0) and oracle["mrr"] == pytest.approx(1.0)
    # Scoring exactly the training items highest must not help: they are masked.
    train = random_split.matrices["train"].toarray()
    seen = evaluate(random_split, lambda rows: train[rows].astype(np.float32), "val")
    assert seen["ndcg@10"] < 0.5


def test_coldstart_ranks_only_cold_items(tmp_path):
    split = load_split(write_protocol(synthetic_positives(), "coldstart", tmp_path, seed=2))
    warm_first = np.zeros(split.n_items, dtype=np.float32)
    warm_first[:] = 10.0
    warm_first[split.cold_items] = 0.0  # warm items would win if they were candidates
    result = evaluate(split, lambda rows: np.tile(warm_first, (len(rows), 1)), "test")
    assert result["hit_rate@10"] > 0.0
