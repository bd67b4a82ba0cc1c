"""Popularity, recent (what is trending) or of all time, as a blend component (model.trend_blend): recent for
catalogues where fresh items win (news, listings, releases), all time for shops whose buyers mostly take the
best sellers.

Each item's training interactions count 0.5 ** (age / half-life), the age in days back from the latest
training interaction (the "now" the scores are for), or 1 each with half-life 0 (all time: no timestamps
needed), and the score is log(1 + that sum): every user gets the same scores, so blended on top of the
personal ones it moves busy items up. The weight and half-life are chosen on validation
(mmrec.training.blend) and the blend is kept only above validation noise, so on a catalogue where it does not
help (MovieLens) it adds nothing. Item age itself (a publish time) is not an input: an item's recent
interactions stand for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mmrec.data.ids import positions

# Half-lives (days; 0 = all time, no decay) and blend weights `mmrec train` tries on validation.
TREND_HALFLIVES_DAYS = (1.0, 7.0, 30.0, 0.0)
TREND_WEIGHTS = (0.1, 0.2, 0.3, 0.5, 0.7)
_DAY = 86_400.0


@dataclass
class TrendModel:
    """[n_items] log(1 + recency-weighted, or with half-life 0 plain, interaction count) of each item, on the scoring
    device."""

    values: torch.Tensor
    halflife_days: float

    @classmethod
    def build(cls, train: pd.DataFrame, rows: pd.Series, halflife_days: float,
              device: torch.device | str = "cpu") -> TrendModel | None:
        """The trend of `train` over the catalogue rows `rows` (item_id -> row), at `halflife_days` (0: all time);
        None without rows of catalogue items, or, for a half-life, without a timestamp column."""
        found = positions(train["item_id"], rows.index) if not train.empty else np.zeros(0, dtype=np.int64)
        if halflife_days <= 0:
            weights, ok = None, found >= 0
        elif "timestamp" not in train.columns:
            return None
        else:
            times = pd.to_numeric(train["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
            ok = (found >= 0) & np.isfinite(times)
            weights = np.power(0.5, (times[ok].max() - times[ok]) / _DAY / halflife_days) if ok.any() else None
        if not ok.any():
            return None
        counts = np.bincount(rows.to_numpy()[found[ok]], weights=weights, minlength=len(rows))
        return cls(torch.as_tensor(np.log1p(counts), dtype=torch.float32, device=device), float(halflife_days))

    def scores(self, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[len(rows), n_items] the same trend row for every profile row (a fresh tensor: the caller's)."""
        return self.values.unsqueeze(0).repeat(len(rows), 1)


def days(n: float) -> str:
    """'1 day', '7 days'."""
    return f"{n:g} day" + ("" if n == 1 else "s")


def describe_halflife(halflife_days: float) -> str:
    """How a trend half-life reads in messages: 'all time' (0) or 'half-life 7 days'."""
    return "all time" if halflife_days <= 0 else f"half-life {days(halflife_days)}"
