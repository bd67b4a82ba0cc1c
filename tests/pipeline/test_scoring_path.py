"""One scoring path: validation during training, evaluate and recommend give the same scores."""


import pandas as pd
import pytest
import tiny_project
import torch

from mmrec.data.encoders import fit_encoders
from mmrec.data.splits import load_split
from mmrec.data.tables import load_items, save_interactions
from mmrec.models.item_item import L2_GRID, ItemItemModel
from mmrec.models.transitions import SEQUENCE_VARIANTS, SEQUENCE_WEIGHTS
from mmrec.models.trend import TREND_HALFLIVES_DAYS, TREND_WEIGHTS
from mmrec.pipeline.evaluate import load_recommender
from mmrec.pipeline.recommend import run_recommend
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings



# The second model reads history through its own item embeddings and has no user ids: the checkpoint
# must rebuild that user tower, and scoring must pass the history items' ids the same way everywhere.
@pytest.mark.parametrize("model", [{}, {"user_ids": False, "history_item_embeddings": True, "history_dropout": 0.5}])
def test_validation_evaluate_and_recommend_score_alike(tmp_path, monkeypatch, model, validated):
    config = tiny_project.write_tiny_project(tmp_path, epochs=2, item_item_blend=0.5, item_item_halflife=5.0, **model)
    settings = load_settings(config).settings
    result = run_train(settings)
    # (scorer, metrics) of every validation with the item-item blend (every validation, single, a grid or
    # paired, ranks through the trainer's one validation ranking).
    seen = [(s, m) for s, m in validated if s.item_item is not None]
    # One validation per lambda tried (the item-item model alone), one for the fixed blend, then the paired
    # passes of the transitions and of popularity: the blend so far again and one per (variant, weight)
    # on top of it; the chosen scorer is the one the run recorded.
    assert len(seen) == (len(L2_GRID) + 1 + 1 + len(SEQUENCE_VARIANTS) * len(SEQUENCE_WEIGHTS)
                         + 1 + len(TREND_HALFLIVES_DAYS) * len(TREND_WEIGHTS))
    blend = result.item_item
    scorer, metrics = next((s, m) for s, m in seen[len(L2_GRID):]
                           if s.sequence_blend == blend["sequence_blend"] and s.trend_blend == blend["trend_blend"]
                           and m["ndcg@10"] == blend["monitored"])

    split = load_split(tmp_path / "splits")
    items = load_items(tmp_path / "processed")
    users = [str(u) for u in pd.unique(split.val["user_id"])]
    user_idx = torch.as_tensor(fit_encoders(split.train)[0].encode(users))  # the training run's user indices
    validation = scorer.scores(user_idx, user_idx)

    # Training stored its item-item fit; evaluating on the same train split reuses it (no refit).
    fits = list(result.best_path.parent.glob("item_item/*.safetensors"))
    assert len(fits) == 1

    def no_refit(*args, **kwargs):
        raise AssertionError("the item-item model was refitted instead of reused")

    monkeypatch.setattr(ItemItemModel, "fit", no_refit)
    evaluate = load_recommender("multimodal", settings, items, split.train, torch.device("cpu"))
    assert torch.equal(evaluate.score(users), validation)
    # A user with neither an id nor a history (a `user` split's validation user): the same fallback list both ways.
    cold = scorer.scores(torch.tensor([0]), torch.tensor([0]))
    counts = split.train["item_id"].map({item: j for j, item in enumerate(items["item_id"])}).value_counts()
    assert torch.equal(cold[0], torch.log1p(torch.zeros(len(items)).index_put_(
        (torch.as_tensor(counts.index.to_numpy()),), torch.as_tensor(counts.to_numpy(), dtype=torch.float32))))
    assert torch.equal(evaluate.score(["nobody-at-all"]), cold)

    # recommend fits on every processed interaction: make that the train split.
    save_interactions(split.train, tmp_path / "processed")
    recommended = run_recommend(settings, users=users)
    item_ids = items["item_id"].tolist()
    for entry in recommended.users:
        row = users.index(entry.user_id)
        liked = set(split.train.loc[split.train["user_id"] == entry.user_id, "item_id"])
        unseen = [j for j in validation[row].argsort(descending=True).tolist() if item_ids[j] not in liked]
        assert [item["item_id"] for item in entry.items] == [item_ids[j] for j in unseen[: settings.inference.top_k]]
        for item in entry.items:
            assert item["score"] == pytest.approx(float(validation[row, item_ids.index(item["item_id"])]), abs=1e-6)


def test_the_cold_shift_is_chosen_on_validation_and_served_on_the_same_items(tmp_path):
    from mmrec.data.splits import SplitFrames, save_split

    config = tiny_project.write_tiny_project(tmp_path, epochs=2, id_dropout=0.5)
    split = load_split(tmp_path / "splits")
    new = {"i36", "i37", "i38", "i39"}  # new items: every interaction with them goes to validation
    moved = split.train[split.train["item_id"].isin(new)]
    val = pd.concat([split.val, moved]).drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
    save_split(SplitFrames(split.train[~split.train["item_id"].isin(new)].reset_index(drop=True), val, split.test),
               tmp_path / "splits")
    settings = load_settings(config).settings
    blend = run_train(settings).item_item
    assert [row["cold_shift"] for row in blend["cold_shift_grid"]] == [-1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0]
    train = load_split(tmp_path / "splits").train
    model = load_recommender("multimodal", settings, load_items(tmp_path / "processed"), train, torch.device("cpu"))
    item_ids = model.items["item_id"].tolist()
    assert blend["cold_shift"] > 0 and model.scorer.cold_shift == blend["cold_shift"], blend["cold_shift_grid"]
    assert sorted(item_ids[j] for j in model.scorer.shift_columns.tolist()) == sorted(new)


def test_a_cold_shift_within_validation_noise_is_not_kept_and_the_note_says_so(tmp_path):
    from mmrec.data.splits import SplitFrames, save_split

    config = tiny_project.write_tiny_project(tmp_path, epochs=2, id_dropout=0.5, sequence_min_se=1000.0)
    split = load_split(tmp_path / "splits")
    new = split.train["item_id"].isin({"i36", "i37", "i38", "i39"})
    save_split(SplitFrames(split.train[~new].reset_index(drop=True),
                           pd.concat([split.val, split.train[new]]).drop_duplicates(["user_id", "item_id"]),
                           split.test), tmp_path / "splits")
    result = run_train(load_settings(config).settings)
    assert result.item_item["cold_shift"] == 0.0 and len(result.item_item["cold_shift_grid"]) == 7
    assert any(note.startswith("Cold items' offset: the best shift (") and note.endswith("no shift is kept.")
               for note in result.notes)
