import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmrec.models import item_item
from mmrec.models.item_item import ItemItemModel, interaction_csr, profile_sums, sparse_enough, standardize


def ease_reference(x: np.ndarray, l2: float) -> np.ndarray:
    """EASE as in Steck (2019), Algorithm 1, in numpy."""
    g = x.T @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0.0)
    return b


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    x[:, 11] = 0.0  # item 11 is cold: no interactions
    users, items = np.nonzero(x)
    features = torch.as_tensor(rng.normal(size=(12, 5)), dtype=torch.float32)
    mask = torch.ones(12, dtype=torch.bool)
    mask[3] = False  # item 3 has no features
    return x, interaction_csr(users, items, 40, 12), features, mask


def test_without_content_it_is_ease(data):
    x, matrix, _, _ = data
    model = ItemItemModel.fit(matrix, [], l2=5.0, content_weight=0.0)
    np.testing.assert_allclose(model.weights.numpy(), ease_reference(x, 5.0), rtol=1e-4, atol=1e-6)
    assert torch.all(model.weights.diagonal() == 0)
    torch.testing.assert_close(model.scores(np.arange(40)), torch.as_tensor(x, dtype=torch.float32) @ model.weights)
    # A cold item has no co-occurrences: nothing predicts it and it predicts nothing.
    assert torch.all(model.weights[:, 11] == 0) and torch.all(model.weights[11] == 0)


def test_content_side_information_is_ease_on_feature_pseudo_users(data):
    """alpha * F F^T in the Gram matrix == EASE on X stacked with sqrt(alpha) * F^T as extra rows."""
    x, matrix, features, mask = data
    alpha = 3.0
    model = ItemItemModel.fit(matrix, [(features, mask)], l2=5.0, content_weight=alpha)
    f = features.double().numpy()
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    f[mask.numpy()] -= f[mask.numpy()].mean(axis=0)
    f[~mask.numpy()] = 0.0
    stacked = np.vstack([x, np.sqrt(alpha) * f.T])
    np.testing.assert_allclose(model.weights.numpy(), ease_reference(stacked, 5.0), rtol=1e-4, atol=1e-6)
    # Content ties the cold item to items that look alike: it can now be recommended.
    assert model.weights[:, 11].abs().sum() > 0
    # An item without features gets no content ties: as cold as without content.
    assert model.weights[:, 3].abs().sum() > 0  # it has interactions


def test_the_lambda_path_gives_each_lambdas_fit_from_one_gram(data, monkeypatch):
    """fit_l2_path shares G without lambda between the lambdas, and each fit equals `fit`'s (bit for bit:
    the same products and the same factorization); the shared Gram matrix is left as it was."""
    from mmrec.models import item_item

    _, matrix, features, mask = data
    content = [(features, mask)]
    grams = []
    real_gram = item_item.dense_gram
    monkeypatch.setattr(item_item, "dense_gram", lambda *a, **k: grams.append(real_gram(*a, **k)) or grams[-1])
    path = list(ItemItemModel.fit_l2_path(matrix, content, [5.0, 2.5, 20.0], content_weight=3.0))
    monkeypatch.undo()
    assert len(grams) == 1
    torch.testing.assert_close(grams[0], real_gram(matrix, item_item._content_matrices(content, 3.0, "cpu",
                                                                                     torch.float64), 3.0, "cpu"),
                               rtol=0, atol=0)
    for l2, model in zip([5.0, 2.5, 20.0], path):
        single = ItemItemModel.fit(matrix, content, l2=l2, content_weight=3.0)
        assert torch.equal(model.weights, single.weights) and model.weights.dtype == torch.float32
        assert (model.interactions != matrix).nnz == 0


def test_duplicates_count_once_and_recency_weights():
    matrix = interaction_csr(np.array([0, 0, 1]), np.array([2, 2, 1]), 2, 3)
    assert matrix.toarray().tolist() == [[0, 0, 1], [0, 1, 0]]
    assert isinstance(matrix, sp.csr_matrix)
    # Oldest first: user 0 saw items 0, 1, 0 (again), 2 -> ages item 2: 0, item 0: 1, item 1: 2.
    decayed = interaction_csr(np.array([0, 0, 0, 0, 1]), np.array([0, 1, 0, 2, 1]), 2, 3, halflife=1.0)
    np.testing.assert_allclose(decayed.toarray(), [[0.5, 0.25, 1.0], [0.0, 1.0, 0.0]])


