"""Validation NDCG@10 of the item-item model alone against its side information: which modalities, what weight.

    OMP_NUM_THREADS=1 .venv/bin/python bench/item_item_content_sweep.py --data-dir DIR [--text-variants ...]
        [--seeds 0 1 2] --out bench/results/<dataset>/item_item_content_sweep

Why: `mmrec train` ties items by their poster and text features with one constant weight
(model.item_item_content_weight, 20) and searches only lambda on validation. On ml-100k with posters matched
from ml-latest (39 of 1,008 items without one), the fixed grid's validation was lower than without posters
on every `temporal` seed. This asks, per split, how validation moves with the content (none, image, text,
both) and its weight, lambda chosen as `mmrec train` chooses it (200 x 0.5, 1, 2, 4, item-item model alone).
The benchmark's data (rating >= 4, 5-core), `random` seeds and `temporal` seed 0. Validation only; test is
never read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench.peers.data as peer_data  # noqa: E402
from bench.peers.evaluation import evaluate  # noqa: E402
from bench.peers.features import as_content, image_features, text_features  # noqa: E402
from bench.peers.layout import Layout  # noqa: E402
from bench.peers.protocols import load_split, write_protocol  # noqa: E402
from bench.peers.report import machine_info  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.item_item import L2_GRID, ItemItemModel  # noqa: E402
from mmrec.settings import ModelSettings  # noqa: E402

# (label, modalities, weight); "none" is EASE.
CONTENT = [("none", (), 0.0)] + [(f"{'+'.join(m)} {w:g}", m, w) for m in (("image",), ("text",), ("image", "text"))
                                 for w in (5.0, 20.0, 80.0)]


def run(args: argparse.Namespace) -> list[dict]:
    rows = []
    default = ModelSettings()
    lambdas = [default.item_item_l2 * f for f in L2_GRID]
    # run_peers' feature cache (bench/.work/<dataset>/features): the posters and texts are encoded once
    layout = Layout(REPO / "bench" / ".work", REPO / "bench" / "results", peer_data.dataset_name(args.data_dir))
    features = layout.features_dir
    for variant in args.text_variants:
        work = args.workdir / peer_data.dataset_name(args.data_dir)
        dataset = peer_data.load_dataset(args.data_dir, variant, work / variant)
        for protocol, seeds in (("random", args.seeds), ("temporal", [0])):
            for seed in seeds:
                split = load_split(write_protocol(dataset.positives, protocol, work / variant / f"seed{seed}", seed))
                image = image_features(dataset.posters, split.items, features)
                modal = {"image": as_content(image),
                         "text": as_content(text_features(dataset.item_texts(split.items), features))}
                train = split.matrices["train"].astype(np.float32)
                row = {"variant": variant, "protocol": protocol, "seed": seed, "items": split.n_items,
                       "items_without_image": image.n_missing, "val": {}, "l2": {}}
                for label, names, weight in CONTENT:
                    content = [modal[n] for n in names]
                    best = (-1.0, 0.0)
                    for l2, model in zip(lambdas, ItemItemModel.fit_l2_path(train, content, lambdas, weight)):
                        ndcg = evaluate(split, lambda r, m=model: m.scores(r).numpy(), "val")["ndcg@10"]
                        best = max(best, (ndcg, l2))
                    row["val"][label], row["l2"][label] = best
                print({k: row[k] for k in ("variant", "protocol", "seed")},
                      {k: round(v, 4) for k, v in row["val"].items()}, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "movielens-small-posters")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work" / "item_item_content_sweep")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--text-variants", nargs="+", choices=peer_data.TEXT_VARIANTS, default=None)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    args.text_variants = args.text_variants or peer_data.available_variants(args.data_dir)
    torch.set_num_threads(args.threads)
    rows = run(args)
    default = f"image+text {ModelSettings().item_item_content_weight:g}"
    atomic_write_json(args.out.with_suffix(".json"), {"data_dir": str(args.data_dir), "machine": machine_info(),
                                                      "runs": rows})
    labels = [c[0] for c in CONTENT]
    lines = [f"# Item-item side information vs validation NDCG@10 ({peer_data.dataset_name(args.data_dir)})", "",
             "Item-item model alone, lambda chosen per cell on validation from 200 x (0.5, 1, 2, 4). Columns: the "
             "modalities tying items and their weight (alpha); `none` is EASE. ratio = the best cell over the "
             f"default ({default}). `bench/item_item_content_sweep.py`; test not read.", "",
             "| variant | protocol | seed | items (no image) | " + " | ".join(labels) + " | best | ratio |",
             "|---" * (len(labels) + 6) + "|"]
    for r in rows:
        val = r["val"]
        best = max(labels, key=lambda k: val[k])
        lines.append(f"| {r['variant']} | {r['protocol']} | {r['seed']} | {r['items']:,} "
                     f"({r['items_without_image']}) | "
                     + " | ".join(f"{val[k]:.4f}" for k in labels) + f" | {best} | {val[best] / val[default]:.3f}x |")
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
