"""`run_cache_import`: imported vectors become the model's inputs, end to end through training."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
from mmrec.errors import ConfigError
from mmrec.pipeline.cache import cache_stats, run_cache_import, run_cache_precompute
from mmrec.settings import load_settings

_spec = importlib.util.spec_from_file_location(
    "tiny_project_for_import", Path(__file__).parents[1] / "training" / "tiny_project.py")
tiny_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_project)


def _project(root: Path, vision: str = "imported", text: str = "imported") -> Path:
    """The tiny training project (40 items i0..i39) with both modalities on and the given backbones."""
    config = tiny_project.write_tiny_project(root, epochs=1, use_vision=True, use_text=True)
    values = yaml.safe_load(config.read_text())
    values["features"] = {"vision_backbone": vision, "text_backbone": text, "num_workers": 0, "device": "cpu"}
    config.write_text(yaml.safe_dump(values))
    return config


def _expected_inputs(matrix: np.ndarray) -> torch.Tensor:
    """What the item tower sees of imported rows: stored as float16, then L2-normalised."""
    return F.normalize(torch.from_numpy(matrix.astype(np.float16).astype(np.float32)), dim=-1)


def test_training_uses_the_imported_vectors_and_masks_what_the_import_lacks(tmp_path, monkeypatch):
    settings = load_settings(_project(tmp_path)).settings
    ids = load_items(tmp_path / "processed")["item_id"].astype(str).tolist()
    rng = np.random.default_rng(0)
    vision = rng.normal(size=(len(ids), 8)).astype(np.float32)  # rows follow the catalogue
    np.save(tmp_path / "image_feat.npy", vision)
    text_rows = [i for i in ids if i not in ("i3", "i7")][::-1] + ["not-an-item"]
    text = rng.normal(size=(len(text_rows), 6)).astype(np.float32)
    pd.DataFrame({"item_id": text_rows, "embedding": list(text)}).to_parquet(tmp_path / "text.parquet")

    report = run_cache_import(settings, "vision", tmp_path / "image_feat.npy", ids="catalogue").report
    assert (report.written, report.missing_items, report.unknown_ids) == (40, [], [])
    report = run_cache_import(settings, "text", tmp_path / "text.parquet").report
    assert (report.written, report.missing_items, report.unknown_ids) == (38, ["i3", "i7"], ["not-an-item"])

    import mmrec.pipeline.train as train_module

    seen = []
    build = train_module.scaled_catalogue
    monkeypatch.setattr(train_module, "scaled_catalogue", lambda *a: seen.append(build(*a)) or seen[-1])
    result = train_module.run_train(settings)
    catalogue, = seen
    torch.testing.assert_close(catalogue.vision, _expected_inputs(vision))
    assert catalogue.vision_mask.all()
    rows = [text_rows.index(i) for i in ids if i not in ("i3", "i7")]
    present = [j for j, i in enumerate(ids) if i not in ("i3", "i7")]
    torch.testing.assert_close(catalogue.text[present], _expected_inputs(text[rows]))
    assert catalogue.text_mask.tolist() == [i not in ("i3", "i7") for i in ids]
    assert catalogue.text[[3, 7]].abs().sum() == 0
    assert result.combo == "imported_imported" and result.best_path.parent.name == "imported_imported"

    # evaluate/recommend rebuild the model from the checkpoint and read the same imported vectors.
    from mmrec.pipeline.evaluate import load_recommender

    recommender = load_recommender("multimodal", settings, load_items(tmp_path / "processed"),
                                   load_split(tmp_path / "splits").train, torch.device("cpu"))
    assert recommender.features.not_imported == {"vision": 0, "text": 2}
    assert recommender.features.text_mask.tolist() == catalogue.text_mask.tolist()

    precompute = run_cache_precompute(settings).report
    assert precompute.not_imported == {"vision": 0, "text": 2} and precompute.computed == {"vision": 0, "text": 0}
    stats = cache_stats(settings.paths.cache_dir, "imported_imported", load_items(tmp_path / "processed"))
    assert stats.uncached == {"vision": 0, "text": 2} and stats.coverage["text"] == pytest.approx(38 / 40)
    assert stats.backbones == {"vision": "imported", "text": "imported"} and stats.dims == {"vision": 8, "text": 6}


def _import_text(settings, ids):
    text = np.random.default_rng(1).normal(size=(len(ids), 6)).astype(np.float32)
    pd.DataFrame({"item_id": ids, "embedding": list(text)}).to_parquet(settings.paths.processed_dir / "text.parquet")
    run_cache_import(settings, "text", settings.paths.processed_dir / "text.parquet")


def test_a_catalogue_without_images_trains_no_vision_input(tmp_path):
    # The tiny catalogue has no image at all: the vision backbone is never loaded and the model gets no
    # vision columns (no n_items x 1280 zeros on the device, no projection of them).
    settings = load_settings(_project(tmp_path, vision="efficientnet-lite")).settings
    _import_text(settings, load_items(tmp_path / "processed")["item_id"].astype(str).tolist())
    from mmrec.checkpoints import load_trained
    from mmrec.pipeline.evaluate import load_recommender
    from mmrec.pipeline.train import run_train

    result = run_train(settings)
    spec = load_trained(result.best_path, "cpu").spec
    assert (spec.model_args["vision_dim"], spec.model_args["text_dim"]) == (0, 6)
    recommender = load_recommender("multimodal", settings, load_items(tmp_path / "processed"),
                                   load_split(tmp_path / "splits").train, torch.device("cpu"))
    assert recommender.model.item_tower.modalities == ["id", "text", "numeric"]
    assert recommender.features.vision.shape == (40, 0) and not recommender.features.vision_mask.any()


def test_a_modality_switched_off_is_never_loaded_in_training_serving_or_precompute(tmp_path):
    # model.use_vision: false with a vision backbone that has nothing to give (nothing imported): training,
    # evaluate/recommend's model and `cache precompute` read the text alone (before, each of them failed on
    # the vision vectors the model never reads; with a real backbone they were computed, 149 s on MovieLens).
    config = _project(tmp_path)
    values = yaml.safe_load(config.read_text())
    values["model"]["use_vision"] = False
    config.write_text(yaml.safe_dump(values))
    settings = load_settings(config).settings
    _import_text(settings, load_items(tmp_path / "processed")["item_id"].astype(str).tolist())
    from mmrec.pipeline.evaluate import load_recommender
    from mmrec.pipeline.train import run_train

    run_train(settings)
    recommender = load_recommender("multimodal", settings, load_items(tmp_path / "processed"),
                                   load_split(tmp_path / "splits").train, torch.device("cpu"))
    assert recommender.model.item_tower.modalities == ["id", "text", "numeric"]
    assert recommender.features.vision.shape == (40, 0) and recommender.features.text.shape == (40, 6)
    report = run_cache_precompute(settings).report
    assert list(report.with_content) == ["text"] and report.already_cached == {"text": 40}


def test_a_model_trained_with_images_serves_a_catalogue_that_has_none(tmp_path, monkeypatch):
    settings = load_settings(_project(tmp_path)).settings
    ids = load_items(tmp_path / "processed")["item_id"].astype(str).tolist()
    np.save(tmp_path / "image_feat.npy", np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32))
    run_cache_import(settings, "vision", tmp_path / "image_feat.npy", ids="catalogue")
    _import_text(settings, ids)
    from mmrec.pipeline.evaluate import load_recommender
    from mmrec.pipeline.train import run_train

    run_train(settings)
    import mmrec.features.item_features as item_features

    load = item_features.load_item_features

    def without_images(*args, **kwargs):  # as a catalogue whose every image is gone loads
        features = load(*args, **kwargs)
        return replace(features, vision=features.vision[:, :0], vision_mask=torch.zeros_like(features.vision_mask),
                       vision_dim=0)

    monkeypatch.setattr(item_features, "load_item_features", without_images)
    recommender = load_recommender("multimodal", settings, load_items(tmp_path / "processed"),
                                   load_split(tmp_path / "splits").train, torch.device("cpu"))
    assert recommender.features.vision.shape == (40, 8) and recommender.features.vision.abs().sum() == 0
    assert not recommender.features.vision_mask.any() and recommender.features.vision_dim == 8
    scores = recommender.score(["u0", "u1"])
    assert scores.shape == (2, 40) and torch.isfinite(scores).all()


def test_import_is_refused_unless_the_config_uses_imported_vectors(tmp_path):
    settings = load_settings(_project(tmp_path, vision="efficientnet-lite")).settings
    np.save(tmp_path / "v.npy", np.ones((40, 4)))
    with pytest.raises(ConfigError, match="features.vision_backbone is 'efficientnet-lite'") as info:
        run_cache_import(settings, "vision", tmp_path / "v.npy", ids="catalogue")
    assert "features.vision_backbone: imported" in info.value.hint
    with pytest.raises(ConfigError, match="--modality must be vision or text"):
        run_cache_import(settings, "audio", tmp_path / "v.npy", ids="catalogue")
    assert not (tmp_path / "cache").exists()
