"""The four parts of the GPU proof run (bench/gpu_check.py): each times the CUDA path, takes its peak
CUDA memory and checks it against a CPU reference where that is cheap.

Every section takes (device, sizes, work folder) and returns {"figures": {...}, "checks": {...},
"notes": [...]}; a check is {"passed", "value", "limit"}. A section whose check fails, or that raises,
is reported as failed by the runner. Training lives in bench/gpu_train.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.eval_bench import make_problem
from bench.gpu_measure import K_VALUES, Measure, Sizes, check
from bench.gpu_train import train_section
from mmrec.data.encoders import IdEncoder
from mmrec.data.power_law import ITEM_EXPONENT, power_law_weights, sample_interactions
from mmrec.evaluation.full_ranking import full_ranking
from mmrec.features.feature_store import FeatureStore
from mmrec.features.store_format import encode_vector, make_key
from mmrec.models.histories import catalogue_index
from mmrec.models.item_item import ItemItemModel, interaction_csr
from mmrec.models.transitions import transition_model
from mmrec.settings import CacheSettings


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
        keys = [make_key(modality, f"random-{modality}", "random:seed0", f"i{k:07d}", "content")
                for k in range(n)]
        started = time.perf_counter()
        with FeatureStore(root, combo, cache) as store:
            for start in range(0, n, 10_000):
                chunk = range(start, min(start + 10_000, n))
                store.put_many([(keys[k], encode_vector(vectors[k])) for k in chunk])
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
                torch.equal(tensor.cpu(), results["cpu"][0]) and bool(mask.all()) and not missing
                and got_dim == dim,
                f"{len(missing)} missing, dim {got_dim}", "identical, none missing")
        checks[f"{modality}_equals_stored"] = check(torch.equal(results["cpu"][0], expected),
                                                    "float16 round trip", "identical")
        figures[f"{modality}_gib"] = round(n * dim * 4 / 2**30, 3)
    return {"figures": figures, "checks": checks, "notes": []}


# ---- 3. full ranking --------------------------------------------------------------------------------
def ranking_section(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """full_ranking with a matmul score function against a bare matmul + top-k on the same device."""
    user_vectors, item_vectors, relevant, exclude = make_problem(sizes.rank_users, sizes.rank_items,
                                                                 sizes.rank_dim, seen=20, held_out=5)
    users_d, items_t = user_vectors.to(device), item_vectors.T.contiguous().to(device)
    batch = max(1, min(1024, (1 << 26) // sizes.rank_items))  # full_ranking's own cap on batch x items

    def score(rows: np.ndarray) -> torch.Tensor:
        return users_d[torch.from_numpy(rows).to(device)] @ items_t

    def bare() -> None:
        for start in range(0, sizes.rank_users, batch):
            torch.topk(users_d[start:start + batch] @ items_t, max(K_VALUES), dim=1)

    full_ranking(score, relevant[:batch], exclude[:batch], K_VALUES, batch, device)  # warm-up
    bare()
    with Measure(device) as full:
        result = full_ranking(score, relevant, exclude, K_VALUES, batch, device)
    with Measure(device) as matmul:
        bare()
    subset = sizes.rank_reference_users
    on_device = full_ranking(score, relevant[:subset], exclude[:subset], K_VALUES, batch, device,
                             return_topk=True)
    on_cpu = full_ranking(lambda rows: user_vectors[torch.from_numpy(rows)] @ item_vectors.T,
                          relevant[:subset], exclude[:subset], K_VALUES, batch, "cpu", return_topk=True)
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


def _fit(matrix, content, device: torch.device, neighbours: int | None,
         search: str = "exact") -> tuple[ItemItemModel, Measure]:
    with Measure(device) as measure:
        model = ItemItemModel.fit(matrix, content, l2=200.0, content_weight=20.0, device=device,
                                  neighbours=neighbours, search=search)
    return model, measure


def item_item_section(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """Dense and neighbourhood fits (exact and ivf neighbour search) at scale on the device; dense,
    neighbourhood and transition scores against CPU on a small case."""
    figures: dict[str, Any] = {}
    dims = (sizes.vision_dim, sizes.text_dim)
    for solver, n_items, k, search in (("dense", sizes.dense_items, None, "exact"),
                                       ("neighbourhood", sizes.neighbourhood_items, sizes.neighbours, "exact"),
                                       ("neighbourhood_ivf", sizes.neighbourhood_items, sizes.neighbours, "ivf")):
        matrix, content = power_law_problem(n_items, max(1000, n_items // 2), 10, dims)
        model, fit = _fit(matrix, content, device, k, search)
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
    supports = local_dev.weights.col_indices().cpu(), local_cpu.weights.col_indices()
    same_support = float((supports[0] == supports[1]).float().mean())
    s_cpu, s_dev = local_cpu.scores(rows), local_dev.scores(rows).cpu()
    gap = float((s_dev - s_cpu).norm() / s_cpu.norm())
    checks["neighbourhood_support_equals_cpu"] = check(same_support >= 0.99, same_support, 0.99)
    checks["neighbourhood_scores_equal_cpu"] = check(gap <= 1e-3, gap, 1e-3)
    figures["agreement_case"] = {"items": sizes.agree_items, "users": sizes.agree_users, "neighbours": k}
    # The opt-in transition blend (model.sequence_blend): its sparse B on the device scores as on the CPU.
    users, items = matrix.nonzero()  # row-major: each user's items in a fixed order stand in for time
    train = pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str), "timestamp": np.arange(len(users))})
    encoder, catalogue = IdEncoder.fit(train["user_id"]), catalogue_index([str(i) for i in range(sizes.agree_items)])
    profile_rows = np.arange(1, len(encoder))
    on_cpu = transition_model(train, encoder, catalogue, 10, 1.0, "cpu").scores(profile_rows)
    on_dev = transition_model(train, encoder, catalogue, 10, 1.0, device).scores(profile_rows).cpu()
    gap = float((on_dev - on_cpu).norm() / on_cpu.norm())
    checks["transition_scores_equal_cpu"] = check(gap <= 1e-5, gap, 1e-5)
    return {"figures": figures, "checks": checks, "notes": []}


SECTIONS = {"train": train_section, "features": features_section, "ranking": ranking_section,
            "item_item": item_item_section}
