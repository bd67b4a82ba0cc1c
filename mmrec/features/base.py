"""Backbone interfaces and the two registries (vision, text) they are registered in.

A registry entry is a backbone CLASS: `resolve()` finds weights without loading anything (cheap,
used for cache keys and `mmrec cache backbones`), `load()` builds the model from a resolved source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from mmrec.features.weights import SearchLog, WeightsSource
from mmrec.registry import TEXT_BACKBONES, VISION_BACKBONES  # declared in the bottom layer for settings

__all__ = ["TEXT_BACKBONES", "VISION_BACKBONES", "Backbone", "TextBackbone", "VisionBackbone"]


class Backbone:
    """Shared parts of a loaded backbone: its model, weights source and output dimension."""

    name: ClassVar[str]
    modality: ClassVar[str]
    nominal_dim: ClassVar[int]  # the dimension of the real pretrained weights
    default_weights: ClassVar[str]  # where the weights come from when no path is given (for messages)
    # True for `imported`: its vectors come from `mmrec cache import`, it computes nothing.
    imported: ClassVar[bool] = False

    def __init__(self, model: nn.Module, source: WeightsSource, dim: int) -> None:
        self.model = model.eval()
        self.source = source
        self.dim = dim
        self.device = torch.device("cpu")

    @classmethod
    def resolve(cls, explicit: str | None, allow_download: bool) -> WeightsSource:
        """Find the weights (explicit path -> local caches -> download when allowed) or raise."""
        log = SearchLog(cls.name, cls.modality)
        if explicit:
            return cls._resolve_explicit(explicit, log)
        return cls._resolve_default(allow_download, log)

    @classmethod
    def _resolve_explicit(cls, explicit: str, log: SearchLog) -> WeightsSource:
        raise NotImplementedError

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        raise NotImplementedError

    def to(self, device: torch.device | str) -> Backbone:
        """Move the model to `device` (and remember it: inputs follow the model)."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self


class VisionBackbone(Backbone):
    """Images -> vectors. `transform` (picklable, run in DataLoader workers): PIL RGB -> [3, H, W]."""

    modality = "vision"
    transform: Callable[[Any], torch.Tensor]

    @classmethod
    def load(cls, source: WeightsSource) -> VisionBackbone:
        raise NotImplementedError

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] preprocessed pixels on self.device -> [B, dim] features."""
        raise NotImplementedError

    def to(self, device: torch.device | str) -> VisionBackbone:
        # channels_last: ~3x faster convolutions with oneDNN on CPU, tensor-core friendly on CUDA.
        super().to(device)
        self.model.to(memory_format=torch.channels_last)
        return self


class TextBackbone(Backbone):
    """Texts -> vectors, tokenized to at most `max_tokens` tokens."""

    modality = "text"

    def __init__(self, model: nn.Module, source: WeightsSource, dim: int, max_tokens: int) -> None:
        super().__init__(model, source, dim)
        self.max_tokens = max_tokens

    @classmethod
    def load(cls, source: WeightsSource, max_tokens: int) -> TextBackbone:
        raise NotImplementedError

    token_limit: int  # the most tokens a text is read to (set by load)

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Token count of each text after truncation (used to batch texts of similar length)."""
        raise NotImplementedError

    def embed(self, texts: list[str], length: int | None = None) -> torch.Tensor:
        """B texts -> [B, dim] features on self.device; padded to `length` tokens when given (else to the longest),
        so that a text's vector does not depend on the others in its batch."""
        raise NotImplementedError


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, T, D] token states, [B, T] attention mask -> [B, D] mean over real tokens only."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
