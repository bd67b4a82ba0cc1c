"""Recent popularity (what is trending) as a blend component, for catalogues where fresh items win
(model.trend_blend): news, listings, releases.

Each item's training interactions count 0.5 ** (age / half-life), the age in days back from the latest
training interaction (the "now" the scores are for), and the score is log(1 + that sum): every user gets
the same scores, so blended on top of the personal ones it moves fresh, busy items up. The weight and
half-life are chosen on validation (mmrec.training.blend) and the blend is kept only above validation
noise, so on a catalogue where recency does not matter (MovieLens) it adds nothing. Item age itself
(a publish time) is not an input: an item's recent interactions stand for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mmrec.data.ids import positions

# Half-lives (days) and blend weights `mmrec train` tries on validation.
TREND_HALFLIVES_DAYS = (1.0, 7.0, 30.0)
TREND_WEIGHTS = (0.1, 0.2, 0.3, 0.5, 0.7)
_DAY = 86_400.0


@dataclass
class TrendModel:
    """[n_items] log(1 + recency-weighted interaction count) of each item, on the scoring device."""

    values: torch.Tensor
    halflife_days: float

    @classmethod
    def build(cls, train: pd.DataFrame, rows: pd.Series, halflife_days: float,
              device: torch.device | str = "cpu") -> TrendModel | None:
        """The trend of `train` (needs its timestamp column; None without one or without rows) over the catalogue
        rows `rows` (item_id -> row), at `halflife_days`."""
        if "timestamp" not in train.columns or train.empty:
            return None
        times = pd.to_numeric(train["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
        found = positions(train["item_id"], rows.index)
        ok = (found >= 0) & np.isfinite(times)
        if not ok.any():
            return None
        age_days = (times[ok].max() - times[ok]) / _DAY
        counts = np.bincount(rows.to_numpy()[found[ok]], weights=np.power(0.5, age_days / halflife_days),
                             minlength=len(rows))
        return cls(torch.as_tensor(np.log1p(counts), dtype=torch.float32, device=device), float(halflife_days))

    def scores(self, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[len(rows), n_items] the same trend row for every profile row (a fresh tensor: the caller's)."""
        return self.values.unsqueeze(0).repeat(len(rows), 1)
