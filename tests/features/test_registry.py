"""The backbone registries: settings accept exactly their names, and every registered backbone keeps
the Backbone contract on tiny random weights (timm style: registering a backbone puts it under test)."""

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from mmrec.features.extract import embed_pixels
from mmrec.features.file_digests import FileDigests
from mmrec.features.registry import TEXT_BACKBONES, VISION_BACKBONES, backbone_availability
from mmrec.features.weights import weights_id
from mmrec.settings import FeaturesSettings

BACKBONES = [("vision", n) for n in VISION_BACKBONES.names()] + [("text", n) for n in TEXT_BACKBONES.names()]
REGISTRIES = {"vision": VISION_BACKBONES, "text": TEXT_BACKBONES}
# Backbones that compute vectors from weights; `imported` ones only read what `mmrec cache import` stored.
COMPUTED = [(modality, name) for modality, name in BACKBONES if not REGISTRIES[modality].get(name).imported]
IMPORTED = [(modality, name) for modality, name in BACKBONES if REGISTRIES[modality].get(name).imported]
TEXTS = ["A short one.", "A considerably longer sentence about ships, sailors and the open sea at night.", ""]


def test_settings_accept_every_registered_name_and_list_them_for_others():
    for modality, name in BACKBONES:
        assert getattr(FeaturesSettings(**{f"{modality}_backbone": name}), f"{modality}_backbone") == name
    for modality, registry in (("vision", VISION_BACKBONES), ("text", TEXT_BACKBONES)):
        with pytest.raises(ValidationError, match=f"registered: {', '.join(registry.names())}"):
            FeaturesSettings(**{f"{modality}_backbone": "no-such-backbone"})
    defaults = FeaturesSettings()
    assert defaults.vision_backbone in VISION_BACKBONES and defaults.text_backbone in TEXT_BACKBONES


def test_the_declared_backbone_names_are_the_registered_ones_in_order():
    # Settings check a name against `declared` without importing the backbone modules (and torch with them).
    for registry in REGISTRIES.values():
        assert list(registry.declared) == registry.names()


def test_every_backbone_declares_dim_and_default_source():
    for modality, name in BACKBONES:
        cls = REGISTRIES[modality].get(name)
        assert cls.name == name and cls.modality == modality and cls.default_weights
        assert cls.nominal_dim > 0 if (modality, name) in COMPUTED else cls.nominal_dim == 0  # 0: the file decides


def test_imported_backbones_exist_for_both_modalities_and_refuse_to_compute():
    from mmrec.errors import FeatureError

    assert IMPORTED == [("vision", "imported"), ("text", "imported")]
    assert FeaturesSettings(vision_backbone="imported", text_backbone="imported").combo == "imported_imported"
    for modality, name in IMPORTED:
        cls = REGISTRIES[modality].get(name)
        with pytest.raises(FeatureError, match=f"cache import --modality {modality}"):
            cls.resolve(None, allow_download=True)
        with pytest.raises(FeatureError, match=f"cache import --modality {modality}"):
            cls.load(None)


def test_availability_lists_every_backbone_and_finds_the_offline_defaults():
    rows = {(row.modality, row.name): row for row in backbone_availability()}
    assert list(rows) == BACKBONES
    assert rows[("vision", "efficientnet-lite")].available and rows[("vision", "efficientnet-lite")].dim == 1280
    assert rows[("text", "sentence-bert")].available and rows[("text", "sentence-bert")].dim == 384
    assert all(rows[key].dim == 0 and "cache import" in rows[key].where for key in IMPORTED)


# Tiny random weights for each registered backbone: (tmp_path, request) -> the explicit weights path.
def _torchvision_file(builder: str):
    def make(tmp_path, request):
        from torchvision import models

        state = getattr(models, builder)(weights=None).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
        return str(tmp_path / "w.safetensors")

    return make


def _efficientnet_lite_file(tmp_path, request):
    from efficientnet_lite_pytorch import EfficientNet

    torch.save(EfficientNet.from_name("efficientnet-lite0").state_dict(), tmp_path / "lite.pth")
    return str(tmp_path / "lite.pth")


def _tiny_clip_file(tmp_path, request):
    from mmrec.features.vision import ClipVision

    tiny_arch = request.getfixturevalue("tiny_clip_classes")[0].arch  # registered with open_clip
    request.getfixturevalue("monkeypatch").setattr(ClipVision, "arch", tiny_arch)  # ClipText reads it too
    return str(request.getfixturevalue("tiny_clip_checkpoint"))


