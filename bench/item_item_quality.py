"""Quality of the neighbourhood item-item solver against the exact dense one, on MovieLens with posters.

The neighbourhood solver runs twice: with the exact neighbour search (every item pair, the default up
to 200k items) and with the inverted-file search (`ivf`, the default above: co-occurring items exactly,
content-only neighbours from the 8 nearest content clusters of ~sqrt(n)).

    .venv/bin/python bench/item_item_quality.py [--data-dir ../shared/data/movielens-small-posters]
        [--variants tags no-tags] [--seeds 0 1 2] [--protocols random temporal] [--neighbours 128]

Both solvers fit the same item-item model (EASE with the poster and text features as side
information, mmrec's defaults lambda 200, alpha 20) on the benchmark's split files and score with
the same metric code (bench.peers.evaluation). The item-item model alone, no two-tower blend: this
isolates the approximation. k and the factor ranks were chosen on validation (random split, seed 0,
tags); test figures are reported, never used to choose. Writes bench/results/item_item_quality.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.peers.data import load_dataset  # noqa: E402
from bench.peers.evaluation import evaluate  # noqa: E402
from bench.peers.features import as_content, image_features, text_features  # noqa: E402
from bench.peers.protocols import load_split, write_protocol  # noqa: E402
from bench.peers.report import machine_info  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.item_item import ItemItemModel  # noqa: E402


# (name, neighbours: None = dense / True = --neighbours, neighbour search)
SOLVERS = (("dense", None, "exact"), ("neighbourhood", True, "exact"), ("neighbourhood_ivf", True, "ivf"))


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    for variant in args.variants:
        dataset = load_dataset(args.data_dir, variant, args.workdir / variant)
        for seed in args.seeds:
            for protocol in args.protocols:
                split = load_split(write_protocol(dataset.positives, protocol, args.workdir / variant / f"seed{seed}",
                                                  seed=seed))
                features = args.workdir / "features"
                content = [as_content(image_features(dataset.posters, split.items, features)),
                           as_content(text_features(dataset.item_texts(split.items), features))]
                train = split.matrices["train"].astype(np.float32)
                row = {"variant": variant, "seed": seed, "protocol": protocol, "items": split.n_items}
                for name, neighbours, search in SOLVERS:
                    start = time.perf_counter()
                    model = ItemItemModel.fit(train, content, l2=200.0, content_weight=20.0,
                                              neighbours=neighbours and args.neighbours, search=search)
                    fit_s = time.perf_counter() - start
                    scorer = lambda r, m=model: m.scores(r).numpy()  # noqa: E731
                    row[name] = {"fit_s": round(fit_s, 2), "val": evaluate(split, scorer, "val"),
                                 "test": evaluate(split, scorer, "test")}
                for name in ("neighbourhood", "neighbourhood_ivf"):
                    for part in ("val", "test"):
                        row[f"{part}_ratio" + name[len("neighbourhood"):]] = \
                            row[name][part]["ndcg@10"] / row["dense"][part]["ndcg@10"]
                print({k: v for k, v in row.items() if not isinstance(v, dict)}, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "movielens-small-posters")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "item_item_quality")
    parser.add_argument("--variants", nargs="+", default=["tags", "no-tags"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--protocols", nargs="+", default=["random", "temporal"])
    parser.add_argument("--neighbours", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(args)
    atomic_write_json(args.out / "item_item_quality.json", {"machine": machine_info(), "neighbours": args.neighbours,
                                                            "runs": rows})
    lines = ["# Neighbourhood item-item solver vs the exact dense solver (item-item model alone)", "",
             f"MovieLens with posters, poster + text side information, lambda 200, alpha 20, k = {args.neighbours}. "
             "NDCG@10 of the item-item model alone on each split's validation and test users.", "",
             "| variant | protocol | seed | items | dense val | neighbourhood val | ratio | ivf val | ratio | "
             "dense test | neighbourhood test | ratio | ivf test | ratio | fit s dense / neighbourhood / ivf |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, s, v = r["dense"], r["neighbourhood"], r["neighbourhood_ivf"]
        lines.append(f"| {r['variant']} | {r['protocol']} | {r['seed']} | {r['items']:,} | {d['val']['ndcg@10']:.4f} | "
                     f"{s['val']['ndcg@10']:.4f} | {r['val_ratio']:.3f} | {v['val']['ndcg@10']:.4f} | "
                     f"{r['val_ratio_ivf']:.3f} | {d['test']['ndcg@10']:.4f} | {s['test']['ndcg@10']:.4f} | "
                     f"{r['test_ratio']:.3f} | {v['test']['ndcg@10']:.4f} | {r['test_ratio_ivf']:.3f} | "
                     f"{d['fit_s']} / {s['fit_s']} / {v['fit_s']} |")
    lines.append("")
    for label, suffix in (("neighbourhood (exact search)", ""), ("neighbourhood (ivf search)", "_ivf")):
        val = [r["val_ratio" + suffix] for r in rows]
        test = [r["test_ratio" + suffix] for r in rows]
        lines.append(f"Mean ratio {label} / dense: validation {np.mean(val):.3f} (min {min(val):.3f}), "
                     f"test {np.mean(test):.3f} (min {min(test):.3f}), over {len(rows)} runs.")
    atomic_write_text(args.out / "item_item_quality.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
