"""A checkpoint scores from itself alone: retraining another combo on another split leaves it usable."""

import importlib.util
from pathlib import Path

import pytest

from mmrec.checkpoints.store import read_meta
from mmrec.data.encoders import load_encoders
from mmrec.pipeline.evaluate import run_evaluate
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings

_spec = importlib.util.spec_from_file_location(
    "tiny_project_for_independence", Path(__file__).parents[1] / "training" / "tiny_project.py")
tiny_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_project)


def test_retraining_another_combo_on_another_split_keeps_older_checkpoints_usable(tmp_path):
    settings_a = load_settings(tiny_project.write_tiny_project(tmp_path / "a", epochs=1)).settings
    run_train(settings_a)
    before = run_evaluate(settings_a, write_files=False).models[0].metrics

    # Combo B: other backbones (another checkpoint folder), other users and split, the same checkpoint_dir.
    config_b = tiny_project.write_tiny_project(tmp_path / "b", n_users=24, seed=7, epochs=1)
    settings_b = load_settings(config_b, {"features.vision_backbone": "resnet",
                                          "paths.checkpoint_dir": settings_a.paths.checkpoint_dir}).settings
    assert settings_b.features.combo != settings_a.features.combo
    run_train(settings_b)
    assert len(load_encoders(settings_a.paths.checkpoint_dir)[0]) == 25  # the shared copy is B's now

    assert run_evaluate(settings_a, write_files=False).models[0].metrics == before


def test_evaluate_refuses_a_checkpoint_trained_on_another_split(tmp_path):
    import pandas as pd
    import pytest

    from mmrec.errors import CheckpointError

    settings = load_settings(tiny_project.write_tiny_project(tmp_path, epochs=1)).settings
    run_train(settings)
    splits = Path(settings.paths.splits_dir)
    run_evaluate(settings, ["multimodal"], write_files=False)  # the split it was trained on: fine

    # A re-split: another train.csv (here: the test rows moved into train), so the checkpoint saw other rows.
    train, test = pd.read_csv(splits / "train.csv"), pd.read_csv(splits / "test.csv")
    pd.concat([train, test.iloc[:3]]).to_csv(splits / "train.csv", index=False)
    (splits / "split_files.json").unlink()  # a train.csv replaced by hand
    with pytest.raises(CheckpointError, match="another train.csv .*the split was made again since"):
        run_evaluate(settings, ["multimodal"], write_files=False)
    run_evaluate(settings, ["item_knn"], write_files=False)  # models fitted here are not checked

    # Named train data is the user's call: a note, not an error.
    named = tmp_path / "named_train.csv"
    train.iloc[:-2].to_csv(named, index=False)
    report = run_evaluate(settings, ["multimodal"], train_data=named, write_files=False)
    assert any("trained on other rows" in note and "inflated" in note for note in report.notes)


def test_a_split_made_before_the_last_preprocess_is_noted(tmp_path):
    from mmrec.data.splits import REPORT_FILE, stale_split_note
    from mmrec.data.tables import interactions_sha256, save_interactions
    from mmrec.fileio import atomic_write_json

    settings = load_settings(tiny_project.write_tiny_project(tmp_path, epochs=1)).settings
    processed, splits = Path(settings.paths.processed_dir), Path(settings.paths.splits_dir)
    import pandas as pd

    frame = pd.DataFrame({"user_id": ["u0", "u1"], "item_id": ["i0", "i1"], "timestamp": [1, 2]})
    save_interactions(frame, processed)
    atomic_write_json(splits / REPORT_FILE, {"input_interactions": 2, "input_sha256": interactions_sha256(processed)})
    assert stale_split_note(splits, processed) is None
    save_interactions(frame.iloc[:1], processed)  # preprocess ran again with other filters
    note = stale_split_note(splits, processed)
    assert note and "Run `mmrec split` again" in note and "2 interactions then" in note
    events = []
    result = run_train(settings, progress=events.append)
    assert note in result.notes
    said = [e.message for e in events if e.message]
    first_epoch = next(i for i, e in enumerate(events) if e.task == "epochs")
    assert note in [e.message for e in events[:first_epoch]] and said.count(note) == 1  # before training, once
    # Evaluate says it too, whatever it evaluates (it did only with the multimodal model).
    from mmrec.pipeline.evaluate import run_evaluate

    assert note in run_evaluate(settings, ["popularity"], write_files=False).notes


