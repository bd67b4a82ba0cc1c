"""Each user's interacted catalogue rows, held as one CSR-style pair of arrays.

One array pair for all users (O(interactions) memory) instead of one numpy array per user, so
serving every user of a large catalogue does not pay per-user object overhead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_NONE = np.zeros(0, dtype=np.int64)


class SeenItems:
    """user id -> catalogue rows of their interactions (in interaction order; items outside the catalogue skipped)."""

    def __init__(self, interactions: pd.DataFrame, item_index: dict[str, int]) -> None:
        codes, users = pd.factorize(interactions["user_id"].astype(str))
        cols = interactions["item_id"].astype(str).map(item_index)
        known = cols.notna().to_numpy()
        order = np.argsort(codes[known], kind="stable")  # group by user, keep each user's interaction order
        self.users = users  # every user with an interaction, in order of first appearance
        self.user_row = {user: row for row, user in enumerate(users)}
        self.indices = cols.to_numpy()[known][order].astype(np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(codes[known], minlength=len(users)))])

    def of(self, user: str) -> np.ndarray:
        """Catalogue rows `user` interacted with (empty for an unknown user)."""
        row = self.user_row.get(user)
        return _NONE if row is None else self.indices[self.indptr[row] : self.indptr[row + 1]]

    def rows(self, users: Sequence[str]) -> list[np.ndarray]:
        return [self.of(u) for u in users]
