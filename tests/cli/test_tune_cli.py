"""`mmrec tune`: trials, timeout and study options, the best-trials table, a train-ready config, kill + resume."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from mmrec.cli.app import app
from mmrec.settings import load_settings

runner = CliRunner()
TINY = Path(__file__).resolve().parents[1] / "training" / "tiny_project.py"
TUNE = {
    "search_space": {"model.embedding_dim": {"type": "categorical", "choices": [8, 16]},
                     "training.epochs": {"type": "int", "low": 1, "high": 2}},
    "params": ["model.embedding_dim", "training.learning_rate", "training.epochs"],
    "pruner_startup_trials": 1,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(root: Path, **tune) -> Path:
    spec = importlib.util.spec_from_file_location("tiny_project_for_tune_cli", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = module.write_tiny_project(root, epochs=2)
    config = yaml.safe_load(path.read_text())
    config["tune"] = {**TUNE, **tune}
    path.write_text(yaml.safe_dump(config))
    return path


def test_tune_prints_the_best_trials_and_writes_a_config_train_accepts(tmp_path):
    config = tiny_config(tmp_path)
    result = runner.invoke(app, ["tune", "-c", str(config), "--trials", "2", "--study", "small", "--top", "1"])
    assert result.exit_code == 0, result.output
    assert "Study small: best 1 of 2 trials" in result.output and "embedding_dim=" in result.output
    best = tmp_path / "results" / "tune" / "small" / "best_config.yaml"
    assert "Selected settings:" in result.output and best.is_file()
    assert (tmp_path / "results" / "tune" / "small.db").is_file()
    assert (tmp_path / "results" / "tune" / "small" / "study.png").is_file()

    # Trial 0 ran the config's own values of the searched settings: tuning never ends below them.
    flat = " ".join(result.output.split())
    assert "The first trial runs the current settings." in flat
    assert "Or use the selected trial's model as it is: MMREC_PATHS__CHECKPOINT_DIR=" in flat
    stored = optuna.load_study(study_name="small", storage=f"sqlite:///{tmp_path}/results/tune/small.db")
    assert stored.trials[0].params == {"model.embedding_dim": 8, "training.learning_rate": 0.01, "training.epochs": 2}

    trained = runner.invoke(app, ["train", "-c", str(best)])
    assert trained.exit_code == 0, trained.output
    assert load_settings(best).settings.model.embedding_dim in (8, 16)
    # The selected settings train into the study's folder, leaving the tuned-from checkpoints alone.
    assert (tmp_path / "results" / "tune" / "small" / "checkpoints" / "efficientnet-lite_sentence-bert"
            / "best_model.pth").is_file()
    assert not (tmp_path / "checkpoints" / "efficientnet-lite_sentence-bert").exists()


def test_timeout_stops_starting_trials(tmp_path):
    config = tiny_config(tmp_path)
    result = runner.invoke(app, ["tune", "-c", str(config), "--trials", "50", "--timeout", "1"])
    assert result.exit_code == 0, result.output
    stored = optuna.load_study(study_name="mmrec", storage=f"sqlite:///{tmp_path}/results/tune/mmrec.db")
    assert 1 <= len(stored.trials) < 50
    assert f"ended the study after {len(stored.trials)} of 50 trials" in " ".join(result.output.split())
    # Trials whose checkpoints tune.keep_checkpoints=best removed name no folder in summary.json.
    summary = json.loads((tmp_path / "results" / "tune" / "mmrec" / "summary.json").read_text())
    assert all(t["folder"] is None or Path(t["folder"]).is_dir() for t in summary["trials"])


@pytest.mark.parametrize("tune, expected", [
    ({"search_space": {"model.embedding_size": {"type": "int", "low": 8, "high": 16}}}, "unknown setting"),
    ({"search_space": {"training.learning_rate": {"type": "float", "low": 0.1, "high": 0.01}}}, "low < high"),
    ({"search_space": {"paths.cache_dir": {"type": "categorical", "choices": ["a"]}}}, "cannot search"),
    ({"params": ["model.not_searched"]}, "tune.params names model.not_searched"),
])
def test_bad_search_space_exits_2(tmp_path, tune, expected):
    result = runner.invoke(app, ["tune", "-c", str(tiny_config(tmp_path, **tune))], terminal_width=200)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "ConfigError" in result.output and expected in flat


def test_study_name_must_be_a_plain_file_name(tmp_path):
    result = runner.invoke(app, ["tune", "-c", str(tiny_config(tmp_path)), "--study", "../outside"])
    assert result.exit_code == 2 and "study_name" in result.output


def test_a_study_file_that_is_not_a_study_exits_2_and_is_left_alone(tmp_path):
    config = tiny_config(tmp_path)
    (tmp_path / "results" / "tune").mkdir(parents=True)
    garbage = tmp_path / "results" / "tune" / "bad.db"
    garbage.write_text("not a database\n")
    result = runner.invoke(app, ["tune", "-c", str(config), "--study", "bad"], terminal_width=200)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "cannot be opened as an Optuna study" in flat, result.output
    assert garbage.read_text() == "not a database\n"


def test_a_killed_tune_resumes_from_its_stored_trials(tmp_path):
    """SIGKILL `mmrec tune` once a trial has finished; the rerun keeps that trial and completes the study."""
    config = tiny_config(tmp_path, pruner_startup_trials=10)
    storage = f"sqlite:///{tmp_path}/results/tune/mmrec.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                         os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "mmrec", "tune", "-c", str(config), "--trials", "3"],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    second = tmp_path / "results" / "tune" / "mmrec" / "trial_1"  # appears once trial 0 has finished
    deadline = time.monotonic() + 120
    while not second.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    if not second.exists():
        process.kill()
        pytest.fail(f"mmrec tune did not reach trial 1: {process.stderr.read().decode()[-2000:]}")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (tmp_path / "results" / "tune" / "mmrec.lock").is_file()  # a killed run leaves its lock behind
    before = {t.number: t.value for t in optuna.load_study(study_name="mmrec", storage=storage).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))}
    assert before and len(before) < 3

    result = runner.invoke(app, ["tune", "-c", str(config), "--trials", "3"])
    assert result.exit_code == 0, result.output
    assert f"Resumed study 'mmrec' with {len(before)} finished" in result.output
    after = optuna.load_study(study_name="mmrec", storage=storage).trials
    assert {t.number: t.value for t in after if t.number in before} == before  # kept, not retrained
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in after) == 3


def test_ctrl_c_says_the_study_keeps_its_trials(tmp_path, monkeypatch):
    import mmrec.pipeline.train as train_module

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "prepare_training", ctrl_c)  # inside the first trial
    result = runner.invoke(app, ["tune", "-c", str(tiny_config(tmp_path)), "--trials", "2"], terminal_width=250)
    flat = " ".join(result.output.replace("│", "").split())
    assert result.exit_code == 130 and "Tuning was interrupted; the study keeps its finished trials" in flat
    assert "Traceback" not in result.output and "Run the same command again to continue it" in flat
