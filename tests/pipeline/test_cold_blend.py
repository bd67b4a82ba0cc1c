"""The cold items' order among themselves (model.cold_blend): chosen last on the validation users' cold items
ranked among themselves, kept only above validation noise, recorded in the checkpoint and scored alike by
validation and evaluate."""


import numpy as np
import pandas as pd
import pytest
import tiny_project
import torch

from mmrec.data.splits import SplitFrames, load_split, save_split
from mmrec.data.tables import load_items, save_interactions, save_items
from mmrec.pipeline.recommend import run_recommend
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings
from mmrec.training.blend import COLD_WEIGHTS

NEW = [f"i{j}" for j in range(28, 40)]  # items nobody has in training: they arrive after the training rows


def write_project(root, **model):
    """The tiny project with 12 of its 40 items new: their training rows move to validation. Their view counts
    (which tell an item's cluster, as text does) name the next cluster: the trained model, which learnt to read
    them from the other items, ranks the new items wrong among themselves, where text alone ranks them right."""
    config = tiny_project.write_tiny_project(root, n_users=60, per_user=10, epochs=2, use_text=True,
                                             item_item_blend=0.5, item_item_halflife=0.0, sequence_blend=False,
                                             trend_blend=False, content_blend=False, **model)
    items = load_items(root / "processed")
    new_rows = items["item_id"].isin(NEW)
    items.loc[new_rows, "view_number"] = 10.0 ** ((np.flatnonzero(new_rows) + 1) % 4)
    save_items(items, root / "processed")
    split = load_split(root / "splits")
    new = split.train["item_id"].isin(NEW)
    save_split(SplitFrames(split.train[~new].reset_index(drop=True),
                           pd.concat([split.val, split.train[new]], ignore_index=True), split.test), root / "splits")
    return config


def test_chosen_on_the_cold_items_of_validation_and_scored_alike(tmp_path, cluster_text, validated,
                                                                  evaluate_on_validation):
    settings = load_settings(write_project(tmp_path)).settings
    result = run_train(settings)
    blend = result.item_item
    grid = {(row["cold_modality"], row["cold_blend"]): row["cold ndcg@10"] for row in blend["cold_grid"]}
    assert set(grid) == {("text", w) for w in COLD_WEIGHTS}
    # Text names the cluster every user keeps to: on the new items content leads the trained blend, by far.
    assert blend["cold_blend"] > 0 and blend["cold_modality"] == "text"
    assert grid[("text", blend["cold_blend"])] == max(grid.values())
    assert blend["cold_gain_se"] >= settings.model.sequence_min_se
    # The scorer validation chose: that order, then the cold items' offset (model.cold_shift) chosen on top of it.
    chosen = next(s for s, m in validated if s.cold is not None and s.cold_blend == blend["cold_blend"]
                  and s.cold_shift == blend["cold_shift"])
    assert chosen.cold.cold_columns.tolist() == [int(i[1:]) for i in NEW]
    evaluate, users, user_idx = evaluate_on_validation(tmp_path, settings)
    assert evaluate.scorer.cold is not None and evaluate.scorer.cold_blend == blend["cold_blend"]
    assert torch.equal(evaluate.score(users), chosen.scores(user_idx, user_idx))

    # recommend (fitted on the interactions it is given: the training rows) keeps places for the new items, and
    # names the item a new one is like where the cold items' own order put it there.
    save_interactions(load_split(tmp_path / "splits").train, tmp_path / "processed")
    served = run_recommend(settings.model_copy(update={"inference": settings.inference.model_copy(
        update={"new_items": 2})}), users=users)
    new = [item["reason"] for entry in served.users for item in entry.items if item["item_id"] in NEW]
    assert len(new) >= 2 * len(users)
    liked = [r for r in new if r.get("component") == "cold" and "similar_to" in r]
    assert liked and all(r["why"].startswith("no interaction to learn from yet; similar in content to ") for r in liked)


