"""EASE with a popularity-scaled penalty (EDLAE's emphasized-dropout closed form), validation only.

Steck (2020, "Autoencoders that don't overfit towards the identity") shows that dropout with probability p on the
input of EASE's zero-diagonal linear model is, in closed form, EASE with the item-specific penalty
lambda + p / (1 - p) * G_ii (G = X^T X): popular items are regularized more. This script asks whether that
extra parameter (alpha = p / (1 - p) in 0, 0.1, 0.25, 0.5, 1, with lambda in 50-1600) helps EASE on a split's
validation part, judged without optimism: half the validation users choose (lambda) for EASE and (lambda,
alpha) for the extended model, the other half scores both choices (300 random halves). Test is never read.

    OMP_NUM_THREADS=1 .venv/bin/python bench/edlae_probe.py bench/.work/ml-100k/no-tags/seed0/splits/random ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.peers.protocols import load_split  # noqa: E402

LAMBDAS = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
ALPHAS = (0.0, 0.1, 0.25, 0.5, 1.0)


def per_user_ndcg(x: sp.csr_matrix, v: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
    """NDCG@10 of each validation user (row order) under scores x_u B, train items masked, by the one metric
    implementation."""
    from mmrec.evaluation.full_ranking import full_ranking

    def scores(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(x[rows] @ b, dtype=np.float32))

    return full_ranking(scores, v, x, [10], return_per_user=True).per_user["ndcg@10"]


def probe(folder: Path, halves: int = 300) -> dict:
    split = load_split(folder)  # the benchmark's catalogue: every item of the split, ranked in full
    x, v = split.matrices["train"], split.matrices["val"]
    gram = (x.T @ x).toarray()
    rows = np.flatnonzero(np.asarray(v.sum(1)).ravel() > 0)
    values = {}
    for l2 in LAMBDAS:
        for alpha in ALPHAS:
            a = gram.copy()
            a[np.diag_indices_from(a)] += l2 + alpha * np.diag(gram)
            p = np.linalg.inv(a)
            b = -p / np.diag(p)
            np.fill_diagonal(b, 0.0)
            values[(l2, alpha)] = per_user_ndcg(x, v, b)
    rng = np.random.default_rng(0)
    ease_keys = [k for k in values if k[1] == 0.0]
    pairs = []
    for _ in range(halves):
        half = rng.permutation(len(rows)) < len(rows) // 2
        ease = max(ease_keys, key=lambda k: values[k][half].mean())
        both = max(values, key=lambda k: values[k][half].mean())
        pairs.append((values[both][~half].mean(), values[ease][~half].mean()))
    scored = np.asarray(pairs)
    best_ease = max(ease_keys, key=lambda k: values[k].mean())
    best = max(values, key=lambda k: values[k].mean())
    return {"split": str(folder), "val_users": len(rows),
            "ease_best": {"l2": best_ease[0], "ndcg@10": float(values[best_ease].mean())},
            "extended_best": {"l2": best[0], "alpha": best[1], "ndcg@10": float(values[best].mean())},
            "split_half": {"extended": float(scored[:, 0].mean()), "ease": float(scored[:, 1].mean()),
                           "gain": float(scored[:, 0].mean() / scored[:, 1].mean() - 1),
                           "wins": int((scored[:, 0] > scored[:, 1]).sum()),
                           "losses": int((scored[:, 0] < scored[:, 1]).sum()), "halves": halves},
            "grid": {f"{k[0]:g}/{k[1]:g}": round(float(val.mean()), 5) for k, val in values.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("splits", nargs="+", type=Path, help="run_peers split folders (train/val/test.csv, meta.json)")
    parser.add_argument("--out", type=Path, required=True, help="JSON written after every split")
    args = parser.parse_args()
    rows = []
    for folder in args.splits:
        rows.append(probe(folder))
        print(json.dumps({k: rows[-1][k] for k in ("split", "ease_best", "extended_best", "split_half")}), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
