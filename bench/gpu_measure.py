"""Sizes and measurement helpers of the GPU proof run (bench/gpu_check.py, bench/gpu_sections.py)."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

import torch

K_VALUES = (5, 10, 20)


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (FULL on the GPU, DRY for the CPU dry run in `make test`)."""

    train_users: int
    train_items: int
    train_interactions: int
    train_epochs: int
    train_batch: int
    compare_steps: int
    feature_items: int
    vision_dim: int
    text_dim: int
    rank_users: int
    rank_items: int
    rank_dim: int
    rank_reference_users: int
    dense_items: int
    neighbourhood_items: int
    neighbours: int
    agree_items: int
    agree_users: int


FULL = Sizes(train_users=20_000, train_items=20_000, train_interactions=500_000, train_epochs=2,
             train_batch=1024, compare_steps=5, feature_items=100_000, vision_dim=1280, text_dim=384,
             rank_users=10_000, rank_items=200_000, rank_dim=64, rank_reference_users=1000,
             dense_items=20_000, neighbourhood_items=200_000, neighbours=128, agree_items=600, agree_users=60)
DRY = Sizes(train_users=120, train_items=80, train_interactions=1500, train_epochs=1, train_batch=256,
            compare_steps=2, feature_items=1500, vision_dim=32, text_dim=16, rank_users=300, rank_items=2000,
            rank_dim=16, rank_reference_users=100, dense_items=300, neighbourhood_items=1200, neighbours=16,
            agree_items=200, agree_users=40)


class Measure:
    """Wall seconds of a block (CUDA synchronized at both ends) and its peak CUDA memory in MiB."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = 0.0
        self.peak_mib: float | None = None

    def __enter__(self) -> Measure:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        self.seconds = round(time.perf_counter() - self.start, 4)


def check(passed: bool, value: Any, limit: Any) -> dict[str, Any]:
    return {"passed": bool(passed), "value": value, "limit": limit}


def host_peak_mib() -> float:
    """This process's peak RSS so far (Linux reports KiB): a high-water mark over the whole run."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def max_relative_gap(values: list[float], reference: list[float]) -> float:
    return max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(values, reference, strict=True))
