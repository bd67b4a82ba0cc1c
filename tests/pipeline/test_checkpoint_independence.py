"""A checkpoint scores from itself alone: retraining another combo on another split leaves it usable."""

import importlib.util
from pathlib import Path

from mmrec.data.encoders import load_encoders
from mmrec.pipeline.evaluate import run_evaluate
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings

_spec = importlib.util.spec_from_file_location(
    "tiny_project_for_independence", Path(__file__).parents[1] / "training" / "tiny_project.py")
tiny_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_project)


def test_retraining_another_combo_on_another_split_keeps_older_checkpoints_usable(tmp_path):
    settings_a = load_settings(tiny_project.write_tiny_project(tmp_path / "a", epochs=1)).settings
    run_train(settings_a)
    before = run_evaluate(settings_a, write_files=False).models[0].metrics

    # Combo B: other backbones (another checkpoint folder), other users and split, the same checkpoint_dir.
    config_b = tiny_project.write_tiny_project(tmp_path / "b", n_users=24, seed=7, epochs=1)
    settings_b = load_settings(config_b, {"features.vision_backbone": "resnet",
                                          "paths.checkpoint_dir": settings_a.paths.checkpoint_dir}).settings
    assert settings_b.features.combo != settings_a.features.combo
    run_train(settings_b)
    assert len(load_encoders(settings_a.paths.checkpoint_dir)[0]) == 25  # the shared copy is B's now

    assert run_evaluate(settings_a, write_files=False).models[0].metrics == before
