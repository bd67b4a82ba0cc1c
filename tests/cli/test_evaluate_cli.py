"""`mmrec evaluate` through the Typer app: spellings, table output, exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mmrec.cli.app import app

runner = CliRunner()


def test_underscore_spellings_space_separated_k_and_table(config, tmp_path):
    preds = tmp_path / "p.json"
    result = runner.invoke(app, [
        "evaluate", "-c", str(config), "--recommender_type", "popularity", "item_knn",
        "--k", "5", "10", "--save_predictions", str(preds), "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    assert "item_knn" in result.output and "ndcg@10" in result.output and "Cold items" in result.output
    # The tiny project's one cold test interaction: the table says how little it rests on.
    assert "1 test interaction(s) of 1 user(s) -- too few to tell models apart" in " ".join(result.output.split())
    flat = " ".join(result.output.split())
    assert "popularity minus each other model, paired over the same" in flat and "95% CI" in flat
    saved = json.loads((tmp_path / "results" / "evaluation.json").read_text())
    assert list(saved["models"]) == ["popularity", "item_knn"] and saved["k_values"] == [5, 10]
    assert saved["protocol"] == {"seed": 42}
    assert set(json.loads(preds.read_text())) == {"popularity", "item_knn"}


def test_an_evaluation_that_drops_earlier_models_says_so(config, tmp_path):
    first = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "popularity", "item_knn"])
    assert first.exit_code == 0 and "replaces" not in first.output
    again = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "item_knn"],
                          terminal_width=200)
    flat = " ".join(again.output.split())
    assert again.exit_code == 0 and "whose results also held popularity" in flat
    assert list(json.loads((tmp_path / "results" / "evaluation.json").read_text())["models"]) == ["item_knn"]


def test_dashed_spellings_ranking_task(config):
    result = runner.invoke(app, [
        "evaluate", "--config", str(config), "--recommender-type", "random", "--recommender-type", "user_knn",
        "--eval-task", "ranking", "--num-negatives", "5", "--sampling-strategy", "popularity", "--k", "5 10",
    ])
    assert result.exit_code == 0, result.output
    assert "sampled_auc" in result.output and "not comparable" in result.output
    # An auditor recomputing the sampled figures needs the draw: the seed, the number and strategy of negatives.
    saved = json.loads((config.parent / "results" / "evaluation.json").read_text())
    assert saved["protocol"] == {"seed": 42, "num_negatives": 5, "sampling_strategy": "popularity"}
    assert "- num_negatives: 5" in (config.parent / "results" / "evaluation.md").read_text()


def test_compare_without_checkpoint_is_a_clear_error(config):
    # --compare includes multimodal; with no trained checkpoint this must be a red block, exit 2.
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--compare"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_num_negatives_beyond_the_catalogue_is_refused_and_big_cut_offs_noted(config):
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "popularity",
                                 "--eval-task", "ranking", "--num-negatives", "2000"])
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "the catalogue has 30 items" in flat, result.output
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "popularity", "--k", "10 100"])
    flat = " ".join(result.output.replace("│", " ").split())
    # A cold test user (no training item) can be shown all 30: the catalogue is the bound.
    assert result.exit_code == 0 and "Cut-off(s) 100 reach the catalogue's 30 items" in flat, result.output
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "popularity", "--k", "10 29"])
    flat = " ".join(result.output.replace("│", " ").split())
    assert "Cut-off(s) 29 reach" not in flat  # that cold user's list of 29 leaves an item out


@pytest.mark.parametrize("args, message", [
    (["--eval-task", "nope"], "eval_task"),
    (["--k", "0"], "--k"),
    (["--recommender-type", "svd"], "svd"),
    (["--test-data", "missing.csv"], "does not exist"),
])
def test_bad_options_exit_2(config, args, message):
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "random", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_save_predictions_over_the_split_it_reads_is_refused(config, tmp_path):
    test_csv = tmp_path / "splits" / "test.csv"
    before = test_csv.read_bytes()
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "random",
                                 "--save-predictions", str(test_csv)])
    assert result.exit_code == 2 and "lies inside paths.splits_dir" in " ".join(result.output.replace("│", " ").split())
    assert test_csv.read_bytes() == before


def test_save_predictions_onto_a_directory_is_refused_before_any_work(config, tmp_path):
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "random",
                                 "--save-predictions", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in " ".join(result.output.replace("│", " ").split())


def test_recommender_type_completes_the_registered_names():
    from mmrec.registry import RECOMMENDERS

    env = {"_MMREC_COMPLETE": "complete_bash", "COMP_WORDS": "mmrec evaluate --recommender-type ", "COMP_CWORD": "3"}
    result = runner.invoke(app, [], env=env, prog_name="mmrec")
    assert result.output.split() == RECOMMENDERS.names()
    env["COMP_WORDS"] = "mmrec recommend --recommender-type item"
    assert runner.invoke(app, [], env=env, prog_name="mmrec").output.split() == ["item_knn"]


def test_the_ranking_title_counts_the_users_scored_not_those_whose_every_positive_was_skipped(config, tmp_path):
    # A user with fewer items outside their own than --num-negatives has every positive skipped: the title said
    # "N test users" as if they counted, and n_users held them too.
    result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "popularity",
                                 "--eval-task", "ranking", "--num-negatives", "24"], terminal_width=200)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "results" / "evaluation.json").read_text())
    scored, users = saved["models"]["popularity"]["n_users"], saved["counts"]["test_users"]
    assert 0 < scored < users
    flat = " ".join(result.output.replace("│", " ").split())
    assert (f"ranking: {users:,} test users, {scored:,} scored ({users - scored:,} have too few items outside their "
            "own to draw negatives from)") in flat



def test_an_evaluation_of_another_checkpoint_under_the_same_name_says_what_it_replaces(tmp_path):
    """Comparing backbones: the dino_bert model's results were replaced by the convnext_roberta one's, silently
    (both are `multimodal`)."""
    from types import SimpleNamespace

    from mmrec.evaluation.report import EvaluationReport, replaced_models_note

    (tmp_path / "evaluation.json").write_text(json.dumps({
        "models": {"multimodal": {}}, "checkpoints": {"multimodal": {"path": "/m/dino_bert/best_model.pth"}}}))
    report = EvaluationReport("retrieval", [10], [SimpleNamespace(name="multimodal")], {},
                              checkpoints={"multimodal": {"path": "/m/convnext_roberta/best_model.pth"}})
    note = replaced_models_note(report, tmp_path)
    assert note and "whose results also held multimodal of dino_bert/best_model.pth" in note
    report.checkpoints["multimodal"]["path"] = "/m/dino_bert/best_model.pth"  # the same model again: nothing lost
    assert replaced_models_note(report, tmp_path) is None


def test_options_that_would_change_nothing_are_refused(config):
    """Sampling options without sampling, --num-workers without --use-parallel and --checkpoint-name beside
    baselines only were ignored unsaid (recommend refuses --diversity-lambda without MMR)."""
    for args, shown in ((["--num-negatives", "10"], "--num-negatives has no effect"),
                        (["--sampling-strategy", "popularity"], "--sampling-strategy has no effect"),
                        (["--num-workers", "4"], "--num-workers has no effect"),
                        (["--checkpoint-name", "last_model.pth"], "--checkpoint-name has no effect")):
        result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "random", *args])
        assert result.exit_code == 2 and shown in " ".join(result.output.replace("│", " ").split()), args


def test_compare_keeps_the_named_recommender_first(config, monkeypatch):
    """`--recommender-type item_knn --compare` dropped the named type: multimodal came first and was compared."""
    import mmrec.pipeline.evaluate as pipeline

    seen = {}

    def fake(settings, names, **kwargs):
        seen["names"] = names
        raise SystemExit(0)

    monkeypatch.setattr(pipeline, "run_evaluate", fake)
    runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "item_knn", "--compare"])
    assert seen["names"][0] == "item_knn" and len(seen["names"]) == len(set(seen["names"])) > 2


def test_an_empty_cut_off_or_device_is_refused(config):
    """`--k ''` used the default cut-offs and `--device ''` ran as auto, unsaid."""
    for args, shown in ((["--k", ""], "--k names no cut-off"), (["--device", ""], "Unknown device ''")):
        result = runner.invoke(app, ["evaluate", "-c", str(config), "--recommender-type", "random", *args])
        assert result.exit_code == 2 and shown in " ".join(result.output.replace("│", " ").split()), args
