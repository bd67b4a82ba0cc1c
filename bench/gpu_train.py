"""Section 1 of the GPU proof run: mmrec's Trainer with bf16 autocast on the device, and the same first
steps on CPU in fp32 as the reference (bench/gpu_check.py)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from bench.gpu_measure import K_VALUES, Measure, Sizes, check, max_relative_gap
from mmrec.data.encoders import fit_encoders
from mmrec.data.splits import load_split
from mmrec.data.synth import generate_synthetic
from mmrec.data.tables import load_items
from mmrec.models.catalogue import fit_numeric_scaler, informative_columns, scaled_catalogue
from mmrec.models.towers import ModelDims
from mmrec.models.two_tower import TwoTowerModel
from mmrec.pipeline.preprocess import run_preprocess
from mmrec.pipeline.split import run_split
from mmrec.settings import load_settings
from mmrec.training.data import build_training_data
from mmrec.training.seeding import seed_everything
from mmrec.training.trainer import Trainer

BF16_LOSS_RTOL = 3e-2  # bf16 keeps 8 mantissa bits: losses of the same steps agree to about 1%
FP32_LOSS_RTOL = 1e-3
BF16_ON_CPU = "not run: mmrec's Trainer applies bf16 autocast on CUDA only (training.bf16 is ignored on CPU)"


def _project(work: Path, sizes: Sizes, device: torch.device) -> tuple[Any, dict[str, float]]:
    """A synthetic catalogue without images, preprocessed and split by mmrec itself."""
    root = work / "project"
    settings = load_settings(None, {
        "paths.data_dir": str(root / "raw"), "paths.processed_dir": str(root / "processed"),
        "paths.splits_dir": str(root / "splits"), "paths.cache_dir": str(root / "cache"),
        "training.device": str(device), "training.epochs": sizes.train_epochs,
        "training.batch_size": sizes.train_batch, "training.bf16": True, "model.item_item": False,
    }).settings
    def synth() -> None:
        generate_synthetic(Path(settings.paths.data_dir), users=sizes.train_users, items=sizes.train_items,
                           seed=0, interactions=sizes.train_interactions, images=False, data=settings.data)

    seconds = {}
    for name, step in (("synth", synth), ("preprocess", lambda: run_preprocess(settings)),
                       ("split", lambda: run_split(settings))):
        started = time.perf_counter()
        step()
        seconds[f"{name}_s"] = round(time.perf_counter() - started, 2)
    return settings, seconds


def train_section(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """Trainer.fit with bf16 autocast for a few epochs, then the same first steps on CPU in fp32."""
    settings, prepare_seconds = _project(work, sizes, device)
    items = load_items(Path(settings.paths.processed_dir))
    split = load_split(Path(settings.paths.splits_dir))
    users, item_encoder = fit_encoders(split.train)
    item_ids = items["item_id"].astype(str).tolist()
    generator = torch.Generator().manual_seed(0)
    n = len(item_ids)  # random unit-scale vectors stand in for the backbones' features
    features = SimpleNamespace(vision=torch.randn(n, sizes.vision_dim, generator=generator),
                               vision_mask=torch.ones(n, dtype=torch.bool),
                               text=torch.randn(n, sizes.text_dim, generator=generator),
                               text_mask=torch.ones(n, dtype=torch.bool))
    columns = informative_columns(items, settings.data.numerical_features_cols)
    scaler = fit_numeric_scaler(items, columns, split.train)

    def inputs(where: torch.device) -> tuple[Any, Any]:
        catalogue = scaled_catalogue(items, item_encoder.encode(item_ids), features, columns, scaler,
                                     split.train, where)
        data = build_training_data(split.train, split.val, item_ids, users,
                                   settings.model.user_history_length, where)
        return catalogue, data

    catalogue, data = inputs(device)
    dims = ModelDims(len(users), len(item_encoder), sizes.vision_dim, sizes.text_dim,
                     int(catalogue.numeric.shape[1]))
    seed_everything(settings.training.seed)
    trainer = Trainer(TwoTowerModel(settings.model, dims), data, catalogue, settings.model, settings.training,
                      device, k_values=K_VALUES, eval_batch_size=settings.evaluation.batch_size)
    with Measure(device) as fit:
        history = trainer.fit()
    losses = [record.loss for record in history]
    figures = {**prepare_seconds, "train_interactions": len(data.pairs), "users": len(users) - 1, "items": n,
               "batch_size": settings.training.batch_size, "bf16_autocast": trainer.use_bf16,
               "epochs": len(history), "fit_s": fit.seconds, "peak_cuda_mib": fit.peak_mib,
               "interactions_per_s": round(float(np.mean([r.interactions_per_s for r in history]))),
               "seconds_per_epoch": round(float(np.mean([r.seconds for r in history])), 2),
               "epoch_losses": [round(v, 4) for v in losses],
               "val_ndcg@10": [round(r.val.get("ndcg@10", float("nan")), 4) for r in history]}
    checks = {"losses_finite": check(all(math.isfinite(v) for v in losses), losses[-1], "finite")}
    del trainer, catalogue, data

    # The same steps from the same weights, without dropout (its masks differ between devices).
    model_cfg = settings.model.model_copy(update={"dropout": 0.0, "id_dropout": 0.0})
    seed_everything(settings.training.seed)
    state = TwoTowerModel(model_cfg, dims).state_dict()
    cpu_catalogue, cpu_data = inputs(torch.device("cpu"))
    order = torch.randperm(len(cpu_data.pairs), generator=torch.Generator().manual_seed(1))
    batches = [cpu_data.pairs[order[i * sizes.train_batch:(i + 1) * sizes.train_batch]]
               for i in range(sizes.compare_steps)]

    def steps(where: torch.device, bf16: bool) -> list[float]:
        catalogue_w, data_w = (cpu_catalogue, cpu_data) if where.type == "cpu" else inputs(where)
        model = TwoTowerModel(model_cfg, dims)
        model.load_state_dict(state)
        cfg = settings.training.model_copy(update={"bf16": bf16})
        stepper = Trainer(model, data_w, catalogue_w, model_cfg, cfg, where, k_values=K_VALUES)
        return [stepper.train_step(batch.to(where)) for batch in batches]

    reference = steps(torch.device("cpu"), bf16=False)
    fp32 = steps(device, bf16=False)
    figures["compare_steps"] = sizes.compare_steps
    figures["cpu_fp32_losses"] = [round(v, 5) for v in reference]
    figures["device_fp32_losses"] = [round(v, 5) for v in fp32]
    checks["fp32_matches_cpu"] = check(max_relative_gap(fp32, reference) <= FP32_LOSS_RTOL,
                                       max_relative_gap(fp32, reference), FP32_LOSS_RTOL)
    notes = []
    if device.type == "cuda":
        bf16 = steps(device, bf16=True)
        figures["cuda_bf16_losses"] = [round(v, 5) for v in bf16]
        checks["bf16_matches_cpu_fp32"] = check(max_relative_gap(bf16, reference) <= BF16_LOSS_RTOL,
                                                max_relative_gap(bf16, reference), BF16_LOSS_RTOL)
    else:
        notes.append(f"bf16 comparison {BF16_ON_CPU}")
    return {"figures": figures, "checks": checks, "notes": notes}
