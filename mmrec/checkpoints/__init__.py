"""Checkpoint files, their typed spec and JSON sidecars, and the combo-folder layout.

The names below load on first use (PEP 562): `mmrec checkpoints list` reads JSON sidecars and never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    **dict.fromkeys(("CheckpointSpec", "ItemItemSpec", "NumericSpec", "TrainedCheckpoint", "load_served",
                     "load_trained"),
                    "mmrec.checkpoints.spec"),
    **dict.fromkeys(("BEST", "LAST", "checkpoint_path", "find_checkpoint", "load_checkpoint", "read_meta",
                     "save_checkpoint", "sidecar_path"), "mmrec.checkpoints.store"),
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'mmrec.checkpoints' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
