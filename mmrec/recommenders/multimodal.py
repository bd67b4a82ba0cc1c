"""The trained two-tower model behind the Recommender API, rebuilt from a checkpoint + sidecar alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmrec.checkpoints.store import load_checkpoint, read_sidecar, verify_encoders
from mmrec.data.encoders import IdEncoder, load_encoders
from mmrec.data.numeric import NumericScaler
from mmrec.errors import CheckpointError, DataError
from mmrec.models.item_item import ItemItemModel, blend_scores, interaction_csr, item_item_content
from mmrec.models.towers import ModelDims
from mmrec.models.two_tower import TwoTowerModel
from mmrec.recommenders.base import RECOMMENDERS, Recommender
from mmrec.settings import CacheSettings, FeaturesSettings, ModelSettings
from mmrec.training.catalogue import catalogue_inputs, numeric_values
from mmrec.training.data import catalogue_index, ordered_pairs, user_histories


@RECOMMENDERS.register("multimodal")
class MultimodalRecommender(Recommender):
    """Scores = user vectors x cached item vectors (one matmul), blended with the item-item model.

    When the checkpoint records an item-item blend weight (`mmrec train` chose it on validation), the
    closed-form item-item model is refitted here on the `train` passed to fit, with the same content,
    and the final scores are (1 - w) z(two-tower) + w z(item-item) (mmrec.models.item_item).

    Items added after training get id 0 and are scored from content. Users unknown to the encoder
    are served from their `train` history (user tower with the unknown-user id); with no history
    either, they get train popularity, counted in `fallback_users`.
    """

    name = "multimodal"

    def __init__(self, model: TwoTowerModel, meta: dict[str, Any], users: IdEncoder, items_encoder: IdEncoder,
                 items: pd.DataFrame, features: Any | None, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.model = model.eval()
        self.meta = meta
        self.users = users
        self.items_encoder = items_encoder
        self.items = items.reset_index(drop=True)
        self.features = features
        self.device = torch.device(device)
        self.fallback_users = 0
        self._item_vectors: torch.Tensor | None = None
        self._catalogue = None
        self._item_item: ItemItemModel | None = None
        # Share of the closed-form item-item model in the scores, as chosen on validation by `mmrec train`.
        self.item_item_blend = float((meta.get("item_item") or {}).get("blend", 0.0))
        self.item_item_halflife = float((meta.get("item_item") or {}).get("halflife", 0.0))

    @classmethod
    def from_checkpoint(cls, path: Path, *, items: pd.DataFrame, cache_dir: Path, cache: CacheSettings,
                        checkpoint_dir: Path, device: torch.device | str = "cpu") -> MultimodalRecommender:
        """Rebuild model, encoders and item features from the checkpoint's own recorded settings."""
        path = Path(path)
        meta = read_sidecar(path)
        state = load_checkpoint(path, map_location=device)
        try:
            model_cfg = ModelSettings(**meta["settings"]["model"])
            features_cfg = FeaturesSettings(**meta["settings"]["features"])
            dims = ModelDims(**meta["model_args"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"Checkpoint sidecar of {path} lacks the model description ({exc}).",
                                  hint="Use a checkpoint written by `mmrec train`.") from None
        users, items_encoder = load_encoders(Path(checkpoint_dir))
        verify_encoders(meta, users.fingerprint, items_encoder.fingerprint, path)
        features = None
        if model_cfg.use_vision or model_cfg.use_text:
            from mmrec.features.item_features import load_item_features

            features = load_item_features(items, features_cfg, cache, Path(cache_dir), device)
            for name, have, want in (("vision", features.vision_dim, dims.vision_dim),
                                     ("text", features.text_dim, dims.text_dim)):
                if want and have != want:
                    raise CheckpointError(
                        f"The {name} features of {features.combo} have {have} dims; the checkpoint expects {want}.",
                        hint="Use the backbone weights the model was trained with (see `mmrec checkpoints info`).",
                    )
        model = TwoTowerModel(model_cfg, dims)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"Weights in {path} do not fit the recorded model: {str(exc)[:300]}",
                                  hint="The .pth and its .json sidecar come from different runs.") from None
        return cls(model.to(device), meta, users, items_encoder, items, features, device)

    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> MultimodalRecommender:
        """Record train histories and popularity, and cache the catalogue's item vectors (no training)."""
        if [str(i) for i in item_ids] != self.items["item_id"].astype(str).tolist():
            raise DataError("item_ids passed to fit differ from the items the recommender was loaded with.",
                            hint="Pass items.item_id in the same order as the `items` table.")
        self._index_catalogue(train, item_ids)
        numeric_info = self.meta.get("numeric", {"columns": [], "scaler": {}})
        columns = list(numeric_info.get("columns", []))
        numeric = None
        if self.model.dims.numeric_dim:
            scaler = NumericScaler.from_dict(numeric_info["scaler"])
            numeric = scaler.transform(numeric_values(self.items, columns, train))
        ids = self.items_encoder.encode(self.items["item_id"].astype(str).tolist())
        self._catalogue = catalogue_inputs(self.items, ids, self.features, numeric, self.device)
        self._item_vectors = self.model.item_vectors(self._catalogue)
        # History rows indexed by the local train-user index (+1; row 0 = no history).
        local = IdEncoder(list(self.user_index), "user")
        rows = catalogue_index(self.item_ids)
        self._histories = torch.as_tensor(
            user_histories(train, local, rows, self.model.history_length), device=self.device
        )
        counts = np.bincount(train["item_id"].astype(str).map(rows).dropna().to_numpy(dtype=np.int64),
                             minlength=self.n_items)
        self._popularity = torch.as_tensor(np.log1p(counts), dtype=torch.float32, device=self.device)
        self._item_item = None
        if self.item_item_blend > 0:
            cfg = self.model.cfg
            if self.n_items > cfg.item_item_max_items:
                raise DataError(
                    f"The catalogue has {self.n_items:,} items, more than model.item_item_max_items "
                    f"({cfg.item_item_max_items:,}) the checkpoint's item-item model allows.",
                    hint="Retrain with a larger model.item_item_max_items, or with model.item_item=false.",
                )
            # Rows = local user index + 1 (row 0 = no train history), as in self._histories.
            user_idx, item_rows = ordered_pairs(train, local, rows)
            matrix = interaction_csr(user_idx, item_rows, len(self.user_index) + 1, self.n_items,
                                     self.item_item_halflife)
            self._item_item = ItemItemModel.fit(matrix, item_item_content(cfg, self._catalogue), cfg.item_item_l2,
                                                cfg.item_item_content_weight, self.device)
        return self

    def _require_fit(self) -> torch.Tensor:
        if self._item_vectors is None:
            raise RuntimeError("call fit(train, item_ids) before scoring")
        return self._item_vectors

    @torch.no_grad()
    def score(self, user_ids: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        """[len(user_ids), n_items] float32 scores on `device`."""
        items = self._require_fit()
        user_ids = [str(u) for u in user_ids]
        idx = torch.as_tensor(self.users.encode(user_ids), device=self.device)
        local = torch.as_tensor([self.user_index.get(u, -1) + 1 for u in user_ids], device=self.device)
        history = self._histories[local] if self._histories.shape[1] else self._histories.new_zeros(len(local), 0)
        has_history = (history >= 0).any(dim=1) if history.shape[1] else torch.zeros_like(idx, dtype=torch.bool)
        fallback = (idx == 0) & ~has_history
        self.fallback_users += int(fallback.sum())
        scores = self.model.scores(self.model.user_vectors(idx, history, items), items)
        if self._item_item is not None:
            scores = blend_scores(scores, self._item_item.scores(local), self.item_item_blend)
        if fallback.any():
            scores[fallback] = self._popularity
        return scores.float().to(device)

    def item_item_evidence(self, user_id: str, item_idx: Sequence[int]) -> list[tuple[int, float]] | None:
        """Per item: (catalogue row of the user's training item that adds most to its item-item score,
        that contribution x_uj * B_ji); None when the item-item model is off or the user has no profile."""
        if self._item_item is None:
            return None
        profile = self._item_item.interactions[self.user_index.get(str(user_id), -1) + 1]
        if profile.nnz == 0:
            return None
        history = torch.as_tensor(profile.indices, dtype=torch.long, device=self.device)
        weights = torch.as_tensor(profile.data, dtype=torch.float32, device=self.device)
        columns = torch.as_tensor(list(item_idx), dtype=torch.long, device=self.device)
        contribution = weights.unsqueeze(1) * self._item_item.weights[history][:, columns]  # [|history|, k]
        best, where = contribution.max(dim=0)
        return [(int(history[w]), float(b)) for w, b in zip(where.tolist(), best.tolist())]

    def item_embeddings(self) -> torch.Tensor:
        """[n_items, d] item vectors of the fitted catalogue."""
        return self._require_fit()

    @torch.no_grad()
    def modality_contributions(self, item_idx: Sequence[int]) -> dict[str, torch.Tensor]:
        """{modality: [len(item_idx)] share in [0, 1]} of each token's part of the item vector.

        The item vector is exactly sum_t part_t + bias; a token's share is |<part_t, v>| normalized
        over tokens (for attention fusion the parts are post-attention, so they mix modalities).
        """
        self._require_fit()
        rows = torch.as_tensor(list(item_idx), dtype=torch.long, device=self.device)
        parts, bias = self.model.item_tower.token_parts(self._catalogue.take(rows))  # [b, T, d]
        vector = parts.sum(dim=1) + bias
        weight = (parts * vector.unsqueeze(1)).sum(-1).abs()
        share = weight / weight.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return {name: share[:, t].cpu() for t, name in enumerate(self.model.item_tower.modalities)}
