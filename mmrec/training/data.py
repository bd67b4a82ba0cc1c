"""Training tensors from the split: (user, item) pairs, user histories, validation matrices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from mmrec.data.ids import positions
from mmrec.data.matrices import held_out_unseen, interaction_matrix
from mmrec.errors import DataError
from mmrec.models.histories import IdEncoding, catalogue_index, user_histories


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


def build_training_data(
    train: pd.DataFrame,
    val: pd.DataFrame,
    item_ids: Sequence[str],
    users: IdEncoding,
    history_length: int,
    device: torch.device | str = "cpu",
    max_val_users: int | None = None,
    seed: int = 0,
) -> TrainingData:
    """Tensors for training and validation; interactions on items outside the catalogue are counted.

    With more than `max_val_users` validation users, a seeded random sample of that many is kept
    (the rest counted in skipped["val_users_sampled_out"]): model selection and the blend search
    rank the whole catalogue for every validation user, a dozen times per run.
    """
    rows = catalogue_index(item_ids)
    n_items = len(rows)
    skipped: dict[str, int] = {}

    train_rows = positions(train["item_id"], rows.index)
    known = train_rows >= 0
    skipped["train_interactions_on_items_not_in_catalogue"] = int((~known).sum())
    train_users = users.encode(train["user_id"])
    pairs = np.stack([train_users[known], rows.to_numpy()[train_rows[known]]], axis=1).astype(np.int64)
    if len(pairs) == 0:
        raise DataError("The training split has no usable interactions.", hint="Check `mmrec split` output.")
    counts = np.bincount(pairs[:, 1], minlength=n_items).astype(np.float32)
    histories = user_histories(train[known], users, rows, history_length)

    val_found = positions(val["item_id"], rows.index)
    val_known = val_found >= 0
    val_rows = np.where(val_known, rows.to_numpy()[val_found], -1)
    skipped["val_interactions_on_items_not_in_catalogue"] = int((~val_known).sum())
    val_user_ids = val["user_id"].astype(str).to_numpy()[val_known]
    distinct = pd.unique(val_user_ids)
    skipped["val_users_sampled_out"] = 0
    if max_val_users is not None and len(distinct) > max_val_users:
        keep = np.sort(np.random.default_rng(seed).choice(len(distinct), size=max_val_users, replace=False))
        skipped["val_users_sampled_out"] = len(distinct) - max_val_users
        distinct = distinct[keep]
        sampled = pd.Series(val_user_ids).isin(set(distinct)).to_numpy()
        val_user_ids, val_rows = val_user_ids[sampled], val_rows[val_known][sampled]
        val_known = np.ones(len(val_user_ids), dtype=bool)
    val_row_of = pd.Series(np.arange(len(distinct)), index=distinct)
    relevant = interaction_matrix(
        val_row_of[val_user_ids].to_numpy(), val_rows[val_known].astype(np.int64), len(distinct), n_items
    )
    # A user the encoder knows from rows outside `train` (a holdout's own) is as unseen as an unknown one: id 0.
    val_user_idx = np.where(pd.Index(distinct).isin(pd.Index(train["user_id"].astype(str).unique())),
                            users.encode(list(distinct)), 0)
    skipped["val_users_unseen_in_train"] = int((val_user_idx == 0).sum())
    # Exclusion = each validation user's train items (users unseen in train have none).
    train_user_strings = train["user_id"].astype(str).to_numpy()[known]
    in_val = pd.Series(train_user_strings).isin(val_row_of.index).to_numpy()
    exclude = interaction_matrix(
        val_row_of[train_user_strings[in_val]].to_numpy(), pairs[in_val, 1], len(distinct), n_items
    )
    relevant, skipped["val_pairs_seen_in_train"] = held_out_unseen(relevant, exclude)  # as evaluation ranks
    return TrainingData(
        pairs=torch.as_tensor(pairs, dtype=torch.long, device=device),
        histories=torch.as_tensor(histories, dtype=torch.long, device=device),
        item_counts=torch.as_tensor(counts, device=device),
        val_users=torch.as_tensor(val_user_idx, dtype=torch.long, device=device),
        val_relevant=relevant,
        val_exclude=exclude,
        skipped=skipped,
    )
