"""Item -> next-item transitions (mmrec.models.transitions): the counts and the scores x_u T (their place
last in the scoring path's blend: tests/models/test_scoring.py)."""

import numpy as np
import pandas as pd
import torch

from mmrec.data.encoders import IdEncoder
from mmrec.models.histories import catalogue_index
from mmrec.models.item_item import interaction_csr
from mmrec.models.transitions import transition_matrix, transition_model


def test_transitions_count_followers_within_the_window_per_user_weighted_by_distance_rows_normalized():
    # Oldest first, users interleaved in time: user 1 saw 0, 1, 2; user 2 saw 2, 0.
    users = np.array([1, 2, 1, 2, 1])
    items = np.array([0, 2, 1, 0, 2])
    counts = np.zeros((3, 3))
    counts[0, 1], counts[1, 2], counts[0, 2] = 1.0, 1.0, 0.5  # user 1 (0 -> 2 at distance 2)
    counts[2, 0] = 1.0  # user 2; nothing crosses from one user's sequence to another's
    expected = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(transition_matrix(users, items, 3, window=2).toarray(), expected, rtol=1e-6)
    window_one = transition_matrix(users, items, 3, window=1).toarray()
    np.testing.assert_allclose(window_one, [[0, 1, 0], [0, 0, 1], [1, 0, 0]])


def test_directions_both_count_each_pair_within_the_window_either_way():
    users = np.array([1, 2, 1, 2, 1])
    items = np.array([0, 2, 1, 0, 2])
    counts = np.zeros((3, 3))
    counts[0, 1] = counts[1, 0] = 1.0  # user 1: 0, 1, 2
    counts[1, 2] = counts[2, 1] = 1.0
    counts[0, 2] = counts[2, 0] = 0.25  # distance 2: 1 / d^2
    counts[2, 0] += 1.0  # user 2: 2, 0
    counts[0, 2] += 1.0
    expected = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(transition_matrix(users, items, 3, window=2, directions="both").toarray(), expected,
                               rtol=1e-6)


def test_an_item_without_followers_has_an_empty_row_and_a_repeat_is_no_transition():
    matrix = transition_matrix(np.array([1, 1, 1]), np.array([0, 0, 1]), 3, window=1).toarray()
    np.testing.assert_allclose(matrix, [[0, 1, 0], [0, 0, 0], [0, 0, 0]])


def test_the_model_scores_recency_weighted_profiles_times_the_transitions():
    train = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b"], "item_id": ["x", "y", "z", "z", "x"],
                          "timestamp": [1, 2, 3, 1, 2]})
    users = IdEncoder.fit(train["user_id"])
    rows = catalogue_index(["x", "y", "z", "w"])
    model = transition_model(train, users, rows, window=2, halflife=1.0)
    user_idx, item_rows = users.encode(["a", "a", "a", "b", "b"]), rows[["x", "y", "z", "z", "x"]].to_numpy()
    profiles = interaction_csr(user_idx, item_rows, len(users), 4, halflife=1.0)
    expected = (profiles @ transition_matrix(user_idx, item_rows, 4, 2)).toarray()
    torch.testing.assert_close(model.scores(np.arange(len(users))), torch.as_tensor(expected, dtype=torch.float32))
    # The sparse torch weights (the non-CPU path) hold the same B: B^T as CSR, and that path's product
    # (ItemItemModel.scores on CUDA) gives the same scores.
    dense = model.weights.to_dense().T.numpy()
    np.testing.assert_allclose(dense, transition_matrix(user_idx, item_rows, 4, 2).toarray(), rtol=1e-6)
    x = torch.as_tensor(profiles.toarray(), dtype=torch.float32)
    torch.testing.assert_close(torch.sparse.mm(model.weights, x.T).T, torch.as_tensor(expected, dtype=torch.float32))
