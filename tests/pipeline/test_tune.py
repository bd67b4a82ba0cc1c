"""run_tune: an Optuna study of real training runs on validation, stored in SQLite and resumable."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from mmrec.errors import ConfigError, DataError
from mmrec.pipeline.train import run_train
from mmrec.pipeline.tune import PER_USER_FILE, run_tune, select_trial, selected_values, train_trial, with_values
from mmrec.pipeline.tune_study import TrialSummary
from mmrec.progress import ProgressEvent, null_progress
from mmrec.settings import load_settings

_spec = importlib.util.spec_from_file_location(
    "tiny_project_for_tune", Path(__file__).resolve().parents[1] / "training" / "tiny_project.py")
_tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tiny)
write_tiny_project = _tiny.write_tiny_project

# A tiny space: 2-3 trials of 1-2 epochs each take a few seconds.
TINY_SPACE = {
    "model.embedding_dim": {"type": "categorical", "choices": [8, 16]},
    "training.epochs": {"type": "int", "low": 1, "high": 2},
}
TINY_PARAMS = ["model.embedding_dim", "training.learning_rate", "model.id_dropout", "training.epochs"]


def tiny_settings(root: Path, **tune):
    config = write_tiny_project(root, epochs=2)
    overrides = {"tune.search_space": TINY_SPACE, "tune.params": TINY_PARAMS, "tune.n_trials": 3,
                 "tune.pruner_startup_trials": 1, **{f"tune.{k}": v for k, v in tune.items()}}
    return load_settings(config, overrides).settings, config


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A finished 3-trial study on a project whose test split file was deleted first."""
    previous = torch.get_num_threads()  # module scope: set up before the per-test one_torch_thread
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tune")
    settings, config = tiny_settings(root)
    (root / "splits" / "test.csv").unlink()  # tuning must not need (or read) test data
    events: list[ProgressEvent] = []
    try:
        result = run_tune(settings, progress=events.append)
    finally:
        torch.set_num_threads(previous)
    return root, settings, config, result, events


def test_study_is_stored_in_sqlite_and_every_trial_is_a_real_training_run(tuned):
    root, settings, _, result, events = tuned
    assert result.storage == root / "results" / "tune" / "mmrec.db" and result.storage.is_file()
    stored = optuna.load_study(study_name="mmrec", storage=f"sqlite:///{result.storage}")
    assert len(stored.trials) == 3 and sum(result.counts().get(s, 0) for s in ("COMPLETE", "PRUNED")) == 3
    assert set(result.best.params) == set(TINY_PARAMS)
    for trial in result.trials:  # one "epochs" event per epoch trained, reported to the pruner
        assert stored.trials[trial.number].intermediate_values
        if trial.state == "COMPLETE":
            assert trial.attrs["epochs_run"] == trial.params["training.epochs"]
    assert [e.completed for e in events if e.task == "trials" and not e.done] == [1, 2, 3]
    assert not (root / "results" / "tune" / "mmrec.lock").exists()


def test_best_trial_is_reproduced_by_a_plain_train_run_of_its_settings(tuned):
    root, settings, _, result, _ = tuned
    view = root / "results" / "tune" / "mmrec" / "split"  # the split's own test.csv was deleted
    again = run_train(with_values(settings, {**result.best.params, "paths.checkpoint_dir": root / "again",
                                             "paths.splits_dir": view}), per_user=True)
    assert again.item_item["monitored"] == pytest.approx(result.best.value)
    assert again.best_metric == pytest.approx(result.best.attrs["two_tower"])
    # The per-user values the selection compares are the final model's: their mean is the objective.
    assert again.val_per_user.mean() == pytest.approx(result.best.value)
    stored = np.load(Path(result.best.attrs["folder"]) / PER_USER_FILE, allow_pickle=False)
    assert np.allclose(stored, again.val_per_user)


def test_best_settings_yaml_loads_as_a_train_config(tuned):
    root, settings, _, result, _ = tuned
    assert result.best_config == root / "results" / "tune" / "mmrec" / "best_config.yaml"
    loaded = load_settings(result.best_config).settings  # the loader `mmrec train -c` uses
    for name, value in selected_values(settings, result.best).items():
        section, _, key = name.partition(".")
        assert getattr(getattr(loaded, section), key) == value
    # The user's folders, not a trial's; checkpoints and evaluation results in the study's own folder (the
    # tuned-from ones stay).
    own = {"checkpoint_dir": settings.paths.checkpoint_dir, "results_dir": settings.paths.results_dir}
    assert loaded.paths.model_copy(update=own) == settings.paths
    assert Path(loaded.paths.checkpoint_dir) == root / "results" / "tune" / "mmrec" / "checkpoints"
    assert Path(loaded.paths.results_dir) == root / "results" / "tune" / "mmrec" / "results"
    assert loaded.model.use_vision is False and loaded.training.device == "cpu"


