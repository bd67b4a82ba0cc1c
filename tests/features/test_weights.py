import pytest

from mmrec.errors import WeightsNotFoundError
from mmrec.features.registry import TEXT_BACKBONES, VISION_BACKBONES, resolve_backbone_weights
from mmrec.features.weights import dir_digest, file_digest, hub_offline
from mmrec.settings import FeaturesSettings

NEEDS_DOWNLOAD = [("vision", n) for n in ("resnet", "clip", "dino", "convnext")] + \
                 [("text", n) for n in ("bert", "roberta", "mpnet", "clip")]


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.mark.parametrize("modality,name", NEEDS_DOWNLOAD)
def test_missing_weights_offline_is_a_clear_error(empty_caches, modality, name):
    registry = VISION_BACKBONES if modality == "vision" else TEXT_BACKBONES
    assert hub_offline()
    with pytest.raises(WeightsNotFoundError) as info:
        registry.get(name).resolve(None, allow_download=True)  # allowed, but offline wins
    error = info.value
    assert f"'{name}'" in error.message and str(empty_caches) in error.message
    assert "download skipped" in error.message
    default = "efficientnet-lite" if modality == "vision" else "sentence-bert"
    assert f"features.{modality}_weights" in error.hint and default in error.hint
    assert not any((empty_caches / "hf").rglob("*.safetensors"))  # nothing was downloaded


def test_missing_explicit_path_names_it(tmp_path):
    features = FeaturesSettings(vision_weights=str(tmp_path / "nope.pth"), text_weights=str(tmp_path / "nodir"))
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        resolve_backbone_weights(features, "vision")
    with pytest.raises(WeightsNotFoundError, match="nodir"):
        resolve_backbone_weights(features, "text")


def test_offline_defaults_resolve_without_network(empty_caches):
    features = FeaturesSettings()
    assert resolve_backbone_weights(features, "vision").origin == "package"
    assert resolve_backbone_weights(features, "text").origin == "package"


def test_weights_identity_changes_with_content(tmp_path):
    first = tmp_path / "w.pth"
    first.write_bytes(b"a" * 1000)
    digest = file_digest(first)
    first.write_bytes(b"b" * 1000)
    assert file_digest(first) != digest
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    before = dir_digest(folder)
    (folder / "model.safetensors").write_bytes(b"y" * 10)
    assert dir_digest(folder) != before