def _hf_text_dir(name: str):
    return lambda tmp_path, request: str(request.getfixturevalue("tiny_hf_text_dirs")[name])


TINY_WEIGHTS = {
    ("vision", "efficientnet-lite"): _efficientnet_lite_file,
    ("vision", "resnet"): _torchvision_file("resnet50"),
    ("vision", "convnext"): _torchvision_file("convnext_tiny"),
    ("vision", "clip"): _tiny_clip_file,
    ("vision", "dino"): lambda tmp_path, request: str(request.getfixturevalue("tiny_dino_dir")),
    **{("text", name): _hf_text_dir(name) for name in ("sentence-bert", "bert", "roberta", "mpnet")},
    ("text", "clip"): _tiny_clip_file,
}


FULL_SIZE = {("vision", "efficientnet-lite"), ("vision", "resnet"), ("vision", "convnext")}  # real architecture


def test_every_registered_backbone_has_tiny_weights_for_the_contract_test():
    assert sorted(TINY_WEIGHTS) == sorted(COMPUTED), "add a tiny-weights recipe for the new backbone"


@pytest.mark.parametrize("modality,name", COMPUTED)
def test_backbone_contract(modality, name, tmp_path, request, build):
    """resolve(explicit) -> a stable weights identity; load -> the registered class; embed -> [B, dim]
    finite float32 rows that do not depend on the rest of the batch."""
    cls = (VISION_BACKBONES if modality == "vision" else TEXT_BACKBONES).get(name)
    explicit = TINY_WEIGHTS[(modality, name)](tmp_path, request)
    source = cls.resolve(explicit, allow_download=False)
    identity = weights_id(source, FileDigests())
    assert source.origin == "explicit" and identity.startswith("sha256:")
    assert weights_id(cls.resolve(explicit, allow_download=False), FileDigests()) == identity
    if modality == "vision":
        backbone = cls.load(source).to("cpu")
        pixels = torch.stack([backbone.transform(build.striped()), backbone.transform(build.blob())])
        features, first_alone = embed_pixels(backbone, pixels), embed_pixels(backbone, pixels[:1])
    else:
        backbone = cls.load(source, max_tokens=16).to("cpu")
        with torch.inference_mode():
            features, first_alone = backbone.embed(TEXTS), backbone.embed(TEXTS[:1])
        assert max(backbone.token_lengths(TEXTS * 10)) <= 16 and backbone.max_tokens == 16
    assert isinstance(backbone, cls) and backbone.dim > 0
    if (modality, name) in FULL_SIZE:
        assert backbone.dim == cls.nominal_dim
    assert features.shape == (len(pixels) if modality == "vision" else len(TEXTS), backbone.dim)
    assert features.dtype == torch.float32 and torch.isfinite(features).all()
    torch.testing.assert_close(first_alone[0], features[0], rtol=1e-4, atol=1e-4)


def test_availability_gives_the_width_of_the_folder_pointed_at(tiny_hf_text_dirs):
    from mmrec.features.registry import backbone_availability
    from mmrec.settings import FeaturesSettings

    rows = backbone_availability(FeaturesSettings(text_backbone="bert", text_weights=str(tiny_hf_text_dirs["bert"])))
    bert = next(row for row in rows if row.name == "bert")
    assert bert.selected and bert.available and bert.dim == 32  # the tiny folder's hidden size, not bert-base's 768


def test_availability_says_no_for_weights_that_extraction_will_refuse(tiny_hf_text_dirs, tmp_path):
    """`cache backbones` said "weights here: yes" (with the BERT folder's width as DINO's) for folders and files
    that extraction then refused."""
    from mmrec.features.registry import backbone_availability
    from mmrec.settings import FeaturesSettings

    (tmp_path / "page.safetensors").write_text("<html>404</html>")
    rows = backbone_availability(FeaturesSettings(vision_backbone="dino", vision_weights=str(tiny_hf_text_dirs["bert"]),
                                                  text_weights=None))
    dino = next(row for row in rows if row.name == "dino")
    assert dino.selected and not dino.available and "holds a 'bert' model, not 'dinov2'" in dino.where
    assert dino.dim != 32  # not the BERT folder's width
    rows = backbone_availability(FeaturesSettings(vision_backbone="clip",
                                                  vision_weights=str(tmp_path / "page.safetensors")))
    clip = next(row for row in rows if row.name == "clip" and row.modality == "vision")
    assert not clip.available and "not a readable safetensors file" in clip.where
