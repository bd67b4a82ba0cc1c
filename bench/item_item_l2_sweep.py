"""Validation NDCG@10 of the item-item model alone against its lambda, on two MovieLens definitions.

    .venv/bin/python bench/item_item_l2_sweep.py [--data-dir ../shared/data/movielens-small-posters]

Why `mmrec train` searches lambda (model.item_item_l2_search) instead of trusting one constant:
the best lambda moves with the data. Rows: rating>=4 positives (the peer benchmark's data) and every
rating as a positive (denser, more items), random split over 3 seeds plus the per-user temporal split,
both text variants (`tags`, `no-tags`: title and genres only), poster + text side information, alpha 20. Validation only; test is never read.
Writes bench/results/item_item_l2_sweep.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench.peers.data as peer_data  # noqa: E402
from bench.peers.evaluation import evaluate  # noqa: E402
from bench.peers.features import as_content, image_features, text_features  # noqa: E402
from bench.peers.protocols import load_split, write_protocol  # noqa: E402
from bench.peers.report import machine_info  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.item_item import L2_GRID, ItemItemModel  # noqa: E402
from mmrec.settings import ModelSettings  # noqa: E402

LAMBDAS = (25, 50, 100, 200, 400, 800, 1600, 3200)
DEFINITIONS = {"rating>=4": 4, "every rating": 0}


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    for (label, threshold), variant in itertools.product(DEFINITIONS.items(), args.text_variants):
        peer_data.POSITIVE_RATING = threshold
        work = args.workdir / ("ge4" if threshold else "all")
        dataset = peer_data.load_dataset(args.data_dir, variant, work / variant)
        for protocol, seeds in (("random", args.seeds), ("temporal", [0])):
            for seed in seeds:
                split = load_split(write_protocol(dataset.positives, protocol, work / f"seed{seed}", seed=seed))
                features = args.workdir / "features"
                content = [as_content(image_features(dataset.posters, split.items, features)),
                           as_content(text_features(dataset.item_texts(split.items), features))]
                train = split.matrices["train"].astype(np.float32)
                row = {"data": label, "variant": variant, "protocol": protocol, "seed": seed, "items": split.n_items,
                       "train_interactions": int(train.nnz), "val": {}}
                for l2 in LAMBDAS:
                    model = ItemItemModel.fit(train, content, l2=float(l2), content_weight=20.0)
                    row["val"][str(l2)] = evaluate(split, lambda r, m=model: m.scores(r).numpy(), "val")["ndcg@10"]
                print(row, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "movielens-small-posters")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "item_item_l2_sweep")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--text-variants", nargs="+", choices=peer_data.TEXT_VARIANTS,
                        default=list(peer_data.TEXT_VARIANTS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args)
    default = ModelSettings().item_item_l2
    searched = [default * f for f in L2_GRID]
    atomic_write_json(args.out / "item_item_l2_sweep.json", {"machine": machine_info(), "runs": rows})
    lines = ["# Item-item lambda vs validation NDCG@10 (item-item model alone)", "",
             "MovieLens with posters, both text variants, poster + text side information, alpha 20. "
             f"`search` = what `mmrec train` picks from lambda {default:g} x {L2_GRID} on validation; "
             f"gain = its validation NDCG@10 over the fixed default {default:g}.", "",
             "| data | variant | protocol | seed | items | " + " | ".join(str(v) for v in LAMBDAS) + " | best | search | gain |",
             "|---" * (len(LAMBDAS) + 8) + "|"]
    for r in rows:
        val = r["val"]
        best = max(LAMBDAS, key=lambda v: val[str(v)])
        pick = max(searched, key=lambda v: val[str(int(v))])
        gain = val[str(int(pick))] / val[str(int(default))]
        lines.append(f"| {r['data']} | {r['variant']} | {r['protocol']} | {r['seed']} | {r['items']:,} | "
                     + " | ".join(f"{val[str(v)]:.4f}" for v in LAMBDAS)
                     + f" | {best} | {pick:g} | {gain:.3f}x |")
    atomic_write_text(args.out / "item_item_l2_sweep.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
