"""Top-K selection over the catalogue with each user's seen items removed, and the chunk size that
keeps a [chunk, n_items] score matrix bounded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

MAX_SCORE_CELLS = 1 << 26  # chunk x n_items cap: 64M cells = 256 MB of float32 scores


def rows_per_chunk(batch_size: int, n_items: int, max_cells: int = MAX_SCORE_CELLS) -> int:
    """Users per chunk: at most batch_size, fewer when batch_size x n_items would pass max_cells."""
    return max(1, min(batch_size, max_cells // max(1, n_items)))


def top_k_unseen(
    scores: torch.Tensor, seen: Sequence[np.ndarray] | None, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [b, k'], scores [b, k']) best first; seen[u] holds catalogue indices to skip for row u.

    k' = min(k, n_items); a user who has seen nearly everything gets -inf-scored filler at the end,
    which callers drop (see `finite_rows`). Ties as `top_k` orders them.
    """
    scores = scores.to(torch.float32).clone()
    if seen is not None and len(seen):
        lengths = np.fromiter((len(items) for items in seen), dtype=np.int64, count=len(seen))
        if lengths.sum():
            rows = torch.from_numpy(np.repeat(np.arange(len(seen)), lengths)).to(scores.device)
            cols = torch.from_numpy(np.concatenate([np.asarray(s, dtype=np.int64) for s in seen])).to(scores.device)
            scores[rows, cols] = float("-inf")
    return top_k(scores, k)


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [b, k'], scores [b, k']) of each row's k' = min(k, n) best, best first. Equal scores go in catalogue
    order, and a tie at the cut keeps the first items of the catalogue, so a shorter list is always the start of a
    longer one: recommend serves and evaluate counts (coverage@K too) the same items whatever the K asked (torch.topk
    alone picks among tied items differently for each k: popularity's many ties showed it)."""
    k = min(k, scores.shape[1])
    values, indices = torch.topk(scores, k, dim=1)
    if k == 0 or torch.isnan(values).any():
        return indices, values
    cut = values[:, -1:]
    crossing = ((scores == cut).sum(dim=1) > (values == cut).sum(dim=1)).nonzero().flatten()
    if len(crossing):  # rows whose tie at the cut goes on past it (rare but for constant scores): the first items
        rows, row_cut = scores[crossing], cut[crossing]
        above, tied = rows > row_cut, rows == row_cut
        need = k - above.sum(dim=1, keepdim=True)
        chosen = above | (tied & (torch.cumsum(tied, dim=1) <= need))  # exactly k per row
        indices[crossing] = chosen.nonzero()[:, 1].view(-1, k)
    indices = indices.gather(1, torch.argsort(indices, dim=1))  # catalogue order, which the stable sort keeps
    values, order = torch.sort(scores.gather(1, indices), dim=1, descending=True, stable=True)
    return indices.gather(1, order), values


def finite_rows(indices: torch.Tensor, values: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row, the (indices, scores) whose score is finite (masked items removed)."""
    out = []
    for idx, val in zip(indices.cpu().numpy(), values.cpu().numpy()):
        keep = np.isfinite(val)
        out.append((idx[keep], val[keep]))
    return out


def reserve_new_items(idx: np.ndarray, val: np.ndarray, new_idx: np.ndarray, new_val: np.ndarray,
                      slots: int, is_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One user's list (idx, val: catalogue rows and scores, in list order) with at least `slots` new items.

    is_new [n_items] marks the new items; (new_idx, new_val) are this user's best-scored new items, best
    first. When the list holds fewer than `slots` new items, its last other items give way to the best new
    items it lacks, which take the last places (in a list ordered by score they rank there anyway: they did
    not make it on their own). The list keeps its length.
    """
    listed = set(idx.tolist())
    wanted = slots - int(is_new[idx].sum())
    add = [p for p, row in enumerate(new_idx.tolist()) if row not in listed][:max(wanted, 0)]
    others = np.flatnonzero(~is_new[idx])  # positions that may give way
    add = add[:len(others)]
    if not add:
        return idx, val
    keep = np.setdiff1d(np.arange(len(idx)), others[len(others) - len(add):])
    return np.concatenate([idx[keep], new_idx[add]]), np.concatenate([val[keep], new_val[add]])
