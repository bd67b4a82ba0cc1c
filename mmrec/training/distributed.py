"""DistributedDataParallel plumbing for `torchrun --nproc_per_node N -m mmrec train`.

gloo on CPU, nccl on GPU. Every rank draws the same per-epoch permutation and keeps its own
strided shard, so shards are disjoint and equally long (DDP needs the same number of steps).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job (world_size 1 = plain single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env() -> DistContext:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK (absent = single process)."""
    return DistContext(
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(ctx: DistContext, device: torch.device) -> torch.device:
    """Join the process group (once) and return this rank's device (cuda:LOCAL_RANK on GPUs)."""
    if not ctx.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def shard(permutation: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's strided share of `permutation`, truncated so every rank has the same length."""
    if not ctx.enabled:
        return permutation
    per_rank = len(permutation) // ctx.world_size
    return permutation[ctx.rank :: ctx.world_size][:per_rank]


def broadcast_floats(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Rank 0's values on every rank (e.g. the validation metric and the stop decision)."""
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def all_reduce_mean(value: float, ctx: DistContext, device: torch.device) -> float:
    """Mean of a scalar over ranks (the logged training loss)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / ctx.world_size


def all_gather_objects(value: Any, ctx: DistContext) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank (e.g. the RNG states a checkpoint keeps)."""
    if not ctx.enabled:
        return [value]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
