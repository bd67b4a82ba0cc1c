"""The neighbourhood item-item solver: exact EASE when every item is a neighbour, sparse and bounded otherwise."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.models.item_item import ItemItemModel, _content_matrix, item_item_neighbours, item_item_search
from mmrec.models.item_neighbourhood import content_factor, fit_neighbourhood_path, ivf_groups
from mmrec.settings import ModelSettings


def fit_neighbourhood_weights(x, content, l2, *args, **kwargs):
    """One lambda's B^T."""
    return fit_neighbourhood_path(x, content, [l2], *args, **kwargs)[0]


def _data(n_users: int = 40, n_items: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))
    content = [(torch.randn(n_items, 3, generator=torch.Generator().manual_seed(seed)), torch.ones(n_items, dtype=torch.bool)),
               (torch.randn(n_items, 2, generator=torch.Generator().manual_seed(seed + 1)),
                torch.tensor([True] * (n_items - 2) + [False, False]))]
    return x, content


def test_all_neighbours_full_ranks_reproduce_dense_ease():
    x, content = _data()
    n = x.shape[1]
    dense = ItemItemModel.fit(x, content, l2=5.0, content_weight=2.0)
    sparse = ItemItemModel.fit(x, content, l2=5.0, content_weight=2.0, neighbours=n - 1)
    assert sparse.is_sparse and not dense.is_sparse
    # Full ranks: the local systems are the exact G_{-j,-j}, so every column is EASE's.
    from mmrec.models.item_item import _content_matrix

    matrices = [_content_matrix(f, m, torch.float32) for f, m in content]
    exact = fit_neighbourhood_weights(x, matrices, 5.0, 2.0, n - 1, content_rank=64, gram_rank=n)
    torch.testing.assert_close(exact.to_dense().T, dense.weights, atol=2e-4, rtol=1e-3)
    rows = np.arange(x.shape[0])
    assert torch.allclose(sparse.scores(rows), dense.scores(rows), atol=0.05)


def test_k_neighbours_gives_k_weights_per_item_and_consistent_scores():
    x, content = _data(n_items=30)
    model = ItemItemModel.fit(x, content, l2=5.0, content_weight=2.0, neighbours=4)
    bt = model.weights
    counts = bt.crow_indices().diff()
    assert torch.equal(counts, torch.full((30,), 4))
    assert not torch.any(bt.col_indices().view(30, 4) == torch.arange(30).unsqueeze(1))  # never its own neighbour
    b = bt.to_dense().T  # B [source, target]
    rows = np.array([0, 3, 7])
    expected = torch.as_tensor(x[rows].toarray()) @ b
    torch.testing.assert_close(model.scores(rows), expected)
    columns = torch.tensor([4, 0, 29, 4])  # the distillation teacher's candidates: some columns, repeats allowed
    torch.testing.assert_close(model.scores(rows, columns), expected[:, columns])
    sources, targets = torch.tensor([1, 5, 9]), torch.tensor([2, 0])
    torch.testing.assert_close(model.pair_weights(sources, targets), b[sources][:, targets])


def test_neighbourhood_fit_is_reproducible_and_leaves_global_rng_alone():
    x, content = _data(n_users=60, n_items=40)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = ItemItemModel.fit(x, content, l2=5.0, content_weight=2.0, neighbours=8).weights
    assert torch.equal(torch.random.get_rng_state(), before)
    second = ItemItemModel.fit(x, content, l2=5.0, content_weight=2.0, neighbours=8).weights
    assert torch.equal(first.values(), second.values())


def test_auto_solver_switches_on_catalogue_size():
    cfg = ModelSettings(item_item_dense_max_items=100, item_item_neighbours=32)
    assert item_item_neighbours(cfg, 100) is None
    assert item_item_neighbours(cfg, 101) == 32
    assert item_item_neighbours(cfg.model_copy(update={"item_item_solver": "dense"}), 10**6) is None
    assert item_item_neighbours(cfg.model_copy(update={"item_item_solver": "neighbourhood"}), 50) == 32


def _clustered(n_items: int = 400, n_users: int = 150, seed: int = 0):
    """Sparse co-occurrence (many items share no user) and content in 12 clusters, plus 5 items without content."""
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix((rng.random((n_users, n_items)) < 0.02).astype(np.float32))
    centres = rng.normal(size=(12, 16))
    features = centres[rng.integers(0, 12, n_items)] + 0.5 * rng.normal(size=(n_items, 16))
    mask = torch.ones(n_items, dtype=torch.bool)
    mask[:5] = False
    return x, [_content_matrix(torch.as_tensor(features, dtype=torch.float32), mask, torch.float32)]


def _supports(weights: torch.Tensor) -> np.ndarray:
    n = weights.shape[0]
    return weights.col_indices().view(n, -1).numpy()


