"""`mmrec train` fits the item-item model after training and picks its blend weight on validation."""

import pytest
from tiny_project import write_tiny_project

from mmrec.checkpoints.store import read_meta
from mmrec.models.item_item import BLEND_GRID, HALFLIFE_GRID, L2_GRID
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings


def test_blend_weight_is_chosen_on_validation_and_recorded(tmp_path):
    # Transitions off: the (half-life, weight) choice is then the last stage (test_sequence_blend covers it).
    settings = load_settings(write_tiny_project(tmp_path, epochs=2, sequence_blend=False)).settings
    result = run_train(settings)
    summary = result.item_item
    assert summary is not None
    grid = {(row["halflife"], row["blend"]): row["ndcg@10"] for row in summary["val_grid"]}
    assert set(grid) == {(h, b) for h in HALFLIFE_GRID for b in BLEND_GRID}
    # The chosen pair is the validation argmax, and weight 0 is the two-tower model alone.
    assert grid[(summary["halflife"], summary["blend"])] == summary["monitored"] == max(grid.values())
    assert all(grid[(h, 0.0)] == result.best_metric for h in HALFLIFE_GRID)
    assert read_meta(result.best_path)["item_item"] == summary
    from mmrec.checkpoints.catalog import summary as checkpoint_summary

    assert checkpoint_summary(result.best_path)["item_item"]["blend"] == summary["blend"]  # `checkpoints info`


def test_fixed_blend_off_and_too_large_catalogue(tmp_path):
    fixed = run_train(load_settings(write_tiny_project(tmp_path / "a", epochs=1, item_item_blend=0.3,
                                                       item_item_halflife=2.0)).settings)
    assert fixed.item_item["blend"] == 0.3 and fixed.item_item["halflife"] == 2.0
    assert [(row["halflife"], row["blend"]) for row in fixed.item_item["val_grid"]] == [(2.0, 0.3)]
    off = run_train(load_settings(write_tiny_project(tmp_path / "b", epochs=1, item_item=False)).settings)
    assert off.item_item is None and read_meta(off.best_path)["item_item"] is None
    big = run_train(load_settings(write_tiny_project(tmp_path / "c", epochs=1, item_item_max_items=10,
                                                     distill_weight=1.0)).settings)
    assert big.item_item is None
    assert any("Item-item model skipped: 40 items exceed" in note for note in big.notes)
    assert any("No distillation: its teacher" in note for note in big.notes)  # trained without, not refused
    sparse = run_train(load_settings(write_tiny_project(tmp_path / "d", epochs=1, item_item_dense_max_items=10,
                                                        item_item_neighbours=6, content_blend=False,
                                                        sequence_blend=False)).settings)
    assert sparse.item_item["neighbours"] == 6  # lambda searched in one pass of the neighbour search
    assert [row["l2"] for row in sparse.item_item["l2_grid"]][:4] == [200.0, 100.0, 400.0, 800.0]
    assert sparse.item_item["l2"] in [row["l2"] for row in sparse.item_item["l2_grid"]]
    assert any("40 items exceed model.item_item_dense_max_items (10), so each item keeps its 6 nearest" in note
               and "it would need about 0 GiB for these items" in note for note in sparse.notes)


