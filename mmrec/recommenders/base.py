"""One uniform API for every recommender (cornac style): fit on train, score users over the catalogue."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from mmrec.data.ids import positions
from mmrec.registry import RECOMMENDERS  # declared in the bottom layer; the classes register below it

__all__ = ["RECOMMENDERS", "Recommender"]


class Recommender(ABC):
    """fit(train, item_ids) once, then score(user_ids) -> [len(user_ids), n_items] (higher = better).

    Column j of every score matrix is catalogue item `item_ids[j]` as passed to `fit`, so every
    recommender ranks the same catalogue and full ranking can compare them on equal terms.
    Users unknown at fit time get the recommender's fallback (documented per class), never an error.
    """

    name: str = "base"
    # Whether items no interaction names get scores of their own (from content, or at random); a recommender
    # built from interactions alone gives them all the same score, so it cannot pick among them (--new-items).
    ranks_new_items: bool = False

    def __init__(self) -> None:
        self.announce: Callable[[str], None] | None = None  # told of slow steps in fit (load_recommender sets it)
        self.item_ids: list[str] = []
        self.item_index: dict[str, int] = {}
        self.user_index: dict[str, int] = {}

    def _index_catalogue(self, train: pd.DataFrame, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Record the catalogue and training users; return (user_rows, item_cols) of train."""
        self.item_ids = [str(i) for i in item_ids]
        self.item_index = {item: j for j, item in enumerate(self.item_ids)}
        users = pd.unique(train["user_id"].astype(str))
        self.user_index = {user: i for i, user in enumerate(users)}
        user_rows = positions(train["user_id"], users)
        item_cols = positions(train["item_id"], self.item_ids)
        known = item_cols >= 0  # train items outside the catalogue cannot be ranked
        return user_rows[known], item_cols[known]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def is_known_user(self, user_id: str) -> bool:
        return user_id in self.user_index

    @abstractmethod
    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> Recommender:
        """Learn from train interactions (columns user_id, item_id[, timestamp, rating])."""

    @abstractmethod
    def score(self, user_ids: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        """[len(user_ids), n_items] float32 scores on `device`."""
