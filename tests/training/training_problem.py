"""A tiny synthetic recommendation problem (4 item clusters, each user prefers one) and tiny model settings.

A plain module, not conftest: `from conftest import` is ambiguous when several test folders have one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmrec.data.encoders import IdEncoder, fit_encoders
from mmrec.models.inputs import ItemInputs, build_item_inputs
from mmrec.models.towers import ModelDims
from mmrec.settings import ModelSettings, TrainingSettings
from mmrec.training.data import TrainingData, build_training_data


@dataclass
class TinyProblem:
    items: pd.DataFrame
    train: pd.DataFrame
    val: pd.DataFrame
    users: IdEncoder
    item_encoder: IdEncoder
    catalogue: ItemInputs
    data: TrainingData
    dims: ModelDims


def make_tiny_problem(n_users: int = 40, n_items: int = 48, per_user: int = 8, seed: int = 0,
                      history_length: int = 4) -> TinyProblem:
    rng = np.random.default_rng(seed)
    clusters = np.arange(n_items) % 4
    item_ids = [f"i{j}" for j in range(n_items)]
    vision = np.eye(4)[clusters] + 0.1 * rng.normal(size=(n_items, 4))
    text = np.eye(4)[clusters] @ rng.normal(size=(4, 6)) + 0.1 * rng.normal(size=(n_items, 6))
    vision_mask = rng.random(n_items) > 0.2  # some items lack an image
    rows = []
    for u in range(n_users):
        liked = np.flatnonzero(clusters == u % 4)
        chosen = rng.choice(liked, size=per_user, replace=False)
        rows += [(f"u{u}", item_ids[j], t) for t, j in enumerate(chosen)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    last = frame.groupby("user_id").cumcount(ascending=False) == 0
    train, val = frame[~last].reset_index(drop=True), frame[last].reset_index(drop=True)
    users, item_encoder = fit_encoders(train)
    numeric = rng.normal(size=(n_items, 2)).astype(np.float32)
    catalogue = build_item_inputs(item_encoder.encode(item_ids), vision, vision_mask, text,
                                  np.ones(n_items, bool), numeric)
    data = build_training_data(train, val, item_ids, users, history_length)
    dims = ModelDims(len(users), len(item_encoder), 4, 6, 2)
    items = pd.DataFrame({"item_id": item_ids})
    return TinyProblem(items, train, val, users, item_encoder, catalogue, data, dims)


def tiny_model_settings(**overrides) -> ModelSettings:
    values = {"embedding_dim": 8, "num_heads": 2, "num_layers": 1, "dropout": 0.0, "user_history_length": 4,
              "num_negatives": 8}
    return ModelSettings(**{**values, **overrides})


def tiny_training_settings(**overrides) -> TrainingSettings:
    values = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-2, "device": "cpu", "patience": 5,
              "monitor": "ndcg@10"}
    return TrainingSettings(**{**values, **overrides})
