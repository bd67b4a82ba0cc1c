"""Training tensors from the split: (user, item) pairs, user histories, validation matrices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from mmrec.errors import DataError
from mmrec.evaluation.full_ranking import interaction_matrix


class IdEncoding(Protocol):
    """What training needs of an IdEncoder: `encode(ids) -> int64 array` (0 = unknown) and `len()`."""

    def encode(self, ids: Sequence[str]) -> np.ndarray: ...

    def __len__(self) -> int: ...


@dataclass
class TrainingData:
    """Everything the trainer iterates over, as tensors on the training device."""

    pairs: torch.Tensor  # [N, 2] long: (user index, catalogue row) of every train interaction
    histories: torch.Tensor  # [n_user_ids, L] long catalogue rows, most recent last, -1 = padding
    item_counts: torch.Tensor  # [n_items] float32 train interactions per catalogue row
    val_users: torch.Tensor  # [v] long user index of each validation row (0 = user unseen in train)
    val_relevant: sp.csr_matrix  # [v, n_items] validation positives
    val_exclude: sp.csr_matrix  # [v, n_items] the same users' train items (masked in ranking)
    skipped: dict[str, int] = field(default_factory=dict)  # what was left out, and why


def catalogue_index(item_ids: Sequence[str]) -> pd.Series:
    """item_id -> catalogue row."""
    ids = pd.Index([str(i) for i in item_ids])
    if ids.has_duplicates:
        raise DataError("The item catalogue has duplicate item ids.", hint="Re-run `mmrec preprocess`.")
    return pd.Series(np.arange(len(ids)), index=ids)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Interactions oldest first (by timestamp when present; file order breaks ties)."""
    frame = frame.reset_index(drop=True)
    if "timestamp" in frame.columns:
        return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return frame


def ordered_pairs(train: pd.DataFrame, users: IdEncoding, rows: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(user index, catalogue row) of train interactions, oldest first; unknown users/items left out."""
    frame = _ordered(train)
    user_idx = users.encode(frame["user_id"].astype(str).tolist())
    item_row = frame["item_id"].astype(str).map(rows)
    ok = item_row.notna().to_numpy() & (user_idx > 0)
    return user_idx[ok].astype(np.int64), item_row[ok].to_numpy().astype(np.int64)


def user_histories(
    train: pd.DataFrame, users: IdEncoding, rows: pd.Series, length: int
) -> np.ndarray:
    """[len(users), length] int64 catalogue rows of each user's `length` most recent train items (-1 pad)."""
    out = np.full((len(users), max(length, 0)), -1, dtype=np.int64)
    if length <= 0 or train.empty:
        return out
    user_idx, item_rows = ordered_pairs(train, users, rows)
    table = pd.DataFrame({"u": user_idx, "row": item_rows})
    table = table.groupby("u", sort=False).tail(length)
    # Right-align: the most recent item sits in the last column.
    position = table.groupby("u").cumcount().to_numpy()
    size = table.groupby("u")["row"].transform("size").to_numpy()
    out[table["u"].to_numpy(), length - size + position] = table["row"].to_numpy()
    return out


def build_training_data(
    train: pd.DataFrame,
    val: pd.DataFrame,
    item_ids: Sequence[str],
    users: IdEncoding,
    history_length: int,
    device: torch.device | str = "cpu",
) -> TrainingData:
    """Tensors for training and validation; interactions on items outside the catalogue are counted."""
    rows = catalogue_index(item_ids)
    n_items = len(rows)
    skipped: dict[str, int] = {}

    train_rows = train["item_id"].astype(str).map(rows)
    known = train_rows.notna().to_numpy()
    skipped["train_items_not_in_catalogue"] = int((~known).sum())
    train_users = users.encode(train["user_id"].astype(str).tolist())
    pairs = np.stack([train_users[known], train_rows[known].to_numpy().astype(np.int64)], axis=1)
    if len(pairs) == 0:
        raise DataError("The training split has no usable interactions.", hint="Check `mmrec split` output.")
    counts = np.bincount(pairs[:, 1], minlength=n_items).astype(np.float32)
    histories = user_histories(train[known], users, rows, history_length)

    val_rows = val["item_id"].astype(str).map(rows)
    val_known = val_rows.notna().to_numpy()
    skipped["val_items_not_in_catalogue"] = int((~val_known).sum())
    val_user_ids = val["user_id"].astype(str).to_numpy()[val_known]
    distinct = pd.unique(val_user_ids)
    val_row_of = pd.Series(np.arange(len(distinct)), index=distinct)
    relevant = interaction_matrix(
        val_row_of[val_user_ids].to_numpy(), val_rows[val_known].to_numpy().astype(np.int64), len(distinct), n_items
    )
    val_user_idx = users.encode(list(distinct))
    skipped["val_users_unseen_in_train"] = int((val_user_idx == 0).sum())
    # Exclusion = each validation user's train items (users unseen in train have none).
    train_user_strings = train["user_id"].astype(str).to_numpy()[known]
    in_val = pd.Series(train_user_strings).isin(val_row_of.index).to_numpy()
    exclude = interaction_matrix(
        val_row_of[train_user_strings[in_val]].to_numpy(), pairs[in_val, 1], len(distinct), n_items
    )
    return TrainingData(
        pairs=torch.as_tensor(pairs, dtype=torch.long, device=device),
        histories=torch.as_tensor(histories, dtype=torch.long, device=device),
        item_counts=torch.as_tensor(counts, device=device),
        val_users=torch.as_tensor(val_user_idx, dtype=torch.long, device=device),
        val_relevant=relevant,
        val_exclude=exclude,
        skipped=skipped,
    )
