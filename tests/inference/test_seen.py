"""Seen items per user, held as one CSR pair of arrays."""

from __future__ import annotations

import pandas as pd

from mmrec.inference.seen import SeenItems


def test_rows_keep_interaction_order_and_skip_items_outside_the_catalogue():
    interactions = pd.DataFrame({"user_id": ["b", "a", "b", "a", "c"], "item_id": ["y", "x", "gone", "z", "gone"]})
    seen = SeenItems(interactions, {"x": 0, "y": 1, "z": 2})
    assert list(seen.users) == ["b", "a", "c"]
    assert [r.tolist() for r in seen.rows(["a", "b", "c", "stranger"])] == [[0, 2], [1], [], []]
