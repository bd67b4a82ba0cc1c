"""Item-tower inputs of a catalogue: id indices, backbone features and scaled numeric columns.

Numeric inputs = the configured columns + the item's TRAIN interaction count, log1p-standardized
with statistics fitted on items that occur in train (never val/test).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmrec.data.numeric import NumericScaler, interaction_counts
from mmrec.errors import DataError
from mmrec.models.inputs import ItemInputs, build_item_inputs

COUNT_FEATURE = "train_interactions"


def informative_columns(items: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The numeric inputs a model trains on: the configured `columns` that hold a valid value. A column
    preprocess left out (no valid value: it carries no information, and the processed table holds it all-NaN)
    is not one. Training records these names, and scoring reads exactly them (a column that gains or loses
    its values later must not shift the others under the scaler)."""
    _require(items, columns)
    return [c for c in columns if items[c].notna().any()]


def _require(items: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in items.columns]
    if missing:
        raise DataError(
            f"Numeric column(s) {', '.join(missing)} are not in the processed item table.",
            hint="Use the data.numerical_features_cols the data was preprocessed with, or re-run `mmrec preprocess`.",
        )


def numeric_values(items: pd.DataFrame, columns: Sequence[str], train: pd.DataFrame) -> np.ndarray:
    """Raw numeric inputs [n_items, len(columns) + 1]: `columns` (the model's, `informative_columns`), then the
    train count. A column without values here (NaN) scales as a missing value."""
    _require(items, columns)
    configured = items[list(columns)].to_numpy(dtype=np.float64) if columns else np.zeros((len(items), 0))
    counts = interaction_counts(train, items["item_id"].astype(str).tolist()).astype(np.float64)
    return np.concatenate([configured, counts[:, None]], axis=1)


def fit_numeric_scaler(items: pd.DataFrame, columns: Sequence[str], train: pd.DataFrame) -> NumericScaler:
    """Scaler fitted on the items that occur in the training split only."""
    values = numeric_values(items, columns, train)
    in_train = items["item_id"].astype(str).isin(set(train["item_id"].astype(str))).to_numpy()
    if not in_train.any():
        raise DataError("No catalogue item occurs in the training split.", hint="Check `mmrec split` output.")
    return NumericScaler().fit(values[in_train])


def unseen_numeric(scaler: NumericScaler, n_columns: int) -> torch.Tensor:
    """[n_columns] scaled inputs of an item with no train interaction: the count column's value, NaN elsewhere.

    The train count is the last column (see numeric_values); the configured columns are content.
    """
    unseen = torch.full((n_columns,), float("nan"))
    if n_columns:
        unseen[-1] = float(scaler.transform(np.zeros((1, n_columns)))[0, -1])
    return unseen


def catalogue_inputs(
    items: pd.DataFrame,
    item_index: np.ndarray,
    features: Any | None,
    numeric: np.ndarray | None,
    device: torch.device | str,
    categories: np.ndarray | None = None,
) -> ItemInputs:
    """ItemInputs on `device`. item_index [n] = IdEncoder indices (0 = unseen); features: ItemFeatures|None;
    categories: CategoryVocab.encode's value indices, or None."""
    if features is None:
        return build_item_inputs(item_index, None, None, None, None, numeric, device, categories)
    return build_item_inputs(item_index, features.vision, features.vision_mask, features.text, features.text_mask,
                             numeric, device, categories)


def scaled_catalogue(
    items: pd.DataFrame,
    item_index: np.ndarray,
    features: Any | None,
    columns: Sequence[str],
    scaler: NumericScaler,
    train: pd.DataFrame,
    device: torch.device | str,
    categories: np.ndarray | None = None,
) -> ItemInputs:
    """The catalogue as the model sees it: numeric columns + train counts scaled by `scaler`, category value
    indices (CategoryVocab.encode) when the model has category columns."""
    numeric = scaler.transform(numeric_values(items, columns, train))
    catalogue = catalogue_inputs(items, item_index, features, numeric, device, categories)
    catalogue.numeric_unseen = unseen_numeric(scaler, numeric.shape[1]).to(device)
    return catalogue
