"""The scoring path's blend numerics: a grid of scorers scored together equals each scored alone, and
each equals (1 - w) z(scores) + w z(component), with z = per-row standardization."""

import numpy as np
import scipy.sparse as sp
import torch
from training_problem import make_tiny_problem, tiny_model_settings

from mmrec.models.content_profile import ContentProfileModel
from mmrec.models.item_item import ItemItemModel, standardize
from mmrec.models.scoring import Scorer, matrices_per_chunk, score_variants
from mmrec.models.two_tower import TwoTowerModel


def test_a_blend_grid_scores_like_its_formula_and_like_each_scorer_alone():
    problem = make_tiny_problem()
    torch.manual_seed(0)
    model = TwoTowerModel(tiny_model_settings(), problem.dims)
    n_rows, n_items = problem.data.histories.shape[0], problem.catalogue.n
    rng = np.random.default_rng(0)
    profiles = sp.random(n_rows, n_items, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    item_item = ItemItemModel.fit(profiles, [], l2=5.0, content_weight=0.0)
    content = ContentProfileModel.build(problem.catalogue, "text", profiles)
    base = Scorer(model, problem.catalogue, problem.data.histories)
    grid = [base] + [base.with_item_item(item_item, w) for w in (0.25, 1.0)] + \
        [base.with_item_item(item_item, 0.5).with_content(content, c) for c in (0.3, 1.0)] + \
        [base.with_content(content, 0.6)]
    assert matrices_per_chunk(grid) == 3 + 1 + 1  # tower raw + z, item-item z, content z; the output
    users = torch.arange(1, 9)
    together = []
    for matrix in score_variants(grid, users, users):
        together.append(matrix.clone())
        matrix.add_(1000.0)  # a yielded matrix is the caller's: the cached components stay intact
    alone = [scorer.scores(users, users) for scorer in grid]
    for got, expected in zip(together, alone):
        torch.testing.assert_close(got, expected)

    tower, ii, cb = (standardize(x) for x in (alone[0], item_item.scores(users), content.scores(users)))
    torch.testing.assert_close(together[1], 0.75 * tower + 0.25 * ii)
    torch.testing.assert_close(together[2], ii)
    blend = 0.5 * tower + 0.5 * ii
    torch.testing.assert_close(together[3], 0.7 * standardize(blend) + 0.3 * cb)
    torch.testing.assert_close(together[4], cb)
    torch.testing.assert_close(together[5], 0.4 * tower + 0.6 * cb)
