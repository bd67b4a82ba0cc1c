"""Top-K selection over the catalogue with each user's seen items removed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def top_k_unseen(
    scores: torch.Tensor, seen: Sequence[np.ndarray] | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [b, k'], scores [b, k']) best first; seen[u] holds catalogue indices to skip for row u.

    k' = min(k, n_items); a user who has seen nearly everything gets -inf-scored filler at the end,
    which callers drop (see `finite_rows`).
    """
    scores = scores.to(torch.float32).clone()
    if seen is not None:
        for row, items in enumerate(seen):
            if len(items):
                scores[row, torch.tensor(items, dtype=torch.long, device=scores.device)] = float("-inf")
    values, indices = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    return indices, values


def finite_rows(indices: torch.Tensor, values: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row, the (indices, scores) whose score is finite (masked items removed)."""
    out = []
    for idx, val in zip(indices.cpu().numpy(), values.cpu().numpy()):
        keep = np.isfinite(val)
        out.append((idx[keep], val[keep]))
    return out
