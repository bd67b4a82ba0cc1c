"""A stored `bench/run_peers.py` mmrec checkpoint, rebuilt for validation-only probes (bench/halflife_grid.py,
bench/temporal_probe.py): its settings, training inputs on the split, and a trainer holding its weights."""

from __future__ import annotations

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


def load_stored_run(variant: str, seed: int, protocol: str, folder: str, scratch: str) -> StoredRun:
    """The best checkpoint of `folder` (a run_peers config folder) of `variant`/`seed`/`protocol`, on CPU;
    `scratch` names the work subfolder that takes anything the rebuild writes (never the run's own)."""
    from bench.peers.systems.mmrec import _base_overrides
    from mmrec.checkpoints.store import load_checkpoint
    from mmrec.models.two_tower import TwoTowerModel
    from mmrec.pipeline.train import prepare_training
    from mmrec.settings import load_settings
    from mmrec.training.distributed import DistContext
    from mmrec.training.trainer import Trainer

    root = WORK / variant / "mmrec"
    best = next((root / "checkpoints" / f"seed{seed}" / protocol / folder).glob("*/best_model.pth"))
    state = load_checkpoint(best, map_location="cpu")
    meta = state["meta"]
    overrides = {**_base_overrides(root), "paths.splits_dir": str(WORK / variant / f"seed{seed}" / "splits" / protocol),
                 "paths.checkpoint_dir": str(WORK / scratch), "training.seed": seed}
    for section in ("model", "training"):
        overrides.update({f"{section}.{key}": value for key, value in meta["settings"][section].items()})
    overrides.update({"model.item_item_l2": meta["item_item"]["l2"], "training.device": "cpu"})
    settings = load_settings(None, overrides).settings
    inputs = prepare_training(settings, torch.device("cpu"), DistContext())
    model = TwoTowerModel(settings.model, inputs.dims)
    model.load_state_dict(state["model"])
    trainer = Trainer(model, inputs.data, inputs.catalogue, settings.model.model_copy(update={"distill_weight": 0.0}),
                      settings.training, torch.device("cpu"))
    return StoredRun(settings, inputs, trainer, meta)
