"""Resolve a device name (auto|cpu|cuda|cuda:N) into a torch.device, with a clear error."""

from __future__ import annotations

import re

import torch

from mmrec.errors import DeviceError


def resolve_device(name: str = "auto", setting: str | None = None) -> torch.device:
    """`auto` picks CUDA when present, else CPU; asking for CUDA without a GPU is an error. `setting` names
    where the value came from when it is not the command's own --device (e.g. features.device)."""
    name = ("auto" if name is None else name).strip().lower()  # '' (an empty --device) is no device: refused
    where = f" ({setting})" if setting else ""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not re.fullmatch(r"cuda(:\d+)?", name):
            raise DeviceError(f"Unknown device {name!r}{where}.", hint="Use auto, cpu, cuda or cuda:N.")
        if not torch.cuda.is_available():
            raise DeviceError(
                f"Device {name!r}{where} was requested but no CUDA GPU is available here.",
                hint=f"Set {setting} to cpu (or auto)." if setting else "Use --device cpu (or auto).",
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    raise DeviceError(f"Unknown device {name!r}{where}.", hint="Use auto, cpu, cuda or cuda:N.")


def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory where tensors on `device` live: the GPU's free memory, else the system's MemAvailable
    (Linux); None when unknown (then no check relies on it)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