def test_plot_and_summary_are_written(tuned):
    _, _, _, result, _ = tuned
    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(result.summary.read_text())
    assert summary["best"]["number"] == result.best.number and summary["best"]["value"] == result.best.value
    assert summary["monitor"] == "ndcg@10" and len(summary["trials"]) == 3
    assert set(summary["search_space"]) == set(TINY_PARAMS)
    complete = sum(t.state == "COMPLETE" for t in result.trials)  # few trials: the importances are flagged rough
    assert complete < 2 or any(f"importances rest on {complete} complete trials" in n
                               or "importances cannot be told apart" in n for n in result.notes), result.notes


def test_trials_never_touch_the_users_checkpoints_and_only_the_candidates_keep_their_own(tuned):
    root, _, _, result, _ = tuned
    assert not (root / "checkpoints").exists()
    study_dir = root / "results" / "tune" / "mmrec"
    kept = sorted(int(p.parents[2].name.split("_")[1]) for p in study_dir.glob("trial_*/checkpoints/*/best_model.pth"))
    assert result.best.number in kept and result.top.number in kept and set(kept) <= set(result.tied)
    summary = json.loads(result.summary.read_text())
    assert summary["best_value_trial"] == result.top.number and summary["tied_with_best_value"] == result.tied


def test_test_split_is_never_read(tuned):
    root, _, _, _, _ = tuned
    assert not (root / "splits" / "test.csv").exists()  # deleted before tuning; the study still ran
    view = root / "results" / "tune" / "mmrec" / "split" / "test.csv"
    assert view.read_text().count("\n") == 1  # header only


def test_a_finished_study_reruns_nothing_and_a_changed_monitor_is_refused(tuned):
    _, settings, _, result, _ = tuned
    again = run_tune(settings)
    assert again.resumed_with == 3 and len(again.trials) == 3 and again.best.number == result.best.number
    assert any("already holds 3 finished trial(s), and --trials 3 counts the study's trials in all" in note
               for note in again.notes)
    with pytest.raises(ConfigError, match="different training.monitor;"):
        run_tune(with_values(settings, {"training.monitor": "recall@5"}))
    # Other base settings (here the dropout, not searched) would mix trials trained on different things.
    with pytest.raises(ConfigError, match="different base settings \\(model.dropout 0.0 -> 0.2\\)"):
        run_tune(with_values(settings, {"model.dropout": 0.2}))
    # A setting the study searched and this run fixes reads "searched", not None.
    with pytest.raises(ConfigError, match="model.id_dropout searched -> 0.1"):
        run_tune(with_values(settings, {"tune.params": [p for p in TINY_PARAMS if p != "model.id_dropout"]}))
    # A changed range is named too (it only said "a different search space").
    wider = {**TINY_SPACE, "training.epochs": {"type": "int", "low": 1, "high": 3}}
    with pytest.raises(ConfigError, match="different search space \\(training.epochs .*low 1, high 2.* -> .*high 3"):
        run_tune(with_values(settings, {"tune.search_space": wider}))
    assert run_tune(with_values(settings, {"training.device": "cpu", "features.num_workers": 0})).resumed_with == 3
    # A study an older mmrec started lacks the settings added since: at their defaults they are no difference (an
    # upgrade made every study fail with "data.encoding searched -> 'utf-8'").
    root = Path(settings.paths.results_dir) / "tune"
    study = optuna.load_study(study_name="mmrec", storage=f"sqlite:///{root / 'mmrec.db'}")
    record = study.user_attrs["mmrec"]
    study.set_user_attr("mmrec", {**record, "settings": {k: v for k, v in record["settings"].items()
                                                         if k != "data.encoding"}})
    assert run_tune(settings).resumed_with == 3
    with pytest.raises(ConfigError, match="data.encoding 'utf-8' -> 'cp1252'"):  # the study ran with the default
        run_tune(with_values(settings, {"data.encoding": "cp1252"}))


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit], ids=["ctrl-c", "killed"])
def test_an_interrupted_study_continues_from_its_stored_trials(tmp_path, stop):
    """Ctrl-C fails the running trial; a kill (SystemExit escapes Optuna) leaves it RUNNING. Both resume."""
    settings, _ = tiny_settings(tmp_path, n_trials=3, pruner_startup_trials=5)
    epochs = {"seen": 0}

    def interrupt_in_second_trial(event: ProgressEvent) -> None:
        if event.task == "epochs" and not event.done:
            epochs["seen"] += 1
            first_trial_epochs = optuna.load_study(study_name="mmrec", storage=storage).trials[0].params[
                "training.epochs"]
            if epochs["seen"] > first_trial_epochs:
                raise stop()

    storage = f"sqlite:///{tmp_path / 'results' / 'tune' / 'mmrec.db'}"
    with pytest.raises(stop):
        run_tune(settings, progress=interrupt_in_second_trial)
    before = optuna.load_study(study_name="mmrec", storage=storage).trials
    assert [t.state.name for t in before] == ["COMPLETE", "FAIL" if stop is KeyboardInterrupt else "RUNNING"]

    result = run_tune(settings)
    after = {t.number: t for t in result.trials}
    assert result.resumed_with == 1 and result.retried == [1]
    assert after[0].value == before[0].value  # kept, not retrained
    assert after[1].state == "FAIL" and after[2].params == before[1].params  # the interrupted trial, again
    assert result.counts()["INTERRUPTED"] == 1 and "FAIL" not in result.counts()  # not reported as a failure
    summary = json.loads(result.summary.read_text())
    assert [t["state"] for t in summary["trials"]][1] == "INTERRUPTED" == after[1].shown_state  # named alike
    assert sum(t.state in ("COMPLETE", "PRUNED") for t in result.trials) == 3 and len(result.trials) == 4
    assert after[3].params != after[0].params  # the resumed sampler does not redraw the first run's values


