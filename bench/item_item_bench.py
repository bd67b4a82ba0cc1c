"""Cost of the item-item model: fit seconds and peak memory against catalogue size, for both solvers.

    .venv/bin/python bench/item_item_bench.py [--dense 2000 5000 10000 20000]
        [--neighbourhood 20000 100000 200000] [--ivf 200000 1000000] [--threads 2]

The dense solver is an n x n Gram matrix, a Cholesky factorisation and its inverse (float64): time
grows as n^3 and memory as n^2. The neighbourhood solver (k = 128, mmrec.models.item_neighbourhood)
streams over the catalogue: memory n k plus one [chunk, n] block. `--ivf` sizes run it with the
inverted-file neighbour search (model.item_item_neighbour_search = ivf, auto's choice above 200k items). Synthetic data (`_data`): n/2
users, 10 interactions per item, popularity and user activity following power laws
(mmrec.data.power_law), random 1280-d image and 384-d text features. Writes
bench/results/item_item.{json,md}, so users can pick `model.item_item_dense_max_items`.
"""

from __future__ import annotations

import argparse
import json
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
from mmrec.data.power_law import ITEM_EXPONENT, power_law_weights, sample_interactions  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.item_item import ItemItemModel, interaction_csr  # noqa: E402


def _data(n_items: int, seed: int = 0):
    """Users = n_items / 2, 10 interactions per item (20 per user on average), power-law popularity."""
    rng = np.random.default_rng(seed)
    n_users = max(1000, n_items // 2)
    category = rng.integers(0, 20, n_items)
    users, items, _ = sample_interactions(rng, n_users, 10 * n_items, category,
                                          power_law_weights(n_items, ITEM_EXPONENT, rng), 20)
    matrix = interaction_csr(users, items, n_users, n_items)
    content = [(torch.randn(n_items, 1280), torch.ones(n_items, dtype=torch.bool)),
               (torch.randn(n_items, 384), torch.ones(n_items, dtype=torch.bool))]
    return matrix, content


def _weights_mib(model: ItemItemModel) -> float:
    weights = model.weights
    if model.is_sparse:
        return (weights.values().numel() * 4 + weights.col_indices().numel() * 8) / 2**20
    return weights.numel() * 4 / 2**20


def run(n_items: int, solver: str, neighbours: int = 128) -> dict:
    """One fit: solver = dense | neighbourhood (exact neighbour search) | neighbourhood_ivf."""
    matrix, content = _data(n_items)
    gc.collect()
    with PeakRss() as memory:
        start = time.perf_counter()
        model = ItemItemModel.fit(matrix, content, l2=200.0, content_weight=20.0,
                                  neighbours=None if solver == "dense" else neighbours,
                                  search="ivf" if solver == "neighbourhood_ivf" else "exact")
        fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.scores(np.arange(min(1024, matrix.shape[0])))
    score_s = time.perf_counter() - start
    return {"solver": solver, "items": n_items, "users": matrix.shape[0], "interactions": int(matrix.nnz),
            "fit_s": round(fit_s, 2), "peak_rss_mib_above_start": round(memory.peak_mib),
            "score_1024_users_s": round(score_s, 3), "weights_mib": round(_weights_mib(model))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", nargs="*", type=int, default=[2000, 5000, 10000, 20000])
    parser.add_argument("--neighbourhood", nargs="*", type=int, default=[20000, 100000, 200000])
    parser.add_argument("--ivf", nargs="*", type=int, default=[])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--append", action="store_true",
                        help="keep the stored rows of other (solver, items) pairs and add or replace these")
    parser.add_argument("--note", default="", help="recorded with these rows, e.g. what else ran on the machine")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = {**machine_info(), "threads": args.threads, "torch": torch.__version__,
               "load_average_before": list(os.getloadavg())}
    rows = []
    for solver, sizes in (("dense", args.dense), ("neighbourhood", args.neighbourhood), ("neighbourhood_ivf", args.ivf)):
        for n in sizes:
            rows.append({**run(n, solver), **({"note": args.note} if args.note else {})})
            print(rows[-1], flush=True)
    if args.append and (args.out / "item_item.json").is_file():
        stored = json.loads((args.out / "item_item.json").read_text())
        ran = {(r["solver"], r["items"], r.get("note")) for r in rows}  # rows of other conditions stay
        for r in rows:
            r["machine"] = machine
        rows = sorted([r for r in stored["runs"] if (r["solver"], r["items"], r.get("note")) not in ran] + rows,
                      key=lambda r: (["dense", "neighbourhood", "neighbourhood_ivf"].index(r["solver"]), r["items"]))
        machine = stored["machine"]
    write_report(args.out, machine, args.threads, rows)


def write_report(out: Path, machine: dict, threads: int, rows: list[dict]) -> None:
    """item_item.json and item_item.md from every row."""
    atomic_write_json(out / "item_item.json", {"machine": machine, "runs": rows})
    lines = ["# Item-item model: fit cost against catalogue size", "",
             f"Machine: {machine['cpu']}, {machine['logical_cores']} cores, {threads} torch threads, torch {torch.__version__}, "
             f"load average before {', '.join(f'{v:.1f}' for v in machine['load_average_before'])}. Synthetic: "
             "items / 2 users, 10 interactions per item with power-law popularity and user activity, random "
             "1280-d + 384-d features; lambda 200, alpha 20; neighbourhood k = 128 (`neighbourhood_ivf`: inverted-file "
             "neighbour search, ~sqrt(n) content clusters, 8 probed). `peak MiB` = peak RSS above "
             "the start of the fit (psutil, every 5 ms).", "",
             "| solver | items | users | interactions | fit s | peak MiB | B MiB | score 1,024 users s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['solver']}{', ' + r['note'] if r.get('note') else ''} | {r['items']:,} | {r['users']:,} | {r['interactions']:,} | {r['fit_s']:.2f} | "
              f"{r['peak_rss_mib_above_start']:,} | {r['weights_mib']:,} | {r['score_1024_users_s']:.3f} |"
              for r in rows]
    lines += ["", "A row with a note ran under the conditions it states; item_item.json holds each appended row's "
              "own machine record (threads, load average before). The scoring time includes building the CPU "
              "copy of the sparse B on first use."]
    atomic_write_text(out / "item_item.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
