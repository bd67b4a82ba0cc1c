"""Item-tower inputs for the whole catalogue, kept as device tensors (the materialized feature store)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ItemInputs:
    """Row j = catalogue item j. ids 0 = no id (unseen in training); masks False = modality missing."""

    ids: torch.Tensor  # [n] long, IdEncoder index
    vision: torch.Tensor  # [n, dv] float32, L2-normalized (zeros where missing); dv may be 0
    vision_mask: torch.Tensor  # [n] bool
    text: torch.Tensor  # [n, dt] float32, L2-normalized
    text_mask: torch.Tensor  # [n] bool
    numeric: torch.Tensor  # [n, c] float32, scaled
    # [n, columns x SLOTS] long category value indices (mmrec.data.categories; 0 = none); width 0 without columns
    categories: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0, dtype=torch.long))
    # [c] what an item unseen in training has in each interaction-derived column (NaN = content column).
    # Training gives id-dropped items these values too, so they look exactly like cold items.
    numeric_unseen: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.categories.numel() == 0 and self.categories.shape[0] != self.ids.shape[0]:  # no columns: [n, 0]
            self.categories = torch.zeros(self.ids.shape[0], 0, dtype=torch.long, device=self.ids.device)

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])

    def take(self, rows: torch.Tensor) -> ItemInputs:
        """The inputs of catalogue rows `rows` ([m] long). index_select, not `tensor[rows]`: on CPU a row
        gather of the feature matrices is ~4x faster that way (it runs every training step)."""
        return replace(self, **{name: getattr(self, name).index_select(0, rows) for name in _FIELDS})

    def to(self, device: torch.device | str) -> ItemInputs:
        unseen = None if self.numeric_unseen is None else self.numeric_unseen.to(device)
        return replace(self, **{name: getattr(self, name).to(device) for name in _FIELDS}, numeric_unseen=unseen)

    def with_ids(self, ids: torch.Tensor) -> ItemInputs:
        """The same inputs with other id indices (id dropout, cold-start scoring)."""
        return replace(self, ids=ids)

    def as_unseen(self, rows: torch.Tensor) -> ItemInputs:
        """Rows `rows` ([n] bool) get the unseen-item values of the interaction-derived numeric columns."""
        if self.numeric_unseen is None or self.numeric.shape[1] == 0:
            return self
        derived = ~torch.isnan(self.numeric_unseen)  # [c]
        swap = rows.unsqueeze(1) & derived.unsqueeze(0)  # [n, c]
        numeric = torch.where(swap, torch.nan_to_num(self.numeric_unseen).unsqueeze(0), self.numeric)
        return replace(self, numeric=numeric)


_FIELDS = ("ids", "vision", "vision_mask", "text", "text_mask", "numeric", "categories")


def _features(values: torch.Tensor | np.ndarray | None, n: int) -> torch.Tensor:
    if values is None:
        return torch.zeros(n, 0)
    tensor = torch.as_tensor(values, dtype=torch.float32)
    # Backbone features differ in scale between backbones; unit norm makes projections comparable.
    return F.normalize(torch.nan_to_num(tensor), dim=1) if tensor.shape[1] else tensor


def build_item_inputs(
    ids: np.ndarray,
    vision: torch.Tensor | np.ndarray | None,
    vision_mask: torch.Tensor | np.ndarray | None,
    text: torch.Tensor | np.ndarray | None,
    text_mask: torch.Tensor | np.ndarray | None,
    numeric: np.ndarray | None,
    device: torch.device | str = "cpu",
    categories: np.ndarray | None = None,
) -> ItemInputs:
    """Assemble catalogue inputs on `device`; None modalities become width-0 / all-missing."""
    n = len(ids)

    def mask(values: torch.Tensor | np.ndarray | None, feats: torch.Tensor) -> torch.Tensor:
        if values is None or feats.shape[1] == 0:
            return torch.zeros(n, dtype=torch.bool)
        return torch.as_tensor(values, dtype=torch.bool).cpu()

    vision_t = _features(None if vision is None else torch.as_tensor(vision).cpu(), n)
    text_t = _features(None if text is None else torch.as_tensor(text).cpu(), n)
    numeric_t = torch.zeros(n, 0) if numeric is None else torch.as_tensor(numeric, dtype=torch.float32)
    inputs = ItemInputs(
        ids=torch.as_tensor(np.asarray(ids), dtype=torch.long),
        vision=vision_t,
        vision_mask=mask(vision_mask, vision_t),
        text=text_t,
        text_mask=mask(text_mask, text_t),
        numeric=torch.nan_to_num(numeric_t),
        categories=torch.zeros(n, 0, dtype=torch.long) if categories is None else torch.as_tensor(
            categories, dtype=torch.long),
    )
    return inputs.to(device)
