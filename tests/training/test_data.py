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
    assert data.skipped == {"train_interactions_on_items_not_in_catalogue": 1, "val_interactions_on_items_not_in_catalogue": 1,
                            "val_users_unseen_in_train": 1, "val_users_sampled_out": 0, "val_pairs_seen_in_train": 0}
    assert data.pairs.shape == (4, 2)
    assert data.item_counts.tolist() == [0, 2, 1, 1]
    assert data.val_users.tolist() == [1, 0]  # a known, c unseen (b's only val item is unknown)
    assert data.val_relevant.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]
    assert data.val_exclude.toarray().tolist() == [[0, 1, 1, 1], [0, 0, 0, 0]]
    assert np.array_equal(data.histories[1].numpy(), [2, 3, 1])


def test_validation_users_beyond_the_cap_are_sampled_with_a_seed_and_counted():
    rng = np.random.default_rng(0)
    users_list = [f"u{i}" for i in range(50)]
    train = pd.DataFrame({"user_id": users_list * 2, "item_id": rng.choice(["x", "y", "z"], 100).tolist()})
    val = pd.DataFrame({"user_id": users_list + users_list[:10], "item_id": ["w"] * 50 + ["x"] * 10})
    users = IdEncoder.fit(train["user_id"])
    data = build_training_data(train, val, ["w", "x", "y", "z"], users, history_length=2, max_val_users=20, seed=3)
    assert data.skipped["val_users_sampled_out"] == 30 and len(data.val_users) == 20
    kept = [users.ids[i - 1] for i in data.val_users.tolist()]  # index 0 = unknown
    assert len(set(kept)) == 20
    # Each kept user keeps her validation items (those she does not have in train) and her train items as exclusions.
    for row, user in enumerate(kept):
        has_x = ((train.user_id == user) & (train.item_id == "x")).any()
        expected = {"w"} | ({"x"} if user in users_list[:10] and not has_x else set())
        got = {["w", "x", "y", "z"][j] for j in data.val_relevant[row].indices}
        assert got == expected
        assert data.val_exclude[row].nnz == len(set(train.loc[train.user_id == user, "item_id"]))
    again = build_training_data(train, val, ["w", "x", "y", "z"], users, history_length=2, max_val_users=20, seed=3)
    assert again.val_users.tolist() == data.val_users.tolist()
    everyone = build_training_data(train, val, ["w", "x", "y", "z"], users, history_length=2)
    assert len(everyone.val_users) == 50 and everyone.skipped["val_users_sampled_out"] == 0


def test_validation_users_shrink_with_the_catalogue_but_not_below_the_floor():
    from mmrec.settings import MIN_VALIDATION_USERS, TrainingSettings

    cfg = TrainingSettings()  # 20,000 users, 2e9 cells
    assert cfg.validation_user_cap(2_000) == 20_000
    assert cfg.validation_user_cap(200_000) == 10_000
    assert cfg.validation_user_cap(10_000_000) == MIN_VALIDATION_USERS
    assert TrainingSettings(max_validation_users=None, max_validation_cells=None).validation_user_cap(10**6) is None
    assert TrainingSettings(max_validation_users=None).validation_user_cap(400_000) == 5_000


def test_a_validation_pair_the_user_has_in_train_is_not_a_positive():
    train, val = frames()
    val = pd.concat([val, pd.DataFrame({"user_id": ["a"], "item_id": ["y"]})], ignore_index=True)  # a has y
    data = build_training_data(train, val, ["w", "x", "y", "z"], IdEncoder.fit(train["user_id"]), history_length=3)
    assert data.skipped["val_pairs_seen_in_train"] == 1
    assert data.val_relevant.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]  # as without that row
    assert data.val_exclude.toarray().tolist() == [[0, 1, 1, 1], [0, 0, 0, 0]]
