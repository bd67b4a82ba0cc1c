"""Checkpoint files, their typed spec and JSON sidecars, and the combo-folder layout."""

from mmrec.checkpoints.spec import CheckpointSpec, ItemItemSpec, NumericSpec, TrainedCheckpoint, load_trained
from mmrec.checkpoints.store import (
    BEST,
    LAST,
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    sidecar_path,
)

__all__ = [
    "BEST", "LAST", "CheckpointSpec", "ItemItemSpec", "NumericSpec", "TrainedCheckpoint", "checkpoint_path",
    "find_checkpoint", "load_checkpoint", "load_trained", "read_meta", "save_checkpoint", "sidecar_path",
]
