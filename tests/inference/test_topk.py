"""Top-K with seen items removed."""

from __future__ import annotations

import numpy as np
import torch

from mmrec.inference.topk import finite_rows, top_k_unseen


def test_seen_items_are_skipped_and_short_lists_trimmed():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    idx, val = top_k_unseen(scores, [np.array([0, 3]), np.array([0, 1, 2])], k=3)
    rows = finite_rows(idx, val)
    assert rows[0][0].tolist() == [1, 2]
    assert rows[1][0].tolist() == [3]
    assert scores[0, 0] == 0.9  # input untouched


def test_without_seen_mask_is_plain_topk():
    scores = torch.tensor([[0.1, 0.3, 0.2]])
    idx, _ = top_k_unseen(scores, None, k=5)
    assert idx.tolist() == [[1, 2, 0]]


def test_new_items_take_the_last_places_of_a_list_short_of_them():
    from mmrec.inference.topk import reserve_new_items

    is_new = np.array([False] * 6 + [True] * 3)  # rows 6, 7, 8 are new
    idx, val = np.array([0, 1, 2, 3]), np.array([0.9, 0.8, 0.7, 0.6])
    rows, scores = reserve_new_items(idx, val, np.array([7, 6]), np.array([0.3, 0.1]), 2, is_new)
    assert rows.tolist() == [0, 1, 7, 6] and scores.tolist() == [0.9, 0.8, 0.3, 0.1]
    # A new item that ranks on its own counts: only the missing one is added, and it is not listed twice.
    rows, _ = reserve_new_items(np.array([0, 7, 1, 2]), val, np.array([7, 6]), np.array([0.8, 0.1]), 2, is_new)
    assert rows.tolist() == [0, 7, 1, 6]
    # Enough new items already, or none to add: the list is unchanged.
    rows, _ = reserve_new_items(np.array([6, 7, 0]), val[:3], np.array([7, 6]), np.array([0.9, 0.9]), 2, is_new)
    assert rows.tolist() == [6, 7, 0]
    rows, _ = reserve_new_items(idx, val, np.array([], dtype=np.int64), np.array([]), 2, is_new)
    assert rows.tolist() == [0, 1, 2, 3]
    # Fewer new items than places: the list gets what there is and keeps its length.
    rows, _ = reserve_new_items(idx, val, np.array([8]), np.array([0.2]), 3, is_new)
    assert rows.tolist() == [0, 1, 2, 8]


def test_ties_go_in_catalogue_order_so_a_shorter_list_starts_a_longer_one():
    import torch

    from mmrec.inference.topk import top_k_unseen

    scores = torch.tensor([[1.0, 3, 3, 3, 2, 3, 0], [5, 5, 5, 5, 5, 5, 5]])
    lists = {k: top_k_unseen(scores, None, k)[0].tolist() for k in (1, 3, 5, 7)}
    assert lists[7] == [[1, 2, 3, 5, 4, 0, 6], list(range(7))]
    assert all(row[:k] == longer for k in (1, 3, 5) for row, longer in zip(lists[7], lists[k]))
    random = torch.randn(40, 300)
    indices, values = top_k_unseen(random, None, 20)
    expected_values, expected_indices = torch.topk(random, 20)
    assert torch.equal(indices, expected_indices) and torch.equal(values, expected_values)