def test_a_killed_baseline_is_retried_as_the_baseline(tmp_path):
    from mmrec.pipeline.tune_study import retry_interrupted

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s", direction="maximize")
    study.enqueue_trial({"x": 1.0}, user_attrs={"baseline": True, "baseline_changes": ""})
    killed = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 2.0)})  # left RUNNING, as a kill leaves it
    assert killed.params == {"x": 1.0}
    left = tmp_path / "s" / "trial_0" / "checkpoints"
    left.mkdir(parents=True)
    (left / "last_model.pth").write_bytes(b"half a training run")
    assert retry_interrupted(study, tmp_path / "s") == [0]
    retry = study.get_trials(deepcopy=False)[1]
    assert retry.user_attrs == {"retry_of": 0, "baseline": True, "baseline_changes": ""}
    assert not (tmp_path / "s" / "trial_0").exists()  # what the killed trial left: its retry trains afresh


def test_same_seed_gives_the_same_study(tmp_path):
    settings, _ = tiny_settings(tmp_path, n_trials=2)
    first = run_tune(settings)
    second = run_tune(with_values(settings, {"tune.study_name": "again"}))
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert [t.value for t in first.trials] == pytest.approx([t.value for t in second.trials])


def test_train_trial_reports_each_epoch_and_prunes(tmp_path):
    settings, _ = tiny_settings(tmp_path)
    kept = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = kept.ask()
    value, attrs, per_user = train_trial(settings, trial, null_progress)
    frozen = kept.trials[0]
    assert sorted(frozen.intermediate_values) == [1, 2] and attrs["epochs_run"] == 2
    assert per_user.mean() == pytest.approx(value)
    assert value >= attrs["two_tower"] == max(frozen.intermediate_values.values())

    pruning = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    with pytest.raises(optuna.TrialPruned):
        train_trial(with_values(settings, {"paths.checkpoint_dir": tmp_path / "p"}), pruning.ask(), null_progress)
    assert list(pruning.trials[0].intermediate_values) == [1]  # stopped after the first validation


def test_invalid_space_for_the_base_settings_and_empty_validation_are_refused(tmp_path):
    settings, _ = tiny_settings(tmp_path)  # num_heads 2
    odd = with_values(settings, {"tune.search_space": {"model.embedding_dim": {"type": "categorical",
                                                                               "choices": [8, 9]}}})
    with pytest.raises(ConfigError, match="embedding_dim"):
        run_tune(odd)
    val = tmp_path / "splits" / "val.csv"
    val.write_text(val.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match="validation split"):
        run_tune(with_values(settings, {"training.holdout_ratio": 0.0}))


