"""A stored `bench/run_peers.py` mmrec checkpoint, rebuilt for validation-only probes (bench/halflife_grid.py,
bench/temporal_probe.py, bench/temporal_nested.py, bench/sequence_gain_se.py): its settings, training inputs on
the split, and a trainer holding its weights; and the probes' shared loop over keys."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".work" / "movielens-small-posters"


@dataclass
class StoredRun:
    settings: Any  # mmrec.settings.Settings of the run (its model and training sections, its chosen lambda)
    inputs: Any  # mmrec.pipeline.train.TrainingInputs on the split
    trainer: Any  # mmrec.training.trainer.Trainer with the checkpoint's two-tower weights (no distillation)
    meta: dict[str, Any]  # the checkpoint's recorded spec (meta["item_item"]: the blend it chose)


def config_root(variant: str, seed: int, protocol: str) -> Path:
    """The folder of a key's run_peers mmrec checkpoints: one subfolder per grid config."""
    return WORK / variant / "mmrec" / "checkpoints" / f"seed{seed}" / protocol


def selected_folder(variant: str, seed: int, protocol: str) -> str:
    """The config folder of the mmrec-multimodal config run_peers selected for a key (its stored result's
    best_config), under `config_root`."""
    import json

    from bench.peers.systems.mmrec import config_tag

    runs = ROOT / "bench" / "results" / WORK.name / "runs"
    stored = json.loads((runs / variant / f"seed{seed}" / protocol / "mmrec-multimodal.json").read_text())
    return config_tag(stored["result"]["best_config"])


def stored_settings(variant: str, seed: int, protocol: str, folder: str, scratch: str,
                    overrides: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(settings, recorded spec, checkpoint state) of the best checkpoint of `folder` (a run_peers config folder)
    of `variant`/`seed`/`protocol`: its model and training sections and chosen lambda, on the CPU, writing
    into the work subfolder `scratch` (never the run's own); `overrides` go on top."""
    from bench.peers.systems.mmrec import _base_overrides
    from mmrec.checkpoints.store import load_checkpoint
    from mmrec.settings import load_settings

    root = WORK / variant / "mmrec"
    best = next((config_root(variant, seed, protocol) / folder).glob("*/best_model.pth"))
    state = load_checkpoint(best, map_location="cpu")
    meta = state["meta"]
    values = {**_base_overrides(root), "paths.splits_dir": str(WORK / variant / f"seed{seed}" / "splits" / protocol),
              "paths.checkpoint_dir": str(WORK / scratch), "training.seed": seed}
    for section in ("model", "training"):
        values.update({f"{section}.{key}": value for key, value in meta["settings"][section].items()})
    values.update({"model.item_item_l2": meta["item_item"]["l2"], "training.device": "cpu", **(overrides or {})})
    return load_settings(None, values).settings, meta, state


def load_stored_run(variant: str, seed: int, protocol: str, folder: str, scratch: str) -> StoredRun:
    """The best checkpoint of `folder` (see stored_settings) with its weights in a trainer, on CPU."""
    from mmrec.models.two_tower import TwoTowerModel
    from mmrec.pipeline.train import prepare_training
    from mmrec.training.distributed import DistContext
    from mmrec.training.trainer import Trainer

    settings, meta, state = stored_settings(variant, seed, protocol, folder, scratch)
    inputs = prepare_training(settings, torch.device("cpu"), DistContext())
    model = TwoTowerModel(settings.model, inputs.dims)
    model.load_state_dict(state["model"])
    trainer = Trainer(model, inputs.data, inputs.catalogue, settings.model.model_copy(update={"distill_weight": 0.0}),
                      settings.training, torch.device("cpu"))
    return StoredRun(settings, inputs, trainer, meta)


def probe_keys(keys: list[str], probe: Callable[[str], dict], out: Path,
               rows: list[dict] | None = None) -> tuple[str, list[dict]]:
    """(machine, rows): `probe(key)` of each key after `rows` (earlier results), with torch on
    OMP_NUM_THREADS threads; OUT.json holds {machine, rows} after every key, so a kill keeps what finished."""
    from mmrec.fileio import atomic_write_json

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only"
    rows = list(rows or [])
    for key in keys:
        rows.append(probe(key))
        atomic_write_json(out.with_suffix(".json"), {"machine": machine, "rows": rows})
    atomic_write_json(out.with_suffix(".json"), {"machine": machine, "rows": rows})
    return machine, rows
