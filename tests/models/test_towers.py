import pytest
import torch

from mmrec.errors import ConfigError
from mmrec.models.inputs import build_item_inputs
from mmrec.models.towers import ItemTower, ModelDims, UserTower
from mmrec.models.two_tower import TwoTowerModel
from mmrec.settings import ModelSettings

DIMS = ModelDims(n_user_ids=6, n_item_ids=9, vision_dim=5, text_dim=7, numeric_dim=3)


def settings(**overrides) -> ModelSettings:
    values = dict(embedding_dim=8, num_heads=2, num_layers=1, dropout=0.0, user_history_length=3)
    values.update(overrides)
    return ModelSettings(**values)


def catalogue(n: int = 9, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    vision_mask = torch.ones(n, dtype=torch.bool)
    vision_mask[::3] = False
    return build_item_inputs(torch.arange(n).numpy() % DIMS.n_item_ids, torch.randn(n, 5, generator=g), vision_mask,
                             torch.randn(n, 7, generator=g), torch.ones(n, dtype=torch.bool),
                             torch.randn(n, 3, generator=g).numpy())


@pytest.mark.parametrize("fusion", ["attention", "concat", "sum"])
def test_item_tower_shapes_and_exact_token_decomposition(fusion):
    torch.manual_seed(0)
    tower = ItemTower(settings(fusion=fusion), DIMS).eval()
    inputs = catalogue()
    vectors = tower(inputs)
    assert vectors.shape == (9, 8) and torch.isfinite(vectors).all()
    parts, bias = tower.token_parts(inputs)
    assert parts.shape == (9, 4, 8)
    torch.testing.assert_close(parts.sum(1) + bias, vectors)


@pytest.mark.parametrize("fusion", ["attention", "concat", "sum"])
def test_missing_modality_is_masked_out(fusion):
    torch.manual_seed(0)
    tower = ItemTower(settings(fusion=fusion), DIMS).eval()
    inputs = catalogue()
    changed = catalogue()
    changed.vision[0] = 100.0  # item 0 has no image: its vision values must not matter
    changed.vision[1] = 100.0  # item 1 has one: they must
    before, after = tower(inputs), tower(changed)
    torch.testing.assert_close(before[0], after[0])
    assert not torch.allclose(before[1], after[1])


def test_features_are_l2_normalized_and_masks_follow_inputs():
    inputs = catalogue()
    torch.testing.assert_close(inputs.vision.norm(dim=1), torch.ones(9))
    assert inputs.vision_mask.tolist() == [False, True, True] * 3


def test_modalities_can_be_switched_off_and_all_off_is_an_error():
    tower = ItemTower(settings(use_vision=False, use_numeric=False), DIMS)
    assert tower.modalities == ["id", "text"]
    assert ItemTower(settings(use_id_embeddings=False), DIMS).modalities == ["vision", "text", "numeric"]
    with pytest.raises(ConfigError):
        ItemTower(settings(use_id_embeddings=False, use_vision=False, use_text=False, use_numeric=False), DIMS)


def test_item_with_no_enabled_modality_still_gets_a_finite_vector():
    tower = ItemTower(settings(use_id_embeddings=False, use_text=False, use_numeric=False), DIMS).eval()
    inputs = catalogue()
    assert torch.isfinite(tower(inputs)).all()  # items 0, 3, 6 lack their only modality


def test_user_tower_handles_empty_histories_and_uses_history():
    torch.manual_seed(0)
    tower = UserTower(settings(), DIMS).eval()
    table = torch.randn(6, 8)
    rows = torch.tensor([[0, 1, 2], [3, 4, 5]])
    empty = torch.zeros(2, 3, dtype=torch.bool)
    with_none = tower(torch.tensor([1, 1]), table, rows, empty)
    torch.testing.assert_close(with_none, tower(torch.tensor([1, 1])))  # no history = id only, no NaN
    full = tower(torch.tensor([0, 0]), table, rows, torch.ones(2, 3, dtype=torch.bool))
    assert not torch.allclose(full[0], full[1])  # unknown users told apart by their histories


def test_without_user_ids_users_are_their_history_alone():
    torch.manual_seed(0)
    tower = UserTower(settings(user_ids=False), DIMS).eval()
    assert tower.id_embedding.num_embeddings == 1  # no per-user parameters
    table = torch.randn(6, 8)
    rows = torch.tensor([[0, 1, 2], [0, 1, 2], [3, 4, 5]])
    mask = torch.ones(3, 3, dtype=torch.bool)
    out = tower(torch.tensor([1, 7, 1]), table, rows, mask)
    torch.testing.assert_close(out[0], out[1])  # same history, different users: same vector
    assert not torch.allclose(out[0], out[2])
    with pytest.raises(ValueError, match="user_history_length"):
        settings(user_ids=False, user_history_length=0)


def test_user_tower_attention_is_multihead_attention_over_the_gathered_history():
    """Keys/values folded into the query and the pooled history == nn.MultiheadAttention over the [b, L, d]
    history, biases included (the key bias only shifts a user's logits by a constant)."""
    torch.manual_seed(0)
    tower = UserTower(settings(), DIMS).eval()
    with torch.no_grad():
        tower.attention.in_proj_bias.normal_()
        tower.attention.out_proj.bias.normal_()
    table = torch.randn(5, 8)
    rows = torch.tensor([[0, 3, 3, 1], [4, 4, 2, 0], [2, 0, 0, 0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True], [False, False, False, False]])
    user_idx = torch.tensor([1, 2, 0])
    base = tower.id_embedding(user_idx)
    keys = tower.history_norm(table[rows] * mask.unsqueeze(-1))
    padding = ~mask
    padding[2, 0] = False  # the all-empty row attends to a dummy slot, then is zeroed
    attended, _ = tower.attention((base + tower.query).unsqueeze(1), keys, keys, key_padding_mask=padding,
                                  need_weights=False)
    expected = base + attended.squeeze(1) * torch.tensor([1.0, 1.0, 0.0]).unsqueeze(1)
    torch.testing.assert_close(tower(user_idx, table, rows, mask), tower.output(expected))


def test_id_dropout_only_in_training_and_cold_items_differ_from_known():
    torch.manual_seed(0)
    model = TwoTowerModel(settings(id_dropout=1.0), DIMS)
    inputs = catalogue()
    users = torch.tensor([1, 2])
    history = torch.full((2, 3), -1)
    model.train()
    dropped = model(users, history, torch.tensor([4, 5]), inputs).items
    cold = model.item_tower(inputs.take(torch.tensor([4, 5])).with_ids(torch.zeros(2, dtype=torch.long)))
    torch.testing.assert_close(dropped, cold)
    model.eval()
    known = model(users, history, torch.tensor([4, 5]), inputs).items
    assert not torch.allclose(known, cold)


def history_model(history_item_embeddings: bool) -> TwoTowerModel:
    torch.manual_seed(0)
    model = TwoTowerModel(settings(id_dropout=0.0, history_item_embeddings=history_item_embeddings), DIMS).eval()
    if history_item_embeddings:  # as after training (they start at zero)
        torch.nn.init.normal_(model.user_tower.history_embedding.weight)
    return model


@pytest.mark.parametrize("history_item_embeddings", [False, True])
def test_forward_encodes_history_and_items_consistently_with_inference_path(history_item_embeddings):
    model = history_model(history_item_embeddings)
    inputs = catalogue()
    # The third user has no history: its padding must not lend an id to an item another user holds.
    users = torch.tensor([1, 0, 2])
    history = torch.tensor([[2, 3, -1], [-1, -1, 7], [-1, -1, -1]])
    out = model(users, history, torch.tensor([5, 2, 5]), inputs)
    all_items = model.item_vectors(inputs)
    torch.testing.assert_close(out.items, all_items[[5, 2, 5]])
    torch.testing.assert_close(out.users, model.user_vectors(users, history, all_items, inputs))


def test_cosine_scores_are_bounded_by_inverse_temperature():
    model = TwoTowerModel(settings(score="cosine", temperature=0.5), DIMS)
    scores = model.scores(torch.randn(3, 8), torch.randn(4, 8))
    assert scores.shape == (3, 4) and scores.abs().max() <= 2.0 + 1e-5


def test_contrastive_projections_only_for_items_with_both_modalities():
    model = TwoTowerModel(settings(use_contrastive=True), DIMS).eval()
    out = model(torch.tensor([1]), torch.full((1, 3), -1), torch.tensor([0, 1, 2]), catalogue())
    assert out.vision.shape == (2, 8) and out.text.shape == (2, 8)  # item 0 has no image
    # A batch's repeated positives are one pair each: copies would be InfoNCE negatives of their own text.
    repeated = model(torch.tensor([1, 0, 1]), torch.full((3, 3), -1), torch.tensor([1, 2, 1, 2, 1]), catalogue())
    assert repeated.vision.shape == (2, 8) and repeated.text.shape == (2, 8)


@pytest.mark.parametrize("history_item_embeddings", [False, True])
def test_forward_with_a_detached_history_table_matches_the_inference_path(history_item_embeddings):
    model = history_model(history_item_embeddings)
    inputs = catalogue()
    users = torch.tensor([1, 0])
    history = torch.tensor([[2, 3, -1], [-1, -1, 7]])
    table = model.item_vectors(inputs)
    out = model(users, history, torch.tensor([5, 2]), inputs, table)
    torch.testing.assert_close(out.items, table[[5, 2]])
    torch.testing.assert_close(out.users, model.user_vectors(users, history, table, inputs))
    # History reads the table, not the current tower: a different table changes the users only.
    shifted = model(users, history, torch.tensor([5, 2]), inputs, table.flip(0))
    torch.testing.assert_close(shifted.items, out.items)
    assert not torch.allclose(shifted.users, out.users)


def test_history_item_embeddings_describe_users_by_their_items_ids():
    """SVD++'s implicit factors: a history item's embedding (by item id) moves the user vector and is
    trained through the user tower, even when history reads a detached table."""
    model = history_model(True).train()
    inputs = catalogue()
    users, history = torch.tensor([1, 2]), torch.tensor([[2, 3, -1], [-1, -1, 7]])
    table = model.item_vectors(inputs)
    out = model(users, history, torch.tensor([5, 2]), inputs, table)
    out.users.sum().backward()
    grad = model.user_tower.history_embedding.weight.grad
    touched = set(torch.nonzero(grad.abs().sum(1)).flatten().tolist())
    assert touched == set(inputs.ids[[2, 3, 7]].tolist())  # the history items' ids, nothing else
    model.eval()
    before = model.user_vectors(users, history, table, inputs)
    with torch.no_grad():
        model.user_tower.history_embedding.weight[inputs.ids[7]] += torch.randn(8)  # (LayerNorm ignores a shift)
    after = model.user_vectors(users, history, table, inputs)
    torch.testing.assert_close(after[0], before[0])  # user 0 does not hold item 7
    assert not torch.allclose(after[1], before[1])