def test_a_run_that_replaces_a_better_checkpoint_says_so(tmp_path):
    config = tiny_project.write_tiny_project(tmp_path, epochs=4, item_item=False)
    first = run_train(load_settings(config).settings)
    assert not any("validated higher than this run" in note for note in first.notes)  # nothing was there before
    worse = run_train(load_settings(config, {"training.epochs": 1, "training.learning_rate": 1e-6}).settings)
    assert worse.best_metric < first.best_metric
    (note,) = [note for note in worse.notes if "validated higher than this run" in note]
    assert f"best_model.pth (ndcg@10 {first.best_metric:.4f}; this run {worse.best_metric:.4f})" in note
    assert "UTC" in note and "MMREC_PATHS__CHECKPOINT_DIR" in note
    assert "--checkpoint-name previous_best_model.pth" in note
    previous = first.best_path.with_name("previous_best_model.pth")
    assert read_meta(previous)["monitored_value"] == first.best_metric  # the better model is kept
    # Another run below the kept one: it replaces the served (worse) model, and the kept one stays. It had copied the
    # served model over the kept one first, then removed that copy, as it validated at least as high: the best model
    # of the three was gone, unsaid.
    again = run_train(load_settings(config, {"training.epochs": 1, "training.learning_rate": 1e-6}).settings)
    (note,) = [note for note in again.notes if "validated higher than this run" in note]
    assert f"best_model.pth (ndcg@10 {first.best_metric:.4f}; this run {again.best_metric:.4f})" in note
    assert read_meta(previous)["monitored_value"] == first.best_metric
    better = run_train(load_settings(config).settings)  # as good again: no note
    assert not any("validated higher than this run" in note for note in better.notes)
    assert not previous.exists() and not previous.with_suffix(".json").exists()
    train_csv = tmp_path / "splits" / "train.csv"
    train_csv.write_text("".join(train_csv.read_text().splitlines(keepends=True)[:-1]))  # another split
    (train_csv.parent / "split_files.json").unlink()  # (by hand)
    other = run_train(load_settings(config, {"training.epochs": 1, "training.learning_rate": 1e-6}).settings)
    assert not any("validated higher than this run" in note for note in other.notes)  # values of two splits do not compare


def test_a_resumed_run_keeps_its_own_finished_model_when_that_validated_higher(tmp_path):
    """Resumed with more epochs, a finished run's best is replaced by a later best epoch, whose blend can validate
    lower than the finished one's: that one is kept and named, as when another run replaces it."""
    from mmrec.checkpoints.store import load_checkpoint, save_checkpoint

    config = tiny_project.write_tiny_project(tmp_path, epochs=2, item_item=False)
    first = run_train(load_settings(config).settings)
    finished = load_checkpoint(first.best_path)
    meta = finished.pop("meta")
    higher = first.best_metric + 1.0  # as if its blend had validated higher than any later epoch will
    save_checkpoint(first.best_path, finished, {**meta, "monitored_value": higher})
    resumed = run_train(load_settings(config, {"training.epochs": 8}).settings, resume=first.last_path)
    assert resumed.best_epoch > first.best_epoch  # a later epoch replaced best_model.pth
    (note,) = [note for note in resumed.notes if "validated higher than this run" in note]
    assert f"best_model.pth (ndcg@10 {higher:.4f}; this run {resumed.best_metric:.4f})" in note
    previous = first.best_path.with_name("previous_best_model.pth")
    assert read_meta(previous)["monitored_value"] == higher and read_meta(previous)["epoch"] == first.best_epoch
    # Resumed with nothing left to train, nothing is replaced: the kept model stays as it is, and no note.
    kept = previous.read_bytes()
    again = run_train(load_settings(config, {"training.epochs": 8}).settings, resume=first.last_path)
    assert not any("validated higher than this run" in note for note in again.notes) and previous.read_bytes() == kept


