"""The backbone registries, populated, plus helpers that go from FeaturesSettings to backbones."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from mmrec.errors import WeightsNotFoundError
from mmrec.features import text as _text  # noqa: F401  (registers the text backbones)
from mmrec.features import vision as _vision  # noqa: F401  (registers the vision backbones)
from mmrec.features.base import (
    TEXT_BACKBONES,
    VISION_BACKBONES,
    TextBackbone,
    VisionBackbone,
)
from mmrec.features.weights import WeightsSource
from mmrec.settings import FeaturesSettings

__all__ = [
    "TEXT_BACKBONES",
    "VISION_BACKBONES",
    "BackboneAvailability",
    "backbone_availability",
    "load_text_backbone",
    "load_vision_backbone",
    "resolve_backbone_weights",
]


def resolve_backbone_weights(features: FeaturesSettings, modality: str) -> WeightsSource:
    """Find the configured backbone's weights (no model is built) or raise WeightsNotFoundError."""
    if modality == "vision":
        cls = VISION_BACKBONES.get(features.vision_backbone)
        return cls.resolve(features.vision_weights, features.allow_download)
    cls = TEXT_BACKBONES.get(features.text_backbone)
    return cls.resolve(features.text_weights, features.allow_download)


def load_vision_backbone(features: FeaturesSettings, device: torch.device | str = "cpu",
                         source: WeightsSource | None = None) -> VisionBackbone:
    cls = VISION_BACKBONES.get(features.vision_backbone)
    source = source or cls.resolve(features.vision_weights, features.allow_download)
    return cls.load(source).to(device)


def load_text_backbone(features: FeaturesSettings, device: torch.device | str = "cpu",
                       source: WeightsSource | None = None) -> TextBackbone:
    cls = TEXT_BACKBONES.get(features.text_backbone)
    source = source or cls.resolve(features.text_weights, features.allow_download)
    return cls.load(source, features.max_text_tokens).to(device)


@dataclass
class BackboneAvailability:
    """One row of `mmrec cache backbones`."""

    modality: str
    name: str
    dim: int  # 0: the imported file decides
    available: bool
    where: str  # the resolved path, or why it is unavailable
    default_weights: str
    selected: bool = False  # the settings' backbone of its modality


def backbone_availability(features: FeaturesSettings | None = None) -> list[BackboneAvailability]:
    """Every registered backbone and whether its weights are here (never downloads); with `features`, the
    two backbones it selects are marked and looked up at its explicit weights paths, as extraction would."""
    rows = []
    for modality, registry in (("vision", VISION_BACKBONES), ("text", TEXT_BACKBONES)):
        for name in registry:
            cls = registry.get(name)
            selected = features is not None and name == getattr(features, f"{modality}_backbone")
            explicit = getattr(features, f"{modality}_weights") if selected else None
            if cls.imported:  # no weights: its vectors are imported per combo
                rows.append(BackboneAvailability(modality, name, cls.nominal_dim, True,
                                                 "no weights: `mmrec cache import` fills it", cls.default_weights,
                                                 selected))
                continue
            try:
                source = cls.resolve(explicit, allow_download=False)
                problem = _cheap_problem(cls, Path(source.path))
                rows.append(BackboneAvailability(
                    modality, name, (None if problem else _folder_width(source.path)) or cls.nominal_dim,
                    problem is None, f"{source.origin}: {source.path}" + (f" ({problem})" if problem else ""),
                    cls.default_weights, selected))
            except WeightsNotFoundError:
                where = f"not found at {explicit}" if explicit else "not found locally"
                rows.append(BackboneAvailability(modality, name, cls.nominal_dim, False, where, cls.default_weights,
                                                 selected))
    return rows


def _cheap_problem(cls: type, path: Path) -> str | None:
    """Why weights found at `path` will be refused, from what reads in an instant (a folder's config.json names
    another model type; a file is no safetensors or torch save), or None. Loading may still refuse them."""
    from mmrec.fileio import looks_like_torch_save

    if path.is_dir():
        try:
            model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            return "its config.json does not read"
        wanted = getattr(cls, "model_types", ())
        return f"holds a {model_type!r} model, not {' or '.join(map(repr, wanted))}" if (
            wanted and model_type not in wanted) else None
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt"):
                return None
        except Exception:  # noqa: BLE001 - safetensors raises its own error type for a damaged header
            return "not a readable safetensors file"
    return None if looks_like_torch_save(path) else "neither a torch save nor a safetensors file"


def _folder_width(path: object) -> int | None:
    """The hidden size a Hugging Face model folder's config.json gives (the width of its vectors), or None."""
    config = Path(str(path)) / "config.json"
    try:
        width = json.loads(config.read_text(encoding="utf-8")).get("hidden_size") if config.is_file() else None
    except (OSError, ValueError):
        return None
    return width if isinstance(width, int) and width > 0 else None
