"""Two-tower model: users and items map to one space, so full ranking is one matrix product."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmrec.models.inputs import ItemInputs
from mmrec.models.towers import ItemTower, ModelDims, UserTower
from mmrec.settings import ModelSettings


@dataclass
class BatchOutput:
    """What one training forward pass yields."""

    users: torch.Tensor  # [b, d]
    items: torch.Tensor  # [m, d] vectors of the requested candidate rows
    vision: torch.Tensor  # [k, d] vision projections of candidate items having both image and text
    text: torch.Tensor  # [k, d] their text projections (row i pairs with vision row i)


class TwoTowerModel(nn.Module):
    """ItemTower + UserTower + the score function (dot, or cosine / temperature)."""

    def __init__(self, cfg: ModelSettings, dims: ModelDims) -> None:
        super().__init__()
        self.cfg = cfg
        self.dims = dims
        self.item_tower = ItemTower(cfg, dims)
        self.user_tower = UserTower(cfg, dims)
        self.history_length = cfg.user_history_length

    def _drop_ids(self, ids: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Id dropout: during training hide ids (-> 0) at rate id_dropout so content alone must score."""
        rate = self.cfg.id_dropout
        if not self.training or rate <= 0:
            return ids
        keep = torch.rand(ids.shape, device=ids.device, generator=generator) >= rate
        return ids * keep

    def forward(
        self,
        user_idx: torch.Tensor,
        history_rows: torch.Tensor,
        item_rows: torch.Tensor,
        catalogue: ItemInputs,
        history_table: torch.Tensor | None = None,
    ) -> BatchOutput:
        """user_idx [b]; history_rows [b, L] catalogue rows (-1 = none); item_rows [m] -> BatchOutput.

        history_table [n_items, d] (detached, e.g. refreshed every few steps): history items are looked
        up there and the item tower runs only on the candidates -- a step then costs what its
        candidates cost. Without it, each distinct row (candidate or history) is encoded once, with grad.
        """
        history_mask = history_rows >= 0
        if history_table is not None:
            unique_rows, inverse = torch.unique(item_rows, return_inverse=True)
        else:
            rows = torch.cat([item_rows, history_rows[history_mask]])
            unique_rows, inverse = torch.unique(rows, return_inverse=True)
        inputs = catalogue.take(unique_rows)
        if self.training and self.cfg.id_dropout > 0:
            dropped = self._drop_ids(inputs.ids, None)
            # An id-dropped item also loses its interaction counts: it must look like a cold item.
            inputs = inputs.with_ids(dropped).as_unseen(dropped == 0)
        vectors = self.item_tower(inputs)
        items = vectors.index_select(0, inverse[: len(item_rows)])
        if history_table is not None:
            table, table_rows = history_table, history_rows
        else:  # history items were encoded with the candidates: point into `vectors`
            table, table_rows = vectors, torch.zeros_like(history_rows)
            table_rows[history_mask] = inverse[len(item_rows) :]
        if self.training and self.history_length > 0 and self.cfg.id_dropout > 0:
            # Hide some user ids too, so users unseen in training are served by their history alone.
            user_idx = self._drop_ids(user_idx, None)
        users = self.user_tower(user_idx, table, table_rows, history_mask, self._history_ids(catalogue, history_rows))

        vision, text = self.contrastive_pairs(catalogue, item_rows)
        return BatchOutput(users=users, items=items, vision=vision, text=text)

    def contrastive_pairs(self, catalogue: ItemInputs, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[k, d] image and text projections of the distinct `rows` that have both (empty unless use_contrastive).

        Distinct: a batch's positives repeat popular items, and in InfoNCE each copy would be a negative of the
        other copies' identical text (half the rows of a default batch; the loss could not fall below ~1 nat)."""
        d = self.cfg.embedding_dim
        empty = catalogue.vision.new_zeros(0, d)
        if not (self.cfg.use_contrastive and {"vision", "text"} <= set(self.item_tower.modalities)):
            return empty, empty
        cand = catalogue.take(torch.unique(rows))
        both = cand.vision_mask & cand.text_mask
        if not both.any():
            return empty, empty
        return self.item_tower.vision_proj(cand.vision[both]), self.item_tower.text_proj(cand.text[both])

    @torch.no_grad()
    def item_vectors(self, catalogue: ItemInputs, rows: torch.Tensor | None = None,
                     chunk_size: int = 8192) -> torch.Tensor:
        """[n, d] vectors of catalogue `rows` (default: every item), encoded a chunk at a time (call in eval mode)."""
        if rows is None:
            rows = torch.arange(catalogue.n, device=catalogue.ids.device)
        parts = [self.item_tower(catalogue.take(rows[start : start + chunk_size]))
                 for start in range(0, len(rows), chunk_size)]
        return torch.cat(parts) if parts else catalogue.vision.new_zeros(0, self.cfg.embedding_dim)

    def _history_ids(self, catalogue: ItemInputs, history_rows: torch.Tensor) -> torch.Tensor | None:
        """[b, L] item ids of the history's catalogue rows, when the user tower reads them (else None)."""
        if self.user_tower.history_embedding is None:
            return None
        return catalogue.ids[history_rows.clamp(min=0)]

    @torch.no_grad()
    def user_vectors(
        self, user_idx: torch.Tensor, history_rows: torch.Tensor, item_vectors: torch.Tensor, catalogue: ItemInputs
    ) -> torch.Tensor:
        """[b, d] user vectors; history_rows [b, L] catalogue rows (-1 pad) looked up in item_vectors
        (`catalogue` gives those rows' item ids, which history item embeddings read)."""
        return self.user_tower(user_idx, item_vectors, history_rows, history_rows >= 0,
                               self._history_ids(catalogue, history_rows))

    def read_as_unseen(self, side: str, n_ids: int) -> np.ndarray:
        """[n_ids] bool: the item (`side` "item") or user ids read as unseen, id 0 and those whose id row is row 0's
        (ids training never saw, a validation holdout's own: their rows are given row 0's values when saved)."""
        table = getattr(self.item_tower if side == "item" else self.user_tower, "id_embedding", None)
        unseen = np.zeros(n_ids, dtype=bool)
        unseen[:1] = True
        if table is not None and table.num_embeddings == n_ids > 1:
            with torch.no_grad():
                unseen[1:] = (table.weight[1:] == table.weight[0]).all(dim=1).cpu().numpy()
        return unseen

    def search_vectors(self, vectors: torch.Tensor) -> torch.Tensor:
        """User or item vectors in the space whose inner product ranks like `scores` (unit length under cosine)."""
        return F.normalize(vectors, dim=-1) if self.cfg.score == "cosine" else vectors

    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """[b, m] logits (or [..., b, m] for batched inputs): dot product, or cosine / temperature."""
        product = self.search_vectors(users) @ self.search_vectors(items).transpose(-1, -2)
        return product / self.cfg.temperature if self.cfg.score == "cosine" else product