def test_ivf_search_keeps_every_co_occurring_neighbour_and_most_content_ones():
    x, content = _clustered()
    exact = fit_neighbourhood_weights(x, content, 5.0, 2.0, 16, search="exact")
    ivf = fit_neighbourhood_weights(x, content, 5.0, 2.0, 16, search="ivf")
    assert torch.equal(ivf.crow_indices(), exact.crow_indices())
    binary = x.copy()
    binary.data[:] = 1
    cooc = (binary.T @ binary).tocsr()
    found = []
    for item, (want, got) in enumerate(zip(_supports(exact), _supports(ivf))):
        co_occurring = set(cooc[item].indices) - {item}
        if item >= 5:  # (items 0-4 have no content: their G are whole counts, full of ties)
            assert set(want) & co_occurring <= set(got)  # co-occurring items are searched exactly
        assert item not in got
        found.append(len(set(want) & set(got)) / len(want))
    assert np.mean(found) > 0.9  # content-only neighbours: most are in the nearest clusters
    again = fit_neighbourhood_weights(x, content, 5.0, 2.0, 16, search="ivf")
    assert torch.equal(again.values(), ivf.values()) and torch.equal(again.col_indices(), ivf.col_indices())


def test_ivf_search_with_every_item_a_neighbour_or_without_content_is_exact():
    for k, (x, matrices), weight in ((59, _clustered(n_items=60, n_users=80), 2.0), (4, (_data(40, 30)[0], []), 0.0)):
        exact = fit_neighbourhood_weights(x, matrices, 5.0, weight, k, search="exact")
        ivf = fit_neighbourhood_weights(x, matrices, 5.0, weight, k, search="ivf")
        binary = x.copy()
        binary.data[:] = 1
        gram = torch.as_tensor((binary.T @ binary).toarray())  # without content G is the co-occurrence count
        for item, (want, got) in enumerate(zip(_supports(exact), _supports(ivf))):
            # the same k largest G (sets may differ only among items tied at the k-th value)
            assert sorted(gram[item, want].tolist()) == sorted(gram[item, got].tolist())
        if matrices:  # every item a neighbour: no choice to make, the same weights
            torch.testing.assert_close(ivf.to_dense(), exact.to_dense(), atol=1e-5, rtol=1e-4)


def test_ivf_groups_cover_every_item_once_and_content_less_items_search_no_cluster():
    _, content = _clustered(n_items=300)
    groups = ivf_groups(content[0], probes=3)
    queries = np.concatenate([q for q, _ in groups])
    assert sorted(queries.tolist()) == list(range(300))
    empty = [q for q, probe in groups if len(probe) == 0]
    assert len(empty) == 1 and sorted(empty[0].tolist()) == [0, 1, 2, 3, 4]
    for q, probe in groups:
        assert len(probe) == 0 or set(q) <= set(probe)  # a cluster searches itself


def test_auto_search_switches_on_catalogue_size():
    cfg = ModelSettings(item_item_exact_search_max_items=1000)
    assert item_item_search(cfg, 1000) == "exact" and item_item_search(cfg, 1001) == "ivf"
    assert item_item_search(cfg.model_copy(update={"item_item_neighbour_search": "ivf"}), 10) == "ivf"
    assert item_item_search(cfg.model_copy(update={"item_item_neighbour_search": "exact"}), 10**7) == "exact"


def test_content_factor_is_the_top_eigenspace_of_the_concatenated_features():
    generator = torch.Generator().manual_seed(0)
    parts = [torch.randn(50, 7, generator=generator), torch.randn(50, 5, generator=generator)]
    stacked = torch.cat(parts, dim=1).double()
    _, vectors = torch.linalg.eigh(stacked.T @ stacked)
    reference = stacked @ vectors[:, -4:]
    factor = content_factor(parts, 4, "cpu").double()
    torch.testing.assert_close(factor @ factor.T, reference @ reference.T, atol=1e-4, rtol=1e-4)
    assert torch.equal(content_factor(parts, 12, "cpu"), torch.cat(parts, dim=1))  # rank >= width: exact


def test_the_lambda_path_solves_every_lambda_from_one_neighbour_search(monkeypatch):
    """fit_neighbourhood_path gives each lambda the B^T a fit at that lambda alone gives (same neighbours,
    same local systems), from one neighbour search; ItemItemModel.fit_l2_path solves the lambdas listed when
    it starts in that one pass and a lambda appended later in a pass of its own."""
    from mmrec.models import item_neighbourhood

    x, content = _data(n_users=60, n_items=40)
    matrices = [_content_matrix(f, m, torch.float32) for f, m in content]
    searches = []
    real = item_neighbourhood._exact_candidates
    monkeypatch.setattr(item_neighbourhood, "_exact_candidates", lambda *a: searches.append(1) or real(*a))
    path = fit_neighbourhood_path(x, matrices, [5.0, 50.0, 0.5], 2.0, 8)
    assert len(searches) == 1
    for l2, weights in zip([5.0, 50.0, 0.5], path):
        single = fit_neighbourhood_weights(x, matrices, l2, 2.0, 8)
        assert torch.equal(weights.col_indices(), single.col_indices())
        torch.testing.assert_close(weights.values(), single.values(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(path[0].values(), path[1].values())  # lambda matters

    searches.clear()
    l2s = [5.0, 50.0]
    models = ItemItemModel.fit_l2_path(x, content, l2s, 2.0, neighbours=8)
    first = next(models)
    assert len(searches) == 1
    second = next(models)
    l2s.append(0.5)  # past the edge: asked for after the first two were validated
    third = next(models)
    assert len(searches) == 2
    for l2, model in zip(l2s, [first, second, third]):
        single = ItemItemModel.fit(x, content, l2=l2, content_weight=2.0, neighbours=8)
        torch.testing.assert_close(model.weights.to_dense(), single.weights.to_dense(), rtol=1e-6, atol=1e-7)
    assert next(models, None) is None
