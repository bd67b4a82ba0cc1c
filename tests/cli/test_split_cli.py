import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmrec.cli.app import app
from mmrec.data.synth import generate_synthetic

runner = CliRunner()


def _config(tmp_path, extra=""):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"paths:\n  data_dir: {tmp_path / 'raw'}\n  processed_dir: {tmp_path / 'processed'}\n"
        f"  splits_dir: {tmp_path / 'splits'}\n  checkpoint_dir: {tmp_path / 'ckpt'}\n{extra}"
    )
    return str(path)


@pytest.fixture
def config(tmp_path):
    generate_synthetic(tmp_path / "raw", users=10, items=12, seed=0)
    path = _config(tmp_path)
    assert runner.invoke(app, ["preprocess", "-c", path, "--skip-caching", "--workers", "1"]).exit_code == 0
    return path


@pytest.mark.parametrize("strategy", ["temporal", "leave-one-out", "user"])
def test_split_strategies_print_report(config, tmp_path, strategy):
    result = runner.invoke(app, ["split", "-c", config, "--strategy", strategy, "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "No leakage found" in result.output and (tmp_path / "splits" / "split_report.json").is_file()


def test_sample_n_alias(config, tmp_path):
    result = runner.invoke(app, ["split", "-c", config, "--sample_n", "40"])
    assert result.exit_code == 0, result.output
    assert sum(len(pd.read_csv(tmp_path / "splits" / f"{p}.csv")) for p in ("train", "val", "test")) == 40
    flat = " ".join(result.output.split())
    assert "Splitting a sample of 40 of the" in flat
    tiny = runner.invoke(app, ["split", "-c", config, "--strategy", "stratified", "--sample-n", "3"])
    flat = " ".join(tiny.output.split())
    assert tiny.exit_code == 0 and "The test part is empty" in flat and "evaluate has nothing to score" in flat
    assert "(too few interactions for the ratios and the strategy)" in flat
    everything = runner.invoke(app, ["split", "-c", config, "--sample-n", "100000"])
    assert "--sample-n 100,000 is not below the" in " ".join(everything.output.split())


def test_an_empty_val_part_asked_for_says_so(config, tmp_path, monkeypatch):
    # A 75/25 protocol without validation: the empty val part is the ratio's doing, not the data's size.
    for name, value in (("TRAIN", "0.75"), ("VAL", "0"), ("TEST", "0.25")):
        monkeypatch.setenv(f"MMREC_SPLIT__{name}_RATIO", value)
    result = runner.invoke(app, ["split", "-c", config, "--strategy", "stratified"])
    flat = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "The val part is empty (split.val_ratio is 0): train holds out part of train for validation" in flat
    assert "too few interactions" not in flat


def test_a_copied_image_folder_is_no_change_but_new_bytes_are(config, tmp_path):
    # `cp -r` gives every image a new mtime: with the same bytes split must not call the images changed.
    images = tmp_path / "raw" / "images"
    copy = tmp_path / "images_copy"
    shutil.copytree(images, copy)
    shutil.rmtree(images)
    shutil.copytree(copy, images, copy_function=shutil.copy)  # contents only: new mtimes
    assert "changed since" not in runner.invoke(app, ["split", "-c", config]).output
    first = sorted(images.iterdir())[0]
    first.write_bytes(first.read_bytes()[::-1])  # same size, other bytes
    result = runner.invoke(app, ["split", "-c", config], terminal_width=250)
    assert "images/ changed since" in " ".join(result.output.split())


def test_bad_strategy_and_temporal_without_timestamps(config, tmp_path):
    bad = runner.invoke(app, ["split", "-c", config, "--strategy", "random"])
    assert bad.exit_code == 2 and "not one of" in bad.output
    inter = pd.read_csv(tmp_path / "raw" / "interactions.csv").drop(columns="timestamp")
    inter.to_csv(tmp_path / "raw" / "interactions.csv", index=False)
    assert runner.invoke(app, ["preprocess", "-c", config, "--skip-caching"]).exit_code == 0
    result = runner.invoke(app, ["split", "-c", config, "--strategy", "temporal"])
    assert result.exit_code == 2 and "needs a timestamp" in result.output


def test_leaky_split_is_refused(tmp_path):
    generate_synthetic(tmp_path / "raw", users=10, items=12, seed=0)
    inter = pd.read_csv(tmp_path / "raw" / "interactions.csv")
    pd.concat([inter, inter]).to_csv(tmp_path / "raw" / "interactions.csv", index=False)
    config = _config(tmp_path, "preprocess:\n  drop_duplicates: false\n")
    assert runner.invoke(app, ["preprocess", "-c", config, "--skip-caching"]).exit_code == 0
    result = runner.invoke(app, ["split", "-c", config])
    assert result.exit_code == 2 and "Leakage" in result.output
    assert not (tmp_path / "splits" / "train.csv").exists()


def test_split_and_train_say_when_the_raw_data_changed_since_preprocess(config, tmp_path):
    # A nightly pipeline that appended to interactions.csv but skipped `mmrec preprocess` split and trained on the
    # old data silently.
    raw = tmp_path / "raw" / "interactions.csv"
    assert "changed since" not in runner.invoke(app, ["split", "-c", config]).output
    frame = pd.read_csv(raw, dtype=str)
    pd.concat([frame, frame.head(3)]).to_csv(raw, index=False)
    result = runner.invoke(app, ["split", "-c", config], terminal_width=250)
    flat = " ".join(result.output.split())
    assert result.exit_code == 0 and "interactions.csv changed since" in flat and "Run `mmrec preprocess`" in flat
    assert flat.count("changed since") == 1  # said once
    raw.unlink()  # raw data deleted after preprocess: no data changed, nothing to say
    assert "changed since" not in runner.invoke(app, ["split", "-c", config]).output
    edited = tmp_path / "c2.yaml"
    edited.write_text((tmp_path / "c.yaml").read_text() + "data:\n  positive_rating_threshold: 4.5\n")
    result = runner.invoke(app, ["train", "-c", str(edited), "--epochs", "1", "--device", "cpu"], terminal_width=250)
    flat = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "settings data.positive_rating_threshold changed since" in flat
    # Evaluate and recommend serve the processed data too: they say so as well.
    for command in (["evaluate", "--recommender-type", "popularity"],
                    ["recommend", "--recommender-type", "popularity", "--sample-users", "1"]):
        result = runner.invoke(app, [command[0], "-c", str(edited), *command[1:]], terminal_width=250,
                               env={"MMREC_PATHS__RESULTS_DIR": str(tmp_path / "results")})
        assert result.exit_code == 0, result.output
        assert "settings data.positive_rating_threshold changed since" in " ".join(result.output.split()), command
