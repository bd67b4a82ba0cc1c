"""The four parts of the GPU proof run (bench/gpu_check.py): each times the CUDA path, takes its peak
CUDA memory and checks it against a CPU reference where that is cheap.

Every section takes (device, sizes, work folder) and returns {"figures": {...}, "checks": {...},
"notes": [...]}; a check is {"passed", "value", "limit"}. A section whose check fails, or that raises,
is reported as failed by the runner.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from bench.eval_bench import make_problem
from mmrec.data.encoders import fit_encoders
from mmrec.data.power_law import ITEM_EXPONENT, power_law_weights, sample_interactions
from mmrec.data.splits import load_split
from mmrec.data.synth import generate_synthetic
from mmrec.data.tables import load_items
from mmrec.evaluation.full_ranking import full_ranking
from mmrec.features.feature_store import FeatureStore
from mmrec.features.store_format import encode_vector, make_key
from mmrec.models.catalogue import fit_numeric_scaler, scaled_catalogue
from mmrec.models.item_item import ItemItemModel, interaction_csr
from mmrec.models.towers import ModelDims
from mmrec.models.two_tower import TwoTowerModel
from mmrec.pipeline.preprocess import run_preprocess
from mmrec.pipeline.split import run_split
from mmrec.settings import CacheSettings, load_settings
from mmrec.training.data import build_training_data
from mmrec.training.seeding import seed_everything
from mmrec.training.trainer import Trainer

K_VALUES = (5, 10, 20)
BF16_LOSS_RTOL = 3e-2  # bf16 keeps 8 mantissa bits: losses of the same steps agree to about 1%
FP32_LOSS_RTOL = 1e-3
BF16_ON_CPU = "not run: mmrec's Trainer applies bf16 autocast on CUDA only (training.bf16 is ignored on CPU)"


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (FULL on the GPU, DRY for the CPU dry run in `make test`)."""

    train_users: int
    train_items: int
    train_interactions: int
    train_epochs: int
    train_batch: int
    compare_steps: int
    feature_items: int
    vision_dim: int
    text_dim: int
    rank_users: int
    rank_items: int
    rank_dim: int
    rank_reference_users: int
    dense_items: int
    neighbourhood_items: int
    neighbours: int
    agree_items: int
    agree_users: int


FULL = Sizes(train_users=20_000, train_items=20_000, train_interactions=500_000, train_epochs=2, train_batch=1024,
             compare_steps=5, feature_items=100_000, vision_dim=1280, text_dim=384, rank_users=10_000,
             rank_items=200_000, rank_dim=64, rank_reference_users=1000, dense_items=20_000,
             neighbourhood_items=200_000, neighbours=128, agree_items=600, agree_users=60)
DRY = Sizes(train_users=120, train_items=80, train_interactions=1500, train_epochs=1, train_batch=256,
            compare_steps=2, feature_items=1500, vision_dim=32, text_dim=16, rank_users=300, rank_items=2000,
            rank_dim=16, rank_reference_users=100, dense_items=300, neighbourhood_items=1200, neighbours=16,
            agree_items=200, agree_users=40)


class Measure:
    """Wall seconds of a block (CUDA synchronized at both ends) and its peak CUDA memory in MiB."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = 0.0
        self.peak_mib: float | None = None

    def __enter__(self) -> Measure:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        self.seconds = round(time.perf_counter() - self.start, 4)


def check(passed: bool, value: Any, limit: Any) -> dict[str, Any]:
    return {"passed": bool(passed), "value": value, "limit": limit}


def host_peak_mib() -> float:
    """This process's peak RSS so far (Linux reports KiB): a high-water mark over the whole run."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def max_relative_gap(values: list[float], reference: list[float]) -> float:
    return max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(values, reference, strict=True))


# ---- 1. training -----------------------------------------------------------------------------------
def _project(work: Path, sizes: Sizes, device: torch.device) -> tuple[Any, dict[str, float]]:
    """A synthetic catalogue without images, preprocessed and split by mmrec itself."""
    root = work / "project"
    settings = load_settings(None, {
        "paths.data_dir": str(root / "raw"), "paths.processed_dir": str(root / "processed"),
        "paths.splits_dir": str(root / "splits"), "paths.cache_dir": str(root / "cache"),
        "training.device": str(device), "training.epochs": sizes.train_epochs,
        "training.batch_size": sizes.train_batch, "training.bf16": True, "model.item_item": False,
    }).settings
    seconds = {}
    for name, step in (("synth", lambda: generate_synthetic(
            Path(settings.paths.data_dir), users=sizes.train_users, items=sizes.train_items, seed=0,
            interactions=sizes.train_interactions, images=False, data=settings.data)),
                       ("preprocess", lambda: run_preprocess(settings)), ("split", lambda: run_split(settings))):
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
    columns = list(settings.data.numerical_features_cols)
    scaler = fit_numeric_scaler(items, columns, split.train)

    def inputs(where: torch.device) -> tuple[Any, Any]:
        catalogue = scaled_catalogue(items, item_encoder.encode(item_ids), features, columns, scaler, split.train,
                                     where)
        data = build_training_data(split.train, split.val, item_ids, users, settings.model.user_history_length,
                                   where)
        return catalogue, data

    catalogue, data = inputs(device)
    dims = ModelDims(len(users), len(item_encoder), sizes.vision_dim, sizes.text_dim, int(catalogue.numeric.shape[1]))
    seed_everything(settings.training.seed)
    trainer = Trainer(TwoTowerModel(settings.model, dims), data, catalogue, settings.model, settings.training, device,
                      k_values=K_VALUES, eval_batch_size=settings.evaluation.batch_size)
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