def test_an_interrupted_run_keeps_the_finished_model_it_was_replacing(tmp_path):
    from mmrec.checkpoints.store import unfinished_note

    config = tiny_project.write_tiny_project(tmp_path, epochs=3, item_item=False)
    first = run_train(load_settings(config).settings)
    served = first.best_path.read_bytes()

    def stop_after_the_first_epoch(event):
        if event.task == "epochs" and event.completed == 1 and not event.done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_train(load_settings(config).settings, progress=stop_after_the_first_epoch)
    previous = first.best_path.with_name("previous_best_model.pth")
    assert previous.read_bytes() == served and read_meta(previous)["finished"] is not False
    meta = read_meta(first.best_path)
    assert meta["finished"] is False and meta["epoch"] == 1
    assert "--checkpoint-name previous_best_model.pth" in unfinished_note(meta, first.best_path)


def test_a_run_stopped_before_its_first_epoch_changes_no_checkpoint(tmp_path):
    """The finished model is copied aside when this run's first best epoch replaces it, not before: a run stopped
    before that (it says it saved nothing) left previous_best_model.pth replaced by a copy of best_model.pth, and a
    better model kept there was lost."""
    config = tiny_project.write_tiny_project(tmp_path, epochs=3, item_item=False)
    first = run_train(load_settings(config).settings)
    previous = first.best_path.with_name("previous_best_model.pth")
    previous.write_bytes(b"a better model kept by an earlier run")  # (its bytes are all this test reads)
    files = {path: path.read_bytes() for path in first.best_path.parent.glob("*_model.*")}

    def stop_at_once(event):  # at the first training step: no epoch has ended
        if event.task == "train" and not event.done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_train(load_settings(config).settings, progress=stop_at_once)
    assert {path: path.read_bytes() for path in first.best_path.parent.glob("*_model.*")} == files


def test_the_numeric_columns_a_model_trained_on_are_the_ones_it_scores_with(tmp_path):
    """A column left out for want of values is not recorded; if the data later swap which column holds values,
    scoring reads the recorded one (as missing), not the other one under its scaler (a silent shift before)."""
    import numpy as np

    from mmrec.checkpoints.spec import load_trained
    from mmrec.data.splits import load_split
    from mmrec.data.tables import load_items, save_items
    from mmrec.pipeline.evaluate import load_recommender

    settings = load_settings(tiny_project.write_tiny_project(tmp_path, epochs=1)).settings
    processed = tmp_path / "processed"
    items = load_items(processed)
    save_items(items.assign(comment_number=np.nan), processed)  # preprocess left it out: no valid value
    result = run_train(settings)
    assert load_trained(result.best_path).spec.numeric.columns == ["view_number"]
    save_items(items.assign(view_number=np.nan), processed)  # now the other column holds the values
    train = load_split(tmp_path / "splits").train
    recommender = load_recommender("multimodal", settings, load_items(processed), train, "cpu")
    recorded = recommender.scorer.catalogue.numeric[:, 0]  # view_number, missing everywhere now: one value
    assert recommender.scorer.catalogue.numeric.shape[1] == 2 and len(set(recorded.tolist())) == 1


def test_a_best_checkpoint_of_an_unfinished_run_is_flagged_where_it_is_used(tmp_path, monkeypatch):
    """best_model.pth is saved at every improving epoch, before the run chooses its blend: a run killed then (or
    still running) leaves it `finished: false`, and evaluate and recommend say so; a run that ends marks it."""
    import pytest

    from mmrec.checkpoints.store import describe_provenance, read_meta, served_model
    from mmrec.pipeline import train as train_module
    from mmrec.pipeline.recommend import run_recommend

    config = tiny_project.write_tiny_project(tmp_path, epochs=1)
    settings = load_settings(config).settings

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_blend_item_item", killed)
    with pytest.raises(KeyboardInterrupt):
        run_train(settings)
    best = next((tmp_path / "checkpoints").rglob("best_model.pth"))
    assert read_meta(best)["finished"] is False
    report = run_evaluate(settings, ["multimodal"], write_files=False)
    assert any("is from a training run that has not finished" in note for note in report.notes)
    # Every output names the checkpoint it was made with (evaluation.json, recommendations).
    named = report.checkpoints["multimodal"]
    assert named["path"] == str(best) and named["finished"] is False and named["epoch"] == 1
    assert named["sha256"] == read_meta(best)["checkpoint_sha256"] and named["created_at"]
    assert named["serves"] == "two-tower"  # killed before the blend was chosen
    assert describe_provenance(named) == "best_model.pth (epoch 1, its training run had not finished) serves two-tower"
    from mmrec.data.splits import load_split
    from mmrec.data.tables import save_interactions

    save_interactions(load_split(tmp_path / "splits").train, tmp_path / "processed")  # what recommend reads
    served = run_recommend(settings, users=["u1"], recommender_type="multimodal")
    assert any("has not finished" in note for note in served.notes)
    assert served.to_dict()["checkpoint"] == named
    monkeypatch.undo()
    run_train(settings)
    assert read_meta(best)["finished"] is True
    report = run_evaluate(settings, ["multimodal"], write_files=False)
    assert not any("has not finished" in note for note in report.notes)
    assert report.checkpoints["multimodal"]["finished"] is True
    assert report.checkpoints["multimodal"]["sha256"] == read_meta(best)["checkpoint_sha256"] != named["sha256"]
    assert report.checkpoints["multimodal"]["serves"] == served_model(read_meta(best)["item_item"])


