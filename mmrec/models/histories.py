"""Users' training histories as model inputs: catalogue rows, time-ordered pairs, recent-item windows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from mmrec.data.ids import positions
from mmrec.errors import DataError


class IdEncoding(Protocol):
    """What history building needs of an IdEncoder: `encode(ids) -> int64 array` (0 = unknown) and `len()`."""

    def encode(self, ids: Iterable[object]) -> np.ndarray: ...

    def __len__(self) -> int: ...


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
    user_idx = users.encode(frame["user_id"])
    found = positions(frame["item_id"], rows.index)
    ok = (found >= 0) & (user_idx > 0)
    return user_idx[ok].astype(np.int64), rows.to_numpy()[found[ok]].astype(np.int64)


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
