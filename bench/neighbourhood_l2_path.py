"""The item-item lambda search with the neighbourhood solver (catalogues above model.item_item_dense_max_items).

    OMP_NUM_THREADS=1 .venv/bin/python bench/neighbourhood_l2_path.py [--sizes 25000 100000]
        [--variants tags no-tags] [--seeds 0 1] [--protocols random temporal] [--threads 1]

Until now the neighbourhood solver kept model.item_item_l2 (each try was a refit), while the dense solver chose
lambda on validation. `ItemItemModel.fit_l2_path` now solves the grid's four lambdas in one pass of the
neighbour search (the neighbours, right-hand sides and local k x k Gram matrices do not depend on lambda; only
the Cholesky factorization and solve are repeated).

Cost: on the synthetic data of `bench/item_item_bench.py` (power-law interactions, random 1280-d + 384-d
content), side by side in one process per size: one fit at lambda 200 (what training did before) against the
path over 200 x (1, 0.5, 2, 4); B at 200 must be the same from both.

Value (validation decides; test only reported): on MovieLens with posters (the peer benchmark's split files and
features), the item-item model alone with the neighbourhood solver forced (k = 128), NDCG@10 on validation for
lambda 25 ... 3200; the lambda the search would keep (grid 100-800, on past an edge while validation improves)
against the fixed 200, and both on test. Writes bench/results/neighbourhood_l2_path.{json,md}.
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
import torch  # noqa: E402

from bench.item_item_bench import _data  # noqa: E402
from bench.peers.data import dataset_name, load_dataset  # noqa: E402
from bench.peers.evaluation import evaluate  # noqa: E402
from bench.peers.features import as_content, image_features, text_features  # noqa: E402
from bench.peers.layout import Layout  # noqa: E402
from bench.peers.protocols import load_split, write_protocol  # noqa: E402
from bench.peers.report import machine_info  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text, read_json  # noqa: E402
from mmrec.models.item_item import L2_EDGE_STEPS, L2_GRID, ItemItemModel  # noqa: E402

L2 = 200.0
CONTENT_WEIGHT = 20.0
NEIGHBOURS = 128
SWEEP = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)


def cost(sizes: list[int]) -> list[dict]:
    rows = []
    for n_items in sizes:
        torch.manual_seed(0)
        matrix, content = _data(n_items)
        start = time.perf_counter()
        single = ItemItemModel.fit(matrix, content, L2, CONTENT_WEIGHT, neighbours=NEIGHBOURS)
        single_s = time.perf_counter() - start
        l2s = [L2 * factor for factor in L2_GRID]
        start = time.perf_counter()
        path = list(ItemItemModel.fit_l2_path(matrix, content, l2s, CONTENT_WEIGHT, neighbours=NEIGHBOURS))
        path_s = time.perf_counter() - start
        same = torch.equal(path[0].weights.col_indices(), single.weights.col_indices())
        diff = float((path[0].weights.values() - single.weights.values()).abs().max())
        row = {"items": n_items, "users": matrix.shape[0], "interactions": int(matrix.nnz), "lambdas": l2s,
               "one_fit_s": round(single_s, 1), "path_s": round(path_s, 1), "ratio": round(path_s / single_s, 2),
               "same_neighbours": same, "max_abs_diff_at_200": diff}
        print(row, flush=True)
        rows.append(row)
        del single, path
    return rows


def search_choice(curve: dict[float, float]) -> float:
    """The lambda `mmrec train`'s search keeps on this validation curve (mmrec.training.blend._choose_l2)."""
    tried = [L2 * factor for factor in L2_GRID]
    best = max(tried, key=lambda l2: (curve[l2], -tried.index(l2)))  # ties keep the earlier (factor 1 first)
    for _ in range(L2_EDGE_STEPS):
        edges = sorted(tried)
        if best not in (edges[0], edges[-1]):
            break
        step = best * 2 if best == edges[-1] else best / 2
        if step not in curve:
            break
        tried.append(step)
        if curve[step] <= curve[best]:
            break
        best = step
    return best


