"""bench/temporal_probe.py: the transition counts and the NDCG@10 its documented findings rest on."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from bench.temporal_probe import ndcg10, transitions


def test_transitions_count_followers_within_the_window_per_user_weighted_by_distance():
    # User 1 saw 0 -> 1 -> 2, user 2 saw 2 -> 0; interleaved in time, as ordered_pairs returns them.
    users = np.array([1, 2, 1, 2, 1])
    items = np.array([0, 2, 1, 0, 2])
    forward = transitions(users, items, 3, "fwd", 2, normalize="none")
    expected = np.zeros((3, 3), dtype=np.float32)
    expected[0, 1] = 1.0  # 0 -> 1 at distance 1
    expected[1, 2] = 1.0  # 1 -> 2
    expected[0, 2] = 0.5  # 0 -> 2 at distance 2
    expected[2, 0] = 1.0  # user 2: 2 -> 0 (never across users: 2 -> 1 or 0 -> 2 of user 1's next item)
    np.testing.assert_allclose(forward, expected)
    both = transitions(users, items, 3, "both", 2, normalize="none")
    np.testing.assert_allclose(both, expected + expected.T)
    rows = transitions(users, items, 3, "fwd", 2)
    np.testing.assert_allclose(rows.sum(axis=1), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(rows[0], [0.0, 1.0 / 1.5, 0.5 / 1.5])


def test_window_one_is_the_next_item_only():
    users = np.array([1, 1, 1])
    items = np.array([0, 1, 2])
    np.testing.assert_allclose(transitions(users, items, 3, "fwd", 1, normalize="none"),
                               [[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_ndcg10_masks_excluded_items_and_normalizes_by_the_ideal():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0] + [0.0] * 10])
    relevant = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 15))
    assert ndcg10(scores, relevant, sp.csr_matrix((1, 15))) == 1.0 / np.log2(3)
    # Item 0 is a training item: masked, so item 1 ranks first.
    assert ndcg10(scores, relevant, sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 15))) == 1.0
