"""The popularity blend (model.trend_blend, on by default; recent or of all time): its scores, its choice on
validation on top of the rest of the blend, and evaluate rebuilding it from train."""

import numpy as np
import pandas as pd
import pytest
import tiny_project
import torch

from mmrec.data.splits import SplitFrames, save_split
from mmrec.models.histories import catalogue_index
from mmrec.models.trend import TREND_HALFLIVES_DAYS, TREND_WEIGHTS, TrendModel
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings

DAY = 86_400


def test_trend_is_the_log_of_interactions_decayed_by_age_in_days():
    rows = catalogue_index(["a", "b", "c"])
    train = pd.DataFrame({"user_id": ["u1", "u2", "u1", "u3"], "item_id": ["a", "a", "b", "zz"],
                          "timestamp": [10 * DAY, 9 * DAY, 8 * DAY, 10 * DAY]})
    trend = TrendModel.build(train, rows, halflife_days=1.0)
    # "now" is the latest training interaction: a's clicks are 0 and 1 day old, b's 2 days, c has none.
    torch.testing.assert_close(trend.values, torch.tensor(np.log1p([1 + 0.5, 0.25, 0.0]), dtype=torch.float32))
    scores = trend.scores(np.array([3, 0]))
    assert scores.shape == (2, 3) and torch.equal(scores[0], scores[1])
    scores += 1  # the caller's own tensor
    torch.testing.assert_close(trend.scores(np.array([0]))[0], trend.values)
    assert TrendModel.build(train.drop(columns="timestamp"), rows, 1.0) is None
    # Half-life 0 is popularity of all time: every interaction counts 1, with or without timestamps.
    for frame in (train, train.drop(columns="timestamp")):
        all_time = TrendModel.build(frame, rows, 0.0)
        torch.testing.assert_close(all_time.values, torch.tensor(np.log1p([2.0, 1.0, 0.0]), dtype=torch.float32))
    assert TrendModel.build(train[train["item_id"] == "zz"], rows, 0.0) is None  # no catalogue item


def _fresh_split(root, n_users: int = 40, n_items: int = 40, clicks: int = 8, seed: int = 0) -> None:
    """A news-like catalogue: item j is published on day j and clicked only in the 3 days after; each user
    clicks at random times over the 40 days. Each user's last click is test, the one before it validation."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for day in np.sort(rng.uniform(0, n_items, clicks)):
            item = int(np.clip(np.floor(day) - rng.integers(0, 3), 0, n_items - 1))
            rows.append((f"u{u}", f"i{item}", int(day * DAY)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).drop_duplicates(["user_id", "item_id"])
    rank = frame.groupby("user_id").cumcount(ascending=False)
    save_split(SplitFrames(frame[rank > 1].reset_index(drop=True), frame[rank == 1].reset_index(drop=True),
                           frame[rank == 0].reset_index(drop=True)), root / "splits")


def test_chosen_on_validation_where_fresh_items_win_and_scored_alike(tmp_path, validated, evaluate_on_validation):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1)
    _fresh_split(tmp_path)
    settings = load_settings(config).settings
    blend = run_train(settings).item_item
    grid = {(row["trend_halflife_days"], row["trend_blend"]): row["ndcg@10"] for row in blend["trend_grid"]}
    assert set(grid) == {(h, w) for h in TREND_HALFLIVES_DAYS for w in TREND_WEIGHTS}
    without = [m["ndcg@10"] for s, m in validated if s.item_item is not None and s.trend is None]
    assert blend["trend_blend"] > 0  # what is clicked next is what was published last
    trended = grid[(blend["trend_halflife_days"], blend["trend_blend"])]
    assert trended == max(grid.values()) > max(without)
    assert blend["trend_gain_se"] >= settings.model.sequence_min_se
    # Fresh items are cold items too (no training interaction yet): their offset, chosen last, lifts them further.
    assert blend["cold_shift"] > 0 and blend["monitored"] > trended

    chosen = next(s for s, m in validated if s.trend is not None and s.trend_blend == blend["trend_blend"]
                  and s.trend.halflife_days == blend["trend_halflife_days"] and s.cold_shift == blend["cold_shift"]
                  and m["ndcg@10"] == blend["monitored"])
    evaluate, users, user_idx = evaluate_on_validation(tmp_path, settings)
    assert evaluate.scorer.trend is not None
    torch.testing.assert_close(evaluate.score(users), chosen.scores(user_idx, user_idx))


@pytest.mark.parametrize("overrides", [{"trend_blend": False}, {}])
def test_off_by_setting_or_of_all_time_alone_without_timestamps(tmp_path, overrides):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1, **overrides)
    if not overrides:  # splits without a timestamp column: nothing to age interactions by
        for name in ("train", "val", "test"):
            path = tmp_path / "splits" / f"{name}.csv"
            pd.read_csv(path, dtype=str).drop(columns="timestamp").to_csv(path, index=False)
        (tmp_path / "splits" / "split_files.json").unlink()  # files rewritten by hand
    blend = run_train(load_settings(config).settings).item_item
    if overrides:
        assert blend["trend_blend"] == 0.0 and blend["trend_grid"] == []
    else:  # popularity of all time needs no timestamp: it alone is tried
        assert {(row["trend_halflife_days"], row["trend_blend"]) for row in blend["trend_grid"]} == \
            {(0.0, w) for w in TREND_WEIGHTS}