def test_an_empty_validation_split_is_carved_out_of_train_in_every_trial(tmp_path):
    settings, _ = tiny_settings(tmp_path, n_trials=2)
    val = tmp_path / "splits" / "val.csv"
    val.write_text(val.read_text().splitlines()[0] + "\n")
    result = run_tune(settings)
    assert len(result.trials) == 2 and all(t.value is not None and t.value > 0 for t in result.trials)
    val.unlink()  # a hand-made train/test split without val.csv: the same
    again = run_tune(with_values(settings, {"tune.study_name": "no-val-file"}))
    assert [t.value for t in again.trials] == [t.value for t in result.trials]
    # Without a holdout the empty validation is refused before anything of the study is written.
    results = Path(settings.paths.results_dir)
    before = sorted(results.rglob("*"))
    with pytest.raises(DataError, match="is empty: tuning chooses on validation"):
        run_tune(with_values(settings, {"tune.study_name": "refused", "training.holdout_ratio": 0.0}))
    assert sorted(results.rglob("*")) == before
    if not torch.cuda.is_available():  # a device this machine lacks: refused before the study exists either
        from mmrec.errors import DeviceError

        with pytest.raises(DeviceError):
            run_tune(with_values(settings, {"tune.study_name": "no-gpu", "training.device": "cuda"}))
        assert sorted(results.rglob("*")) == before


def test_tune_refuses_torchrun(tmp_path, monkeypatch):
    settings, _ = tiny_settings(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="not under torchrun"):
        run_tune(settings)


def test_a_live_process_lock_is_refused_and_a_dead_ones_taken_over(tmp_path):
    from mmrec.fileio import ProcessLock

    lock = tmp_path / "s.lock"
    lock.write_text(str(os.getppid()))  # a live process that is not us
    with pytest.raises(ConfigError, match=f"Study 's' is busy \\(process {os.getppid()}, lock "):
        with ProcessLock(lock, "Study 's' is busy", "wait"):
            pass
    lock.write_text("999999999")  # no such process: a killed run's lock
    with ProcessLock(lock, "Study 's' is busy", "wait"):
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def _trial(root: Path, number: int, per_user: np.ndarray | None, seconds: float, state: str = "COMPLETE"):
    folder = root / f"trial_{number}"
    folder.mkdir()
    if per_user is not None:
        np.save(folder / PER_USER_FILE, per_user)
    value = float(per_user.mean()) if per_user is not None else 0.1
    return TrialSummary(number, state, value if state == "COMPLETE" else None, {}, 1,
                        {"folder": str(folder), "seconds": seconds})


def test_selection_takes_the_fastest_trial_tied_with_the_best_user_by_user(tmp_path):
    rng = np.random.default_rng(0)
    best = rng.uniform(0.0, 1.0, 2000)
    noise = rng.normal(0.0, 0.2, 2000)
    trials = [
        _trial(tmp_path, 0, best, seconds=100.0),
        _trial(tmp_path, 1, best + noise - noise.mean() - 0.001, seconds=40.0),  # 0.001 below: within noise
        _trial(tmp_path, 2, best + (noise - noise.mean()) / 2 - 0.05, seconds=10.0),  # ~20 SE below: a real loss
        _trial(tmp_path, 3, best + noise - noise.mean() - 0.002, seconds=30.0, state="PRUNED"),
        _trial(tmp_path, 4, None, seconds=5.0),  # no per-user values: never a tie
    ]
    chosen, top, tied = select_trial(trials, within_se=1.0)
    assert top.number == 0 and tied == [0, 1] and chosen.number == 1
    chosen, top, tied = select_trial(trials, within_se=0.0)  # 0: the best value, whatever it cost
    assert chosen.number == top.number == 0 and tied == [0]
    # A far larger deficit needs far more standard errors before it counts as a tie.
    chosen, _, tied = select_trial(trials, within_se=1e6)
    assert tied == [0, 1, 2] and chosen.number == 2
    assert select_trial([], 1.0) == (None, None, [])


