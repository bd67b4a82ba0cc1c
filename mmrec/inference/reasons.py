"""Cheap explanations attached to each recommended item (at most one scoring pass per user, never one per item)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmrec.recommenders.base import Recommender


def _because_you_liked(source: str, row: int, measure: str, value: float, item_ids: list[str],
                       titles: list[str], why: str = "because you liked {title}") -> dict[str, Any]:
    title = titles[row] or item_ids[row]
    return {"source": source, "why": why.format(title=title), "similar_to": item_ids[row], measure: round(value, 4)}


# What a component of the multimodal blend that put an item in a list says, with the liked item behind it ({title})
# or without one.
_COMPONENT_WHY = {
    "two_tower": ("because you liked {title}", "fits your history as a whole"),
    "item_item": ("because you liked {title}", "fits your history as a whole"),
    "content": ("similar in content to {title}", "similar in content to what you liked"),
    # an item without a training interaction: a new one, or one whose interactions preprocess left out (rated below
    # the threshold, or of users with too few)
    "cold": ("no interaction to learn from yet; similar in content to {title}",
             "no interaction to learn from yet; similar in content to what you liked"),
    "sequence": ("often comes with {title}", "often comes with what you did last"),
    "trend": ("", "popular with other users"),
}


def reasons_for(
    model: Recommender,
    user_id: str,
    indices: np.ndarray,
    history: np.ndarray,
    item_ids: list[str],
    titles: list[str],
    fallback: str | None,
) -> list[dict[str, Any]]:
    """One reason dict per recommended catalogue index, from what the model already knows.

    `history` = the user's catalogue rows; a reason names the liked item behind a recommendation
    ("why": "because you liked <title>", "similar_to": its id) when the model can tell. For multimodal it
    first names the part of the blend that put the item there (`component`, `_COMPONENT_WHY`).
    """
    if fallback is not None:
        return [{"source": fallback, "why": "user unknown to the model: most popular items"} for _ in indices]
    reasons = _model_reasons(model, user_id, indices, history, item_ids, titles)
    had = set(np.asarray(history).tolist())  # listed with --include-seen: its nearest liked item is itself
    return [{**{key: reason[key] for key in ("source", "component") if key in reason}, "why": "you have it already",
             "seen": True} if int(j) in had else reason for j, reason in zip(indices, reasons, strict=True)]


def _model_reasons(model: Recommender, user_id: str, indices: np.ndarray, history: np.ndarray, item_ids: list[str],
                   titles: list[str]) -> list[dict[str, Any]]:
    evidence = getattr(model, "liked_item_evidence", None)
    if callable(evidence):  # MultimodalRecommender: the blend component that put the item there, and its evidence
        reasons = []
        for component, found in evidence(user_id, [int(j) for j in indices], [int(h) for h in history]):
            with_item, without = _COMPONENT_WHY[component]
            reasons.append({**(_because_you_liked(model.name, *found, item_ids, titles, with_item)
                               if found is not None else {"source": model.name, "why": without}),
                            "component": component})
        return reasons
    filler = "not similar to anything you liked: it fills the list, by popularity"
    if model.name == "item_knn":
        if not len(history):
            return [{"source": "item_knn", "why": filler} for _ in indices]
        similarity = model.similarity[indices][:, history].toarray()  # [k, |history|]
        best = similarity.argmax(1)
        return [
            _because_you_liked("item_knn", int(history[b]), "similarity", float(similarity[r, b]), item_ids, titles)
            if similarity[r, b] > 0
            else {"source": "item_knn", "why": filler}
            for r, b in enumerate(best)
        ]
    if model.name == "user_knn":
        import torch

        scores = model.score([user_id])[0][torch.as_tensor(np.asarray(indices, dtype=np.int64))].tolist()
        return [{"source": "user_knn", "why": "liked by the users most like you", "neighbour_score": float(score)}
                if score > 0 else {"source": "user_knn", "why": "no user like you has it: it fills the list, by "
                                                          "popularity"}
                for score in scores]
    if model.name == "popularity":
        return [{"source": "popularity", "why": "popular with other users",
                 "train_interactions": int(model.popularity[j])} for j in indices]
    if model.name == "random":
        return [{"source": "random", "why": "drawn at random (the random baseline)"} for _ in indices]
    return [{"source": model.name, "why": "ranked by the model"} for _ in indices]
