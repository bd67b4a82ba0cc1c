"""Checkpoint files: `{checkpoint_dir}/{combo}/{best,last}_model.pth` + a JSON sidecar each.

Writes are atomic (temp + fsync + rename); loads use torch.load(weights_only=True), so a checkpoint
holds tensors and plain containers only, never pickled objects.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from mmrec.combo import check_combo_name
from mmrec.errors import CheckpointError
from mmrec.fileio import atomic_path, atomic_write_json, read_json
from mmrec.provenance import package_versions

log = logging.getLogger(__name__)

BEST = "best_model.pth"
LAST = "last_model.pth"
FORMAT = "mmrec.checkpoint/1"


def validate_combo(combo: str) -> str:
    """A combo names a folder (the rule lives in mmrec.combo)."""
    return check_combo_name(combo, CheckpointError)


def checkpoint_path(checkpoint_dir: Path, combo: str, name: str = BEST) -> Path:
    return Path(checkpoint_dir) / validate_combo(combo) / name


def sidecar_path(path: Path) -> Path:
    """best_model.pth -> best_model.json."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write `state` (tensors/plain containers) atomically, then its sidecar `meta` (+ provenance)."""
    path = Path(path)
    meta = {
        "format": FORMAT,
        **meta,
        "file": path.name,
        "versions": package_versions(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(path) as tmp:
        torch.save({**state, "format": FORMAT, "meta": meta}, tmp)
    atomic_write_json(sidecar_path(path), meta)
    return path


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """The saved dict; CheckpointError for a missing, truncated or non-mmrec file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} not found.", hint="Train one with `mmrec train`.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, EOFError, UnpicklingError) for damaged files
        raise CheckpointError(
            f"Checkpoint {path} is truncated, corrupt or holds more than tensors ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}).",
            hint="Use another checkpoint (e.g. last_model.pth) or retrain with `mmrec train`.",
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not an mmrec checkpoint (no model weights).",
                              hint="Pass a best_model.pth / last_model.pth written by `mmrec train`.")
    return state


def read_sidecar(path: Path) -> dict[str, Any]:
    """The JSON sidecar of checkpoint `path`; falls back to the copy stored inside the .pth."""
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = read_json(side)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"Checkpoint sidecar {side} is unreadable: {exc}",
                                  hint="Restore it or retrain with `mmrec train`.") from None
        if isinstance(meta, dict):
            return meta
    state = load_checkpoint(path)
    meta = state.get("meta")
    if not isinstance(meta, dict):
        raise CheckpointError(f"Checkpoint {path} has no sidecar ({side.name}) and no embedded metadata.",
                              hint="`mmrec checkpoints organize-manual` can record its feature combo.")
    return meta


def combo_folders(checkpoint_dir: Path) -> list[Path]:
    """Sub-folders that hold checkpoints (encoders/ excluded)."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name != "encoders" and any(p.glob("*.pth")))


def find_checkpoint(checkpoint_dir: Path, combo: str | None, name: str = BEST) -> Path:
    """Locate `name`: `{dir}/{combo}/{name}`, the only combo holding it, or the old flat `{dir}/{name}`."""
    root = Path(checkpoint_dir)
    hint = "Train a model first: `mmrec train --config ...`."
    if combo is not None:
        candidate = checkpoint_path(root, combo, name)
        if candidate.is_file():
            return candidate
    else:
        matches = [folder / name for folder in combo_folders(root) if (folder / name).is_file()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise CheckpointError(
                f"Several feature combos have a {name} in {root}: {', '.join(m.parent.name for m in matches)}.",
                hint="Choose one with features.vision_backbone/text_backbone in the config (or pass the path).",
            )
    flat = root / name
    if flat.is_file():
        log.warning("Found %s in the old flat layout; run `mmrec checkpoints organize` to move it into "
                    "its feature-combo folder.", flat)
        return flat
    where = f"{root}/{combo}/{name}" if combo else f"{root}/<combo>/{name}"
    raise CheckpointError(f"No checkpoint at {where}.", hint=hint)


def verify_encoders(meta: dict[str, Any], user_fingerprint: str, item_fingerprint: str, path: Path) -> None:
    """CheckpointError when the encoders on disk are not those the checkpoint was trained with."""
    recorded = meta.get("encoders", {})
    for kind, current in (("user", user_fingerprint), ("item", item_fingerprint)):
        expected = recorded.get(kind)
        if expected and expected != current:
            raise CheckpointError(
                f"The {kind} id encoder on disk (fingerprint {current[:12]}) is not the one checkpoint {path} "
                f"was trained with ({expected[:12]}).",
                hint="Use the encoders of that training run, or retrain with `mmrec train` on the current split.",
            )
