"""Batched feature extraction: images decoded by DataLoader workers, texts batched by length.

Both generators yield as they go, so the caller can store each batch at once (a killed run keeps
everything finished so far).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from mmrec.features.base import TextBackbone, VisionBackbone


@dataclass
class FeatureBatch:
    """Features of some input positions; `failed` holds (position, reason) of inputs that could not be read."""

    positions: list[int]
    features: np.ndarray  # [len(positions), dim] float32
    failed: list[tuple[int, str]] = field(default_factory=list)


class ImageFileDataset(Dataset):
    """Decodes and preprocesses one image per index; a broken file yields its error, never raises."""

    def __init__(self, paths: Sequence[str], transform) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            with Image.open(self.paths[index]) as image:
                pixels = self.transform(image.convert("RGB"))
            return index, pixels, ""
        except Exception as exc:  # corrupt, truncated, missing, too large: all are a per-item failure
            return index, None, f"{type(exc).__name__}: {exc}"


def _collate(samples: list[tuple[int, torch.Tensor | None, str]]):
    ok = [(index, pixels) for index, pixels, _ in samples if pixels is not None]
    failed = [(index, error) for index, pixels, error in samples if pixels is None]
    stacked = torch.stack([pixels for _, pixels in ok]) if ok else None
    return [index for index, _ in ok], stacked, failed


def _worker_init(_: int) -> None:
    # Decoding is single-image work; one thread per worker avoids oversubscribing the cores
    # the model's forward pass needs.
    torch.set_num_threads(1)


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (fast tensor cores); a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def embed_pixels(backbone: VisionBackbone, pixels: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] CPU pixels -> [B, dim] float32 CPU features (device move, layout, autocast)."""
    device = backbone.device
    pixels = pixels.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast_for(device):
        return backbone.embed(pixels).float().cpu()


def iter_vision_features(
    backbone: VisionBackbone, paths: Sequence[str], batch_size: int, num_workers: int
) -> Iterator[FeatureBatch]:
    """Features of each image path, in batches (positions index into `paths`)."""
    if not paths:
        return
    loader = DataLoader(
        ImageFileDataset(paths, backbone.transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init if num_workers else None,
        pin_memory=backbone.device.type == "cuda",
        prefetch_factor=4 if num_workers else None,
    )
    for positions, pixels, failed in loader:
        if pixels is None:
            features = np.zeros((0, backbone.dim), np.float32)
        else:
            features = embed_pixels(backbone, pixels).numpy()
        yield FeatureBatch(positions, features, failed)


def iter_text_features(backbone: TextBackbone, texts: Sequence[str], batch_size: int) -> Iterator[FeatureBatch]:
    """Features of each text, batched longest-first so each batch pads to similar lengths."""
    if not texts:
        return
    lengths = backbone.token_lengths(list(texts))
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        positions = order[start:start + batch_size]
        with torch.inference_mode(), autocast_for(backbone.device):
            features = backbone.embed([texts[i] for i in positions]).float().cpu().numpy()
        yield FeatureBatch(positions, features)
