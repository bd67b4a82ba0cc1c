"""Checkpoint files: `{checkpoint_dir}/{combo}/{best,last}_model.pth` + a JSON sidecar each.

Writes are atomic (temp + fsync + rename); loads use torch.load(weights_only=True), so a checkpoint
holds tensors and plain containers only, never pickled objects. The .pth embeds its metadata and is
the source of truth; the sidecar is a readable copy carrying the sha256 of the .pth it describes. A
sidecar that does not match its .pth (e.g. a kill between the two renames) is ignored with a
warning and rewritten from the embedded copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrec.combo import check_combo_name
from mmrec.errors import CheckpointError
from mmrec.fileio import (
    atomic_path,
    atomic_write_json,
    read_json,
    remove_stale_temps,
    sha256_file,
    starts_like_torch_save,
)
from mmrec.provenance import package_versions

if TYPE_CHECKING:  # torch loads with the first save or load: listing checkpoints reads JSON only
    import torch

log = logging.getLogger(__name__)

BEST = "best_model.pth"
LAST = "last_model.pth"
PREVIOUS = "previous_best_model.pth"  # the last finished best_model.pth, while a new run replaces it
FORMAT = "mmrec.checkpoint/1"
CHECKSUM = "checkpoint_sha256"  # sidecar key: sha256 of the .pth the sidecar describes


def validate_combo(combo: str) -> str:
    """A combo names a folder (the rule lives in mmrec.combo)."""
    return check_combo_name(combo, CheckpointError)


def checkpoint_path(checkpoint_dir: Path, combo: str, name: str = BEST) -> Path:
    return Path(checkpoint_dir) / validate_combo(combo) / name


def sidecar_path(path: Path) -> Path:
    """best_model.pth -> best_model.json."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: Path, state: dict[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write `state` (tensors/plain containers) + embedded `meta` atomically, then the sidecar.

    Temp files of earlier killed writes of this checkpoint are removed first.
    """
    path = Path(path)
    meta = {
        "format": FORMAT,
        **{key: value for key, value in meta.items() if key != CHECKSUM},
        "file": path.name,
        "versions": package_versions(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for target in (path, sidecar_path(path)):
        remove_stale_temps(target)
    import torch

    try:
        with atomic_path(path) as tmp:
            torch.save({**state, "format": FORMAT, "meta": meta}, tmp)
            digest = sha256_file(tmp)
    except RuntimeError as exc:  # torch reports a full disk or a file size limit as "[enforce fail ...] pos"
        said = str(exc).strip().split("\n")[0][:200]
        raise CheckpointError(
            f"Could not write checkpoint {path} ({said}): the disk is full, or a file size limit (ulimit -f) was "
            "reached. The file there before is intact.",
            hint="Free disk space or lift the limit, then run the command again.") from None
    write_sidecar(path, meta, digest)
    return path


def write_sidecar(path: Path, meta: Mapping[str, Any], digest: str | None = None) -> None:
    """The sidecar of checkpoint `path`: `meta` + the sha256 of the .pth (computed when not given)."""
    digest = digest or sha256_file(path)
    atomic_write_json(sidecar_path(path), {**meta, CHECKSUM: digest})


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """The saved dict; CheckpointError for a missing, truncated or non-mmrec file."""
    return read_checkpoint(path, map_location)[0]


def read_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> tuple[dict[str, Any], str]:
    """(the saved dict, the sha256 of the very bytes it was loaded from): the file is read once, so a checkpoint
    replaced meanwhile (a training run saving its next epoch) cannot pair one version's weights with another's
    digest. CheckpointError for a missing, truncated or non-mmrec file."""
    path = Path(path)
    try:
        data = path.read_bytes() if path.is_file() else None
    except FileNotFoundError:  # replaced between the two calls, and not there again
        data = None
    if data is None:
        raise CheckpointError(f"Checkpoint {path} not found.", hint="Train one with `mmrec train`.")
    if not starts_like_torch_save(data[:2]):
        raise CheckpointError(
            f"{path} is not a checkpoint file at all: it is neither a zip archive nor a pickle, as torch.save "
            "writes (a text file, a web page or a failed download?).",
            hint="Pass a best_model.pth / last_model.pth written by `mmrec train`.")
    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types (RuntimeError, EOFError, UnpicklingError) for damaged files
        first = str(exc).splitlines()[0] if str(exc) else ""
        # torch's own text for a pickle of other objects advises weights_only=False: never here.
        why = ("it holds Python objects besides tensors, which mmrec never unpickles" if "weights_only" in str(exc)
               else f"{type(exc).__name__}: {first}")
        raise CheckpointError(
            f"Checkpoint {path} is truncated, corrupt or holds more than tensors ({why}).",
            hint="Use another checkpoint (e.g. last_model.pth) or retrain with `mmrec train`.",
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not an mmrec checkpoint (no model weights).",
                              hint="Pass a best_model.pth / last_model.pth written by `mmrec train`.")
    return state, hashlib.sha256(data).hexdigest()


def _sidecar_or_none(path: Path) -> dict[str, Any] | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        meta = read_json(side)
    except (OSError, ValueError) as exc:
        log.warning("Checkpoint sidecar %s is unreadable (%s); using the metadata inside %s.", side, exc, path.name)
        return None
    return meta if isinstance(meta, dict) else None


def read_meta(path: Path, repair: bool = True) -> dict[str, Any]:
    """Metadata of checkpoint `path`, consistent with its weights; CheckpointError when they do not load.

    The sidecar when its sha256 matches the .pth (the .pth is then exactly what was written); else
    the copy embedded in the .pth, which is loaded (a stale or missing sidecar is rewritten from it, unless
    `repair` is False: the read-only commands, `checkpoints list / info / organize --dry-run`, write nothing);
    a checkpoint with no embedded copy (written by other tools) falls back to its sidecar.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} not found.", hint="See `mmrec checkpoints list`.")
    side = _sidecar_or_none(path)
    digest = sha256_file(path)
    if side is not None and side.get(CHECKSUM) == digest:
        return side
    state, digest = read_checkpoint(path)
    embedded = state.get("meta")
    if isinstance(embedded, dict):
        if side is not None and CHECKSUM in side:
            log.warning("Sidecar %s does not describe %s (written by another save, or the save was "
                        "interrupted); using the metadata inside the checkpoint.", sidecar_path(path).name, path)
        elif side is not None:
            log.info("Sidecar %s has no checksum (older mmrec); rewriting it from %s.", sidecar_path(path).name, path)
        if repair:
            with contextlib.suppress(OSError):  # a read-only folder still reads
                write_sidecar(path, embedded, digest)
        return {**embedded, CHECKSUM: digest}
    if side is not None:
        return side
    raise CheckpointError(f"Checkpoint {path} has no sidecar ({sidecar_path(path).name}) and no embedded "
                          "metadata.", hint="`mmrec checkpoints organize-manual` can record its feature combo.")


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
    folder = root / combo if combo is not None else None
    present = sorted(p.name for p in folder.glob("*.pth")) if folder is not None and folder.is_dir() else []
    if present:  # a mistyped name, not a missing training run
        hint = f"Checkpoints there: {', '.join(present[:10])}{' ...' if len(present) > 10 else ''}."
    raise CheckpointError(f"No checkpoint at {where}.", hint=hint)


