"""The neighbourhood item-item solver: exact EASE when every item is a neighbour, sparse and bounded otherwise."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.models.item_item import ItemItemModel, item_item_neighbours
from mmrec.models.item_neighbourhood import fit_neighbourhood_weights
from mmrec.settings import ModelSettings


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
