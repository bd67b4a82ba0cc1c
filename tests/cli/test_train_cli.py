import importlib.util
import os
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mmrec.cli.app import app

runner = CliRunner()
TINY = Path(__file__).resolve().parents[1] / "training" / "tiny_project.py"


def write_tiny_project(root, **kwargs):
    spec = importlib.util.spec_from_file_location("tiny_project_for_train_cli", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_tiny_project(root, **kwargs)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    return root, write_tiny_project(root, epochs=2)


def test_train_writes_organized_checkpoints_and_a_summary(project):
    root, config = project
    result = runner.invoke(app, ["train", "-c", str(config), "--device", "cpu", "--epochs", "2",
                                 "--batch_size", "16", "--lr", "0.01"])
    assert result.exit_code == 0, result.output
    assert "Best val ndcg@10" in result.output and "inter/s" in result.output
    # The summary accounts for the whole blend search, not only the fit (70 of 811 s were unaccounted for).
    assert "the whole blend search" in " ".join(result.output.split())
    folder = root / "checkpoints" / "efficientnet-lite_sentence-bert"
    assert sorted(p.name for p in folder.iterdir()) == ["best_model.json", "best_model.pth", "item_item",
                                                         "last_model.json", "last_model.pth"]
    assert len(list((folder / "item_item").glob("*.safetensors"))) == 1  # the fit evaluate/recommend reuse
    assert (root / "checkpoints" / "encoders" / "user_encoder.json").is_file()
    state = torch.load(folder / "last_model.pth", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2


def test_resume_a_finished_run_trains_no_further(project):
    root, config = project
    last = root / "checkpoints" / "efficientnet-lite_sentence-bert" / "last_model.pth"
    result = runner.invoke(app, ["train", "-c", str(config), "--epochs", "2", "--batch_size", "16", "--resume",
                                 str(last)], terminal_width=200)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "no epoch is left to train" in flat
    assert flat.count("Resumed from") == 1  # shown while running, not repeated among the closing notes


def test_resume_an_early_stopped_run_says_why_nothing_trains(tmp_path):
    import yaml

    config = write_tiny_project(tmp_path, epochs=30)
    values = yaml.safe_load(config.read_text())
    values["training"].update(patience=1, learning_rate=1e-9)  # no improvement: stops after one bad epoch
    config.write_text(yaml.safe_dump(values))
    first = runner.invoke(app, ["train", "-c", str(config)], terminal_width=200)
    assert first.exit_code == 0, first.output
    assert "early-stopped" in first.output
    last = tmp_path / "checkpoints" / "efficientnet-lite_sentence-bert" / "last_model.pth"
    best = last.with_name("best_model.pth")
    written = best.stat().st_mtime_ns
    result = runner.invoke(app, ["train", "-c", str(config), "--resume", str(last)], terminal_width=200)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "Early stopping had ended that run" in flat and "raise training.patience" in flat
    assert "no epoch trained in this run" in flat and "0 inter/s" not in flat
    # Nothing trained: the recorded blend stands, best_model.pth is not rewritten.
    assert "the item-item blend best_model.pth records stands" in flat and best.stat().st_mtime_ns == written


def test_resume_from_corrupt_file_exits_2(project, tmp_path):
    _, config = project
    bad = tmp_path / "last_model.pth"
    bad.write_bytes(b"garbage")
    result = runner.invoke(app, ["train", "-c", str(config), "--resume", str(bad)])
    assert result.exit_code == 2 and "CheckpointError" in result.output


def test_resume_with_changed_model_settings_exits_2(project):
    root, config = project
    last = root / "checkpoints" / "efficientnet-lite_sentence-bert" / "last_model.pth"
    changed = root / "changed.yaml"
    changed.write_text(config.read_text().replace("embedding_dim: 8", "embedding_dim: 16"))
    result = runner.invoke(app, ["train", "-c", str(changed), "--resume", str(last)])
    assert result.exit_code == 2 and "CheckpointError" in result.output


def test_resume_with_another_learning_rate_or_batch_size_exits_2_before_any_work(project, monkeypatch):
    # The restored optimizer and schedule would keep the checkpoint's learning rate whatever the config says:
    # a resume with other training settings is refused (naming them), and before the trainer (and its
    # distillation teacher, minutes on a large catalogue) is built. More epochs or patience are allowed.
    import mmrec.pipeline.train as train_module

    root, config = project
    last = root / "checkpoints" / "efficientnet-lite_sentence-bert" / "last_model.pth"
    monkeypatch.setattr(train_module, "Trainer", lambda *a, **k: pytest.fail("built before the resume check"))
    result = runner.invoke(app, ["train", "-c", str(config), "--lr", "0.001", "--batch_size", "8", "--resume",
                                 str(last)], terminal_width=250)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2, result.output
    assert "training.batch_size 16 -> 8, training.learning_rate 0.01 -> 0.001" in flat
    assert "a resume may change training.bf16, training.device, training.epochs" in flat


def test_a_second_train_into_the_same_checkpoint_folder_exits_2(tmp_path):
    import os

    config = write_tiny_project(tmp_path, epochs=1)
    folder = tmp_path / "checkpoints" / "efficientnet-lite_sentence-bert"
    folder.mkdir(parents=True)
    (folder / "train.lock").write_text(str(os.getppid()))  # a live process: another `mmrec train`
    result = runner.invoke(app, ["train", "-c", str(config)], terminal_width=250)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "Another `mmrec train` is writing checkpoints into" in flat
    assert not (folder / "last_model.pth").exists()
    (folder / "train.lock").write_text("999999999")  # a killed run's lock is taken over
    assert runner.invoke(app, ["train", "-c", str(config)]).exit_code == 0
    assert (folder / "last_model.pth").is_file() and not (folder / "train.lock").exists()


def test_missing_split_and_bad_options_exit_2(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"paths:\n  processed_dir: {tmp_path}/nothing\n")
    result = runner.invoke(app, ["train", "-c", str(config), "--device", "cpu"])
    assert result.exit_code == 2 and "preprocess" in result.output
    result = runner.invoke(app, ["train", "-c", str(config), "--device", "quantum"])
    assert result.exit_code == 2


def test_help_lists_the_seed_spellings():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--use-wandb", "--wandb-project", "--wandb-run-name", "--resume", "--verbose", "--batch-size"):
        assert option in result.output


def test_a_split_older_than_the_catalogue_is_named(tmp_path):
    from mmrec.data.tables import load_items, save_items

    config = write_tiny_project(tmp_path, epochs=1)
    items = load_items(tmp_path / "processed")
    save_items(items[items["item_id"] != "i0"].reset_index(drop=True), tmp_path / "processed")  # a new preprocess
    result = runner.invoke(app, ["train", "-c", str(config)], terminal_width=200)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "name items the processed catalogue lacks" in flat and "Run `mmrec split` again" in flat
    assert "Skipped" in flat and "(train interactions on items not in catalogue)" in flat


def test_resume_after_the_split_was_made_again_exits_2(tmp_path):
    """A checkpoint trained on one train.csv is not resumed on another: its weights saw rows the new split may hold
    out (the pipeline walkthrough's resumed model scored 0.588 on a test it had trained on, fresh 0.562)."""
    import pandas as pd

    config = write_tiny_project(tmp_path, epochs=1)
    assert runner.invoke(app, ["train", "-c", str(config)]).exit_code == 0
    last = tmp_path / "checkpoints" / "efficientnet-lite_sentence-bert" / "last_model.pth"
    train_csv = tmp_path / "splits" / "train.csv"
    frame = pd.read_csv(train_csv, dtype=str)
    frame.iloc[1:].to_csv(train_csv, index=False)  # another train.csv (as `mmrec split --seed 9` would write)
    (tmp_path / "splits" / "split_files.json").unlink(missing_ok=True)  # replaced by hand, as the hint says
    result = runner.invoke(app, ["train", "-c", str(config), "--epochs", "2", "--resume", str(last)])
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "was trained on another train.csv than the split holds now" in flat


def test_ctrl_c_says_what_was_saved_and_how_to_go_on(tmp_path, monkeypatch):
    import mmrec.pipeline.train as train_module

    config = write_tiny_project(tmp_path, epochs=1)

    def ctrl_c(*args, **kwargs):  # after the epochs, while the blend is chosen
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_blend_item_item", ctrl_c)
    result = runner.invoke(app, ["train", "-c", str(config)], terminal_width=250)
    dense = "".join(result.output.replace("│", "").split())  # the panel folds the long path anywhere
    last = tmp_path / "checkpoints" / "efficientnet-lite_sentence-bert" / "last_model.pth"
    assert result.exit_code == 130 and "Interrupted" in dense
    assert f"Trainingwasinterrupted;epoch1issavedin{last}" in dense and f"--resume{last}" in dense
    monkeypatch.setattr(train_module, "prepare_training", ctrl_c)  # before any epoch of this run
    result = runner.invoke(app, ["train", "-c", str(config)], terminal_width=250)
    assert result.exit_code == 130
    assert "before its first epoch ended: this run saved nothing" in " ".join(result.output.replace("│", "").split())
    from mmrec.checkpoints import catalog

    monkeypatch.setattr(catalog, "list_checkpoints", ctrl_c)  # any other command: one line, exit 130
    result = runner.invoke(app, ["checkpoints", "list", "-c", str(config)])
    assert result.exit_code == 130 and "Interrupted (Ctrl-C)." in result.output and "Traceback" not in result.output
    from mmrec.cli.app import Terminated

    def sigterm(*args, **kwargs):
        raise Terminated

    monkeypatch.setattr(catalog, "list_checkpoints", sigterm)
    result = runner.invoke(app, ["checkpoints", "list", "-c", str(config)])
    assert result.exit_code == 143 and "Interrupted (SIGTERM)." in result.output


def test_sigterm_is_handled_as_ctrl_c_with_exit_143(tmp_path):
    """`timeout`, systemd and Kubernetes stop a run with SIGTERM: the command says what it kept, as for Ctrl-C, and
    exits 143; a process forked from it (a data loader worker) lets the signal pass, to be stopped by its parent."""
    import subprocess
    import sys

    config = write_tiny_project(tmp_path, epochs=1)
    script = f"""
import multiprocessing, os, signal, sys, time
import mmrec.pipeline.train as train_module
from mmrec.cli.app import main, terminate_as_interrupt

terminate_as_interrupt()
child = multiprocessing.get_context("fork").Process(target=lambda: (os.kill(os.getpid(), signal.SIGTERM),
                                                                    time.sleep(0.2)))
child.start()
child.join()
print("child exit", child.exitcode, flush=True)

def terminated(*args, **kwargs):  # as `kill PID` arrives before the first epoch ends
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)

train_module.prepare_training = terminated
sys.argv = ["mmrec", "train", "-c", {str(config)!r}]
main()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "250"}, cwd=tmp_path)
    flat = " ".join((done.stdout + done.stderr).replace("│", "").split())
    assert "child exit 0" in flat
    assert done.returncode == 143, flat
    assert "Training was interrupted before its first epoch ended: this run saved nothing" in flat
    assert "Traceback" not in flat


def test_contrastive_alignment_without_an_image_text_pair_says_it_trains_nothing(tmp_path):
    config = write_tiny_project(tmp_path, epochs=1, use_contrastive=True)  # the tiny project reads no image or text
    result = runner.invoke(app, ["train", "-c", str(config)], terminal_width=250)
    flat = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert ("model.use_contrastive is on, but the item tower reads no vision and no text (model.use_vision is false; "
            "model.use_text is false): there is no image-text pair to align") in flat


def test_an_operating_system_error_is_one_clear_block_and_exit_2(tmp_path, monkeypatch):
    import errno

    from mmrec.checkpoints import catalog

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "checkpoints" / "x.pth"))

    monkeypatch.setattr(catalog, "list_checkpoints", disk_full)
    config = write_tiny_project(tmp_path, epochs=1)
    result = runner.invoke(app, ["checkpoints", "list", "-c", str(config)], terminal_width=250)
    flat = " ".join(result.output.replace("│", "").split())
    assert result.exit_code == 2 and "SystemResourceError" in flat and "Traceback" not in result.output
    assert "(No space left on device)" in flat and "Check the free disk space" in flat


def test_an_interrupted_run_gives_the_command_that_resumes_it(tmp_path, monkeypatch):
    import mmrec.pipeline.train as train_module

    config = write_tiny_project(tmp_path, epochs=1)
    assert runner.invoke(app, ["train", "-c", str(config)]).exit_code == 0
    last = next((tmp_path / "checkpoints").rglob("last_model.pth"))

    def interrupted_after_an_epoch(*args, **kwargs):
        later = time.time() + 5
        os.utime(last, (later, later))  # this run's epoch, saved (past the file system's time granularity)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "run_train", interrupted_after_an_epoch)
    result = runner.invoke(app, ["train", "-c", str(config), "--epochs", "3"], terminal_width=400)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 130
    unwrapped = "".join(flat.split())  # the error box wraps long paths at its width
    assert "".join(f"Continue it with `mmrec train -c {config} --epochs 3 --resume {last}`".split()) in unwrapped
    # Under torchrun the command resumes with as many processes (pasted without torchrun it was refused).
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = runner.invoke(app, ["train", "-c", str(config), "--epochs", "3"], terminal_width=400)
    unwrapped = "".join(result.output.replace("│", " ").split())
    assert "".join(f"Continue it with `torchrun --nproc_per_node 2 -m mmrec train -c {config} --epochs 3 --resume "
                   f"{last}`".split()) in unwrapped
    monkeypatch.delenv("WORLD_SIZE")
    # Tracking settings given on the command line are repeated (pasted without them, the run went on untracked).
    result = runner.invoke(app, ["train", "-c", str(config), "--epochs", "3", "--no-wandb", "--wandb-run-name",
                                 "night run"], terminal_width=400)
    unwrapped = "".join(result.output.replace("│", " ").split())
    assert "".join(f"Continue it with `mmrec train -c {config} --no-wandb --epochs 3 --wandb-run-name 'night run' "
                   f"--resume {last}`".split()) in unwrapped

    # A resumed run stopped before its first new epoch: continue from the same checkpoint, not from scratch.
    def interrupted_at_once(*args, **kwargs):
        os.utime(last, (time.time() - 60, time.time() - 60))  # not written by this run
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "run_train", interrupted_at_once)
    result = runner.invoke(app, ["train", "-c", str(config), "--epochs", "3", "--resume", str(last)],
                           terminal_width=400)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 130 and "before its first new epoch ended: this run saved nothing" in flat
    assert "".join(f"Continue it with `mmrec train -c {config} --epochs 3 --resume {last}`".split()) in \
        "".join(flat.split())


def test_split_and_preprocess_refuse_to_change_the_data_a_running_train_reads(tmp_path, monkeypatch):
    """A cron overlap: night 2's preprocess and split replaced processed/ and splits/ while night 1 trained on them,
    so night 1's evaluate refused its checkpoint and night 2's train found night 1's lock: neither night recommended."""
    import os

    from mmrec.pipeline import train as train_module

    config = write_tiny_project(tmp_path, epochs=1)
    seen = {}
    real_train = train_module._train

    def look(*args, **kwargs):
        seen["marked"] = sorted(p.parent.name for p in tmp_path.rglob(".in-use.*"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train", look)
    assert runner.invoke(app, ["train", "-c", str(config)]).exit_code == 0
    assert seen["marked"] == ["processed", "splits"] and not list(tmp_path.rglob(".in-use.*"))  # gone at the end
    (tmp_path / "splits" / f".in-use.{os.getppid()}").write_text("A `mmrec train` into checkpoints/x")  # still running
    result = runner.invoke(app, ["split", "-c", str(config)], terminal_width=250)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and f"A `mmrec train` into checkpoints/x (process {os.getppid()}) reads" in flat
    assert "splitting again now would change the rows it trains and validates on" in flat
    (tmp_path / "splits" / f".in-use.{os.getppid()}").write_text("A `mmrec train` into checkpoints/x")
    (tmp_path / "splits" / ".in-use.999999999").write_text("a killed run's")
    (tmp_path / "splits" / f".in-use.{os.getppid()}").unlink()  # it ended; the killed run's marker is no obstacle
    from mmrec.data.splits import load_split
    from mmrec.data.tables import save_interactions

    save_interactions(load_split(tmp_path / "splits").train, tmp_path / "processed")  # what split reads
    result = runner.invoke(app, ["split", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "splits").glob(".in-use.*"))
    # A train that starts while the split is drawn: checked again before the files are written.
    from mmrec.pipeline import split as split_module

    real_split, before = split_module.split_interactions, (tmp_path / "splits" / "train.csv").read_bytes()

    def train_starts(*args, **kwargs):
        (tmp_path / "splits" / f".in-use.{os.getppid()}").write_text("A `mmrec train` into checkpoints/x")
        return real_split(*args, **kwargs)

    monkeypatch.setattr(split_module, "split_interactions", train_starts)
    assert runner.invoke(app, ["split", "-c", str(config), "--seed", "7"]).exit_code == 2
    assert (tmp_path / "splits" / "train.csv").read_bytes() == before


def test_wandb_names_without_tracking_are_refused(project):
    root, config = project
    for args in (["--wandb-project", "P"], ["--wandb-run-name", "R"]):
        result = runner.invoke(app, ["train", "-c", str(config), "--epochs", "1", *args])
        flat = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and "has no effect: Weights & Biases tracking is off" in flat, args
    # --no_wandb is an alias too (it was "No such option"); the settings then refuse the learning rate, not it.
    result = runner.invoke(app, ["train", "-c", str(config), "--no_wandb", "--wandb-project", "P", "--lr", "-1"])
    assert result.exit_code == 2 and "training.learning_rate" in result.output