# ---- 2. feature store -> device ---------------------------------------------------------------------
def features_section(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """Fill a store with random vectors, then materialize them onto the device: from the diskcache (first
    read, which writes the dense pack), from the pack, and on CPU as the reference."""
    n = sizes.feature_items
    rng = np.random.default_rng(0)
    root, combo = work / "cache", "random-vision_random-text"
    cache = CacheSettings(memory_lru_bytes=0)  # every read hits disk or pack, as in a fresh process
    figures: dict[str, Any] = {"items": n}
    checks: dict[str, Any] = {}
    for modality, dim in (("vision", sizes.vision_dim), ("text", sizes.text_dim)):
        vectors = rng.standard_normal((n, dim), dtype=np.float32).astype(np.float16)
        keys = [make_key(modality, f"random-{modality}", "random:seed0", f"i{k:07d}", "content") for k in range(n)]
        started = time.perf_counter()
        with FeatureStore(root, combo, cache) as store:
            for start in range(0, n, 10_000):
                store.put_many([(keys[k], encode_vector(vectors[k])) for k in range(start, min(start + 10_000, n))])
        figures[f"{modality}_put_s"] = round(time.perf_counter() - started, 2)
        results = {}
        for name, where in (("diskcache", device), ("pack", device), ("cpu", torch.device("cpu"))):
            with FeatureStore(root, combo, cache) as store, Measure(where) as measure:
                results[name] = store.materialize(keys, where)
            figures[f"{modality}_{name}_s"] = measure.seconds
            if name != "cpu":
                figures[f"{modality}_{name}_peak_cuda_mib"] = measure.peak_mib
        expected = torch.from_numpy(vectors).float()
        for name in ("diskcache", "pack"):
            tensor, mask, missing, got_dim = results[name]
            checks[f"{modality}_{name}_on_{device.type}"] = check(
                tensor.device.type == device.type and mask.device.type == device.type, tensor.device.type,
                device.type)
            checks[f"{modality}_{name}_equals_cpu"] = check(
                torch.equal(tensor.cpu(), results["cpu"][0]) and bool(mask.all()) and not missing and got_dim == dim,
                f"{len(missing)} missing, dim {got_dim}", "identical, none missing")
        checks[f"{modality}_equals_stored"] = check(torch.equal(results["cpu"][0], expected), "float16 round trip",
                                                    "identical")
        figures[f"{modality}_gib"] = round(n * dim * 4 / 2**30, 3)
    return {"figures": figures, "checks": checks, "notes": []}


# ---- 3. full ranking --------------------------------------------------------------------------------
def ranking_section(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """full_ranking with a matmul score function against a bare matmul + top-k on the same device."""
    user_vectors, item_vectors, relevant, exclude = make_problem(sizes.rank_users, sizes.rank_items, sizes.rank_dim,
                                                                 seen=20, held_out=5)
    users_d, items_t = user_vectors.to(device), item_vectors.T.contiguous().to(device)
    batch = max(1, min(1024, (1 << 26) // sizes.rank_items))  # full_ranking's own cap on batch x items

    def score(rows: np.ndarray) -> torch.Tensor:
        return users_d[torch.from_numpy(rows).to(device)] @ items_t

    def bare() -> None:
        for start in range(0, sizes.rank_users, batch):
            torch.topk(users_d[start:start + batch] @ items_t, max(K_VALUES), dim=1)

    full_ranking(score, relevant[:batch], exclude[:batch], K_VALUES, batch, device)  # warm-up (kernels, allocator)
    bare()
    with Measure(device) as full:
        result = full_ranking(score, relevant, exclude, K_VALUES, batch, device)
    with Measure(device) as matmul:
        bare()
    subset = sizes.rank_reference_users
    on_device = full_ranking(score, relevant[:subset], exclude[:subset], K_VALUES, batch, device, return_topk=True)
    on_cpu = full_ranking(lambda rows: user_vectors[torch.from_numpy(rows)] @ item_vectors.T, relevant[:subset],
                          exclude[:subset], K_VALUES, batch, "cpu", return_topk=True)
    gap = max(abs(on_device.metrics[k] - on_cpu.metrics[k]) for k in on_cpu.metrics)
    same_topk = float((on_device.topk == on_cpu.topk).all(axis=1).mean())
    figures = {"users": sizes.rank_users, "items": sizes.rank_items, "dim": sizes.rank_dim, "batch": batch,
               "full_ranking_s": full.seconds, "bare_matmul_topk_s": matmul.seconds,
               "full_ranking_users_per_s": round(sizes.rank_users / max(full.seconds, 1e-9)),
               "bare_users_per_s": round(sizes.rank_users / max(matmul.seconds, 1e-9)),
               "speed_vs_bare": round(matmul.seconds / max(full.seconds, 1e-9), 3),
               "peak_cuda_mib": full.peak_mib, "ndcg@10": round(result.metrics["ndcg@10"], 5)}
    checks = {"metrics_equal_cpu": check(gap <= 1e-5, gap, 1e-5),
              "topk_equal_cpu": check(same_topk >= 0.999, same_topk, 0.999)}
    return {"figures": figures, "checks": checks, "notes": [f"CPU reference on the first {subset} users"]}


# ---- 4. item-item -----------------------------------------------------------------------------------
def power_law_problem(n_items: int, n_users: int, per_item: int, dims: tuple[int, int], seed: int = 0):
    """Interactions with power-law popularity (per_item per item on average) and random content."""
    rng = np.random.default_rng(seed)
    category = rng.integers(0, 20, n_items)
    users, items, _ = sample_interactions(rng, n_users, per_item * n_items, category,
                                          power_law_weights(n_items, ITEM_EXPONENT, rng), 20)
    generator = torch.Generator().manual_seed(seed)
    content = [(torch.randn(n_items, dim, generator=generator), torch.ones(n_items, dtype=torch.bool))
               for dim in dims]
    return interaction_csr(users, items, n_users, n_items), content


def _fit(matrix, content, device: torch.device, neighbours: int | None) -> tuple[ItemItemModel, Measure]:
    with Measure(device) as measure:
        model = ItemItemModel.fit(matrix, content, l2=200.0, content_weight=20.0, device=device,
                                  neighbours=neighbours)
    return model, measure


def item_item_section(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """Dense and neighbourhood fits at scale on the device; both against CPU on a small case."""
    figures: dict[str, Any] = {}
    dims = (sizes.vision_dim, sizes.text_dim)
    for solver, n_items, k in (("dense", sizes.dense_items, None),
                               ("neighbourhood", sizes.neighbourhood_items, sizes.neighbours)):
        matrix, content = power_law_problem(n_items, max(1000, n_items // 2), 10, dims)
        model, fit = _fit(matrix, content, device, k)
        with Measure(device) as scoring:
            model.scores(np.arange(min(1024, matrix.shape[0])))
        figures[solver] = {"items": n_items, "users": matrix.shape[0], "interactions": int(matrix.nnz),
                           "neighbours": k, "fit_s": fit.seconds, "peak_cuda_mib": fit.peak_mib,
                           "score_1024_users_s": scoring.seconds}
        del model, matrix, content
    # Small enough that both low-rank factors of the neighbourhood solver are exact (users <= gram rank,
    # content width <= content rank): CPU and device then solve the same systems.
    matrix, content = power_law_problem(sizes.agree_items, sizes.agree_users, 5, (48, 32), seed=1)
    checks = {}
    dense_cpu, _ = _fit(matrix, content, torch.device("cpu"), None)
    dense_dev, _ = _fit(matrix, content, device, None)
    gap = float((dense_dev.weights.cpu() - dense_cpu.weights).abs().max() / dense_cpu.weights.abs().max())
    checks["dense_equals_cpu"] = check(gap <= 1e-4, gap, 1e-4)
    rows = np.arange(sizes.agree_users)
    k = min(32, sizes.agree_items - 1)
    local_cpu, _ = _fit(matrix, content, torch.device("cpu"), k)
    local_dev, _ = _fit(matrix, content, device, k)
    same_support = float((local_dev.weights.col_indices().cpu() == local_cpu.weights.col_indices()).float().mean())
    s_cpu, s_dev = local_cpu.scores(rows), local_dev.scores(rows).cpu()
    gap = float((s_dev - s_cpu).norm() / s_cpu.norm())
    checks["neighbourhood_support_equals_cpu"] = check(same_support >= 0.99, same_support, 0.99)
    checks["neighbourhood_scores_equal_cpu"] = check(gap <= 1e-3, gap, 1e-3)
    figures["agreement_case"] = {"items": sizes.agree_items, "users": sizes.agree_users, "neighbours": k}
    return {"figures": figures, "checks": checks, "notes": []}


SECTIONS = {"train": train_section, "features": features_section, "ranking": ranking_section,
            "item_item": item_item_section}