def test_off_or_within_noise_leaves_the_blend_as_it_is(tmp_path, cluster_text):
    off = run_train(load_settings(write_project(tmp_path / "off", cold_blend=False)).settings)
    assert off.item_item["cold_blend"] == 0.0 and off.item_item["cold_grid"] == []
    noisy = run_train(load_settings(write_project(tmp_path / "noise", sequence_min_se=1000.0)).settings)
    assert noisy.item_item["cold_blend"] == 0.0 and len(noisy.item_item["cold_grid"]) == len(COLD_WEIGHTS)
    assert any(note.startswith("Cold items: content similarity (text, the best alone) weight")
               and "sequence_min_se 1000" in note for note in noisy.notes)


def test_no_cold_item_in_validation_tries_nothing(tmp_path, cluster_text):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1, use_text=True, item_item_blend=0.5,
                                             item_item_halflife=0.0)
    blend = run_train(load_settings(config).settings).item_item
    assert blend["cold_grid"] == [] and blend["cold_blend"] == 0.0 and blend["cold_gain_se"] is None


def test_a_gain_is_evidence_above_noise_and_beyond_one_user():
    from mmrec.training.blend import below_noise

    before = np.zeros(21)
    one = before.copy()
    one[4] = 0.5  # one hit of one user among 21: 1 standard error (up to rounding), however few the users
    assert below_noise(one, before, 0.9) == "through one user alone"
    assert below_noise(one, before, 1.5).startswith("by only 1.00 paired standard errors")
    many = before + np.r_[np.full(8, 0.2), np.zeros(13)]
    assert below_noise(many, before, 1.0) is None
    assert below_noise(before - np.linspace(0.0, 0.2, 21), before, 1.0).startswith("by only -")


def test_transitions_and_popularity_are_not_kept_on_one_users_gain():
    """The gate the transitions and popularity blends share (`_choose_on_top`) also refuses a gain one user makes."""
    from types import SimpleNamespace

    from mmrec.training.blend import _choose_on_top

    base = np.zeros(21)
    one = base.copy()
    one[3] = 0.5  # one user's hit: 1 standard error (up to rounding)
    trainer = SimpleNamespace(monitor="ndcg@10", validate_paired=lambda scorers: [
        ({"ndcg@10": float(base.mean())}, base), ({"ndcg@10": float(one.mean())}, one)])
    notes = []
    chosen, _, scorer, grid, gain_se = _choose_on_top(trainer, "base", {}, [({"trend_blend": 0.3}, "blended")],
                                                      "trend_blend", 0.9, "Popularity", lambda p: "all time", notes)
    assert chosen == {} and scorer == "base" and gain_se == pytest.approx(1.0)
    assert notes == ["Popularity: the best weight (0.3, all time) raised validation ndcg@10 through one user alone; "
                     "none is blended."]


def test_a_file_order_is_not_taken_as_time_on_one_users_gain():
    """Without timestamps, the recency half-life gate (`_file_order_gate`) refuses a gain one user makes too."""
    from types import SimpleNamespace

    from mmrec.training.blend import _file_order_gate

    base = np.zeros(21)
    one, many = base.copy(), base + np.r_[np.full(8, 0.2), np.zeros(13)]
    one[3] = 0.5  # one user's hit: 1 standard error (up to rounding)
    values = {0.0: base, 5.0: one, 20.0: many}

    class Blended(str):
        def with_item_item(self, model, beta):
            return model

    trainer = SimpleNamespace(monitor="ndcg@10", validate_paired=lambda scorers: [
        ({"ndcg@10": float(values[h].mean())}, values[h]) for h in scorers])
    per_halflife = {h: (0.5, {"ndcg@10": float(v.mean())}) for h, v in values.items()}
    notes = []
    kept = _file_order_gate(trainer, Blended("base"), {h: h for h in values}, (0.0, 5.0, 20.0), per_halflife, 0.9,
                            notes)
    assert kept == (0.0, 20.0)
    assert "recency half-life(s) 5 (through one user alone) led validation ndcg@10" in notes[0]
    assert "20 (by " in notes[1] and "taken as time" in notes[1]