def test_the_tie_break_counts_cpu_time_not_the_time_other_processes_held_the_cores(tmp_path):
    """Trial 1 waited on a busy machine (more wall time) but did less work: the cheaper trial is kept,
    so a rerun of the study under another load keeps the same one."""
    rng = np.random.default_rng(1)
    per_user, noise = rng.uniform(0.0, 1.0, 500), rng.normal(0.0, 0.2, 500)
    close = per_user + noise - noise.mean() - 1e-4  # below the best by far less than a standard error
    best, waited = _trial(tmp_path, 0, per_user, seconds=50.0), _trial(tmp_path, 1, close, seconds=90.0)
    best.attrs["cpu_seconds"], waited.attrs["cpu_seconds"] = 48.0, 30.0
    chosen, top, tied = select_trial([best, waited], within_se=1.0)
    assert top.number == 0 and tied == [0, 1] and chosen.number == 1


def test_the_first_trial_is_the_current_settings_where_the_space_holds_them():
    from mmrec.pipeline.tune import enqueue_current_settings
    from mmrec.settings import SearchDimension

    assert SearchDimension(type="int", low=0, high=50, step=10).contains(20)
    assert not SearchDimension(type="int", low=0, high=50, step=10).contains(25)
    assert not SearchDimension(type="float", low=1e-8, high=1e-2, log=True).contains(0.0)
    assert SearchDimension(type="categorical", choices=[0, 10]).contains(10)
    # Outside the range: the nearest value it holds (clamped, put on the step); a stray choice: none.
    assert SearchDimension(type="float", low=1e-8, high=1e-2, log=True).nearest(0.0) == 1e-8
    assert SearchDimension(type="int", low=5, high=30).nearest(4) == 5
    assert SearchDimension(type="int", low=0, high=50, step=10).nearest(57) == 50
    assert SearchDimension(type="int", low=0, high=50, step=10).nearest(24) == 20
    assert SearchDimension(type="categorical", choices=[0, 10]).nearest(5) is None
    with pytest.raises(ValueError, match="an int dimension needs low < high, got low=5, high=5"):  # as written
        SearchDimension(type="int", low=5, high=5)
    settings = load_settings(None, {"training.weight_decay": 0.0, "training.learning_rate": 0.002,
                                    "training.epochs": 4, "training.history_refresh_steps": 5}).settings
    space = settings.tune.space()
    study = optuna.create_study(direction="maximize")
    note = enqueue_current_settings(study, settings, space)
    assert ("moved into the search space: training.weight_decay 0.0 -> 1e-08, training.epochs 4 -> 5; "
            "drawn, not among the choices: training.history_refresh_steps=5") in note
    trial = study.ask()
    assert trial.user_attrs["baseline"] and trial.suggest_float("training.learning_rate", 1e-4, 1e-2, log=True) == 0.002
    assert trial.suggest_float("training.weight_decay", 1e-8, 1e-2, log=True) == 1e-8
    assert trial.suggest_int("training.epochs", 5, 30) == 5
    assert "training.history_refresh_steps" not in trial.params


def test_a_one_trial_study_does_not_claim_it_searched(tmp_path):
    settings, _ = tiny_settings(tmp_path, n_trials=1)
    result = run_tune(settings)
    assert any("study started from" in note and "no other trial has finished yet, so nothing was searched" in note
               for note in result.notes), result.notes


def test_the_selected_settings_train_to_the_trials_best_epoch_unless_the_schedule_spans_the_epochs():
    settings = load_settings(None, {"training.epochs": 20}).settings
    trial = TrialSummary(3, "COMPLETE", 0.2, {"training.epochs": 30, "model.dropout": 0.1}, 15,
                         {"best_epoch": 10, "epochs_run": 15})
    assert selected_values(settings, trial) == {"training.epochs": 10, "model.dropout": 0.1}
    no_epochs = TrialSummary(3, "COMPLETE", 0.2, {"model.dropout": 0.1}, 15, {"best_epoch": 10})
    assert selected_values(settings, no_epochs) == {"model.dropout": 0.1, "training.epochs": 10}  # base: 20
    last = TrialSummary(3, "COMPLETE", 0.2, {"training.epochs": 10}, 10, {"best_epoch": 10})
    assert selected_values(settings, last) == {"training.epochs": 10}  # it never ran past its best
    for scheduler in ("cosine", "onecycle"):  # the learning rate's curve spans training.epochs: keep them
        assert selected_values(with_values(settings, {"training.scheduler": scheduler}), trial)["training.epochs"] == 30
    assert selected_values(settings, TrialSummary(3, "COMPLETE", 0.2, {"training.epochs": 30}, 15, {})) == {
        "training.epochs": 30}