def test_lambda_is_chosen_on_validation_and_used_by_the_recommender(tmp_path, monkeypatch):
    import torch

    from mmrec.data.splits import load_split
    from mmrec.data.tables import load_items
    from mmrec.models.item_item import ItemItemModel
    from mmrec.pipeline.evaluate import load_recommender

    settings = load_settings(write_tiny_project(tmp_path, epochs=1, item_item_l2=3.0, item_item_blend=1.0,
                                                item_item_halflife=0.0, content_blend=False,
                                                sequence_blend=False)).settings
    result = run_train(settings)
    summary = result.item_item
    grid = {row["l2"]: row["ndcg@10"] for row in summary["l2_grid"]}
    assert list(grid)[:len(L2_GRID)] == [3.0 * f for f in L2_GRID] and L2_GRID[0] == 1.0  # then past an edge
    best = max(grid.values())
    assert summary["l2"] == next(l2 for l2, value in grid.items() if value == best)  # ties keep the configured
    assert summary["monitored"] == grid[summary["l2"]]  # blend 1 = the item-item model alone, as searched
    off = run_train(load_settings(write_tiny_project(tmp_path / "off", epochs=1, item_item_l2=3.0,
                                                     item_item_l2_search=False)).settings)
    assert off.item_item["l2"] == 3.0 and off.item_item["l2_grid"] == []
    # Evaluate fits with the chosen lambda: the stored fit (the chosen one) is found, nothing refitted.
    fitted = []
    monkeypatch.setattr(ItemItemModel, "fit", lambda *a, **k: fitted.append(a) or None)
    split = load_split(tmp_path / "splits")
    load_recommender("multimodal", settings, load_items(tmp_path / "processed"), split.train, torch.device("cpu"))
    assert fitted == []


def test_a_split_without_validation_rows_holds_out_part_of_train(tmp_path, monkeypatch):
    """No validation rows: validation comes out of train (per user, at random: no split_report.json),
    so early stopping and the blend still choose on held-out data; evaluate still reads all of train."""
    import torch

    from mmrec.data.splits import SplitFrames, load_split, save_split
    from mmrec.data.tables import load_items
    from mmrec.pipeline.evaluate import load_recommender
    from mmrec.pipeline.train import prepare_training
    from mmrec.training.distributed import DistContext

    config = write_tiny_project(tmp_path, epochs=2, per_user=10, sequence_blend=False)
    split = load_split(tmp_path / "splits")
    train = split.train  # 30 users x 8 rows
    save_split(SplitFrames(train, split.val.iloc[:0], split.test), tmp_path / "splits")
    settings = load_settings(config, {"training.holdout_ratio": 0.125}).settings
    inputs = prepare_training(settings, torch.device("cpu"), DistContext())
    assert len(inputs.split.val) == 30 and len(inputs.split.train) == len(train) - 30  # 8 * 0.125 = 1 per user
    assert len(inputs.users) - 1 == train["user_id"].nunique()  # encoders: every user of train.csv
    result = run_train(settings)
    assert any("No validation rows (val.csv empty or missing): 30 of 240 training interactions" in note
               for note in result.notes)
    assert all(record.val for record in result.history)  # validated every epoch
    # The item-item model is refitted on all of train.csv for serving: a tie on validation goes to more of it.
    chosen = result.item_item
    curve = {row["blend"]: row["ndcg@10"] for row in chosen["val_grid"] if row["halflife"] == chosen["halflife"]}
    assert chosen["blend"] >= max(curve, key=curve.get) and chosen["blend"] > 0
    strict = run_train(load_settings(config, {"model.item_item_refit_within_se": 0.0,
                                              "paths.checkpoint_dir": str(tmp_path / "strict")}).settings).item_item
    assert strict["monitored"] == max(row["ndcg@10"] for row in strict["val_grid"])
    # Training already fitted the chosen item-item model on all of train.csv: evaluate finds it.
    from mmrec.models.item_item import ItemItemModel

    fitted = []
    real_fit = ItemItemModel.fit
    monkeypatch.setattr(ItemItemModel, "fit", lambda *a, **k: fitted.append(1) or real_fit(*a, **k))
    recommender = load_recommender("multimodal", settings, load_items(tmp_path / "processed"), train,
                                   torch.device("cpu"))
    assert fitted == [] and recommender.score(["u0"]).shape == (1, 40)
    none = run_train(load_settings(config, {"training.holdout_ratio": 0.0,
                                            "paths.checkpoint_dir": str(tmp_path / "off")}).settings)
    assert not any("No validation rows" in note for note in none.notes)
    assert any("No validation data" in note for note in none.notes) and not none.history[0].val
    assert none.item_item is None  # nothing could choose a blend weight: no item-item fit at all
    from mmrec.checkpoints.store import read_meta

    assert read_meta(none.best_path)["monitor"] == "-train_loss"  # not ndcg@10: its value is the negated loss
    assert any("keep validation rows (training.holdout_ratio > 0" in note for note in none.notes)
    tiny = run_train(load_settings(config, {"training.holdout_ratio": 1e-9,  # 8 rows x 1e-9: none per user
                                            "paths.checkpoint_dir": str(tmp_path / "tiny")}).settings)
    assert any("training.holdout_ratio 1e-09 held out nothing" in note for note in tiny.notes), tiny.notes
    fixed = load_settings(config, {"training.holdout_ratio": 0.0, "model.item_item_blend": 0.5,
                                   "paths.checkpoint_dir": str(tmp_path / "fixed")}).settings
    kept = run_train(fixed).item_item  # a fixed weight is used as given, with the configured lambda
    assert kept["blend"] == 0.5 and kept["l2_grid"] == [] and kept["content_blend"] == 0.0


