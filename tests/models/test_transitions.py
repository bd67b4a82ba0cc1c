"""Item -> next-item transitions (mmrec.models.transitions): the counts, the scores x_u T, and their place
last in the scoring path's blend."""

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from training_problem import make_tiny_problem, tiny_model_settings

from mmrec.data.encoders import IdEncoder
from mmrec.models.content_profile import ContentProfileModel
from mmrec.models.histories import catalogue_index
from mmrec.models.item_item import ItemItemModel, interaction_csr, standardize
from mmrec.models.scoring import Scorer, matrices_per_chunk, score_variants
from mmrec.models.transitions import transition_matrix, transition_model
from mmrec.models.two_tower import TwoTowerModel


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
    # The sparse torch weights (the non-CPU path) hold the same B: B^T as CSR.
    dense = model.weights.to_dense().T.numpy()
    np.testing.assert_allclose(dense, transition_matrix(user_idx, item_rows, 4, 2).toarray(), rtol=1e-6)


def test_transitions_blend_last_in_the_scoring_path():
    problem = make_tiny_problem()
    torch.manual_seed(0)
    model = TwoTowerModel(tiny_model_settings(), problem.dims)
    n_rows, n_items = problem.data.histories.shape[0], problem.catalogue.n
    rng = np.random.default_rng(0)
    profiles = sp.random(n_rows, n_items, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    item_item = ItemItemModel.fit(profiles, [], l2=5.0, content_weight=0.0)
    content = ContentProfileModel.build(problem.catalogue, "text", profiles)
    pairs = sp.random(n_rows, n_items, density=0.3, format="coo", random_state=rng)
    user_idx, item_rows = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
    sequence = ItemItemModel(torch.empty(0), interaction_csr(user_idx, item_rows, n_rows, n_items, 1.0),
                             transition_matrix(user_idx, item_rows, n_items, 3))
    sequence.weights = torch.as_tensor(sequence._scipy.toarray())  # B dense (x_u B), the scorer's other path
    base = Scorer(model, problem.catalogue, problem.data.histories)
    blended = base.with_item_item(item_item, 0.5).with_content(content, 0.25)
    grid = [blended, blended.with_sequence(sequence, 0.2), blended.with_sequence(sequence, 0.3)]
    assert matrices_per_chunk(grid) == 4 + 1 + 1  # tower raw + z, item-item, content, transitions; the output
    users = torch.arange(1, 9)
    together = [matrix.clone() for matrix in score_variants(grid, users, users)]
    for got, scorer in zip(together, grid):
        torch.testing.assert_close(got, scorer.scores(users, users))
    seq = standardize(torch.as_tensor((sequence.interactions[users.numpy()] @ sequence._scipy).toarray(),
                                      dtype=torch.float32))
    torch.testing.assert_close(together[1], 0.8 * standardize(together[0]) + 0.2 * seq)
    assert [name for name, _, _ in grid[1].components()] == ["item_item", "content", "sequence"]
    assert grid[1].blended and not base.with_sequence(sequence, 0.0).blended
