"""Random baseline: every user gets seeded uniform scores, a floor any model must clear."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import pandas as pd
import torch

from mmrec.recommenders.base import RECOMMENDERS, Recommender


@RECOMMENDERS.register("random")
class RandomRecommender(Recommender):
    """Uniform scores from a generator seeded by (seed, user id): the same user always gets the
    same ranking, whatever batch it is scored in. Unknown users are scored the same way."""

    name = "random"
    ranks_new_items = True

    def __init__(self, seed: int = 42) -> None:
        super().__init__()
        self.seed = seed

    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> RandomRecommender:
        self._index_catalogue(train, item_ids)
        return self

    def score(self, user_ids: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        out = torch.empty(len(user_ids), self.n_items, dtype=torch.float32)
        generator = torch.Generator()
        for row, user in enumerate(user_ids):
            # crc32 is stable across processes (unlike hash()), so rankings are reproducible.
            generator.manual_seed(self.seed * 1_000_003 + zlib.crc32(str(user).encode("utf-8")))
            out[row] = torch.rand(self.n_items, generator=generator)
        return out.to(device)
