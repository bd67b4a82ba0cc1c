"""Listing and organizing checkpoints: the old flat layout -> one folder per feature combo."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrec.checkpoints.store import (
    CHECKSUM,
    combo_folders,
    load_checkpoint,
    read_meta,
    served_model,
    sidecar_path,
    validate_combo,
    write_sidecar,
)
from mmrec.errors import CheckpointError
from mmrec.fileio import atomic_write_json, read_json


@dataclass
class CheckpointInfo:
    """One .pth file as `mmrec checkpoints list` shows it."""

    path: Path
    combo: str | None
    epoch: int | None
    monitor: str | None
    metric: float | None  # on validation: the served blend's (best, with an item-item blend), else the epoch's
    size_bytes: int
    organized: bool
    problem: str = ""  # why the checkpoint cannot be used ("" = its weights load)
    blended: bool = False  # metric is the served blend's (two-tower + item-item ...), not the two-tower model's
    served: str = "two-tower"  # what it serves (mmrec.checkpoints.store.served_model)
    # False: a best checkpoint of a training run still going or interrupted; None: a last checkpoint (the state
    # after an epoch, which says nothing of whether its run went on)
    finished: bool | None = True

    @property
    def valid(self) -> bool:
        return not self.problem


def inspect(path: Path, repair: bool = False) -> tuple[dict[str, Any], str]:
    """(metadata, problem): metadata consistent with the weights, or the raw sidecar (may be {}) and
    why the checkpoint is broken (weights that do not load, no metadata at all). Writes nothing unless `repair`
    (a missing or stale sidecar rewritten): listing and planning moves leave the folder as it is."""
    try:
        return read_meta(path, repair=repair), ""
    except CheckpointError as error:
        problem = error.message
    try:
        raw = read_json(sidecar_path(path))
    except (OSError, ValueError):
        raw = {}
    return (raw if isinstance(raw, dict) else {}), problem


def describe(path: Path, organized: bool) -> CheckpointInfo:
    meta, problem = inspect(path)
    combo = meta.get("combo") or (path.parent.name if organized else None)
    item_item = meta.get("item_item") if isinstance(meta.get("item_item"), dict) else {}
    served = item_item.get("monitored")
    # Anything but the two-tower model alone: a blend part, the cold items' order or shift (all chosen last).
    blended = (isinstance(served, (int, float)) and served == served
               and served_model(item_item or None) != "two-tower")
    return CheckpointInfo(
        path=path,
        combo=combo,
        epoch=meta.get("epoch"),
        monitor=meta.get("monitor"),
        metric=served if blended else meta.get("monitored_value"),
        size_bytes=path.stat().st_size,
        organized=organized,
        problem=problem,
        blended=blended,
        served=served_model(item_item or None) if blended else "two-tower",
        finished=None if meta.get("kind") == "last" else meta.get("finished") is not False,
    )


def list_checkpoints(checkpoint_dir: Path) -> list[CheckpointInfo]:
    """Organized checkpoints (`{combo}/*.pth`) then flat ones (`*.pth` directly in the folder)."""
    root = Path(checkpoint_dir)
    infos = [describe(p, True) for folder in combo_folders(root) for p in sorted(folder.glob("*.pth"))]
    if root.is_dir():
        infos += [describe(p, False) for p in sorted(root.glob("*.pth"))]
    return infos


@dataclass
class OrganizeReport:
    """What `organize` moved, or would move with --dry-run, and what it left and why."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)
    unknown_combo: list[Path] = field(default_factory=list)
    conflicts: list[Path] = field(default_factory=list)
    dry_run: bool = False


def move_checkpoint(path: Path, combo: str, checkpoint_dir: Path) -> Path:
    """Move a flat checkpoint (and its sidecar) into `{checkpoint_dir}/{combo}/`; never overwrites."""
    target_dir = Path(checkpoint_dir) / validate_combo(combo)
    target = target_dir / path.name
    if target.exists():
        raise CheckpointError(f"{target} already exists; {path} was not moved.",
                              hint="Remove or rename one of them, then organize again.")
    target_dir.mkdir(parents=True, exist_ok=True)
    side = sidecar_path(path)
    os.replace(path, target)  # same filesystem: an atomic rename
    if side.is_file():
        os.replace(side, sidecar_path(target))
    meta, _ = inspect(target, repair=True)  # a moved checkpoint gets its sidecar
    if meta.get("combo") != combo:
        meta = {**meta, "combo": combo} if meta else {"combo": combo, "organized_manually": True, "file": path.name}
        try:
            load_checkpoint(target)
        except CheckpointError:  # the sidecar's checksum vouches for weights that load: none for these
            atomic_write_json(sidecar_path(target), {key: v for key, v in meta.items() if key != CHECKSUM})
        else:
            write_sidecar(target, meta)
    return target


def organize(checkpoint_dir: Path, dry_run: bool = False) -> OrganizeReport:
    """Move each flat checkpoint whose sidecar names its combo into that combo's folder."""
    report = OrganizeReport(dry_run=dry_run)
    root = Path(checkpoint_dir)
    for info in [i for i in list_checkpoints(root) if not i.organized]:
        if not info.combo:
            report.unknown_combo.append(info.path)
            continue
        target = root / validate_combo(info.combo) / info.path.name
        if target.exists():
            report.conflicts.append(info.path)
            continue
        if not dry_run:
            target = move_checkpoint(info.path, info.combo, root)
        report.moves.append((info.path, target))
    return report


def unknown_combo_checkpoints(checkpoint_dir: Path) -> tuple[list[Path], list[Path]]:
    """(flat checkpoints whose combo no metadata records, which organize-manual asks about; flat files among them
    whose weights do not load at all: not checkpoints, so never moved into a combo folder)."""
    pending, unreadable = [], []
    for info in list_checkpoints(checkpoint_dir):
        if info.organized or info.combo:
            continue
        try:
            load_checkpoint(info.path)
        except CheckpointError:
            unreadable.append(info.path)
            continue
        pending.append(info.path)
    return pending, unreadable


def summary(path: Path) -> dict[str, Any]:
    """JSON-ready summary of one checkpoint (metadata + file facts); `status` says whether it loads."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; `checkpoints info` describes one checkpoint file.",
                              hint=f"Pass one of the .pth files that `mmrec checkpoints list --checkpoint-dir "
                              f"{path}` shows.")
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} not found.", hint="See `mmrec checkpoints list`.")
    meta, problem = inspect(path)
    keep = ("combo", "kind", "finished", "epoch", "monitor", "monitored_value", "best_epoch", "metrics",
            "model_args", "encoders", "n_users", "n_items", "numeric", "backbones", "item_item", "versions",
            "created_at")
    listed = describe(path, path.parent.name == meta.get("combo"))
    return {
        "path": str(path),
        "status": "broken" if problem else "ok",
        **({"problem": problem} if problem else {}),
        "size_bytes": path.stat().st_size,
        "organized": listed.organized,
        # What `checkpoints list` shows: the served blend's validation value (monitored_value is the two-tower
        # model's alone, at its best epoch).
        "served": None if problem else {"monitor": listed.monitor, "value": listed.metric, "model": listed.served},
        **{key: meta[key] for key in keep if key in meta},
        # Per category column the number of values with an embedding (the values themselves can be many).
        **({"categories": {name: len(values) for name, values in meta["categories"].items()}}
           if meta.get("categories") else {}),
        "settings": meta.get("settings", {}),
    }