def test_the_blend_reuses_the_distillation_teacher_instead_of_refitting_it(tmp_path, monkeypatch):
    """The teacher is the item-item model of the training pairs with the configured lambda: the blend
    step's first lambda candidate. It is reused (one fit fewer) and validates exactly as a refit does.
    The other candidates share one Gram matrix: one product of the interactions and content for all."""
    from mmrec.models import item_item
    from mmrec.training import blend

    solved, grams = [], []
    real_solve, real_gram = item_item.dense_weights, item_item.dense_gram
    monkeypatch.setattr(item_item, "dense_weights", lambda *a, **k: solved.append(a[1]) or real_solve(*a, **k))
    monkeypatch.setattr(item_item, "dense_gram", lambda *a, **k: grams.append(1) or real_gram(*a, **k))
    config = write_tiny_project(tmp_path, epochs=1, item_item_l2=3.0)
    reused = run_train(load_settings(config, {"model.distill_weight": 1.0}).settings)
    grid = [3.0 * f for f in L2_GRID]
    assert solved[:len(grid)] == grid  # the teacher's fit (factor 1) first, then factors 2.. only
    extended = solved[len(grid):]  # past an edge of the grid, when validation's best sat there
    assert len(grams) == 2  # the teacher's, then one for the three other candidates
    solved.clear()
    grams.clear()
    monkeypatch.setattr(blend, "item_item_fit_key", lambda *args: "0" * 64)  # a key no teacher has
    refit = run_train(load_settings(config, {"model.distill_weight": 1.0,
                                             "paths.checkpoint_dir": str(tmp_path / "refit")}).settings)
    assert solved == [3.0] + grid + extended  # without the match: the teacher, then every candidate
    assert len(grams) == 2
    assert refit.item_item["l2_grid"] == reused.item_item["l2_grid"]
    assert refit.item_item["val_grid"] == reused.item_item["val_grid"]


def test_with_a_refit_ahead_a_tie_goes_to_the_larger_item_item_weight():
    import numpy as np

    from mmrec.training.blend import _toward_refit

    rng = np.random.default_rng(0)
    best = rng.random(400)
    noise = rng.normal(0.0, 0.05, 400)
    curve = {0.25: best,
             0.5: best - 0.001 + noise,  # within one paired standard error
             0.75: best - 0.002 + noise,  # within one, too
             1.0: best - 0.05 + noise}  # about 20 standard errors below

    class Blend:  # what _toward_refit needs of a Scorer: another item-item weight, same other components
        def __init__(self, weight):
            self.weight = weight

        def with_item_item(self, model, weight):
            assert model == "refitted model"
            return Blend(weight)

    class Validation:  # what it needs of a Trainer: paired per-user values of the monitor
        monitor = "ndcg@10"

        def validate_paired(self, scorers):
            return [({"ndcg@10": float(curve[s.weight].mean())}, curve[s.weight]) for s in scorers]

    def choose(beta, within_se=1.0):
        notes = []
        weight, metrics, scorer = _toward_refit(Validation(), Blend(beta), "refitted model", beta,
                                                {"ndcg@10": float(curve[beta].mean())}, (0.0, 0.25, 0.5, 0.75, 1.0),
                                                within_se, notes)
        assert scorer.weight == weight and metrics["ndcg@10"] == float(curve[weight].mean())
        assert bool(notes) == (weight != beta)  # a moved weight is said in the training notes
        return weight

    assert choose(0.25) == 0.75
    assert choose(0.25, within_se=0.0) == 0.25  # 0: validation's best (train skips the step)
    assert choose(1.0) == 1.0  # nothing above the chosen weight
    curve[0.75] = best - 0.05 + noise
    assert choose(0.25) == 0.5


