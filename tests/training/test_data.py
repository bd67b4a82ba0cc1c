import numpy as np
import pandas as pd

from mmrec.data.encoders import IdEncoder
from mmrec.training.data import build_training_data


def frames():
    train = pd.DataFrame({"user_id": ["a", "a", "a", "b", "a"], "item_id": ["x", "y", "z", "x", "gone"],
                          "timestamp": [3, 1, 2, 5, 4]})
    val = pd.DataFrame({"user_id": ["a", "c", "b"], "item_id": ["w", "x", "nope"]})
    return train, val


def test_training_data_counts_what_it_skips_and_masks_train_items():
    train, val = frames()
    users = IdEncoder.fit(train["user_id"])
    data = build_training_data(train, val, ["w", "x", "y", "z"], users, history_length=3)
    assert data.skipped == {"train_items_not_in_catalogue": 1, "val_items_not_in_catalogue": 1,
                            "val_users_unseen_in_train": 1}
    assert data.pairs.shape == (4, 2)
    assert data.item_counts.tolist() == [0, 2, 1, 1]
    assert data.val_users.tolist() == [1, 0]  # a known, c unseen (b's only val item is unknown)
    assert data.val_relevant.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]
    assert data.val_exclude.toarray().tolist() == [[0, 1, 1, 1], [0, 0, 0, 0]]
    assert np.array_equal(data.histories[1].numpy(), [2, 3, 1])
