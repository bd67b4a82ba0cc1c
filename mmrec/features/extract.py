"""Batched feature extraction into the store: images decoded by DataLoader workers, texts batched
by length, each batch stored as soon as it is computed (a killed run keeps everything finished).

An image's key names the sha256 of the bytes that were actually decoded, not a hash taken earlier:
a file replaced between planning and extraction can never put its vector under the old content.

An item's vector depends on its own input only, never on which other items share its batch: kernels pick
their algorithm (and so their rounding) by tensor shape, and on several threads by the batch size too. Every
forward pass runs the configured batch size (a short batch is padded with copies of its first input, whose
outputs are dropped), and a text batch holds texts padded to one length that each text's own token count
decides (`padded_length`). A cache filled a few items at a time then holds the same vectors as one filled at
once (on the same device, thread count and batch size), and a result does not depend on what the cache held.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from mmrec.features.base import TextBackbone, VisionBackbone
from mmrec.features.feature_store import FeatureStore
from mmrec.features.file_digests import sha256_bytes
from mmrec.features.item_keys import ItemKeys
from mmrec.features.store_format import UNREADABLE, encode_failure, encode_vector, split_key
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress

MAX_REPORTED_FAILURES = 20


@dataclass
class FeatureBatch:
    """Features of some input positions; `failed` holds (position, reason) of inputs that could not be read."""

    positions: list[int]
    features: np.ndarray  # [len(positions), dim] float32
    failed: list[tuple[int, str]] = field(default_factory=list)
    digests: dict[int, str] = field(default_factory=dict)  # position -> sha256 of the image bytes decoded


class ImageFileDataset(Dataset):
    """Reads, hashes, decodes and preprocesses one image per index (the hash is of the very bytes
    decoded; None when the file could not be read); a broken file yields its error, never raises."""

    def __init__(self, paths: Sequence[str], transform) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str, str | None]:
        digest = None
        try:
            with open(self.paths[index], "rb") as handle:
                data = handle.read()
            digest = sha256_bytes(data)
            with Image.open(io.BytesIO(data)) as image:
                pixels = self.transform(image.convert("RGB"))
            return index, pixels, "", digest
        except Exception as exc:  # corrupt, truncated, missing, too large: all are a per-item failure
            return index, None, f"{type(exc).__name__}: {exc}", digest


def _collate(samples: list[tuple[int, torch.Tensor | None, str, str | None]]):
    ok = [(index, pixels) for index, pixels, _, _ in samples if pixels is not None]
    failed = [(index, error) for index, pixels, error, _ in samples if pixels is None]
    digests = {index: digest for index, _, _, digest in samples if digest is not None}
    stacked = torch.stack([pixels for _, pixels in ok]) if ok else None
    return [index for index, _ in ok], stacked, failed, digests


def _worker_init(_: int) -> None:
    # Decoding is single-image work; one thread per worker avoids oversubscribing the cores
    # the model's forward pass needs.
    torch.set_num_threads(1)
    # A SIGTERM to the whole group (`timeout`, systemd) reached the workers too, which died of it: the main process
    # then raised "DataLoader worker is killed by signal" over its own "interrupted" message. A worker leaves
    # quietly instead, as torch lets it when its parent sends the signal; the main process says what was kept.
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (fast tensor cores); a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


TOKEN_BUCKET = 8  # a text is padded to its token count rounded up to this (fewer distinct lengths, fewer batches)


def padded_length(tokens: int, limit: int) -> int:
    """The length a text of `tokens` tokens is padded to: a function of its own count only."""
    return min(-(-max(tokens, 1) // TOKEN_BUCKET) * TOKEN_BUCKET, limit)


def embed_pixels(backbone: VisionBackbone, pixels: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """[B, 3, H, W] CPU pixels -> [B, dim] float32 CPU features (device move, layout, autocast); with
    `batch_size`, the pass runs that many rows (copies of the first) so the result does not depend on B."""
    rows = len(pixels)
    if batch_size and rows < batch_size:
        pixels = torch.cat([pixels, pixels[:1].expand(batch_size - rows, *pixels.shape[1:])])
    device = backbone.device
    pixels = pixels.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast_for(device):
        return backbone.embed(pixels)[:rows].float().cpu()


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
    for positions, pixels, failed, digests in loader:
        if pixels is None:
            features = np.zeros((0, backbone.dim), np.float32)
        else:
            features = embed_pixels(backbone, pixels, batch_size).numpy()
        yield FeatureBatch(positions, features, failed, digests)


def iter_text_features(backbone: TextBackbone, texts: Sequence[str], batch_size: int) -> Iterator[FeatureBatch]:
    """Features of each text, longest first; a batch holds `batch_size` texts (copies of its first fill a short one)
    padded to one length (`padded_length`)."""
    if not texts:
        return
    lengths = [padded_length(n, backbone.token_limit) for n in backbone.token_lengths(list(texts))]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    start = 0
    while start < len(order):
        length = lengths[order[start]]
        positions = order[start:start + batch_size]
        positions = positions[:next((k for k, i in enumerate(positions) if lengths[i] != length), len(positions))]
        start += len(positions)
        batch = [texts[i] for i in positions]
        batch += batch[:1] * (batch_size - len(batch))
        with torch.inference_mode(), autocast_for(backbone.device):
            features = backbone.embed(batch, length)[:len(positions)].float().cpu().numpy()
        yield FeatureBatch(positions, features)


@dataclass
class FillReport:
    """What one fill of one modality did."""

    computed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (item_id, reason), first few
    failed_count: int = 0
    seconds: float = 0.0


def fill_modality(
    store: FeatureStore,
    plan: ItemKeys,
    modality: str,
    positions: list[int],
    backbone: VisionBackbone | TextBackbone,
    batch_size: int,
    num_workers: int,
    progress: ProgressCallback = null_progress,
) -> FillReport:
    """Compute and store features of `positions` (indices into plan), writing batch by batch.

    Rows with the same content fingerprint (a cover shared by an album's tracks, a placeholder image, a
    repeated description) are computed once: the first row's vector is stored under every such row's key.
    An image whose bytes changed since `plan` was made is stored under the key of the bytes read, and `plan`
    is updated to that key; the rows that shared its planned fingerprint are then computed each on its own
    (as are those of an image that could not be read).
    """
    report = FillReport()
    started = time.perf_counter()
    task = f"features:{modality}"
    keys = plan.keys(modality)
    description = f"{modality} features ({backbone.name})"
    progress(ProgressEvent(task, 0, len(positions), description))
    groups: dict[str, list[int]] = {}
    for position in positions:
        groups.setdefault(split_key(keys[position])[-1], []).append(position)
    alone: list[int] = []  # rows whose first-of-fingerprint could not stand for them, filled by the first round
    done = 0
    for todo, share in (([members[0] for members in groups.values()], True), (alone, False)):
        if modality == "vision":
            batches = iter_vision_features(backbone, [plan.image_paths[p] for p in todo], batch_size, num_workers)
        else:
            batches = iter_text_features(backbone, [plan.texts[p] for p in todo], batch_size)
        for batch in batches:
            entries = []
            for local, vector in [*zip(batch.positions, batch.features), *batch.failed]:
                position = todo[local]
                planned = split_key(keys[position])[-1]
                fingerprint = batch.digests.get(local, UNREADABLE) if modality == "vision" else planned
                keys[position] = plan.key(modality, position, fingerprint)  # vision: the bytes read
                others = groups[planned][1:] if share else []
                if isinstance(vector, str) or fingerprint != planned:  # failed, or the file changed: no stand-in
                    alone.extend(others)
                    others = []
                for row in others:
                    keys[row] = plan.key(modality, row, fingerprint)
                if isinstance(vector, str):
                    entries.append((keys[position], encode_failure(vector)))
                    report.failed_count += 1
                    if len(report.failed) < MAX_REPORTED_FAILURES:
                        report.failed.append((plan.item_ids[position], vector))
                else:
                    value = encode_vector(vector)
                    entries.extend((keys[row], value) for row in (position, *others))
                    report.computed += 1 + len(others)
                done += 1 + len(others)
            store.put_many(entries)
            progress(ProgressEvent(task, done, len(positions), description))
    report.seconds = time.perf_counter() - started
    store.counters["computed"] += report.computed
    store.counters["failed"] += report.failed_count
    progress(ProgressEvent(task, done, len(positions), description, done=True))
    if report.failed_count:
        progress(ProgressEvent(task, message=(
            f"{report.failed_count} {modality} input(s) could not be read and have no {modality} feature"
            f" (e.g. item {report.failed[0][0]}: {report.failed[0][1]})")))
    return report
