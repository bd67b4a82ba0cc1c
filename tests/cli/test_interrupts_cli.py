"""Ctrl-C (and SIGTERM, mmrec.cli.app.Terminated) during a long command: each says what it kept and how to go on."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mmrec.cli.app import Terminated, app

runner = CliRunner()


def _stop(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("module, function, args, said", [
    ("preprocess", "run_preprocess", ["preprocess"], "Preprocessing was interrupted: {tmp}/processed is as it was"),
    ("cache", "run_cache_precompute", ["cache", "precompute"],
     "Feature caching was interrupted: the vectors computed so far are kept in {tmp}/cache/"),
    ("evaluate", "run_evaluate", ["evaluate"], "Evaluation was interrupted: nothing was written to {tmp}/results."),
    ("recommend", "run_recommend", ["recommend", "--users", "u001", "-o", "{tmp}/r.json"],
     "Recommending was interrupted: {tmp}/r.json is as it was before this run"),
    ("batch_recommend", "run_batch_recommend", ["recommend", "--all-users", "-o", "{tmp}/r.parquet"],
     "Recommending was interrupted: {tmp}/r.parquet is as it was before this run"),
    ("demo", "run_demo", ["demo", "--out", "{tmp}/demo"],
     "The demo was interrupted; the stages it finished are kept under {tmp}/demo."),
])
def test_an_interrupted_command_says_what_it_kept(config, tmp_path, monkeypatch, module, function, args, said):
    import importlib

    monkeypatch.setattr(importlib.import_module(f"mmrec.pipeline.{module}"), function, _stop)
    tmp = str(tmp_path)
    command = [arg.format(tmp=tmp) for arg in args] + ([] if args[0] == "demo" else ["-c", str(config)])
    result = runner.invoke(app, command, terminal_width=400)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 130, result.output
    hint = (f"Run `mmrec cache precompute -c {config}`" if module == "cache"  # a command to paste as it is
            else "Run the same command again")
    assert said.format(tmp=tmp) in flat and hint in flat
    assert "Interrupted (Ctrl-C)" not in flat and "Traceback" not in result.output


def test_sigterm_keeps_the_commands_message_with_exit_143(config, tmp_path, monkeypatch):
    import mmrec.pipeline.evaluate as evaluate

    def sigterm(*args, **kwargs):
        raise Terminated

    monkeypatch.setattr(evaluate, "run_evaluate", sigterm)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "evaluation.json").write_text("{}")  # an earlier evaluation
    result = runner.invoke(app, ["evaluate", "-c", str(config)], terminal_width=400)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 143 and f"Evaluation was interrupted: {tmp_path}/results holds the previous" in flat


def test_recommend_interrupted_while_showing_its_lists_says_the_file_is_written(config, tmp_path, monkeypatch):
    import mmrec.cli.recommend as recommend

    monkeypatch.setattr(recommend, "print_result", _stop)
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["recommend", "-c", str(config), "--users", "u001", "-o", str(out),
                                 "--recommender-type", "popularity"], terminal_width=400)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 130 and out.is_file()
    assert f"The recommendations are written to {out}; only their display was cut short." in flat
    assert "Read the file, or run the same command again" in flat and "Interrupted (Ctrl-C)" not in flat
