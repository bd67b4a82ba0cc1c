import numpy as np
import pandas as pd
import torch

from mmrec.models.catalogue import fit_numeric_scaler, informative_columns, numeric_values, unseen_numeric


def test_unseen_numeric_is_the_scaled_zero_count_and_nan_for_content_columns():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "year": [1990.0, 2000.0, 2010.0]})
    train = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "a"]})
    scaler = fit_numeric_scaler(items, ["year"], train)
    scaled = scaler.transform(numeric_values(items, ["year"], train))
    unseen = unseen_numeric(scaler, 2)
    assert torch.isnan(unseen[0])
    assert unseen[1].item() == float(scaled[2, 1])  # item c has no train interaction
    assert unseen_numeric(scaler, 0).shape == (0,)
    assert not np.isnan(scaled).any()



def test_an_all_nan_column_is_left_out_of_the_inputs():
    items = pd.DataFrame({"item_id": ["a", "b"], "year": [1990.0, 2000.0], "shares": [np.nan, np.nan]})
    train = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    columns = informative_columns(items, ["year", "shares"])
    assert columns == ["year"]
    values = numeric_values(items, columns, train)
    assert values.tolist() == [[1990.0, 1.0], [2000.0, 0.0]]  # year, then the train count


def test_a_column_preprocess_left_out_trains_and_recommends_on_the_same_data(tmp_path, one_torch_thread):
    from tiny_project import write_tiny_project

    from mmrec.checkpoints.store import read_meta
    from mmrec.data.splits import load_split
    from mmrec.data.tables import load_items, save_interactions, save_items
    from mmrec.pipeline.recommend import run_recommend
    from mmrec.pipeline.train import run_train
    from mmrec.settings import load_settings

    config = write_tiny_project(tmp_path, epochs=1, item_item=False, sequence_blend=False)
    items = load_items(tmp_path / "processed").assign(shares=np.nan, image_path=None)
    save_items(items, tmp_path / "processed")
    settings = load_settings(config, {"data.numerical_features_cols": ["view_number", "shares", "comment_number"],
                                      "inference.top_k": 3}).settings
    result = run_train(settings)
    split = load_split(tmp_path / "splits")
    save_interactions(pd.concat([split.train, split.val, split.test], ignore_index=True), tmp_path / "processed")
    numeric = read_meta(result.best_path)["numeric"]
    assert len(numeric["scaler"]["mean"]) == 3  # view_number, comment_number, the train count
    recommended = run_recommend(settings, users=["u0"])
    assert len(recommended.users[0].items) == 3 and not recommended.users[0].fallback
