"""Content-only baseline and a random floor.

Content-only: user profile = mean of the L2-normalised features of the user's training items;
score = cosine(profile, item). Needs no interactions on the scored item, so it ranks cold items.
"""

from __future__ import annotations

import numpy as np

from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context, Scorer


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def content_features(ctx: Context, modality: str) -> np.ndarray:
    """[n_items, d] unit-norm features: text, image, or both concatenated (each half unit norm)."""
    if modality == "text":
        return _normalise(ctx.text)
    if modality == "image":
        return _normalise(ctx.image - ctx.image.mean(0))  # centring: raw CNN features are all-positive
    if modality == "text+image":
        return _normalise(np.hstack([_normalise(ctx.text), _normalise(ctx.image - ctx.image.mean(0))]))
    raise ValueError(f"unknown modality {modality!r}")


def fit_content(split: Split, config: dict, ctx: Context) -> Scorer:
    items = content_features(ctx, config["modality"]).astype(np.float32)
    train = split.matrices["train"]
    counts = np.maximum(np.asarray(train.sum(1)).ravel(), 1.0)
    profiles = _normalise(np.asarray(train @ items) / counts[:, None]).astype(np.float32)  # [n_users, d]
    return lambda rows: profiles[rows] @ items.T


def fit_random(split: Split, config: dict, ctx: Context) -> Scorer:
    rng = np.random.default_rng(ctx.seed)
    scores = rng.random((split.n_users, split.n_items), dtype=np.float32)
    return lambda rows: scores[rows]


SYSTEMS = [
    BenchSystem(
        "ContentKNN", "bench", [{"modality": m} for m in ("text", "image", "text+image")], fit_content,
        cold_capable=True, notes="cosine(user mean item features, item); MiniLM text / EfficientNet-Lite0 image",
    ),
    BenchSystem("Random", "bench", [{}], fit_random, cold_capable=True, notes="uniform random scores (floor)",
                reads_text=False),
]
