"""Scoring users with the dense item-item model on the CPU: x_u B as a dense product vs scipy sparse x dense.

    .venv/bin/python bench/item_item_scoring.py [--threads 1 2] [--users 2048]

Validation, `evaluate` and `recommend` score a chunk of users as x_u B (mmrec.models.item_item.ItemItemModel.scores).
A profile holds a few of the catalogue's items, so a dense [b, n] @ [n, n] product does n^2 multiply-adds per
user where a sparse one does |x_u| * n. Dense matrix products use every thread and scipy's sparse x dense one,
so `scores` takes the sparse product when the chunk's nonzero share times the threads stays below
SPARSE_SCORING_DENSITY. Side by side in one process, per shape (catalogue, profile length) and thread count:
seconds to score `--users` users in chunks of 1,024 with the dense product forced, the sparse one forced, and
the rule's choice. Random B (the cost does not depend on its values) and uniformly random profiles.
Writes bench/results/item_item_scoring.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from bench.peers.report import machine_info  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models import item_item  # noqa: E402
from mmrec.models.item_item import ItemItemModel, sparse_enough  # noqa: E402

# (label, items, items per user)
SHAPES = (
    ("Amazon-Baby-like (MMRec)", 7_000, 6),
    ("ml-latest-small-like", 9_700, 165),
    ("dense solver's limit", 20_000, 20),
    ("long profiles", 5_000, 300),
    ("very long profiles", 2_000, 200),
)
CHUNK = 1024


def _time(model: ItemItemModel, users: int, density: float) -> float:
    item_item.SPARSE_SCORING_DENSITY = density
    start = time.perf_counter()
    for first in range(0, users, CHUNK):
        model.scores(np.arange(first, min(users, first + CHUNK)))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--users", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "item_item_scoring")
    args = parser.parse_args(argv)
    default = item_item.SPARSE_SCORING_DENSITY
    load = os.getloadavg()
    rows = []
    for label, n_items, per_user in SHAPES:
        rng = np.random.default_rng(0)
        profiles = sp.random(args.users, n_items, density=per_user / n_items, format="csr", random_state=rng,
                             dtype=np.float32)
        profiles.data[:] = 1.0
        model = ItemItemModel(torch.randn(n_items, n_items), profiles)
        for threads in args.threads:
            torch.set_num_threads(threads)
            dense = _time(model, args.users, 0.0)
            sparse = _time(model, args.users, float("inf"))
            item_item.SPARSE_SCORING_DENSITY = default
            chosen = "sparse" if sparse_enough(profiles[:CHUNK]) else "dense"
            rows.append({"shape": label, "items": n_items, "items_per_user": per_user,
                         "density": round(profiles.nnz / (profiles.shape[0] * n_items), 5), "threads": threads,
                         "users": args.users, "dense_s": round(dense, 3), "sparse_s": round(sparse, 3),
                         "chosen": chosen, "chosen_is_faster": (chosen == "sparse") == (sparse < dense)})
            print(rows[-1], flush=True)
    machine = machine_info()
    result = {"benchmark": "item_item_scoring", "machine": machine, "load_average_before": load,
              "sparse_scoring_density": default, "chunk": CHUNK, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out.with_suffix(".json"), result)
    lines = ["# Scoring with the dense item-item model on the CPU: dense product vs scipy sparse x dense", "",
             f"`bench/item_item_scoring.py`, one process; machine: {machine['cpu']}, {machine['usable_cores']} cores, "
             f"{machine['ram_gib']} GiB; load average before "
             f"{', '.join(f'{v:.1f}' for v in load)}. {args.users:,} users scored in chunks of {CHUNK:,}, random "
             f"B and uniformly random 0/1 profiles. The rule (`mmrec.models.item_item.sparse_enough`): sparse "
             f"when nonzero share x threads < {default:g}.", "",
             "| shape | items | items per user | nonzero share | threads | dense product, s | sparse x dense, s "
             "| dense / sparse | rule picks | the faster? |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['items']:,} | {r['items_per_user']} | {100 * r['density']:.2f}% | "
                     f"{r['threads']} | {r['dense_s']:.2f} | {r['sparse_s']:.2f} | "
                     f"{r['dense_s'] / max(r['sparse_s'], 1e-9):.1f}x | {r['chosen']} | "
                     f"{'yes' if r['chosen_is_faster'] else 'no'} |")
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
