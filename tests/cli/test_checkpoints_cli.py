import json

import torch
from typer.testing import CliRunner

from mmrec.checkpoints.store import save_checkpoint
from mmrec.cli.app import app

runner = CliRunner()


def project(root):
    save_checkpoint(root / "best_model.pth", {"model": {}}, {"combo": "v_t", "epoch": 4, "monitor": "ndcg@10",
                                                              "monitored_value": 0.25})
    torch.save({"model": {}}, root / "old.pth")


def test_list_shows_combo_metric_and_layout(tmp_path):
    project(tmp_path)
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "v_t" in result.output and "0.2500" in result.output and "organize" in result.output


def test_list_shows_the_served_blend_of_a_best_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "v_t" / "best_model.pth", {"model": {}},
                    {"combo": "v_t", "epoch": 4, "monitor": "ndcg@10", "monitored_value": 0.25,
                     "item_item": {"blend": 0.5, "monitored": 0.3125}})
    save_checkpoint(tmp_path / "v_t" / "last_model.pth", {"model": {}},
                    {"combo": "v_t", "epoch": 6, "monitor": "ndcg@10", "monitored_value": 0.2})
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "0.3125" in result.output and "0.2500" not in result.output and "0.2000" in result.output
    assert "a best checkpoint's is the model it serves" in result.output
    # Another combo's best without a blend (model.item_item off): the footnote does not say it is blended.
    save_checkpoint(tmp_path / "w_t" / "best_model.pth", {"model": {}},
                    {"combo": "w_t", "epoch": 2, "monitor": "ndcg@10", "monitored_value": 0.2})
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=400)
    flat = " ".join(result.output.split())
    assert "the model it serves (v_t/best_model.pth: two-tower + item-item; the two-tower model alone for any " \
        "other)" in flat
    info = json.loads(runner.invoke(app, ["checkpoints", "info", str(tmp_path / "v_t" / "best_model.pth")]).output)
    assert info["served"] == {"monitor": "ndcg@10", "value": 0.3125, "model": "two-tower + item-item"}
    assert info["monitored_value"] == 0.25  # the two-tower model's alone, as recorded
    # A cold shift alone is served too (rev2: list showed the two-tower figure, info "two-tower").
    save_checkpoint(tmp_path / "x_t" / "best_model.pth", {"model": {}},
                    {"combo": "x_t", "epoch": 3, "monitor": "ndcg@10", "monitored_value": 0.3,
                     "item_item": {"blend": 0.0, "monitored": 0.5, "cold_shift": 1.5}})
    info = json.loads(runner.invoke(app, ["checkpoints", "info", str(tmp_path / "x_t" / "best_model.pth")]).output)
    assert info["served"] == {"monitor": "ndcg@10", "value": 0.5, "model": "two-tower + cold items shifted"}


def test_info_names_the_components_validation_kept():
    """Item-item weight 0 with popularity on top serves no item-item model: the label says what is served."""
    from mmrec.checkpoints.store import served_model

    assert served_model({"blend": 0.0, "trend_blend": 0.1}) == "two-tower + popularity"
    assert served_model({"blend": 1.0, "content_blend": 0.25, "sequence_blend": 0.0}) == \
        "item-item + content similarity"
    assert served_model({"blend": 0.5, "sequence_blend": 0.3}) == "two-tower + item-item + item transitions"
    assert served_model({"blend": 1.0, "sequence_blend": 0.1, "sequence_directions": "both"}) == \
        "item-item + items done close together"
    assert served_model({"blend": 0.5, "cold_blend": 0.75}) == "two-tower + item-item + cold items by content"
    assert served_model({"blend": 0.0, "cold_shift": 1.5}) == "two-tower + cold items shifted"
    assert served_model(None) == "two-tower"
    # A step at weight 1 leaves the parts before it nothing (walkthrough H: content similarity alone was served and
    # the label said item-item + content similarity).
    assert served_model({"blend": 1.0, "content_blend": 1.0, "cold_shift": 1.5}) == \
        "content similarity alone + cold items shifted"
    assert served_model({"blend": 0.5, "content_blend": 0.5, "trend_blend": 1.0}) == "popularity"


