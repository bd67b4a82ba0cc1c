"""Is the two-tower model's gap to EASE a matter of capacity or of the objective? (validation only)

A dot-product model with history-item vectors H and item vectors E scores x_u H E^T: a rank-d item-item
matrix. This script measures, on the peer benchmark's `random` split files (validation NDCG@10, train
items masked; test is never read):

1. EASE's closed form B (lambda 200), and B truncated to rank d by SVD: the best a rank-d linear model
   of that kind can be if training found EASE's solution;
2. PureSVD (rank-d projection of the user-item matrix), the classic low-rank baseline;
3. a rank-d linear denoising autoencoder X -> drop(X) H E^T trained by full-batch Adam on the squared
   loss with L2 (EDLAE-style), i.e. what gradient training of that same form finds.

    OMP_NUM_THREADS=1 .venv/bin/python bench/two_tower_capacity.py [--variant tags] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RANKS = (32, 64, 128, 256, 512)
# (dim, input dropout, L2 on H and E), full-batch Adam lr 3e-3, 400 steps, best validation every 50.
DAE_GRID = ((64, 0.5, 1.0), (64, 0.25, 1.0), (64, 0.5, 10.0), (64, 0.5, 50.0), (64, 0.5, 200.0),
            (64, 0.0, 200.0), (128, 0.5, 1.0), (128, 0.5, 200.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="tags")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "movielens-small-posters")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "movielens-small-posters" / "two_tower_capacity")
    args = parser.parse_args()
    from mmrec.evaluation.full_ranking import full_ranking

    folder = args.work / args.variant / f"seed{args.seed}" / "splits" / "random"
    train = pd.read_csv(folder / "train.csv", dtype=str)
    val = pd.read_csv(folder / "val.csv", dtype=str)
    users = sorted(set(train["user_id"]))
    items = sorted(set(train["item_id"]) | set(val["item_id"]))
    user_index, item_index = {u: i for i, u in enumerate(users)}, {j: i for i, j in enumerate(items)}

    def csr(frame: pd.DataFrame) -> sp.csr_matrix:
        coords = (frame["user_id"].map(user_index), frame["item_id"].map(item_index))
        matrix = sp.csr_matrix((np.ones(len(frame)), coords), shape=(len(users), len(items)))
        matrix.data[:] = 1.0
        return matrix

    x, v = csr(train), csr(val)

    def ndcg(scores: np.ndarray | torch.Tensor) -> float:
        table = torch.as_tensor(np.asarray(scores, dtype=np.float32))
        return round(float(full_ranking(lambda rows: table[torch.from_numpy(rows)], v, x, [10]).metrics["ndcg@10"]), 4)

    dense = x.toarray()
    rows: list[dict] = []
    gram = dense.T @ dense
    inverse = np.linalg.inv(gram + 200.0 * np.eye(len(items)))
    b = -inverse / np.diag(inverse)
    np.fill_diagonal(b, 0.0)
    rows.append({"model": "EASE (lambda 200)", "rank": "full", "val_ndcg@10": ndcg(dense @ b)})
    u, s, vt = np.linalg.svd(b)
    for rank in RANKS:
        rows.append({"model": "EASE truncated by SVD", "rank": rank,
                     "val_ndcg@10": ndcg(dense @ ((u[:, :rank] * s[:rank]) @ vt[:rank]))})
    _, _, vt_x = np.linalg.svd(dense, full_matrices=False)
    for rank in RANKS[:3]:
        rows.append({"model": "PureSVD", "rank": rank, "val_ndcg@10": ndcg(dense @ (vt_x[:rank].T @ vt_x[:rank]))})
    target = torch.tensor(dense, dtype=torch.float32)
    for dim, drop, l2 in DAE_GRID:
        torch.manual_seed(args.seed)
        h = torch.nn.Parameter(torch.randn(len(items), dim) * 0.01)
        e = torch.nn.Parameter(torch.randn(len(items), dim) * 0.01)
        optimizer = torch.optim.Adam([h, e], lr=3e-3)
        curve = []
        start = time.perf_counter()
        for step in range(400):
            keep = (torch.rand_like(target) >= drop).float() / (1.0 - drop)
            loss = ((target - (target * keep) @ h @ e.T) ** 2).sum() + l2 * (h.pow(2).sum() + e.pow(2).sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 50 == 49:
                with torch.no_grad():
                    curve.append(ndcg(target @ h @ e.T))
        rows.append({"model": f"linear DAE by Adam (dropout {drop:g}, L2 {l2:g})", "rank": dim,
                     "val_ndcg@10": max(curve), "curve_every_50_steps": curve,
                     "seconds": round(time.perf_counter() - start, 1)})
        print(rows[-1], flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"variant": args.variant, "seed": args.seed, "machine": machine,
                                                         "rows": rows}, indent=1))
    lines = [f"# Two-tower capacity vs objective (`random`, {args.variant}, seed {args.seed}; validation NDCG@10)", "",
             f"`bench/two_tower_capacity.py`; {machine}.", "", "| model | rank | val NDCG@10 |", "|---|---|---|"]
    lines += [f"| {row['model']} | {row['rank']} | {row['val_ndcg@10']:.4f} |" for row in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
