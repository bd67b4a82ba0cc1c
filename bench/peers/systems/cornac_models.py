"""Cornac 3.x peers: MostPop, BPR, EASEᴿ and VBPR, fitted on the split's training file.

Cornac indexes users/items by first appearance; scores are mapped back to the split's catalogue.
Items Cornac never saw in training get the user's lowest known score minus one (Cornac's own
`rank` gives them the minimum), except in VBPR, whose visual part scores them from the poster.
"""

from __future__ import annotations

import numpy as np

from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context, Scorer


def _train_set(split: Split, seed: int):
    from cornac.data import Dataset

    frame = split.frames["train"]
    return Dataset.from_uir(list(zip(frame["user_id"], frame["item_id"], np.ones(len(frame)))), seed=seed)


def _index_maps(split: Split, train_set) -> tuple[np.ndarray, np.ndarray]:
    """(cornac user index per split row, or -1; catalogue column per cornac item index)."""
    item_col = {item: i for i, item in enumerate(split.items)}
    users = np.array([train_set.uid_map.get(u, -1) for u in split.users])
    cols = np.empty(train_set.num_items, dtype=np.int64)
    for raw, idx in train_set.iid_map.items():
        cols[idx] = item_col[raw]
    return users, cols


def _generic_scorer(model, split: Split, train_set) -> Scorer:
    users, cols = _index_maps(split, train_set)

    def score(rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), split.n_items), dtype=np.float32)
        for r, row in enumerate(rows):
            known = np.asarray(model.score(int(users[row])), dtype=np.float64) if users[row] >= 0 else np.zeros(1)
            out[r] = known.min() - 1.0
            if users[row] >= 0:
                out[r, cols] = known
        return out

    return score


def image_train_set(split: Split, ctx: Context, normalisation: str):
    """Cornac training set with the poster features as its item_image modality; returns (set, features).

    normalisation "unit": L2-normalised rows (raw CNN activations are large and all-positive); "raw": as is.
    """
    from cornac.data import ImageModality

    train_set = _train_set(split, ctx.seed)
    features = ctx.image.astype(np.float32)
    if normalisation == "unit":
        features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    modality = ImageModality(features=features, ids=list(split.items), normalized=False)
    modality.build(id_map=train_set.iid_map)
    train_set.add_modalities(item_image=modality)
    return train_set, features


def fit_most_pop(split: Split, config: dict, ctx: Context) -> Scorer:
    from cornac.models import MostPop

    train_set = _train_set(split, ctx.seed)
    return _generic_scorer(MostPop().fit(train_set), split, train_set)


def fit_bpr(split: Split, config: dict, ctx: Context) -> Scorer:
    from cornac.models import BPR

    train_set = _train_set(split, ctx.seed)
    model = BPR(k=config["k"], max_iter=config["max_iter"], learning_rate=config["learning_rate"],
                lambda_reg=config["lambda_reg"], seed=ctx.seed, verbose=False)
    return _generic_scorer(model.fit(train_set), split, train_set)


def fit_ease(split: Split, config: dict, ctx: Context) -> Scorer:
    from cornac.models import EASE

    train_set = _train_set(split, ctx.seed)
    return _generic_scorer(EASE(lamb=config["lamb"], seed=ctx.seed, verbose=False).fit(train_set), split, train_set)


def fit_vbpr(split: Split, config: dict, ctx: Context) -> Scorer:
    """VBPR with the EfficientNet-Lite0 poster features; unseen items scored by the visual part only."""
    import torch
    from cornac.models import VBPR

    torch.manual_seed(ctx.seed)
    train_set, features = image_train_set(split, ctx, config["features"])
    users, cols = _index_maps(split, train_set)
    model = VBPR(k=config["k"], k2=config["k"], n_epochs=config["n_epochs"], batch_size=config["batch_size"],
                 learning_rate=config["learning_rate"], lambda_w=config["lambda_w"], lambda_b=config["lambda_w"],
                 lambda_e=config["lambda_e"], seed=ctx.seed, verbose=False)
    model.fit(train_set)
    # Item side for the whole catalogue: learned id factors where known, zero for unseen items.
    beta = np.zeros(split.n_items, dtype=np.float32)
    gamma_item = np.zeros((split.n_items, model.k), dtype=np.float32)
    beta[cols] = model.beta_item
    gamma_item[cols] = model.gamma_item
    theta_item = features @ model.emb_matrix  # [n_items, k2]
    bias = beta + (features @ model.beta_prime).ravel()

    def score(rows: np.ndarray) -> np.ndarray:
        u = users[rows]
        if (u < 0).any():
            raise ValueError("VBPR scorer got a user without training interactions")
        return bias + model.gamma_user[u] @ gamma_item.T + model.theta_user[u] @ theta_item.T

    return score


SYSTEMS = [
    BenchSystem("MostPop", "cornac", [{}], fit_most_pop, notes="training popularity", reads_text=False),
    BenchSystem(
        "BPR", "cornac",
        [{"k": k, "learning_rate": lr, "lambda_reg": reg, "max_iter": 200}
         for k, lr, reg in ((32, 0.01, 0.01), (64, 0.01, 0.01), (64, 0.05, 0.01), (64, 0.01, 0.001),
                            (128, 0.01, 0.01), (128, 0.05, 0.001))],
        fit_bpr, reads_text=False,
    ),
    BenchSystem("EASE", "cornac", [{"lamb": lamb} for lamb in (50, 100, 250, 500, 1000, 2000)], fit_ease,
                reads_text=False),
    BenchSystem(
        "VBPR", "cornac",
        [{"k": 32, "n_epochs": 40, "batch_size": 512, "learning_rate": 0.01, "lambda_w": 0.01, "lambda_e": 0.0,
          "features": f} for f in ("raw", "unit")],
        fit_vbpr, cold_capable=True, notes="EfficientNet-Lite0 poster features (raw or L2-normalised); k = k2",
        reads_text=False,
    ),
]