def checkpoint_provenance(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """How the outputs made with checkpoint `path` (metadata `meta`, as read_meta gives it) name it: the file and its
    sha256, the epoch, when it was written, whether its training run had finished and what it serves."""
    return {"path": str(path), "sha256": meta.get(CHECKSUM), "epoch": meta.get("epoch"),
            "created_at": meta.get("created_at"), "finished": meta.get("finished") is not False,
            "serves": served_model(meta.get("item_item"))}


def describe_provenance(provenance: dict[str, Any]) -> str:
    """One line for a checkpoint_provenance: 'best_model.pth (epoch 10) serves two-tower + item-item'."""
    finished = "" if provenance.get("finished", True) else ", its training run had not finished"
    return (f"{Path(provenance['path']).name} (epoch {provenance.get('epoch')}{finished}) serves "
            f"{provenance.get('serves') or 'two-tower'}")


def item_item_kind(use_vision: bool, use_text: bool) -> str:
    """The item-item model as its inputs make it: 'EASE with the image and text features as side information', or
    'EASE alone (no image or text feature)' when the model reads neither."""
    named = " and ".join(name for name, on in (("image", use_vision), ("text", use_text)) if on)
    return f"EASE with the {named} features as side information" if named else "EASE alone (no image or text feature)"


def served_weights(item_item: Any) -> dict[str, float]:
    """{part: the share of the final score it keeps} from a checkpoint's recorded item-item choice. The blend steps go
    in order (item-item, content similarity, transitions, popularity), each w x its part + (1 - w) x what came
    before, so a later step at weight 1 leaves the parts before it nothing (content similarity alone at
    content_blend 1). The cold items' order and shift are not shares: see served_model."""
    if not isinstance(item_item, dict):
        return {"two-tower": 1.0}
    steps = [("item-item", item_item.get("blend")), ("content similarity", item_item.get("content_blend")),
             ("items done close together" if item_item.get("sequence_directions") == "both" else "item transitions",
              item_item.get("sequence_blend")),
             ("popularity", item_item.get("trend_blend"))]
    weights = {"two-tower": 1.0}
    for name, weight in ((name, float(weight or 0.0)) for name, weight in steps):
        weights = {part: kept * (1.0 - weight) for part, kept in weights.items()}
        weights[name] = weight
    return {part: kept for part, kept in weights.items() if kept > 0}


def served_model(item_item: Any) -> str:
    """What a checkpoint serves, from its recorded item-item choice: e.g. 'two-tower + popularity' when
    validation gave the item-item model weight 0 and kept the trend blend; the parts with a share of the score
    (served_weights), then the cold items' order and shift, and the recency of new users' popularity list."""
    parts = list(served_weights(item_item))
    halflife = item_item.get("fallback_halflife_days") if isinstance(item_item, dict) else None
    cold = [name for name, on in (("cold items by content", item_item.get("cold_blend")),
                                  ("cold items shifted", item_item.get("cold_shift")),
                                  (f"new users' popularity, half-life {halflife or 0:g} day"
                                   + ("" if halflife == 1 else "s"), halflife))
            if on] if isinstance(item_item, dict) else []
    # A later step that took the whole score: 'content similarity alone + cold items shifted'.
    head = [f"{parts[0]} alone"] if parts != ["two-tower"] and len(parts) == 1 and cold else parts
    return " + ".join([*head, *cold])


def copy_checkpoint(source: Path, target: Path) -> None:
    """Copy checkpoint `source` and its sidecar to `target` (atomically, each file whole or not at all)."""
    for src, dst in ((Path(source), Path(target)), (sidecar_path(source), sidecar_path(target))):
        if src.is_file():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)