def value(args: argparse.Namespace) -> list[dict]:
    rows = []
    layout = Layout(args.workdir, args.out, dataset_name(args.data_dir))  # the peer benchmark's splits and features
    for variant in args.variants:
        dataset = load_dataset(args.data_dir, variant, layout.variant_dir(variant))
        for seed in args.seeds:
            for protocol in args.protocols:
                if protocol == "temporal" and seed != args.seeds[0]:
                    continue  # the temporal split does not depend on the seed: the same run again
                split = load_split(write_protocol(dataset.positives, protocol, layout.split_root(variant, seed),
                                                  seed=seed))
                features = layout.features_dir
                content = [as_content(image_features(dataset.posters, split.items, features)),
                           as_content(text_features(dataset.item_texts(split.items), features))]
                train = split.matrices["train"].astype(np.float32)
                start = time.perf_counter()
                models = dict(zip(SWEEP, ItemItemModel.fit_l2_path(train, content, list(SWEEP), CONTENT_WEIGHT,
                                                                   neighbours=NEIGHBOURS)))
                fit_s = time.perf_counter() - start
                val, test = {}, {}
                for l2, model in models.items():
                    scorer = lambda r, m=model: m.scores(r).numpy()  # noqa: E731
                    val[l2] = evaluate(split, scorer, "val")["ndcg@10"]
                    test[l2] = evaluate(split, scorer, "test")["ndcg@10"]
                chosen = search_choice(val)
                row = {"variant": variant, "seed": seed, "protocol": protocol, "items": split.n_items,
                       "path_fit_s_8_lambdas": round(fit_s, 1), "val": val, "test": test, "chosen": chosen,
                       "val_gain": val[chosen] / val[L2], "test_gain": test[chosen] / test[L2]}
                print({k: v for k, v in row.items() if k not in ("val", "test")}, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[25000, 100000])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "movielens-small-posters")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work")
    parser.add_argument("--variants", nargs="*", default=["tags", "no-tags"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--protocols", nargs="+", default=["random", "temporal"])
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--only-report", action="store_true", help="write the tables from the stored JSON only")
    args = parser.parse_args()
    out = args.out / "neighbourhood_l2_path.json"
    if args.only_report:
        stored = read_json(out)
        machine, costs = stored["machine"], stored["cost"]
        values = [{**r, "val": {float(k): v for k, v in r["val"].items()},
                   "test": {float(k): v for k, v in r["test"].items()}} for r in stored["value"]]
    else:
        torch.set_num_threads(args.threads)
        machine = {**machine_info(), "threads": args.threads, "load_average_before": list(os.getloadavg())}
        costs = cost(args.sizes)
        values = value(args)
    # One temporal run per variant (an earlier version of this script ran it once per seed: the same split).
    values = [r for i, r in enumerate(values) if not any(
        (o["variant"], o["protocol"], o["val"]) == (r["variant"], r["protocol"], r["val"]) for o in values[:i])]
    atomic_write_json(out, {"machine": machine, "neighbours": NEIGHBOURS, "cost": costs, "value": values})
    lines = ["# The item-item lambda search with the neighbourhood solver", "",
             f"`bench/neighbourhood_l2_path.py`, one process, {args.threads} thread(s); machine: {machine['cpu']}, "
             f"{machine['logical_cores']} cores, load average before "
             f"{', '.join(f'{v:.1f}' for v in machine['load_average_before'])}. k = {NEIGHBOURS}, content weight "
             f"{CONTENT_WEIGHT:g}.", ""]
    if costs:
        lines += ["## Cost: one fit at lambda 200 vs the path over 200 x (1, 0.5, 2, 4) (synthetic, "
                  "`bench/item_item_bench.py`'s data)", "",
                  "| items | users | interactions | one fit, s | path of 4, s | ratio | B at 200: same neighbours, "
                  "max abs diff |", "|---|---|---|---|---|---|---|"]
        for r in costs:
            lines.append(f"| {r['items']:,} | {r['users']:,} | {r['interactions']:,} | {r['one_fit_s']} | "
                         f"{r['path_s']} | {r['ratio']:.2f}x | {r['same_neighbours']}, {r['max_abs_diff_at_200']:.1e} |")
        lines.append("")
    if values:
        lines += ["## Value: MovieLens with posters, the neighbourhood solver forced, item-item model alone "
                  "(NDCG@10)", "",
                  "Validation chooses; test is reported only. `chosen` is what `mmrec train`'s search keeps on the "
                  "validation curve.", "",
                  "| variant | protocol | seed | val at " + " / ".join(f"{v:g}" for v in SWEEP)
                  + " | chosen | val gain over 200 | test at 200 | test at chosen | test gain |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in values:
            lines.append(f"| {r['variant']} | {r['protocol']} | {r['seed']} | "
                         + " / ".join(f"{r['val'][v]:.4f}" for v in SWEEP)
                         + f" | {r['chosen']:g} | {r['val_gain']:.3f}x | {r['test'][L2]:.4f} | "
                         f"{r['test'][r['chosen']]:.4f} | {r['test_gain']:.3f}x |")
        lines += ["", f"Mean validation gain {np.mean([r['val_gain'] for r in values]):.3f}x, test gain "
                  f"{np.mean([r['test_gain'] for r in values]):.3f}x (min {min(r['test_gain'] for r in values):.3f}x) "
                  f"over {len(values)} runs."]
    atomic_write_text(args.out / "neighbourhood_l2_path.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