def test_gram_uses_the_binary_pattern_of_decayed_profiles(data):
    x, _, _, _ = data
    users, items = np.nonzero(x)
    decayed = interaction_csr(users, items, 40, 12, halflife=2.0)
    model = ItemItemModel.fit(decayed, [], l2=5.0, content_weight=0.0)
    np.testing.assert_allclose(model.weights.numpy(), ease_reference(x, 5.0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(model.scores([0]), torch.as_tensor(decayed[0].toarray()) @ model.weights)


def test_standardize():
    neural = torch.tensor([[3.0, 1.0, 2.0], [5.0, 5.0, 5.0]])
    z = standardize(neural)
    torch.testing.assert_close(z[0].mean(), torch.tensor(0.0))
    torch.testing.assert_close(z[0].std(), torch.tensor(1.0))
    assert torch.all(z[1] == 0)  # a constant row carries no preference
    wide = torch.randn(4, 5000, generator=torch.Generator().manual_seed(0)) * 7 + 3
    std, mean = torch.std_mean(wide, dim=1, keepdim=True)
    torch.testing.assert_close(standardize(wide), (wide - mean) / std)
    original = wide.clone()
    assert standardize(wide) is not wide and torch.equal(wide, original)  # a copy unless inplace
    assert standardize(wide, inplace=True) is wide and not torch.equal(wide, original)
    assert torch.all(standardize(torch.ones(2, 1)) == 0)  # one item: nothing to prefer, no NaN


def test_scores_stay_float32_under_autocast(data):
    _, matrix, _, _ = data
    model = ItemItemModel.fit(matrix, [], l2=5.0, content_weight=0.0)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        scores = model.scores(np.arange(4))
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, model.scores(np.arange(4)))


def test_profile_sums_equal_the_dense_product_without_building_it():
    """The teacher's scores off the CPU: x_u @ B[:, candidates] from the profiles' CSR arrays (weighted
    rows, repeated and empty users included) equals the dense product."""
    rng = np.random.default_rng(0)
    profiles = sp.random(6, 9, density=0.4, format="csr", random_state=1, dtype=np.float32)
    profiles.data[profiles.indptr[2]:profiles.indptr[3]] = 0  # a user with no items
    profiles.eliminate_zeros()
    columns = torch.from_numpy(rng.standard_normal((9, 4)).astype(np.float32))
    arrays = [torch.from_numpy(a) for a in (profiles.indptr.astype(np.int64), profiles.indices.astype(np.int64),
                                            profiles.data)]
    for users in (torch.tensor([0, 2, 5, 0, 3]), torch.tensor([2, 2])):
        expected = torch.from_numpy(profiles[users.numpy()].toarray()) @ columns
        torch.testing.assert_close(profile_sums(*arrays, users, columns), expected)


def test_sparse_and_dense_profile_products_score_alike(data, monkeypatch):
    """On the CPU a chunk of sparse profiles is multiplied as scipy CSR, a denser one as a dense product:
    both give x_u B, for every column or some, with recency-weighted profiles too."""
    x, matrix, features, mask = data
    model = ItemItemModel.fit(matrix, [(features, mask)], l2=5.0, content_weight=0.5)
    decayed = model.with_profiles(interaction_csr(*np.nonzero(x), 40, 12, halflife=2.0))
    columns = torch.tensor([7, 0, 11, 3])
    for scorer in (model, decayed):
        expected = torch.as_tensor(scorer.interactions.toarray(), dtype=torch.float32) @ model.weights
        for density, sparse in ((0.0, False), (1.0, True)):
            monkeypatch.setattr(item_item, "SPARSE_SCORING_DENSITY", density)
            assert sparse_enough(scorer.interactions) is sparse
            torch.testing.assert_close(scorer.scores(np.arange(40)), expected)
            torch.testing.assert_close(scorer.scores(np.array([5, 1, 5]), columns), expected[[5, 1, 5]][:, columns])
