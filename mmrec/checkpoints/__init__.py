"""Checkpoint files, their JSON sidecars, and the combo-folder layout."""

from mmrec.checkpoints.store import (
    BEST,
    LAST,
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    read_sidecar,
    save_checkpoint,
    sidecar_path,
    verify_encoders,
)

__all__ = [
    "BEST", "LAST", "checkpoint_path", "find_checkpoint", "load_checkpoint", "read_sidecar",
    "save_checkpoint", "sidecar_path", "verify_encoders",
]
