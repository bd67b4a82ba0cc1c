"""Training losses: sampled softmax (in-batch + sampled negatives, log-Q corrected), BPR, InfoNCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class NegativeSampler:
    """Draws extra negative catalogue rows uniformly or by training popularity.

    `log_expected_count(rows, k)` is log(k * q(row)), the log-Q correction of sampled softmax.
    """

    def __init__(self, kind: str, counts: torch.Tensor) -> None:
        if kind not in ("uniform", "popularity"):
            raise ValueError(f"unknown negative sampler {kind!r}")
        self.kind = kind
        counts = counts.to(torch.float64)
        if kind == "uniform":
            probs = torch.ones_like(counts)
        else:
            probs = counts + 1.0  # +1: never-interacted items can still be drawn
        self.probs = (probs / probs.sum()).to(torch.float32)

    def sample(self, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[k] catalogue rows (with replacement)."""
        probs = self.probs if generator is None else self.probs.to(generator.device)
        rows = torch.multinomial(probs, k, replacement=True, generator=generator)
        return rows.to(self.probs.device)

    def log_expected_count(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        return torch.log(self.probs.to(rows.device)[rows] * k)


def sampled_softmax_loss(
    logits: torch.Tensor,
    positive_rows: torch.Tensor,
    candidate_rows: torch.Tensor,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy where user i's positive is candidate column i.

    logits [b, m] (m >= b, the first b candidates are the batch's positives); candidate_rows [m];
    log_q [m] log expected count of each candidate in the batch (subtracted: log-Q correction).
    A candidate that is the same item as user i's positive (a duplicate in the batch) is masked, so
    the positive never counts as its own negative.
    """
    b = logits.shape[0]
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    same_item = candidate_rows.unsqueeze(0) == positive_rows.unsqueeze(1)  # [b, m]
    diagonal = torch.zeros_like(same_item)
    diagonal[:, :b] = torch.eye(b, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same_item & ~diagonal, float("-inf"))
    return F.cross_entropy(logits, torch.arange(b, device=logits.device))


def bpr_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(s_pos - s_neg), mean; positive_scores [b], negative_scores [b, k]."""
    return -F.logsigmoid(positive_scores.unsqueeze(1) - negative_scores).mean()


def info_nce_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric CLIP loss between paired rows of first [k, d] and second [k, d]; 0 when k < 2."""
    if first.shape[0] < 2:
        return first.sum() * 0.0  # keeps the graph (and DDP's parameter bookkeeping) intact
    logits = F.normalize(first, dim=-1) @ F.normalize(second, dim=-1).T / temperature
    target = torch.arange(first.shape[0], device=first.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
