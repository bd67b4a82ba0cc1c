import numpy as np
import torch

from mmrec.models.inputs import build_item_inputs
from mmrec.models.towers import ModelDims
from mmrec.models.two_tower import TwoTowerModel
from mmrec.settings import ModelSettings


def inputs_with_unseen():
    numeric = np.array([[0.5, 2.0], [1.5, 3.0], [-0.5, 1.0]], dtype=np.float32)
    inputs = build_item_inputs(np.array([1, 2, 3]), np.ones((3, 4)), np.ones(3, bool), np.ones((3, 5)),
                               np.ones(3, bool), numeric)
    inputs.numeric_unseen = torch.tensor([float("nan"), -9.0])  # column 0 = content, column 1 = a count
    return inputs


def test_as_unseen_replaces_only_interaction_columns_of_the_chosen_rows():
    inputs = inputs_with_unseen()
    out = inputs.as_unseen(torch.tensor([True, False, True]))
    torch.testing.assert_close(out.numeric, torch.tensor([[0.5, -9.0], [1.5, 3.0], [-0.5, -9.0]]))
    assert inputs.take(torch.tensor([2])).numeric_unseen is inputs.numeric_unseen
    assert inputs.with_ids(torch.zeros(3, dtype=torch.long)).numeric_unseen is inputs.numeric_unseen


def test_without_unseen_values_as_unseen_is_a_no_op():
    inputs = inputs_with_unseen()
    inputs.numeric_unseen = None
    assert inputs.as_unseen(torch.ones(3, dtype=torch.bool)) is inputs


def test_id_dropped_training_items_look_exactly_like_cold_items():
    torch.manual_seed(0)
    cfg = ModelSettings(embedding_dim=8, num_heads=2, dropout=0.0, id_dropout=1.0, user_history_length=0)
    model = TwoTowerModel(cfg, ModelDims(n_user_ids=3, n_item_ids=4, vision_dim=4, text_dim=5, numeric_dim=2))
    inputs = inputs_with_unseen()
    dropped = model.train()(torch.tensor([1]), torch.zeros(1, 0, dtype=torch.long), torch.tensor([0, 1]), inputs)
    cold = inputs.take(torch.tensor([0, 1])).with_ids(torch.zeros(2, dtype=torch.long))
    cold = cold.as_unseen(torch.ones(2, dtype=torch.bool))
    torch.testing.assert_close(dropped.items, model.item_tower(cold))