def test_a_reused_teacher_fit_reports_its_own_fit_time(tmp_path, monkeypatch):
    """Without the lambda search the blend fits once, at the teacher's settings, and reuses the teacher: the
    reported fit time is the teacher's (measured before training), not the ~0 s of the reuse."""
    import time

    from mmrec.models import item_item

    real_fit = item_item.fit_profiles

    def slow_fit(*args, **kwargs):
        time.sleep(0.3)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(item_item, "fit_profiles", slow_fit)
    monkeypatch.setattr("mmrec.training.trainer.fit_profiles", slow_fit)
    monkeypatch.setattr("mmrec.training.blend.fit_profiles", slow_fit)
    config = write_tiny_project(tmp_path, epochs=1)
    result = run_train(load_settings(config, {"model.distill_weight": 1.0, "model.item_item_l2_search": False,
                                              "model.sequence_blend": False}).settings)
    assert result.item_item["fit_seconds"] >= 0.3


def test_the_lambda_path_goes_on_past_the_edge_of_the_grid_validation_prefers(monkeypatch):
    """Validation's best at the grid's largest (smallest) lambda: x2 (/2) more, while validation improves,
    at most L2_EDGE_STEPS more; a best inside the grid adds nothing."""
    import math
    from types import SimpleNamespace

    from mmrec.models.item_item import L2_EDGE_STEPS
    from mmrec.settings import ModelSettings
    from mmrec.training import blend

    def path(profiles, content, l2s, weight, device, neighbours, search):  # a fit is its lambda: all validation looks at here
        for l2 in l2s:
            yield SimpleNamespace(l2=l2)

    monkeypatch.setattr(blend, "item_item_profiles", lambda *args: None)
    monkeypatch.setattr(blend, "item_item_content", lambda *args: [])
    monkeypatch.setattr(blend.ItemItemModel, "fit_l2_path", path)

    notes: list[str] = []

    def lambdas(peak):  # validation peaks at `peak`
        scorer = SimpleNamespace(with_item_item=lambda model, weight: model)
        trainer = SimpleNamespace(teacher=None, catalogue=SimpleNamespace(n=100), device="cpu", monitor="ndcg@10",
                                  scorer=lambda: scorer, validate=lambda m: {"ndcg@10": -abs(math.log(m.l2 / peak))})
        chosen, _, grid = blend._choose_l2(trainer, ModelSettings(item_item_l2=200.0), None, None, None, 0.0, None,
                                           notes=notes)
        return chosen.item_item_l2, [row["l2"] for row in grid]

    assert lambdas(1500.0) == (1600.0, [200.0, 100.0, 400.0, 800.0, 1600.0, 3200.0]) and notes == []
    edge = [1600.0, 3200.0, 6400.0, 12800.0, 25600.0, 51200.0]
    assert L2_EDGE_STEPS == 6 and lambdas(1e6) == (51200.0, [200.0, 100.0, 400.0, 800.0, *edge])
    assert len(notes) == 1 and "still improved at 51200, the search's last step" in notes[0]  # the best may lie past
    notes.clear()
    assert lambdas(30.0) == (25.0, [200.0, 100.0, 400.0, 800.0, 50.0, 25.0, 12.5])
    assert lambdas(300.0) == (400.0, [200.0, 100.0, 400.0, 800.0])  # inside the grid: nothing more


