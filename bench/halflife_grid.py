"""Validation NDCG@10 of the item-item blend per recency half-life, on checkpoints the peer benchmark stored.

The half-life h weighs a user's training items 0.5 ** (age / h) in the item-item profile (age 0 = the
most recent); `mmrec train` picks h from HALFLIFE_GRID on validation. This reads the two-tower weights
of a stored `bench/run_peers.py` checkpoint, refits the item-item model with its chosen lambda and
validates blend weights 0.25-1 at a finer set of half-lives: where the grid's points should lie.
Validation only (the split's val.csv); test is never read. No content blend (the second stage).

    OMP_NUM_THREADS=1 .venv/bin/python bench/halflife_grid.py tags:0:temporal:<checkpoint folder> ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HALFLIVES = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)
BLENDS = (0.25, 0.5, 0.75, 1.0)


def probe(variant: str, seed: int, protocol: str, folder: str, with_l2: bool = False) -> dict:
    from bench.peers.stored import load_stored_run
    from mmrec.models.histories import catalogue_index
    from mmrec.models.item_item import fit_item_item, item_item_profiles

    run = load_stored_run(variant, seed, protocol, folder, "halflife_grid")
    settings, inputs, trainer, meta = run.settings, run.inputs, run.trainer, run.meta
    rows = catalogue_index(inputs.item_ids)
    item_item = fit_item_item(inputs.split.train, inputs.users, rows, inputs.catalogue, settings.model, 0.0)
    base = trainer.scorer()
    grid = {}
    for halflife in HALFLIVES:
        scored = item_item.with_profiles(item_item_profiles(inputs.split.train, inputs.users, rows, halflife))
        results = trainer.validate_many([base.with_item_item(scored, blend) for blend in BLENDS])
        grid[halflife] = [round(result["ndcg@10"], 4) for result in results]
    # The content-profile blend on top of the best (h, w) of HALFLIFE_GRID: the user's content profile from
    # 0/1 profiles (as mmrec does) or from the same recency-weighted profile the item-item model scores.
    from mmrec.models.content_profile import ContentProfileModel, content_features, content_modalities
    from mmrec.models.item_item import HALFLIFE_GRID

    h, w = max(((h, BLENDS[i]) for h in HALFLIFE_GRID for i in range(len(BLENDS))),
               key=lambda hw: grid[hw[0]][BLENDS.index(hw[1])])
    weighted = item_item.with_profiles(item_item_profiles(inputs.split.train, inputs.users, rows, h))
    blended = base.with_item_item(weighted, w)
    content = {}
    for name, profile_h in (("0/1 profiles", 0.0), (f"half-life {h:g} profiles", h)):
        profiles = item_item_profiles(inputs.split.train, inputs.users, rows, profile_h)
        tried = [(modality, weight) for modality in content_modalities(settings.model, inputs.catalogue)
                 for weight in (0.25, 0.5)]
        # build() makes profiles 0/1; the weighted variant is the model over the weights as they are.
        models = {m: ContentProfileModel(content_features(inputs.catalogue, m), profiles.astype("float32"))
                  for m, _ in tried}
        results = trainer.validate_many([blended.with_content(models[m], weight) for m, weight in tried])
        content[name] = max(round(r["ndcg@10"], 4) for r in results)
    # Lambda chosen with the blend: each lambda `mmrec train` tried (its l2_grid, chosen alone at h 0, weight 1)
    # refitted and validated over the whole (h, w) grid of HALFLIFE_GRID x BLENDS, no content.
    l2_joint = []
    if with_l2:
        for entry in meta["item_item"].get("l2_grid", []):
            cfg = settings.model.model_copy(update={"item_item_l2": entry["l2"]})
            fitted = fit_item_item(inputs.split.train, inputs.users, rows, inputs.catalogue, cfg, 0.0)
            scorers = [base.with_item_item(fitted.with_profiles(
                item_item_profiles(inputs.split.train, inputs.users, rows, hh)), blend)
                for hh in HALFLIFE_GRID for blend in BLENDS]
            best_blend = max(r["ndcg@10"] for r in trainer.validate_many(scorers))
            l2_joint.append({"l2": entry["l2"], "alone_h0": round(entry["ndcg@10"], 4),
                             "best_blend": round(best_blend, 4)})
    return {"variant": variant, "seed": seed, "protocol": protocol, "checkpoint": folder, "l2_joint": l2_joint,
            "stored_l2": meta["item_item"]["l2"],
            "stored_choice": {"halflife": meta["item_item"]["halflife"], "blend": meta["item_item"]["blend"]},
            "val_ndcg@10": {str(h): values for h, values in grid.items()},
            "grid_choice": {"halflife": h, "blend": w, "val_ndcg@10": grid[h][BLENDS.index(w)]},
            "content_blend_val_ndcg@10": content}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="variant:seed:protocol:checkpoint folder")
    parser.add_argument("--l2", action="store_true",
                        help="also validate the blend grid at every lambda the run tried (lambda chosen with the blend)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "movielens-small-posters" / "halflife_grid")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rows = []
    for run in args.runs:
        variant, seed, protocol, folder = run.split(":", 3)
        rows.append(probe(variant, int(seed), protocol, folder, args.l2))
        print(json.dumps(rows[-1]), flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only"
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    lines = ["# Item-item recency half-life: validation NDCG@10 of the blend (best of weights 0.25-1)", "",
             f"Machine: {machine}. `bench/halflife_grid.py` on stored `bench/run_peers.py` checkpoints; validation only.",
             "", "| key | stored choice (h, w) | " + " | ".join(f"h {h:g}" for h in HALFLIVES) + " |",
             "|---|---|" + "---|" * len(HALFLIVES)]
    for row in rows:
        best = {h: max(v) for h, v in row["val_ndcg@10"].items()}
        top = max(best.values())
        cells = [f"**{v:.4f}**" if v == top else f"{v:.4f}" for v in best.values()]
        lines.append(f"| {row['protocol']} / {row['variant']} / seed {row['seed']} | "
                     f"{row['stored_choice']['halflife']:g}, {row['stored_choice']['blend']:g} | " + " | ".join(cells) + " |")
    lines += ["", "Content-profile blend (weights 0.25 / 0.5, every modality) on top of the best (h, w) of the grid:", "",
              "| key | grid choice (h, w): val | + content, 0/1 profiles | + content, recency-weighted profiles |",
              "|---|---|---|---|"]
    for row in rows:
        choice, content = row["grid_choice"], list(row["content_blend_val_ndcg@10"].values())
        lines.append(f"| {row['protocol']} / {row['variant']} / seed {row['seed']} | {choice['halflife']:g}, "
                     f"{choice['blend']:g}: {choice['val_ndcg@10']:.4f} | {content[0]:.4f} | {content[1]:.4f} |")
    if any(row["l2_joint"] for row in rows):
        lines += ["", "Lambda chosen with the blend (`--l2`): per lambda tried, validation of the item-item model alone "
                  "(h 0, weight 1: how `mmrec train` chooses it) and of the best (h, w) blend of HALFLIFE_GRID x "
                  "weights 0.25-1, no content:", "", "| key | stored lambda | lambda: alone / best blend |", "|---|---|---|"]
        for row in rows:
            cells = ", ".join(f"{e['l2']:g}: {e['alone_h0']:.4f} / {e['best_blend']:.4f}" for e in row["l2_joint"])
            lines.append(f"| {row['protocol']} / {row['variant']} / seed {row['seed']} | {row['stored_l2']:g} | {cells} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
