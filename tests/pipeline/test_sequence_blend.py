"""The transition blend (model.sequence_blend, on by default): chosen on validation on top of the content
blend, never lowering validation and kept only above validation noise, recorded in the checkpoint and rebuilt
from train by evaluate and recommend."""

import numpy as np
import pandas as pd
import tiny_project
import torch

from mmrec.checkpoints.store import load_checkpoint, save_checkpoint
from mmrec.data.encoders import IdEncoder
from mmrec.data.splits import SplitFrames, load_split, save_split
from mmrec.data.tables import load_items
from mmrec.models.histories import catalogue_index
from mmrec.models.transitions import SEQUENCE_VARIANTS, SEQUENCE_WEIGHTS, transition_model
from mmrec.pipeline.evaluate import load_recommender
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings


def _chain_split(root, n_users: int = 30, n_items: int = 40, length: int = 10, seed: int = 0) -> None:
    """Each user walks the item cycle i -> i + 3 from a random start: the next item follows from the last one."""
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{(start + 3 * t) % n_items}", 1000 * u + t)
            for u, start in enumerate(rng.integers(0, n_items, n_users)) for t in range(length)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    rank = frame.groupby("user_id").cumcount(ascending=False)
    save_split(SplitFrames(frame[rank > 1].reset_index(drop=True), frame[rank == 1].reset_index(drop=True),
                           frame[rank == 0].reset_index(drop=True)), root / "splits")


def _gap_split(root, n_users: int = 30, n_items: int = 40, length: int = 10, seed: int = 0) -> None:
    """Each user walks the item cycle i -> i + 3, and val and test are random steps inside the walk (a random
    holdout): the missing items sit between two of the user's training items, not after the last one."""
    rng = np.random.default_rng(seed)
    parts: list[list[tuple[str, str, int]]] = [[], [], []]
    for u, start in enumerate(rng.integers(0, n_items, n_users)):
        val_step, test_step = rng.choice(np.arange(1, length - 1), 2, replace=False)
        for t in range(length):
            part = 1 if t == val_step else 2 if t == test_step else 0
            parts[part].append((f"u{u}", f"i{(start + 3 * t) % n_items}", 1000 * u + t))
    frames = [pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]) for rows in parts]
    save_split(SplitFrames(*frames), root / "splits")


def test_tried_by_default_and_can_be_turned_off(tmp_path):
    on = run_train(load_settings(tiny_project.write_tiny_project(tmp_path / "on", epochs=1)).settings).item_item
    assert len(on["sequence_grid"]) == len(SEQUENCE_VARIANTS) * len(SEQUENCE_WEIGHTS)
    off_config = tiny_project.write_tiny_project(tmp_path / "off", epochs=1, sequence_blend=False)
    off = run_train(load_settings(off_config).settings).item_item
    assert off["sequence_blend"] == 0.0 and off["sequence_grid"] == []


def test_sequence_blend_is_chosen_on_validation_and_scored_alike(tmp_path, validated, evaluate_on_validation):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1, sequence_window=2)
    _chain_split(tmp_path)
    settings = load_settings(config).settings
    seen = validated
    blend = run_train(settings).item_item
    grid = {(row["sequence_directions"], row["sequence_halflife"], row["sequence_blend"]): row["ndcg@10"]
            for row in blend["sequence_grid"]}
    assert set(grid) == {(d, h, w) for d, h in SEQUENCE_VARIANTS for w in SEQUENCE_WEIGHTS}
    assert blend["sequence_window"] == 2
    without = [m["ndcg@10"] for s, m in seen if s.sequence is None]
    # The choice is the argmax over the blend without transitions (the content stage's best) and every pair.
    assert blend["monitored"] == max([max(without), *grid.values()])
    assert blend["sequence_blend"] > 0  # on a walk through a cycle the last item names the next one
    assert blend["sequence_directions"] == "next"  # the cycle runs one way: what came before is no clue
    assert grid[("next", blend["sequence_halflife"], blend["sequence_blend"])] == blend["monitored"] > max(without)
    assert blend["sequence_gain_se"] >= settings.model.sequence_min_se  # clear of validation noise

    chosen = next(s for s, m in seen if s.sequence is not None and s.sequence_blend == blend["sequence_blend"]
                  and m["ndcg@10"] == blend["monitored"])
    evaluate, users, user_idx = evaluate_on_validation(tmp_path, settings)
    assert evaluate.scorer.sequence is not None
    torch.testing.assert_close(evaluate.score(users), chosen.scores(user_idx, user_idx))


