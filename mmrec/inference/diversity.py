"""Maximal marginal relevance re-ranking and intra-list diversity over item similarity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

# similarity(indices [c]) -> [c, c] cosine similarities between those catalogue items.
SimilarityFn = Callable[[np.ndarray], np.ndarray]


def embedding_similarity(vectors: torch.Tensor) -> SimilarityFn:
    """Cosine similarity between mean-centred rows of dense item vectors [n_items, d].

    Centring removes the direction every item vector of a dot-product model shares (it mostly
    encodes popularity); without it all items look alike (cosine ~0.9) and MMR cannot tell them apart.
    """
    vectors = vectors.detach().float().cpu()
    normed = torch.nn.functional.normalize(vectors - vectors.mean(dim=0, keepdim=True), dim=1)

    def similarity(indices: np.ndarray) -> np.ndarray:
        chosen = normed[torch.as_tensor(indices, dtype=torch.long)]
        return (chosen @ chosen.T).numpy()

    return similarity


def interaction_similarity(interactions: sp.csr_matrix) -> SimilarityFn:
    """Cosine similarity between item columns of a [n_users, n_items] matrix (for id-only models)."""
    columns = sp.csc_matrix(interactions, dtype=np.float32)

    def similarity(indices: np.ndarray) -> np.ndarray:
        chosen = columns[:, indices]
        dots = np.asarray((chosen.T @ chosen).todense(), dtype=np.float64)
        norms = np.sqrt(np.clip(np.diag(dots), 1e-12, None))
        return dots / np.outer(norms, norms)

    return similarity


def intra_list_diversity(similarity: np.ndarray) -> float:
    """Mean pairwise (1 - cosine) over a list's items; 0.0 for lists shorter than 2."""
    n = similarity.shape[0]
    if n < 2:
        return 0.0
    upper = np.triu_indices(n, k=1)
    return float(np.mean(1.0 - similarity[upper]))


def mmr_rerank(relevance: np.ndarray, similarity: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Positions (into the candidate list) of k items chosen greedily by
    lam * relevance - (1 - lam) * max similarity to the items already chosen.

    relevance: [c] scores, min-max scaled here so lam trades comparable quantities; similarity: [c, c].
    Greedy MMR trades relevance against the *largest* similarity to the list so far, which on some lists
    ends less diverse (by mean pairwise dissimilarity) than the plain top k; then the plain top k is
    returned, as it is both more relevant and more diverse.
    """
    c = len(relevance)
    k = min(k, c)
    if c == 0:
        return np.zeros(0, dtype=np.int64)
    span = relevance.max() - relevance.min()
    rel = (relevance - relevance.min()) / span if span > 0 else np.ones(c)
    chosen = [int(np.argmax(rel))]
    max_sim = similarity[chosen[0]].astype(np.float64).copy()
    available = np.ones(c, dtype=bool)
    available[chosen[0]] = False
    while len(chosen) < k:
        gain = np.where(available, lam * rel - (1.0 - lam) * max_sim, -np.inf)
        best = int(np.argmax(gain))
        chosen.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, similarity[best])
    reranked = np.asarray(chosen, dtype=np.int64)
    plain = np.argsort(-relevance, kind="stable")[:k]
    def diversity(order: np.ndarray) -> float:
        return intra_list_diversity(similarity[np.ix_(order, order)])

    return plain if diversity(reranked) < diversity(plain) else reranked