def test_evaluate_says_when_a_later_blend_step_leaves_the_two_tower_network_nothing(tmp_path):
    from mmrec.pipeline.evaluate import checkpoint_notes

    meta = {"item_item": {"blend": 0.0, "content_blend": 1.0}, "settings": {"model": {}}, "model_args": {}}
    notes = checkpoint_notes(tmp_path / "best_model.pth", meta, None, tmp_path / "train.csv", True)
    assert any(note.startswith("The multimodal checkpoint serves content similarity: validation gave a blend step "
                               "weight 1, so the two-tower network carries none") for note in notes)
    meta["item_item"] = {"blend": 1.0}
    notes = checkpoint_notes(tmp_path / "best_model.pth", meta, None, tmp_path / "train.csv", True)
    assert any(note.startswith("The multimodal checkpoint serves item-item (the item-item model: EASE with the image "
                               "and text features as side information)") for note in notes)
    meta["item_item"] = {"blend": 0.5, "content_blend": 0.5}
    notes = checkpoint_notes(tmp_path / "best_model.pth", meta, None, tmp_path / "train.csv", True)
    assert not any("carries none" in note for note in notes)


def test_list_empty_folder_and_a_mistyped_one(tmp_path, monkeypatch):
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint_dir", str(tmp_path)])
    assert result.exit_code == 0 and "No checkpoints" in result.output
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint_dir", "typo"])
    assert result.exit_code == 2 and "Checkpoint folder typo does not exist" in result.output
    # organize said it had nothing to move (exit 0), and a file was "a folder that does not exist".
    (tmp_path / "afile").write_text("x")
    for args in (["organize", "--dry-run"], ["organize"], ["organize-manual"], ["list"]):
        result = runner.invoke(app, ["checkpoints", *args, "--checkpoint-dir", "typo"])
        assert result.exit_code == 2 and "Checkpoint folder typo does not exist" in result.output, args
        result = runner.invoke(app, ["checkpoints", *args, "--checkpoint-dir", "afile"])
        assert result.exit_code == 2 and "Checkpoint folder afile is a file, not a folder" in result.output, args
    result = runner.invoke(app, ["checkpoints", "info", "x.pth", "--checkpoint-dir", str(tmp_path)])
    assert result.exit_code == 2 and "has no effect beside the checkpoint named" in " ".join(
        result.output.replace("│", " ").split())
    # The config's folder, run from elsewhere: empty, and said why (also beside --json, on stderr).
    result = runner.invoke(app, ["checkpoints", "list"])
    flat = " ".join(result.output.split())
    assert result.exit_code == 0 and "(models/checkpoints does not exist; relative paths resolve against" in flat
    assert "(models/checkpoints does not exist" not in runner.invoke(app, ["checkpoints", "list", "--json"]).stdout
    from mmrec.cli.common import absent_folder_note

    (tmp_path / "plain").write_text("x")
    assert absent_folder_note(tmp_path / "plain") == f" ({tmp_path / 'plain'} is a file, not a folder)"


def test_info_on_a_folder_says_it_wants_a_file(tmp_path):
    result = runner.invoke(app, ["checkpoints", "info", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 2 and "is a folder" in result.output and "not found" not in result.output


def test_organize_dry_run_then_for_real(tmp_path):
    project(tmp_path)
    result = runner.invoke(app, ["checkpoints", "organize", "--checkpoint-dir", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0 and "would move" in result.output and (tmp_path / "best_model.pth").exists()
    result = runner.invoke(app, ["checkpoints", "organize", "--checkpoint-dir", str(tmp_path)])
    assert result.exit_code == 0 and (tmp_path / "v_t" / "best_model.pth").exists()
    assert "organize-manual" in result.output  # old.pth has no metadata
    save_checkpoint(tmp_path / "best_model.pth", {"model": {}}, {"combo": "v_t", "epoch": 5})  # a namesake
    listed = " ".join(runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)],
                                    terminal_width=200).output.split())
    assert "1 flat checkpoint(s) name no combo: run `mmrec checkpoints organize-manual`" in listed
    assert "1 flat checkpoint(s) have a namesake in their combo folder (best_model.pth)" in listed
    assert "checkpoints organize` to move" not in listed  # organize would move nothing


def test_organize_manual_prompts_and_retries_bad_names(tmp_path):
    project(tmp_path)
    result = runner.invoke(app, ["checkpoints", "organize-manual", "--checkpoint-dir", str(tmp_path)],
                           input="../evil\nres_bert\n")
    assert result.exit_code == 0, result.output
    assert "not a valid" in result.output and (tmp_path / "res_bert" / "old.pth").exists()


def test_info_prints_json_and_missing_is_exit_2(tmp_path):
    project(tmp_path)
    result = runner.invoke(app, ["checkpoints", "info", str(tmp_path / "best_model.pth")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["epoch"] == 4
    result = runner.invoke(app, ["checkpoints", "info", "--checkpoint-dir", str(tmp_path / "none")])
    assert result.exit_code == 2 and "mmrec train" in result.output


def test_broken_checkpoint_is_flagged_by_list_and_info(tmp_path):
    project(tmp_path)
    path = tmp_path / "best_model.pth"
    path.write_bytes(b"PK\x03\x04garbage")  # a truncated zip; the sidecar still describes the old weights
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "broken" in result.output and "truncated, corrupt" in result.output
    result = runner.invoke(app, ["checkpoints", "info", str(path)], terminal_width=200)
    assert result.exit_code == 2 and "broken" in result.output
    from mmrec.checkpoints.catalog import summary

    assert summary(path)["status"] == "broken" and summary(path)["served"] is None  # nothing is served from it
    listed = json.loads(runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path), "--json"],
                                      terminal_width=40).output)
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in listed["checkpoints"]}
    assert rows["best_model.pth"]["valid"] is False and "truncated, corrupt" in rows["best_model.pth"]["problem"]
    assert rows["old.pth"]["organized"] is False and listed["checkpoint_dir"] == str(tmp_path)
    (tmp_path / "old.pth").write_bytes(b"PK\x03\x04garbage")  # no metadata and no weights: organize-manual skips it
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=200)
    assert "organize-manual" not in result.output