def test_training_fewer_epochs_trains_the_same_first_epochs(tmp_path):
    """What cutting best_config.yaml's epochs to the best one relies on (constant learning rate): the first
    epochs of a longer run are the epochs of a run that stops there, so the best epoch's model is the same."""
    config = write_tiny_project(tmp_path, epochs=3)
    base = load_settings(config, {"training.patience": 10}).settings
    long = run_train(with_values(base, {"paths.checkpoint_dir": tmp_path / "long"}))
    short = run_train(with_values(base, {"training.epochs": 2, "paths.checkpoint_dir": tmp_path / "short"}))
    assert len(long.history) == 3 and len(short.history) == 2
    for a, b in zip(long.history[:2], short.history, strict=True):
        assert a.loss == pytest.approx(b.loss, rel=1e-6) and a.val == pytest.approx(b.val, rel=1e-6)


def test_the_study_plot_rings_the_selected_trial(tmp_path, monkeypatch):
    import matplotlib.axes

    from mmrec.pipeline.tune_report import plot_study
    from mmrec.pipeline.tune_study import TrialSummary

    labels: list[str] = []
    scatter = matplotlib.axes.Axes.scatter
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter",
                        lambda self, *a, **k: labels.append(k.get("label")) or scatter(self, *a, **k))
    study = optuna.create_study(direction="maximize")
    trials = [TrialSummary(0, "COMPLETE", 0.30, {}, 3), TrialSummary(1, "COMPLETE", 0.31, {}, 3)]
    path, _ = plot_study(study, trials, "ndcg@10", tmp_path / "study.png", selected=0)
    assert path.is_file() and "selected (best_config.yaml)" in labels
    labels.clear()
    plot_study(study, trials, "ndcg@10", tmp_path / "again.png")
    assert "selected (best_config.yaml)" not in labels


def test_a_moved_study_reads_its_own_trial_folders(tmp_path):
    # The study records each trial's folder as an absolute path: after `cp -r` of the project, per-user values
    # came from the old place (and the selection changed once it was gone).
    import optuna

    from mmrec.pipeline.tune_study import summarize_trials

    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.set_user_attr("folder", "/old/project/results/tune/k1/trial_0")
    study.tell(trial, 0.5)
    (summary,) = summarize_trials(study, tmp_path / "k1")
    assert summary.attrs["folder"] == str(tmp_path / "k1" / "trial_0")


