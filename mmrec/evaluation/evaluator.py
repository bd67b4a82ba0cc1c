"""Evaluate one fitted recommender on EvaluationData: full ranking, cold items, sampled negatives."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mmrec.evaluation.dataset import EvaluationData
from mmrec.evaluation.full_ranking import ScoreFn, full_ranking
from mmrec.evaluation.sampled import sampled_metrics
from mmrec.recommenders.base import Recommender
from mmrec.settings import EvaluationSettings

# Recommenders that already score every user the same way, known or not: no fallback needed.
USER_AGNOSTIC = ("random", "popularity")


@dataclass
class ModelEvaluation:
    """One model's numbers on one split (metrics keyed like `ndcg@10`, `mrr`, `sampled_auc`)."""

    name: str
    metrics: dict[str, float]
    cold_item_metrics: dict[str, float] = field(default_factory=dict)
    n_users: int = 0
    n_cold_item_users: int = 0
    fallback_users: int = 0
    fit_seconds: float = 0.0
    eval_seconds: float = 0.0
    topk: np.ndarray | None = None  # [n_users, max_k] catalogue indices
    topk_scores: np.ndarray | None = None  # [n_users, max_k] their scores (-inf: masked, not a recommendation)
    topk_rows: np.ndarray | None = None  # rows of EvaluationData.user_ids that `topk` belongs to
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # full-ranking metric -> [users]
    cold_per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # the same on the cold items

    @property
    def users_per_second(self) -> float:
        return self.n_users / self.eval_seconds if self.eval_seconds > 0 else 0.0


def make_score_fn(
    model: Recommender, data: EvaluationData, fallback: Recommender | None, device: torch.device
) -> ScoreFn:
    """score_fn(rows) over data.user_ids; rows of users unknown to training use `fallback`."""
    cold = np.zeros(len(data.user_ids), dtype=bool)
    cold[data.cold_user_rows] = True

    def score_fn(rows: np.ndarray) -> torch.Tensor:
        users = [str(u) for u in data.user_ids[rows]]
        scores = model.score(users, device=device).to(device=device, dtype=torch.float32)
        cold_local = np.flatnonzero(cold[rows])
        if fallback is not None and len(cold_local):
            scores[torch.from_numpy(cold_local).to(device)] = fallback.score(
                [users[i] for i in cold_local], device=device
            ).to(device=device, dtype=torch.float32)
        return scores

    return score_fn


def warmup(model: Recommender, data: EvaluationData, device: torch.device) -> None:
    """Precompute what a model caches (item vectors, features) so timing measures scoring only."""
    if hasattr(model, "item_embeddings"):
        model.item_embeddings()
    model.score([str(u) for u in data.user_ids[: min(8, len(data.user_ids))]], device=device)


def catalogue_coverage(topk: np.ndarray | None, n_items: int, k_values: Sequence[int]) -> dict[str, float]:
    """coverage@K: the share of the catalogue's `n_items` in at least one user's top-K list (`topk` [users, >= K]
    catalogue indices, best first): how much of the catalogue the model shows at all, beside the accuracy metrics
    (a list of the same best sellers for everyone covers a few items)."""
    if topk is None or not len(topk) or not n_items:
        return {}
    return {f"coverage@{k}": len(np.unique(topk[:, :k])) / n_items for k in sorted(set(k_values))}


def evaluate_model(
    name: str,
    model: Recommender,
    data: EvaluationData,
    evaluation: EvaluationSettings,
    *,
    device: torch.device,
    fallback: Recommender | None,
    use_sampling: bool = False,
    return_topk: bool = False,
    fit_seconds: float = 0.0,
    do_warmup: bool = False,
) -> ModelEvaluation:
    """Metrics of `model` per evaluation.eval_task; retrieval also reports cold-item metrics."""
    if do_warmup:
        warmup(model, data, device)
    score_fn = make_score_fn(model, data, None if name in USER_AGNOSTIC else fallback, device)
    started = time.perf_counter()
    result = ModelEvaluation(name=name, metrics={}, fit_seconds=fit_seconds)
    result.fallback_users = 0 if name in USER_AGNOSTIC else len(data.cold_user_rows)
    if evaluation.eval_task == "retrieval":
        full = full_ranking(
            score_fn,
            data.relevant,
            data.exclude,
            evaluation.k_values,
            evaluation.batch_size,
            device,
            return_topk=True,  # catalogue coverage
            return_per_user=True,
        )
        result.metrics, result.n_users, result.per_user = dict(full.metrics), full.n_users, full.per_user
        result.metrics.update(catalogue_coverage(full.topk, data.relevant.shape[1], evaluation.k_values))
        result.topk_rows = full.users  # the users in ranking order: what pairs models user by user
        if return_topk:
            result.topk, result.topk_scores = full.topk, full.topk_scores
        relevant_cold = data.relevant_cold
        if relevant_cold.nnz and len(data.cold_items):
            cold = full_ranking(
                score_fn,
                relevant_cold,
                data.exclude,
                evaluation.k_values,
                evaluation.batch_size,
                device,
                candidate_items=data.cold_items,
                return_per_user=True,
            )
            result.cold_item_metrics, result.n_cold_item_users = cold.metrics, cold.n_users
            result.cold_per_user = cold.per_user
    else:
        result.n_users = int((np.diff(data.relevant.indptr) > 0).sum())
        if return_topk:  # the ranking task ranks samples, not the catalogue: the top-K lists come from a full pass
            full = full_ranking(score_fn, data.relevant, data.exclude, evaluation.k_values, evaluation.batch_size,
                                device, return_topk=True)
            result.topk, result.topk_scores, result.topk_rows = full.topk, full.topk_scores, full.users
    if use_sampling or evaluation.eval_task == "ranking":
        result.metrics.update(
            sampled_metrics(
                score_fn,
                data.relevant,
                data.not_negatives,
                evaluation.k_values,
                evaluation.num_negatives,
                evaluation.sampling_strategy,
                data.train_popularity,
                evaluation.seed,
                evaluation.batch_size,
                device,
            )
        )
        if evaluation.eval_task == "ranking":  # users whose every positive was skipped contribute nothing
            result.n_users = int(result.metrics["sampled_users"])
    result.eval_seconds = time.perf_counter() - started
    return result