def test_list_fits_80_columns_without_breaking_paths(tmp_path):
    combo = "efficientnet-lite_sentence-bert"
    for name, epoch in (("best_model.pth", 13), ("last_model.pth", 18), ("previous_best_model.pth", 9)):
        save_checkpoint(tmp_path / combo / name, {"model": {}}, {"combo": combo, "epoch": epoch, "monitor": "ndcg@10",
                                                                 "monitored_value": 0.12, "finished": epoch != 13})
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=80)
    assert result.exit_code == 0, result.output
    rows = [line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│")]
    assert rows == [f"{combo}/", "best_model.pth", "last_model.pth", "previous_best_model.pth"]  # file names whole
    assert "ndcg@10" in result.output and "0.1200" in result.output and "13*" in result.output
    save_checkpoint(tmp_path / combo / "a_checkpoint_with_a_rather_long_name_here.pth", {"model": {}},
                    {"combo": combo, "epoch": 7, "monitor": "ndcg@10", "monitored_value": 0.12})
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=80)
    assert result.output.count("0.1200") == 4 and "…" not in result.output  # a long name folds, numbers stay whole
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_info_on_a_file_that_is_no_checkpoint_says_so(tmp_path):
    path = tmp_path / "fake.pth"
    path.write_text("not a checkpoint\n")
    result = runner.invoke(app, ["checkpoints", "info", str(path)], terminal_width=200)
    flat = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "is not a checkpoint file at all" in flat and "Python objects" not in flat


def test_list_marks_the_best_checkpoint_of_an_unfinished_run(tmp_path):
    save_checkpoint(tmp_path / "v_t" / "best_model.pth", {"model": {}},
                    {"combo": "v_t", "epoch": 2, "monitor": "ndcg@10", "monitored_value": 0.1, "finished": False})
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0 and "2*" in result.output
    assert "a best checkpoint of a training run still going or interrupted" in " ".join(result.output.split())
    listed = json.loads(runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path),
                                            "--json"]).output)
    assert listed["checkpoints"][0]["finished"] is False
    save_checkpoint(tmp_path / "v_t" / "last_model.pth", {"model": {}},
                    {"combo": "v_t", "kind": "last", "epoch": 2, "monitor": "ndcg@10", "monitored_value": 0.1})
    listed = json.loads(runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path),
                                            "--json"]).output)
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in listed["checkpoints"]}
    assert rows["last_model.pth"]["finished"] is None  # an epoch's state: it says nothing of its run's end
    result = runner.invoke(app, ["checkpoints", "list", "--checkpoint-dir", str(tmp_path)], terminal_width=200)
    assert result.output.count("2*") == 1  # the best checkpoint only


def test_listing_and_describing_checkpoints_reads_json_without_importing_torch(tmp_path, invoke_in_fresh_process):
    # A cron job's `checkpoints list --json` took 2.5 s, nearly all of it importing torch to read JSON sidecars.
    save_checkpoint(tmp_path / "v_t" / "best_model.pth", {"model": {}},
                    {"combo": "v_t", "epoch": 4, "monitor": "ndcg@10", "monitored_value": 0.25})
    codes, outputs, torch_loaded = invoke_in_fresh_process(
        ["checkpoints", "list", "--checkpoint-dir", tmp_path, "--json"],
        ["checkpoints", "info", tmp_path / "v_t" / "best_model.pth"])
    assert codes == [0, 0] and json.loads(outputs[0])["checkpoints"][0]["epoch"] == 4 and not torch_loaded
