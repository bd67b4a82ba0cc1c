"""`mmrec demo` end to end on a very small synthetic set (1 epoch): every stage runs, files appear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmrec
from mmrec.cli.app import app
from mmrec.cli.demo import demo_config
from mmrec.settings import load_settings

runner = CliRunner()


def test_demo_config_is_package_data_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    path = demo_config()
    assert path.is_file() and path.parent.parent == Path(mmrec.__file__).parent
    assert str(load_settings(path).settings.paths.data_dir) == "demo/raw"
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["mmrec"]
    assert any(path.relative_to(Path(mmrec.__file__).parent).match(p) for p in patterns)  # ships in wheels


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from a folder without the repository's files, with the packaged config
    result = runner.invoke(app, [
        "demo", "--out", str(tmp_path / "out"), "--users", "40", "--items", "30",
        "--epochs", "1", "--recommend-users", "2", "--device", "cpu",
    ])
    tmp_path = tmp_path / "out"
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "results" / "evaluation.json").read_text())
    assert list(report["models"]) == ["multimodal", "random", "popularity", "item_knn", "user_knn"]
    assert all("ndcg@10" in m["metrics"] for m in report["models"].values())
    recs = json.loads((tmp_path / "results" / "recommendations.json").read_text())
    assert len(recs["users"]) == 2 and recs["users"][0]["items"]
    assert recs["mean_diversity_after"] is not None
    assert (tmp_path / "results" / "metrics_at_k.png").is_file()
    assert "demo finished" in result.output and "multimodal" in result.output
    # evaluate and recommend name the checkpoint their results come from and what it serves
    serves = report["checkpoints"]["multimodal"]["serves"]
    assert recs["checkpoint"]["serves"] == serves and "item-item" in serves
    flat = " ".join(result.output.split())
    assert f"multimodal: best_model.pth (epoch 1) serves {serves}" in flat
    assert f"model: best_model.pth (epoch 1) serves {serves}" in flat

    # Evaluate and recommend compute what the feature cache lacks, and say so (as train does).
    import shutil

    from mmrec.cli.demo import _PATH_LAYOUT
    from mmrec.data.tables import load_interactions, load_items
    from mmrec.device import resolve_device
    from mmrec.pipeline.evaluate import load_recommender

    settings = load_settings(demo_config(), {f"paths.{key}": str(tmp_path / sub) for key, sub in _PATH_LAYOUT.items()}
                             | {"features.device": "cpu"}).settings
    shutil.rmtree(Path(settings.paths.cache_dir) / settings.features.combo)
    events = []
    processed = Path(settings.paths.processed_dir)
    load_recommender("multimodal", settings, load_items(processed), load_interactions(processed),
                     resolve_device("cpu"), progress=events.append)
    said = [event.message for event in events if event.message]
    assert any(message.startswith("Computing 30 missing vision feature(s)") for message in said), said


def test_demo_with_imported_backbones_is_refused_before_any_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "imported.yaml"
    config.write_text("features:\n  text_backbone: imported\n")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "out"), "-c", str(config)])
    assert result.exit_code == 2 and "ConfigError" in result.output
    assert "features.text_backbone is `imported`" in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "out").exists()  # refused before the synthetic data was written