def test_a_best_checkpoint_whose_run_left_no_last_checkpoint_is_never_resumed_with_another_runs(tmp_path,
                                                                                                 monkeypatch):
    """A finished run A, then a run B whose last_model.pth could not be written (a full disk) after its epoch-1
    best_model.pth was: last_model.pth is still A's. Resuming it finished with B's epoch-1 weights blended as A's
    run (the messy-data walkthrough: test 0.0225 vs 0.0256); the note advised exactly that resume."""
    import pytest

    from mmrec.checkpoints.store import read_meta
    from mmrec.errors import CheckpointError
    from mmrec.pipeline import train as train_module

    config = tiny_project.write_tiny_project(tmp_path, epochs=1)
    settings = load_settings(config).settings
    run_train(settings)
    best = next((tmp_path / "checkpoints").rglob("best_model.pth"))
    last = best.with_name("last_model.pth")
    first_run = read_meta(last)["run_id"]
    assert read_meta(best)["run_id"] == first_run and first_run

    save = train_module.save_checkpoint

    def disk_full_for_last(path, *args):
        if path.name == "last_model.pth":
            raise OSError(28, "No space left on device", str(path))
        return save(path, *args)

    monkeypatch.setattr(train_module, "save_checkpoint", disk_full_for_last)
    with pytest.raises(OSError):
        run_train(settings)
    monkeypatch.undo()
    assert read_meta(best)["run_id"] != first_run and read_meta(best)["finished"] is False
    served = run_evaluate(settings, ["multimodal"], write_files=False)  # by default: A's finished model
    assert served.checkpoints["multimodal"]["path"] == str(best.with_name("previous_best_model.pth"))
    assert any("has not finished (still running, or interrupted), so the model of the last finished run is served"
               in note for note in served.notes)
    notes = run_evaluate(settings, ["multimodal"], write_files=False, checkpoint_name="best_model.pth").notes
    assert any("is not from that run, so it cannot be resumed: train again" in note for note in notes)
    from mmrec.data.splits import load_split
    from mmrec.data.tables import save_interactions
    from mmrec.pipeline.recommend import run_recommend

    save_interactions(load_split(tmp_path / "splits").train, tmp_path / "processed")  # what recommend reads
    lists = run_recommend(settings, users=["u1"], recommender_type="multimodal")
    assert lists.checkpoint["path"] == served.checkpoints["multimodal"]["path"] and lists.checkpoint["finished"]
    assert any("the model of the last finished run is served" in note for note in lists.notes)
    with pytest.raises(CheckpointError, match="is from another training run than"):
        run_train(settings, resume=last)
    elsewhere = tmp_path / "elsewhere" / "last_model.pth"  # e.g. another project's folder
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(last.read_bytes())
    with pytest.raises(CheckpointError, match="is not in the folder this run writes to"):
        run_train(settings, resume=elsewhere)


def test_evaluate_says_when_the_two_tower_network_carries_none_of_the_scores(tmp_path):
    # An auditor found the "multimodal" lead was the item-item model's (weight 1): nothing in the report said so.
    from mmrec.pipeline.evaluate import run_evaluate

    config = tiny_project.write_tiny_project(tmp_path, epochs=1, item_item_blend=1.0, sequence_blend=False)
    settings = load_settings(config).settings
    run_train(settings)
    notes = run_evaluate(settings, ["multimodal"], write_files=False).notes
    assert any(note.startswith("The multimodal checkpoint serves item-item") and "carries none" in note
               for note in notes), notes