def test_the_process_one_off_costs_are_paid_before_any_trial_is_timed(tmp_path):
    # The first optimizer built imports torch._dynamo (~2 s of CPU): the baseline trial paid it alone, so a tie
    # with it always went to a later trial "as cheaper".
    import subprocess
    import sys

    settings, _ = tiny_settings(tmp_path)
    code = ("import sys; from mmrec.settings import load_settings; from mmrec.pipeline.tune import warm_up; "
            f"warm_up(load_settings(None, {{'paths.processed_dir': {str(settings.paths.processed_dir)!r}}}).settings); "
            "print(all(m in sys.modules for m in ('torch._dynamo', 'mmrec.features.item_features', "
            "'pyarrow.parquet')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_a_later_trial_of_the_starting_settings_says_the_search_found_nothing_better(tmp_path):
    # Every trial the same settings: the tie went by CPU-time noise to a later trial, and the note that the search
    # found nothing better was missing; Optuna's warning about equal importances was printed raw.
    settings, _ = tiny_settings(tmp_path, n_trials=3, params=["model.embedding_dim"],
                                search_space={"model.embedding_dim": {"type": "categorical", "choices": [8]}})
    result = run_tune(settings)
    assert len({tuple(sorted(t.params.items())) for t in result.trials}) == 1
    said = " ".join(result.notes)
    if result.best.number == 0:
        assert "is the settings the study started from" in said
    else:
        assert f"Trial {result.best.number} ran the same settings as trial 0" in said and "nothing better" in said
    assert "Parameter importances cannot be told apart on these trials" in said


def test_a_trial_whose_training_diverges_fails_and_the_search_goes_on(tmp_path):
    """A learning rate that diverges stopped the whole study (exit 2, naming neither the trial nor its values), and a
    rerun drew new values until it hit it again."""
    settings, _ = tiny_settings(tmp_path, n_trials=3, params=["training.learning_rate"], search_space={
        "training.learning_rate": {"type": "categorical", "choices": [0.01, 1e30]}})
    settings = with_values(settings, {"training.grad_clip": None})
    events: list[ProgressEvent] = []
    result = run_tune(settings, progress=events.append)
    states = {t.number: t.shown_state for t in result.trials}
    diverged = [t for t in result.trials if t.shown_state == "DIVERGED"]
    assert diverged and all(t.params["training.learning_rate"] == 1e30 for t in diverged)
    assert "Training loss became" in diverged[0].attrs["diverged"]
    assert len(result.trials) == 3 and result.best is not None and "COMPLETE" in states.values()  # went on
    assert any(e.message and "failed: Training loss became" in e.message for e in events)
    again = run_tune(settings)  # a diverged trial counts: nothing left to run, none retried
    assert len(again.trials) == 3 and not again.retried


def test_a_backbone_the_space_can_draw_must_have_its_weights_before_any_training(tmp_path, monkeypatch):
    """A study drawing a backbone whose weights are missing trained its first trials, then stopped at that draw."""
    from mmrec.errors import WeightsNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-cache"))
    settings, _ = tiny_settings(tmp_path, params=["features.vision_backbone"], search_space={
        "features.vision_backbone": {"type": "categorical", "choices": ["efficientnet-lite", "resnet"]}})
    with pytest.raises(WeightsNotFoundError, match="resnet"):
        run_tune(settings)
    assert not (tmp_path / "results" / "tune" / "mmrec").exists() or not any(
        (tmp_path / "results" / "tune" / "mmrec").glob("trial_*"))


def test_a_ctrl_c_while_optuna_stores_a_trial_is_an_interrupt(tmp_path, monkeypatch):
    """Optuna raised its own error while handling a Ctrl-C that landed as it stored a trial: a traceback, exit 1."""
    from optuna.study import _optimize

    settings, _ = tiny_settings(tmp_path, n_trials=2)
    real_tell = _optimize._tell_with_warning

    def tell_then_interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise UnboundLocalError("cannot access local variable 'updated_state'")  # as Optuna's handler did

    monkeypatch.setattr(_optimize, "_tell_with_warning", tell_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_tune(settings)
    monkeypatch.setattr(_optimize, "_tell_with_warning", real_tell)


def test_an_interrupted_first_trial_is_not_named_as_the_starting_settings_another_trial_repeated(tmp_path):
    """The retry of an interrupted first trial is the starting settings' trial: the note that a later trial "ran the
    same settings as trial 0 ... selected by its fit time" named the interrupted one, which never finished."""
    settings, _ = tiny_settings(tmp_path, n_trials=2, fastest_within_se=0.0)

    def stop_in_the_first_epoch(event: ProgressEvent) -> None:
        if event.task == "train" and not event.done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tune(settings, progress=stop_in_the_first_epoch)
    result = run_tune(settings)
    assert result.retried == [0]
    assert not any("ran the same settings as trial 0" in note for note in result.notes), result.notes


def test_a_study_started_over_sets_the_earlier_studys_files_aside(tmp_path):
    """Deleting the .db to start over (as the hint says) left the old best_config.yaml, summary and trial folders,
    describing trials the new study does not hold (train -c best_config.yaml trained another study's settings)."""
    settings, _ = tiny_settings(tmp_path, n_trials=1)
    first = run_tune(settings)
    study_dir = first.study_dir
    (tmp_path / "results" / "tune" / "mmrec.db").unlink()
    second = run_tune(settings)
    (aside,) = study_dir.glob("earlier-*")
    assert (aside / "best_config.yaml").is_file() and (aside / "summary.json").is_file()
    assert any("starts afresh" in note and str(aside) in note for note in second.notes)
    assert json.loads(second.summary.read_text())["best"]["number"] == 0 and (study_dir / "best_config.yaml").is_file()


def test_a_changed_selection_says_the_model_trained_from_the_earlier_one_is_stale(tmp_path):
    from mmrec.pipeline.tune import _stale_selection_note

    (tmp_path / "summary.json").write_text(json.dumps({"best": {"number": 3}}))
    assert _stale_selection_note(tmp_path, 0) is None  # no model trained from best_config.yaml
    (tmp_path / "checkpoints").mkdir()
    note = _stale_selection_note(tmp_path, 0)
    assert note and "now selects trial 0 (it selected trial 3)" in note and "mmrec train -c best_config.yaml" in note
    assert _stale_selection_note(tmp_path, 3) is None
