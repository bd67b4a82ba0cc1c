"""Cheap explanations attached to each recommended item (never a second model pass per item)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmrec.recommenders.base import Recommender


def reasons_for(
    model: Recommender,
    user_id: str,
    indices: np.ndarray,
    history: np.ndarray,
    item_ids: list[str],
    fallback: str | None,
) -> list[dict[str, Any]]:
    """One reason dict per recommended catalogue index, from what the model already knows."""
    if fallback is not None:
        return [{"source": fallback, "why": "user unknown to the model: most popular items"} for _ in indices]
    contributions = getattr(model, "modality_contributions", None)
    if callable(contributions):
        # MultimodalRecommender: share of the item vector owed to each modality (id, vision, text, numeric).
        shares = contributions(np.asarray(indices))  # {modality: [k] share}
        if isinstance(shares, dict):
            table = {name: np.asarray(values, dtype=np.float64) for name, values in shares.items()}
            out = [
                {
                    "source": model.name,
                    "modalities": {name: round(float(v[r]), 4) for name, v in table.items()},
                }
                for r in range(len(indices))
            ]
        else:
            out = [{"source": model.name, "modalities": _as_dict(share)} for share in shares]
        # The blended item-item model names the liked item that pulls each recommendation up most.
        evidence = getattr(model, "item_item_evidence", None)
        found = evidence(user_id, [int(j) for j in indices]) if callable(evidence) else None
        for reason, (row, contribution) in zip(out, found or []):
            if contribution > 0:
                reason["similar_to"] = item_ids[row]
                reason["item_item_contribution"] = round(contribution, 4)
        return out
    if model.name == "item_knn" and len(history):
        similarity = model.similarity[indices][:, history].toarray()  # [k, |history|]
        best = similarity.argmax(1)
        return [
            {
                "source": "item_knn",
                "similar_to": item_ids[history[b]],
                "similarity": round(float(similarity[r, b]), 4),
            }
            if similarity[r, b] > 0
            else {"source": "item_knn"}
            for r, b in enumerate(best)
        ]
    if model.name == "popularity":
        return [{"source": "popularity", "train_interactions": int(model.popularity[j])} for j in indices]
    return [{"source": model.name} for _ in indices]


def _as_dict(share: Any) -> dict[str, float]:
    if isinstance(share, dict):
        return {str(k): round(float(v), 4) for k, v in share.items()}
    return {"value": round(float(share), 4)}