def test_items_done_close_together_are_chosen_when_the_holdout_sits_inside_the_sessions(tmp_path):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1, sequence_window=2)
    _gap_split(tmp_path)
    blend = run_train(load_settings(config).settings).item_item
    # The val item is the neighbour in time of two training items, ahead of none of the latest ones.
    assert blend["sequence_directions"] == "both" and blend["sequence_blend"] > 0
    best_next = max(row["ndcg@10"] for row in blend["sequence_grid"] if row["sequence_directions"] == "next")
    assert blend["monitored"] > best_next


def test_a_gain_within_validation_noise_blends_nothing(tmp_path):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1, sequence_window=2, sequence_min_se=1e6)
    _chain_split(tmp_path)
    result = run_train(load_settings(config).settings)
    blend = result.item_item
    assert len(blend["sequence_grid"]) == len(SEQUENCE_VARIANTS) * len(SEQUENCE_WEIGHTS)  # tried, then dropped
    assert blend["sequence_blend"] == 0.0 and 0 < blend["sequence_gain_se"] < 1e6
    assert blend["monitored"] < max(row["ndcg@10"] for row in blend["sequence_grid"])
    assert any("paired standard errors" in note for note in result.notes)


def test_a_recorded_transition_blend_is_rebuilt_from_the_interactions_served(tmp_path):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1)
    settings = load_settings(config).settings
    result = run_train(settings)
    state = load_checkpoint(result.best_path)
    meta = state["meta"]
    meta["item_item"].update(sequence_blend=0.3, sequence_halflife=3.0, sequence_window=4)
    save_checkpoint(result.best_path, {k: state[k] for k in ("model", "epoch", "encoders") if k in state}, meta)
    split = load_split(tmp_path / "splits")
    served = pd.concat([split.train, split.val])  # e.g. `mmrec recommend`: every interaction
    recommender = load_recommender("multimodal", settings, load_items(tmp_path / "processed"), served,
                                   torch.device("cpu"))
    scorer = recommender.scorer
    assert scorer.sequence_blend == 0.3
    users = sorted(pd.unique(served["user_id"]))
    rows = torch.as_tensor([recommender._profile_row(u) for u in users])
    local = IdEncoder(list(recommender.user_index), "user")  # the recommender's profile rows
    expected_model = transition_model(served, local, catalogue_index(recommender.item_ids), 4, 3.0)
    expected = scorer.with_sequence(expected_model, 0.3).scores(torch.as_tensor(recommender.users.encode(users)), rows)
    torch.testing.assert_close(recommender.score(users), expected)
    assert not torch.equal(expected, scorer.with_sequence(None, 0.0).scores(
        torch.as_tensor(recommender.users.encode(users)), rows))


def test_without_timestamps_no_transitions_are_learned_and_the_run_says_so(tmp_path):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1)
    split = load_split(tmp_path / "splits")
    save_split(SplitFrames(*(frame.drop(columns="timestamp") for frame in (split.train, split.val, split.test))),
               tmp_path / "splits")
    result = run_train(load_settings(config).settings)
    assert result.item_item["sequence_blend"] == 0.0 and result.item_item["sequence_grid"] == []
    assert any("no timestamp column" in note for note in result.notes)
