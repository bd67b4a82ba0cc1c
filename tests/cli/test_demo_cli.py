"""`mmrec demo` end to end on a very small synthetic set (1 epoch): every stage runs, files appear."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mmrec.cli.app import app

runner = CliRunner()


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_results(tmp_path):
    result = runner.invoke(app, [
        "demo", "--config", "configs/demo.yaml", "--out", str(tmp_path), "--users", "40", "--items", "30",
        "--epochs", "1", "--recommend-users", "2", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "results" / "evaluation.json").read_text())
    assert list(report["models"]) == ["multimodal", "random", "popularity", "item_knn", "user_knn"]
    assert all("ndcg@10" in m["metrics"] for m in report["models"].values())
    recs = json.loads((tmp_path / "results" / "recommendations.json").read_text())
    assert len(recs["users"]) == 2 and recs["users"][0]["items"]
    assert recs["mean_diversity_after"] is not None
    assert (tmp_path / "results" / "metrics_at_k.png").is_file()
    assert "demo finished" in result.output and "multimodal" in result.output
