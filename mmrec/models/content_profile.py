"""Content similarity as a blend component: a user's profile is the mean of her training items' content.

score(u, i) = cosine(mean_{j in train(u)} f_j, f_i), with f the item's unit-norm text features, its
centred unit-norm image features (raw CNN features are all positive), its categories (per category column a
unit vector, the sum of a fixed random vector per value: items of one channel share it exactly, two
channels' are near-orthogonal), or all of these concatenated.
It needs no interaction on the scored item, so it ranks cold items; blended into the final score
with a weight and modality chosen on validation (mmrec.training.blend), it makes the model at
least as good on validation as this content-only recommender, whatever the data.

The same model also orders the cold items (no training interaction) among themselves, last
(`reorder_cold`, mmrec.models.scoring): a blend weight is chosen over every item, where cold items are
often a few, and their order among themselves can need far more content than that weight gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from mmrec.data.categories import SLOTS
from mmrec.models.inputs import ItemInputs
from mmrec.settings import ModelSettings

PARTS = ("text", "image", "category")  # in the order a combined modality names them ("text+image")
CATEGORY_DIM = 256  # per category column: random vectors of two values have cosine ~ N(0, 1/256)
CATEGORY_SEED = 20261205


def _unit(values: torch.Tensor, present: torch.Tensor, centre: bool) -> torch.Tensor:
    values = values.float()
    if centre and bool(present.any()):
        values = values - values[present].mean(dim=0, keepdim=True)
    return F.normalize(values, dim=1) * present.unsqueeze(1).to(values.dtype)


def content_modalities(model_cfg: ModelSettings, catalogue: ItemInputs) -> list[str]:
    """The modalities a content profile can use: each part the model uses and the catalogue has (text, image,
    category), then, with two or more, all of them together ("text+image")."""
    held = {"text": model_cfg.use_text and catalogue.text.shape[1] > 0 and bool(catalogue.text_mask.any()),
            "image": model_cfg.use_vision and catalogue.vision.shape[1] > 0 and bool(catalogue.vision_mask.any()),
            "category": model_cfg.use_categories and bool((catalogue.categories > 0).any())}
    parts = [part for part in PARTS if held[part]]
    return parts + (["+".join(parts)] if len(parts) > 1 else [])


def content_features(catalogue: ItemInputs, modality: str) -> torch.Tensor:
    """[n_items, d] unit-norm rows for `modality` (zero rows for items without that content)."""
    names = modality.split("+")
    if not names or any(name not in PARTS for name in names) or len(set(names)) < len(names):
        raise ValueError(f"unknown content modality {modality!r}: one of {PARTS} or several joined by '+'")
    blocks = {"text": lambda: _unit(catalogue.text, catalogue.text_mask.bool(), centre=False),
              "image": lambda: _unit(catalogue.vision, catalogue.vision_mask.bool(), centre=True),
              "category": lambda: category_features(catalogue.categories).to(catalogue.text.device)}
    parts = [blocks[name]() for name in names]
    return F.normalize(torch.cat(parts, dim=1), dim=1) if len(parts) > 1 else parts[0]


def category_features(categories: torch.Tensor) -> torch.Tensor:
    """[n_items, columns x CATEGORY_DIM] float32 from category value indices [n_items, columns x SLOTS]: per column
    the unit-norm sum of its values' random vectors (zeros for an item without a value), the whole row unit-norm.

    Value k of column c always gets the same vector: row k of a Gaussian table drawn from seed (CATEGORY_SEED, c),
    which numpy fills in order, so a longer table (a catalogue holding more values) has the same first rows."""
    codes = categories.cpu().numpy()
    blocks = []
    for c in range(codes.shape[1] // SLOTS):
        block = codes[:, c * SLOTS : (c + 1) * SLOTS]
        table = np.random.default_rng([CATEGORY_SEED, c]).standard_normal(
            (int(block.max(initial=0)) + 1, CATEGORY_DIM), dtype=np.float32)
        table[0] = 0.0  # none
        summed = np.zeros((len(codes), CATEGORY_DIM), dtype=np.float32)
        for slot in range(SLOTS):  # a slot at a time: table[block] whole would be SLOTS times the result's size
            summed += table[block[:, slot]]
        blocks.append(F.normalize(torch.as_tensor(summed), dim=1))
    if not blocks:
        return torch.zeros(codes.shape[0], 0)
    return F.normalize(torch.cat(blocks, dim=1), dim=1)


def unheld_columns(profiles: sp.csr_matrix, device: torch.device | str) -> torch.Tensor:
    """[c] long, on `device`: the catalogue columns no profile holds (the items without a training interaction)."""
    held = np.asarray(profiles.getnnz(axis=0)).ravel()
    return torch.as_tensor(np.flatnonzero(held == 0), dtype=torch.long, device=device)


@dataclass
class ContentProfileModel:
    """Item content [n_items, d] and the 0/1 train profiles [n_rows, n_items] users are scored from."""

    features: torch.Tensor
    interactions: sp.csr_matrix
    _host: np.ndarray | None = field(default=None, repr=False, compare=False)  # features on the CPU
    _cold: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, catalogue: ItemInputs, modality: str, interactions: sp.csr_matrix) -> ContentProfileModel:
        binary = interactions.tocsr(copy=True).astype(np.float32)
        binary.data[:] = 1.0
        return cls(content_features(catalogue, modality), binary)

    @property
    def cold_columns(self) -> torch.Tensor:
        """Catalogue columns (on the features' device) no profile holds: the items without a training interaction."""
        if self._cold is None:
            self._cold = unheld_columns(self.interactions, self.features.device)
        return self._cold

    def scores(self, rows: torch.Tensor | np.ndarray, columns: torch.Tensor | None = None) -> torch.Tensor:
        """[len(rows), n_items] cosine(profile, item) on the features' device (zero rows: no history); with
        `columns` [c], only those columns ([len(rows), c])."""
        rows = np.asarray(torch.as_tensor(rows).cpu())
        if self._host is None:
            self._host = self.features.cpu().numpy()
        # The sum's direction is the mean's: sparse x dense on the host costs sum_u |u| d.
        profiles = torch.as_tensor(np.asarray(self.interactions[rows] @ self._host), device=self.features.device)
        items = self.features if columns is None else self.features[columns]
        with torch.autocast(device_type=self.features.device.type, enabled=False):
            return F.normalize(profiles, dim=1) @ items.T