def test_the_teacher_and_the_neighbourhood_lambda_search_share_one_neighbour_search(tmp_path, monkeypatch):
    """With distillation and the neighbourhood solver, the teacher's fit solves the whole lambda grid in its one
    neighbour search; the search after training validates those fits and runs no other search."""
    from mmrec.models import item_neighbourhood

    searches = []
    real = item_neighbourhood._exact_candidates
    monkeypatch.setattr(item_neighbourhood, "_exact_candidates", lambda *a: searches.append(1) or real(*a))
    result = run_train(load_settings(write_tiny_project(tmp_path, epochs=1, item_item_dense_max_items=10,
                                                        item_item_neighbours=6, distill_weight=1.0,
                                                        content_blend=False, sequence_blend=False)).settings)
    grid = [row["l2"] for row in result.item_item["l2_grid"]]
    assert grid[:4] == [200.0, 100.0, 400.0, 800.0]
    assert len(searches) == 1 + (len(grid) - 4)  # one pass for the grid, one per step past its edge


def _walk_split_without_timestamps(root, shuffled: bool, n_users: int = 60, n_items: int = 40,
                                   length: int = 12) -> None:
    """Each user walks the item cycle i -> i + 3; val and test are the last two steps; no timestamp column.
    Train is listed in walk order, or `shuffled` (a file in random order)."""
    import numpy as np
    import pandas as pd

    from mmrec.data.splits import SplitFrames, save_split

    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{(start + 3 * t) % n_items}", t)
            for u, start in enumerate(rng.integers(0, n_items, n_users)) for t in range(length)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "step"])
    train = frame[frame["step"] < length - 2]
    if shuffled:
        train = train.sample(frac=1.0, random_state=0)
    parts = [train, frame[frame["step"] == length - 2], frame[frame["step"] == length - 1]]
    save_split(SplitFrames(*(p.drop(columns="step").reset_index(drop=True) for p in parts)), root / "splits")
    (root / "splits" / "split_files.json").unlink()  # files written by hand


def test_without_timestamps_a_recency_half_life_must_clear_validation_noise(tmp_path):
    """Without timestamps a user's items are in file order: a recency half-life is kept only when it leads every
    item counting alike by model.sequence_min_se paired standard errors on validation."""
    ordered = []
    for name, shuffled, min_se in (("ordered", False, 1.0), ("strict", False, 1e6), ("shuffled", True, 1.0)):
        config = write_tiny_project(tmp_path / name, epochs=1, sequence_blend=False, trend_blend=False,
                                    content_blend=False)
        _walk_split_without_timestamps(tmp_path / name, shuffled)
        result = run_train(load_settings(config, {"model.sequence_min_se": min_se}).settings)
        chosen = result.item_item
        grid = {(row["halflife"], row["blend"]): row["ndcg@10"] for row in chosen["val_grid"]}
        assert {h for h, _ in grid} == set(HALFLIFE_GRID)  # every half-life is still validated and recorded
        if name == "ordered":  # the walk's last items name the next one: the order pays, clearly
            ordered = chosen
            assert chosen["halflife"] > 0
            assert any("no timestamp column: over every item counting alike (half-life 0), recency half-life(s)" in note
                       and "by at least model.sequence_min_se (1) paired standard errors" in note
                       and "taken as time" in note
                       for note in result.notes), result.notes
        elif name == "strict":  # the same lead, short of an impossible gate: every item counts alike
            assert chosen["halflife"] == 0.0
            assert any("in the order the file lists them, which may mean nothing: over every item" in note
                       and "paired standard errors (model.sequence_min_se 1e+06)" in note and "not used" in note
                       for note in result.notes), result.notes
            assert max(grid.values()) == ordered["monitored"] > chosen["monitored"]
        else:  # a file in random order: its order is noise, and no half-life is trusted
            assert chosen["halflife"] == 0.0
            assert any("no timestamp column" in note and "half-life" in note and "not used" in note
                       for note in result.notes), result.notes  # whichever way it went, a note says so


