"""Build any registered recommender by name from the evaluation settings."""

from __future__ import annotations

from typing import Any

from mmrec.recommenders.base import RECOMMENDERS, Recommender
from mmrec.settings import EvaluationSettings

BASELINES = ("random", "popularity", "item_knn", "user_knn")


def create_recommender(name: str, evaluation: EvaluationSettings, **kwargs: Any) -> Recommender:
    """An unfitted baseline, or (name="multimodal") a model loaded from a checkpoint.

    multimodal kwargs: checkpoint_path (a path, or a TrainedCheckpoint loaded already), items, cache_dir, cache,
    device (passed to MultimodalRecommender.from_checkpoint). Baselines take their knobs from `evaluation`.
    """
    cls = RECOMMENDERS.get(name)  # ConfigError listing the registered names
    if name == "multimodal":
        path = kwargs.pop("checkpoint_path")
        return cls.from_checkpoint(path, **kwargs)
    if name == "random":
        return cls(seed=evaluation.seed)
    if name == "popularity":
        return cls(halflife_days=evaluation.popularity_halflife_days)
    if name in ("item_knn", "user_knn"):
        return cls(neighbors=evaluation.knn_neighbors, shrinkage=evaluation.knn_shrinkage)
    return cls()
