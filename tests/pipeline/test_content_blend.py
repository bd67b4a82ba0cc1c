"""The content-similarity blend: chosen on validation after the item-item blend, never worse there than
content alone, recorded in the checkpoint and scored alike by validation and evaluate."""


import tiny_project
import torch

from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
from mmrec.pipeline.evaluate import load_recommender
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings
from mmrec.training.blend import CONTENT_GRID



def test_content_blend_is_chosen_on_validation_and_scored_alike(tmp_path, cluster_text, validated,
                                                                   evaluate_on_validation):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1, use_text=True, item_item_blend=0.5,
                                             item_item_halflife=0.0, sequence_blend=False)  # content is last
    settings = load_settings(config).settings
    seen = validated
    result = run_train(settings)
    blend = result.item_item
    grid = {(row["modality"], row["content_blend"]): row["ndcg@10"] for row in blend["content_grid"]}
    assert set(grid) == {("text", w) for w in CONTENT_GRID if w > 0}
    without = next(m for s, m in seen if s is not None and s.item_item is not None and s.content is None)["ndcg@10"]
    # The choice is the validation argmax over "no content" and every tried weight, so it is never below
    # content similarity alone (weight 1).
    assert blend["monitored"] == max([without, *grid.values()]) >= grid[("text", 1.0)]
    assert blend["content_blend"] > 0 and blend["content_modality"] == "text"  # cluster text is informative here

    chosen = next(s for s, m in seen if s is not None and s.content is not None
                  and s.content_blend == blend["content_blend"])
    evaluate, users, user_idx = evaluate_on_validation(tmp_path, settings)
    assert evaluate.scorer.content is not None
    assert torch.equal(evaluate.score(users), chosen.scores(user_idx, user_idx))


def test_content_blend_off_or_fixed(tmp_path, cluster_text):
    off = run_train(load_settings(tiny_project.write_tiny_project(
        tmp_path / "off", epochs=1, use_text=True, item_item_blend=0.5, item_item_halflife=0.0,
        content_blend=False)).settings)
    assert off.item_item["content_blend"] == 0.0 and off.item_item["content_grid"] == []
    fixed = run_train(load_settings(tiny_project.write_tiny_project(
        tmp_path / "fixed", epochs=1, use_text=True, item_item_blend=0.5, item_item_halflife=0.0,
        content_blend_weight=0.25)).settings)
    assert [row["content_blend"] for row in fixed.item_item["content_grid"]] == [0.25]


def test_content_goes_on_top_of_the_leading_half_lives_and_the_best_of_all_is_kept(tmp_path, cluster_text):
    """With the half-life and weight chosen on validation, content is tried on top of the best blend of each
    of the CONTENT_BASES leading half-lives; the recorded choice is the argmax over those blends alone and
    every content row, and evaluate scores with the half-life it names."""
    from mmrec.training.blend import CONTENT_BASES

    config = tiny_project.write_tiny_project(tmp_path, epochs=1, use_text=True, sequence_blend=False)
    settings = load_settings(config).settings
    blend = run_train(settings).item_item
    per_halflife = {}
    for row in blend["val_grid"]:
        if row["halflife"] not in per_halflife or row["ndcg@10"] > per_halflife[row["halflife"]]["ndcg@10"]:
            per_halflife[row["halflife"]] = row
    leading = sorted(per_halflife.values(), key=lambda row: -row["ndcg@10"])
    bases = {(row["halflife"], row["blend"]) for row in blend["content_grid"]}
    assert len(bases) == min(CONTENT_BASES, len({(r["halflife"] if r["blend"] > 0 else None) for r in leading}))
    assert (leading[0]["halflife"], leading[0]["blend"]) in bases or leading[0]["blend"] == 0
    candidates = [row["ndcg@10"] for row in blend["content_grid"]] + [row["ndcg@10"] for row in leading]
    assert blend["monitored"] == max(candidates)
    chosen = [row for row in blend["content_grid"] if row["ndcg@10"] == blend["monitored"]]
    if blend["content_blend"] > 0:
        assert any(row["halflife"] == blend["halflife"] and row["blend"] == blend["blend"]
                   and row["content_blend"] == blend["content_blend"] for row in chosen)
    split = load_split(tmp_path / "splits")
    evaluate = load_recommender("multimodal", settings, load_items(tmp_path / "processed"), split.train,
                                torch.device("cpu"))
    assert evaluate.item_item_halflife == blend["halflife"]