@pytest.mark.parametrize("strategy", ["item", "user"])
def test_a_holdouts_own_items_and_users_are_unseen_in_training_and_in_the_checkpoint(tmp_path, strategy):
    """Encoders know all of train.csv, holdout included. The holdout's own items and users (a time split's newest
    ones) kept their random initial id rows, never trained: validation ranked fresh items by noise (cold-item NDCG
    0.06 against 0.24 with the same rows given as val.csv). They are read as unseen (id 0), as val.csv's would be,
    and the checkpoint gives their rows row 0's values, so evaluate and recommend read them as validation did."""
    import json

    import torch

    from mmrec.checkpoints.store import load_checkpoint
    from mmrec.data.splits import SplitFrames, load_split, save_split
    from mmrec.pipeline.train import prepare_training
    from mmrec.training.distributed import DistContext

    config = write_tiny_project(tmp_path, epochs=2, per_user=10, sequence_blend=False, history_item_embeddings=True)
    split = load_split(tmp_path / "splits")
    save_split(SplitFrames(split.train, split.val.iloc[:0], split.test), tmp_path / "splits")
    (tmp_path / "splits" / "split_report.json").write_text(json.dumps({"strategy": strategy}), encoding="utf-8")
    settings = load_settings(config, {"training.holdout_ratio": 0.2}).settings
    inputs = prepare_training(settings, torch.device("cpu"), DistContext())
    column = "item_id" if strategy == "item" else "user_id"
    own = sorted(set(inputs.split.val[column]) - set(inputs.split.train[column]))
    encoder = inputs.item_encoder if strategy == "item" else inputs.users
    rows = encoder.encode(own)
    assert own and (rows > 0).all()  # known to the encoders, as evaluate reads all of train.csv
    if strategy == "item":
        positions = [inputs.item_ids.index(item) for item in own]
        assert (inputs.catalogue.ids[positions] == 0).all() and inputs.catalogue.ids.max() > 0
    else:
        assert inputs.data.skipped["val_users_unseen_in_train"] == len(own)
    result = run_train(settings)
    weights = load_checkpoint(result.best_path)["model"]
    tables = (["item_tower.id_embedding.weight", "user_tower.history_embedding.weight"] if strategy == "item"
              else ["user_tower.id_embedding.weight"])
    for name in tables:
        table = weights[name]
        assert torch.equal(table[torch.as_tensor(rows)], table[0].expand(len(rows), -1)), name
        assert not torch.equal(table[1:], table[0].expand(len(table) - 1, -1))  # the trained rows are their own
    # Served, they count among those without an id embedding (the notes had counted only ids the encoder lacks).
    from mmrec.data.tables import load_items
    from mmrec.pipeline.evaluate import load_recommender

    recommender = load_recommender("multimodal", settings, load_items(tmp_path / "processed"), inputs.full_train,
                                   torch.device("cpu"))
    if strategy == "item":
        assert recommender.items_without_id == len(set(inputs.item_ids) - set(inputs.split.train["item_id"]))
    else:
        everyone = sorted(set(inputs.full_train["user_id"]))
        assert recommender.users_without_id(everyone) == [user for user in everyone if user in set(own)]


def test_a_validation_of_new_users_only_says_it_chose_nothing(tmp_path):
    """Whole users held out (the `user` strategy): validation ranks one same list for every user, so every epoch and
    blend ties; training said the blend was "chosen on validation" and gave popularity's score as the two-tower's."""
    from mmrec.data.splits import SplitFrames, load_split, save_split

    config = write_tiny_project(tmp_path, epochs=2, sequence_blend=False)
    split = load_split(tmp_path / "splits")
    save_split(SplitFrames(split.train, split.val.assign(user_id="new_" + split.val["user_id"]), split.test),
               tmp_path / "splits")
    result = run_train(load_settings(config).settings)
    assert result.validation_all_new
    assert any(note.startswith("Every one of the 30 validation users is new") for note in result.notes)
    split = load_split(tmp_path / "splits")
    save_split(SplitFrames(split.train, split.val.assign(user_id=split.val["user_id"].str[4:]), split.test),
               tmp_path / "splits")
    assert not run_train(load_settings(config).settings).validation_all_new
