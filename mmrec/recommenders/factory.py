"""Build any registered recommender by name from the evaluation settings."""

from __future__ import annotations

from typing import Any

from mmrec.errors import ConfigError
from mmrec.recommenders.base import RECOMMENDERS, Recommender
from mmrec.settings import RECOMMENDERS as RECOMMENDER_NAMES
from mmrec.settings import EvaluationSettings

BASELINES = ("random", "popularity", "item_knn", "user_knn")


def _ensure_registered() -> None:
    """Import the modules whose classes register themselves in RECOMMENDERS."""
    import mmrec.recommenders.knn
    import mmrec.recommenders.popularity
    import mmrec.recommenders.random  # noqa: F401


def create_recommender(name: str, evaluation: EvaluationSettings, **kwargs: Any) -> Recommender:
    """An unfitted baseline, or (name="multimodal") a model loaded from a checkpoint.

    multimodal kwargs: checkpoint_path, items, cache_dir, cache, device (passed to
    MultimodalRecommender.from_checkpoint). Baselines take their knobs from `evaluation`.
    """
    _ensure_registered()
    if name not in RECOMMENDER_NAMES:
        raise ConfigError(
            f"Unknown recommender {name!r}.", hint=f"Choose one of: {', '.join(RECOMMENDER_NAMES)}."
        )
    if name == "multimodal":
        from mmrec.recommenders.multimodal import MultimodalRecommender

        path = kwargs.pop("checkpoint_path")
        return MultimodalRecommender.from_checkpoint(path, **kwargs)
    cls = RECOMMENDERS.get(name)
    if name == "random":
        return cls(seed=evaluation.seed)
    if name in ("item_knn", "user_knn"):
        return cls(neighbors=evaluation.knn_neighbors, shrinkage=evaluation.knn_shrinkage)
    return cls()
