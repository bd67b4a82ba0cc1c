"""Where evaluate and recommend find a checkpoint's backbone weights: this run's features.*_weights when set
(checked against the weights the model trained with), else the path the checkpoint recorded."""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
from mmrec.errors import CheckpointError
from mmrec.settings import load_settings

_spec = importlib.util.spec_from_file_location(
    "tiny_project_for_serving_weights", Path(__file__).parents[1] / "training" / "tiny_project.py")
tiny_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_project)


def _settings(config: Path, text_weights: Path):
    values = yaml.safe_load(config.read_text())
    values["features"] = {"text_backbone": "bert", "text_weights": str(text_weights), "num_workers": 0,
                          "device": "cpu"}
    config.write_text(yaml.safe_dump(values))
    return load_settings(config).settings


def test_a_model_serves_after_its_backbone_folder_moved_and_refuses_other_weights(tmp_path, tiny_hf_text_dirs):
    from mmrec.pipeline.evaluate import load_recommender
    from mmrec.pipeline.train import run_train

    trained_with = tmp_path / "backbones" / "bert-a"
    shutil.copytree(tiny_hf_text_dirs["bert"], trained_with)
    config = tiny_project.write_tiny_project(tmp_path / "project", epochs=1, use_text=True)
    run_train(_settings(config, trained_with))
    root = tmp_path / "project"
    items, train = load_items(root / "processed"), load_split(root / "splits").train
    # A config of another combo (roberta) serving this checkpoint by name: its roberta weights path is not applied
    # to the checkpoint's bert (refused as "holds a 'roberta' model" before); the path the checkpoint records is.
    other_combo = _settings(config, tiny_hf_text_dirs["roberta"])
    other_combo = other_combo.model_copy(update={"features": other_combo.features.model_copy(
        update={"text_backbone": "roberta"})})
    bert_checkpoint = root / "checkpoints" / "efficientnet-lite_bert" / "best_model.pth"
    served = load_recommender("multimodal", other_combo, items, train, torch.device("cpu"),
                              checkpoint_name=str(bert_checkpoint))
    assert served.features.text_dim == 32 and served.features.combo == "efficientnet-lite_bert"
    _settings(config, trained_with)  # the config as trained again

    moved = trained_with.rename(tmp_path / "backbones" / "bert-moved")  # reorganised, or another machine
    recommender = load_recommender("multimodal", _settings(config, moved), items, train, torch.device("cpu"))
    assert recommender.features.text_dim == 32 and recommender.features.text_mask.all()
    last = root / "checkpoints" / "efficientnet-lite_bert" / "last_model.pth"
    resumed = run_train(_settings(config, moved), resume=last)  # where the weights are is no training setting
    assert resumed.resumed_from == last

    other = tmp_path / "backbones" / "bert-other"
    shutil.copytree(moved, other)
    from transformers import BertModel

    model = BertModel.from_pretrained(str(other))
    with torch.no_grad():
        model.pooler.dense.bias.add_(1.0)  # other weights, same architecture
    model.save_pretrained(str(other))
    events = []
    with pytest.raises(CheckpointError, match="computed with other weights"):
        load_recommender("multimodal", _settings(config, other), items, train, torch.device("cpu"),
                         progress=events.append)
    # Refused before any feature is computed with them (on a real catalogue: hours of backbone work first).
    assert not any(event.message and "Computing" in event.message for event in events)
    # Training with those other weights replaces the model of the same combo folder, and says so.
    replaced = run_train(_settings(config, other))
    assert any("which was trained on features of other backbone weights (text sha256:" in note
               for note in replaced.notes)
    assert not any("other backbone weights" in note for note in run_train(_settings(config, other)).notes)
    # A config naming bert's default weights serves that model with its own (named) weights, and says so.
    from mmrec.pipeline.evaluate import run_evaluate

    default = _settings(config, other)
    default = default.model_copy(update={"features": default.features.model_copy(update={"text_weights": None})})
    report = run_evaluate(default, ["multimodal"], write_files=False)
    assert any(f"trained with features.text_weights '{other}' (this config: None)" in note for note in report.notes)
    assert not any("The model served was trained with" in note
                   for note in run_evaluate(_settings(config, other), ["multimodal"], write_files=False).notes)
