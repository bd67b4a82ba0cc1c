"""Would a neighbourhood model on top of mmrec's served blend help? (validation only)

For a stored `run_peers` key (its selected mmrec-multimodal config), the served blend is rebuilt the way
`mmrec evaluate` builds it (`load_recommender("multimodal", ...)` fitted on the split's train), and mmrec's own
kNN baselines (user_knn, item_knn at neighbours 20 / 50 / 200) are fitted on the same train. On the split's
val.csv (train items masked; test is never read) it reports NDCG@10 of (1 - a) z(blend) + a z(kNN) for a in
WEIGHTS, and the best pair's per-user gain over the blend alone in paired standard errors (the rule `mmrec
train` keeps a component on top by: `model.sequence_min_se`, 1).

    OMP_NUM_THREADS=1 .venv/bin/python bench/on_top_probe.py --dataset ml-100k --keys no-tags:0:random
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5)
NEIGHBOURS = (20, 50, 200)


def z(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-9)


def per_user_ndcg(scores: torch.Tensor, relevant: sp.csr_matrix, exclude: sp.csr_matrix) -> np.ndarray:
    """NDCG@10 of each user with relevant items (row order), by the one metric implementation."""
    from mmrec.evaluation.full_ranking import full_ranking

    result = full_ranking(lambda rows: scores[torch.as_tensor(rows)], relevant, exclude, [10], return_per_user=True)
    return result.per_user["ndcg@10"]


def probe(dataset: str, variant: str, seed: int, protocol: str) -> dict:
    import bench.peers.stored as stored
    from mmrec.data.tables import load_items
    from mmrec.pipeline.evaluate import load_recommender

    stored.WORK = ROOT / "bench" / ".work" / dataset
    folder = stored.selected_folder(variant, seed, protocol)
    settings, meta, _ = stored.stored_settings(variant, seed, protocol, folder, "on_top_probe",
                                               {"paths.checkpoint_dir": str(stored.config_root(variant, seed,
                                                                                               protocol) / folder)})
    splits = Path(settings.paths.splits_dir)
    train = pd.read_csv(splits / "train.csv", dtype={"user_id": str, "item_id": str})
    val = pd.read_csv(splits / "val.csv", dtype={"user_id": str, "item_id": str})
    items = load_items(Path(settings.paths.processed_dir))
    item_ids = items["item_id"].astype(str).tolist()
    col = {item: j for j, item in enumerate(item_ids)}
    users = sorted(set(val["user_id"]) & set(train["user_id"]))
    row = {u: i for i, u in enumerate(users)}

    def csr(frame: pd.DataFrame) -> sp.csr_matrix:
        frame = frame[frame["user_id"].isin(row) & frame["item_id"].isin(col)]
        m = sp.csr_matrix((np.ones(len(frame)), (frame["user_id"].map(row), frame["item_id"].map(col))),
                          shape=(len(users), len(item_ids)))
        m.data[:] = 1.0
        return m

    relevant, exclude = csr(val), csr(train)
    device = torch.device("cpu")
    blend = load_recommender("multimodal", settings, items, train, device).score(users, device).float()
    base = per_user_ndcg(blend, relevant, exclude)
    out: dict = {"dataset": dataset, "variant": variant, "seed": seed, "protocol": protocol, "folder": folder,
                 "blend": float(base.mean()), "chosen": {k: meta["item_item"].get(k) for k in (
                     "blend", "halflife", "content_blend", "sequence_blend", "sequence_directions")}, "on_top": {}}
    zb = z(blend)
    for name in ("user_knn", "item_knn"):
        for k in NEIGHBOURS:
            knn_settings = settings.model_copy(update={"evaluation": settings.evaluation.model_copy(
                update={"knn_neighbors": k})})
            scores = load_recommender(name, knn_settings, items, train, device).score(users, device).float()
            alone = per_user_ndcg(scores, relevant, exclude)
            best = None
            for a in WEIGHTS:
                values = per_user_ndcg((1 - a) * zb + a * z(scores), relevant, exclude)
                diff = values - base
                se = diff.std(ddof=1) / np.sqrt(len(diff))
                entry = {"a": a, "ndcg@10": float(values.mean()), "gain": float(values.mean() / base.mean() - 1),
                         "se": float(diff.mean() / se) if se > 0 else 0.0}
                if best is None or entry["ndcg@10"] > best["ndcg@10"]:
                    best = entry
            out["on_top"][f"{name}{k}"] = {"alone": float(alone.mean()), "best": best}
            print(dataset, variant, seed, protocol, f"{name}{k}", json.dumps(out["on_top"][f"{name}{k}"]),
                  flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="movielens-small-posters")
    parser.add_argument("--keys", nargs="+", default=["tags:0:random"], help="variant:seed:protocol")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for key in args.keys:
        variant, seed, protocol = key.split(":")
        rows.append(probe(args.dataset, variant, int(seed), protocol))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
        print(rows[-1]["dataset"], key, "blend", round(rows[-1]["blend"], 4), flush=True)


if __name__ == "__main__":
    main()
