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
