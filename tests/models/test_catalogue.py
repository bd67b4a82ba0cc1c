import numpy as np
import pandas as pd
import torch

from mmrec.models.catalogue import fit_numeric_scaler, numeric_values, unseen_numeric


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
