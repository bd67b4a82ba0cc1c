"""Cost of the closed-form item-item model: fit seconds and peak memory against catalogue size.

    .venv/bin/python bench/item_item_bench.py [--items 2000 5000 10000 20000] [--threads 2]

The fit is a dense n x n Gram matrix, a Cholesky factorisation and its inverse (float64), so time
grows as n^3 and memory as n^2; this measures both on synthetic data (5,000 users with 50
interactions each, popularity-skewed; random 1280-d image and 384-d text features) so users can
pick `model.item_item_max_items` for their machine. Writes bench/results/item_item.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.peers.report import machine_info  # noqa: E402
from bench.peers.tuning import PeakRss  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.item_item import ItemItemModel, interaction_csr  # noqa: E402


def run(n_items: int, n_users: int = 5000, per_user: int = 50, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(n_items, size=len(users), p=popularity)
    matrix = interaction_csr(users, items, n_users, n_items)
    content = [(torch.randn(n_items, 1280), torch.ones(n_items, dtype=torch.bool)),
               (torch.randn(n_items, 384), torch.ones(n_items, dtype=torch.bool))]
    gc.collect()
    with PeakRss() as memory:
        start = time.perf_counter()
        model = ItemItemModel.fit(matrix, content, l2=200.0, content_weight=20.0)
        fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.scores(np.arange(1024))
    score_s = time.perf_counter() - start
    return {"items": n_items, "users": n_users, "interactions": int(matrix.nnz), "fit_s": round(fit_s, 2),
            "peak_rss_mib_above_start": round(memory.peak_mib), "score_1024_users_s": round(score_s, 3),
            "weights_mib": round(model.weights.numel() * 4 / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", nargs="+", type=int, default=[2000, 5000, 10000, 20000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = {**machine_info(), "threads": args.threads, "torch": torch.__version__,
               "load_average_before": list(os.getloadavg())}
    rows = []
    for n in args.items:
        rows.append(run(n))
        print(rows[-1], flush=True)
    atomic_write_json(args.out / "item_item.json", {"machine": machine, "runs": rows})
    lines = ["# Item-item model: fit cost against catalogue size", "",
             f"Machine: {machine['cpu']}, {machine['logical_cores']} cores, {args.threads} torch threads, torch {torch.__version__}, "
             f"load average before {', '.join(f'{v:.1f}' for v in machine['load_average_before'])}. Synthetic: "
             "5,000 users x 50 popularity-skewed interactions, random 1280-d + 384-d features; lambda 200, "
             "alpha 20. `peak MiB` = peak RSS above the start of the fit (psutil, every 5 ms).", "",
             "| items | fit s | peak MiB | B (float32) MiB | score 1,024 users s |", "|---|---|---|---|---|"]
    lines += [f"| {r['items']:,} | {r['fit_s']:.2f} | {r['peak_rss_mib_above_start']:,} | {r['weights_mib']:,} | "
              f"{r['score_1024_users_s']:.3f} |" for r in rows]
    atomic_write_text(args.out / "item_item.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