def remove_checkpoint(path: Path) -> None:
    """Remove checkpoint `path` and its sidecar (the .pth first: a sidecar alone is never read as a checkpoint)."""
    for target in (Path(path), sidecar_path(path)):
        target.unlink(missing_ok=True)


def served_checkpoint(checkpoint_dir: Path, combo: str | None, name: str | None = None) -> tuple[Path, str | None]:
    """(path, note) of the checkpoint evaluate and recommend serve: `name` when given; else best_model.pth, or,
    while best_model.pth is from a training run that has not finished (still running, or killed), the model of
    the last finished run that run keeps as previous_best_model.pth, with a note saying so (a nightly job
    whose retrain was killed keeps serving the finished model, not an epoch of the unfinished one)."""
    path = find_checkpoint(checkpoint_dir, combo, name or BEST)
    previous = path.with_name(PREVIOUS)
    if name is not None or not previous.is_file():
        return path, None
    try:
        if read_meta(path, repair=False).get("finished") is not False or \
                read_meta(previous, repair=False).get("finished") is False:
            return path, None
    except CheckpointError:  # a damaged file: loading it says what is wrong
        return path, None
    return previous, (f"{path} is from a training run that has not finished (still running, or interrupted), so "
                      f"the model of the last finished run is served: {previous}. Pass --checkpoint-name {BEST} to "
                      "use the unfinished one.")


def unfinished_note(meta: dict[str, Any], path: Path) -> str | None:
    """A note when the best checkpoint `path` (metadata `meta`) comes from a training run that has not ended: saved
    at an epoch that improved validation, before the run chose the item-item blend it serves with (or the run was
    interrupted); None otherwise. It says how to go on: resume from the last_model.pth beside it only when that is
    the same run's (a write that failed may have left another run's there)."""
    if meta.get("finished") is not False:
        return None
    last = Path(path).with_name(LAST)
    try:
        same_run = last.is_file() and meta.get("run_id") is not None and read_meta(last).get("run_id") == meta["run_id"]
    except CheckpointError:
        same_run = False
    how = (f"let it finish, or resume it (`mmrec train --resume {last}` with that run's settings: its -c file "
           "and options)" if same_run else
           f"{last} is not from that run, so it cannot be resumed: train again")
    previous = Path(path).with_name(PREVIOUS)
    kept = (f" The model of the last finished run is kept as {previous}: pass --checkpoint-name {PREVIOUS} to use it."
            if Path(path).name == BEST and previous.is_file() else "")
    return (f"{path} is from a training run that has not finished (still running, or interrupted): the epoch-"
            f"{meta.get('epoch', '?')} two-tower model, without the item-item blend the run chooses at its end. "
            f"Before trusting these results, {how}.{kept}")
