"""The scoring path's blend numerics: a grid of scorers scored together equals each scored alone, and
each equals (1 - w) z(scores) + w z(component), with z = per-row standardization."""

import numpy as np
import scipy.sparse as sp
import torch
from training_problem import make_tiny_problem, tiny_model_settings

from mmrec.models.content_profile import ContentProfileModel
from mmrec.models.item_item import ItemItemModel, interaction_csr, standardize
from mmrec.models import scoring
from mmrec.models.scoring import Scorer, matrices_per_chunk, score_variants
from mmrec.models.transitions import transition_matrix
from mmrec.models.two_tower import TwoTowerModel


def _scorer_and_components(rng: np.random.Generator) -> tuple[Scorer, ItemItemModel, ContentProfileModel]:
    """A two-tower scorer of a tiny problem, with an item-item and a content model over random profiles."""
    problem = make_tiny_problem()
    torch.manual_seed(0)
    model = TwoTowerModel(tiny_model_settings(), problem.dims)
    n_rows, n_items = problem.data.histories.shape[0], problem.catalogue.n
    profiles = sp.random(n_rows, n_items, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    item_item = ItemItemModel.fit(profiles, [], l2=5.0, content_weight=0.0)
    content = ContentProfileModel.build(problem.catalogue, "text", profiles)
    return Scorer(model, problem.catalogue, problem.data.histories), item_item, content


def test_a_blend_grid_scores_like_its_formula_and_like_each_scorer_alone():
    base, item_item, content = _scorer_and_components(np.random.default_rng(0))
    grid = [base] + [base.with_item_item(item_item, w) for w in (0.25, 1.0)] + \
        [base.with_item_item(item_item, 0.5).with_content(content, c) for c in (0.3, 1.0)] + \
        [base.with_content(content, 0.6)]
    # tower raw + z, item-item z, content z; the item-item blend at 0.5 two scorers build on; the output
    assert matrices_per_chunk(grid) == 3 + 1 + 1 + 1
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


def test_transitions_blend_last_in_the_scoring_path(monkeypatch):
    rng = np.random.default_rng(0)
    base, item_item, content = _scorer_and_components(rng)
    n_rows, n_items = base.histories.shape[0], base.n_items
    pairs = sp.random(n_rows, n_items, density=0.3, format="coo", random_state=rng)
    user_idx, item_rows = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
    matrix = transition_matrix(user_idx, item_rows, n_items, 3)
    # B dense (x_u B): the scorer's other path than transition_model's sparse one.
    sequence = ItemItemModel(torch.as_tensor(matrix.toarray()), interaction_csr(user_idx, item_rows, n_rows, n_items, 1.0))
    blended = base.with_item_item(item_item, 0.5).with_content(content, 0.25)
    grid = [blended, blended.with_sequence(sequence, 0.2), blended.with_sequence(sequence, 0.3)]
    # tower raw + z, item-item, content, transitions; the two shared blends under the transitions; the output
    assert matrices_per_chunk(grid) == 4 + 1 + 2 + 1
    users = torch.arange(1, 9)
    calls = []
    monkeypatch.setattr(scoring, "standardize",
                        lambda scores, inplace=False: calls.append(1) or standardize(scores, inplace))
    together = [matrix.clone() for matrix in score_variants(grid, users, users)]
    # Each component once (4), the item-item blend once, the blend with content once (it is under both weights of
    # the transitions): 6, where scoring each chain whole would take 9.
    assert len(calls) == 6
    monkeypatch.undo()
    for got, scorer in zip(together, grid):
        torch.testing.assert_close(got, scorer.scores(users, users))
    seq = standardize(torch.as_tensor((sequence.interactions[users.numpy()] @ matrix).toarray(), dtype=torch.float32))
    torch.testing.assert_close(together[1], 0.8 * standardize(together[0]) + 0.2 * seq)
    assert [name for name, _, _ in grid[1].components()] == ["item_item", "content", "sequence"]
    assert grid[1].blended and not base.with_sequence(sequence, 0.0).blended


def _with_cold_items(rng: np.random.Generator, cold: list[int]) -> tuple[Scorer, ItemItemModel, ContentProfileModel]:
    """`_scorer_and_components`, with a content model whose profiles hold none of the `cold` items."""
    base, item_item, content = _scorer_and_components(rng)
    profiles = content.interactions.tolil()
    profiles[:, cold] = 0
    return base, item_item, ContentProfileModel.build(base.catalogue, "text", profiles.tocsr())


def test_cold_items_are_reordered_among_themselves_keeping_their_place_as_a_group():
    cold = [1, 4, 6, 9]
    base, item_item, content = _with_cold_items(np.random.default_rng(1), cold)
    assert content.cold_columns.tolist() == cold
    blended = base.with_item_item(item_item, 0.5)
    users = torch.arange(1, 9)
    before = blended.scores(users, users)
    similarity = content.scores(users)[:, cold]
    for weight in (0.25, 1.0):
        after = blended.with_cold(content, weight).scores(users, users)
        warm = [j for j in range(base.n_items) if j not in cold]
        assert torch.equal(after[:, warm], before[:, warm])  # the other items keep their scores
        # The cold items keep their mean and spread in each row (where they stand as a group)...
        torch.testing.assert_close(after[:, cold].mean(1), before[:, cold].mean(1))
        torch.testing.assert_close(after[:, cold].std(1), before[:, cold].std(1))
        # ... and their order among themselves follows content similarity: wholly at weight 1.
        order = after[:, cold].argsort(dim=1)
        if weight == 1.0:
            assert torch.equal(order, similarity.argsort(dim=1))
        else:  # the formula: mean + spread * ((1 - w) z(scores) + w z(content)) / std of that mix
            def z(x):
                x = x - x.mean(1, keepdim=True)
                return x / x.square().mean(1, keepdim=True).sqrt()
            mix = (1 - weight) * z(before[:, cold]) + weight * z(similarity)
            spread = (before[:, cold] - before[:, cold].mean(1, keepdim=True)).square().mean(1, keepdim=True).sqrt()
            expected = before[:, cold].mean(1, keepdim=True) + spread * mix / mix.square().mean(1, keepdim=True).sqrt()
            torch.testing.assert_close(after[:, cold], expected)
    # A grid of weights scored together equals each scorer alone; columns alone equal the full rows' columns.
    grid = [blended, *(blended.with_cold(content, w) for w in (0.25, 0.5, 1.0))]
    for got, scorer in zip(score_variants(grid, users, users), grid):
        torch.testing.assert_close(got, scorer.scores(users, users))
    columns = torch.as_tensor([[0, 1, 4], [9, 6, 2]]).repeat(4, 1)
    chosen = base.with_cold(content, 0.5)  # no blend: the cold reordering alone still reads whole rows
    torch.testing.assert_close(chosen.scores_at(users, users, columns), chosen.scores(users, users).gather(1, columns))


def test_the_cold_reordering_leaves_rows_without_content_and_needs_two_cold_items():
    base, _, content = _with_cold_items(np.random.default_rng(2), [3, 5])
    users = torch.tensor([0, 1, 2])  # profile row 0 holds nothing: no content to go by
    content.interactions = content.interactions.tolil()
    content.interactions[0, :] = 0
    content.interactions = content.interactions.tocsr()
    before, after = base.scores(users, users), base.with_cold(content, 1.0).scores(users, users)
    assert torch.equal(after[0], before[0])
    assert torch.equal(after[1:, [3, 5]].argsort(1), content.scores(users[1:])[:, [3, 5]].argsort(1))
    _, _, one = _with_cold_items(np.random.default_rng(2), [3])
    assert not base.with_cold(one, 1.0).reorders_cold
    keep, added = scoring.reorder_cold(torch.ones(2, 3), torch.tensor([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]), 0.5)
    tied = keep * torch.ones(2, 3) + added  # cold items tied everywhere: ordered by content, within a tiny spread
    assert tied[0].argsort().tolist() == [0, 1, 2] and float(tied[0].max() - tied[0].min()) < 1e-5
    assert torch.equal(tied[1], torch.ones(3))


def test_the_cold_shift_moves_the_cold_items_by_the_users_spread_everywhere_scores_are_read():
    cold = [1, 4, 6, 9]
    base, item_item, content = _with_cold_items(np.random.default_rng(3), cold)
    columns = torch.as_tensor(cold)
    users = torch.arange(1, 9)
    for scorer in (base, base.with_item_item(item_item, 0.5).with_cold(content, 0.5)):
        before = scorer.scores(users, users)
        shifted = scorer.with_cold_shift(columns, 1.5)
        assert shifted.shifts_cold and not scorer.with_cold_shift(columns, 0.0).shifts_cold
        after = shifted.scores(users, users)
        warm = [j for j in range(base.n_items) if j not in cold]
        assert torch.equal(after[:, warm], before[:, warm])
        spread = before.std(dim=1, keepdim=True)  # of the row the shift reads: after the cold items' reordering
        torch.testing.assert_close(after[:, cold], before[:, cold] + 1.5 * spread)
        # Columns alone, a grid scored together and the explanation parts all read the shifted scores.
        picked = torch.as_tensor([[0, 1, 4], [9, 6, 2]]).repeat(4, 1)
        torch.testing.assert_close(shifted.scores_at(users, users, picked), after.gather(1, picked))
        grid = [scorer, shifted, scorer.with_cold_shift(columns, -1.0)]
        for got, one in zip(score_variants(grid, users, users), grid):
            torch.testing.assert_close(got, one.scores(users, users))
        parts = shifted.shares(users, users, picked)
        torch.testing.assert_close(sum(parts.values()), after.gather(1, picked), atol=1e-4, rtol=1e-4)
        assert "cold" in parts