@pytest.mark.parametrize("command", ["evaluate", "recommend"])
def test_a_training_run_starting_between_the_choice_and_the_load_does_not_serve_its_first_epoch(tmp_path,
                                                                                                 monkeypatch, command):
    """A cron overlap (the production walkthrough): recommend chose best_model.pth (finished), then a retrain moved it
    to previous_best_model.pth and saved its epoch 1 there before the load read it. The epoch-1 two-tower model was
    served, exit 0, while the note said the finished model was. The loaded file now decides, and is re-chosen."""
    from mmrec.checkpoints import spec as spec_module
    from mmrec.checkpoints.store import load_checkpoint, save_checkpoint
    from mmrec.pipeline.recommend import run_recommend

    settings = load_settings(tiny_project.write_tiny_project(tmp_path, epochs=1)).settings
    run_train(settings)
    best = next((tmp_path / "checkpoints").rglob("best_model.pth"))
    finished = read_meta(best)
    real_load, loads = spec_module.load_trained, []

    def retrain_starts_first(path, device="cpu"):
        if not loads:  # what `mmrec train` does as it starts, then after its first epoch
            best.with_name("previous_best_model.pth").write_bytes(best.read_bytes())
            state = load_checkpoint(best)
            save_checkpoint(best, {key: value for key, value in state.items() if key not in ("format", "meta")},
                            {**state["meta"], "finished": False, "run_id": "the-next-night", "epoch": 1})
        loads.append(path.name)
        return real_load(path, device)

    monkeypatch.setattr(spec_module, "load_trained", retrain_starts_first)
    if command == "evaluate":
        result = run_evaluate(settings, ["multimodal"], write_files=False)
        served = result.checkpoints["multimodal"]
    else:
        from mmrec.data.splits import load_split
        from mmrec.data.tables import save_interactions

        save_interactions(load_split(tmp_path / "splits").train, tmp_path / "processed")  # what recommend reads
        result = run_recommend(settings, users=["u1"], recommender_type="multimodal")
        served = result.checkpoint
    assert loads == ["best_model.pth", "previous_best_model.pth"]
    assert served["path"] == str(best.with_name("previous_best_model.pth")) and served["finished"]
    assert served["sha256"] == finished["checkpoint_sha256"]
    assert any("the model of the last finished run is served" in note for note in result.notes)
    assert not any("has not finished (still running, or interrupted): the epoch-" in note for note in result.notes)


def test_a_training_run_ending_between_the_choice_and_the_load_serves_its_finished_model(tmp_path, monkeypatch):
    """The opposite race (a re-check walkthrough): previous_best_model.pth was chosen while best_model.pth was
    unfinished, then the run ended (best marked finished, previous removed) before the load: 'not found'."""
    from mmrec.checkpoints import spec as spec_module
    from mmrec.checkpoints.spec import load_served
    from mmrec.checkpoints.store import load_checkpoint, save_checkpoint

    settings = load_settings(tiny_project.write_tiny_project(tmp_path, epochs=1)).settings
    run_train(settings)
    best = next((tmp_path / "checkpoints").rglob("best_model.pth"))
    previous = best.with_name("previous_best_model.pth")
    previous.write_bytes(best.read_bytes())
    state = load_checkpoint(best)
    weights = {key: value for key, value in state.items() if key not in ("format", "meta")}
    save_checkpoint(best, weights, {**state["meta"], "finished": False, "run_id": "running", "epoch": 1})
    real_load, loads = spec_module.load_trained, []

    def run_ends_first(path, device="cpu"):
        if path == previous and previous.exists():
            save_checkpoint(best, weights, {**state["meta"], "finished": True, "run_id": "running", "epoch": 1})
            previous.unlink()
        loads.append(path.name)
        return real_load(path, device)

    monkeypatch.setattr(spec_module, "load_trained", run_ends_first)
    trained, note = load_served(tmp_path / "checkpoints", best.parent.name)
    assert loads == ["previous_best_model.pth", "best_model.pth"] and trained.path == best and note is None
    assert trained.meta["finished"] is True and trained.meta["run_id"] == "running"
