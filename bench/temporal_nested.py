"""A fully nested check of the transition blend on the per-user temporal protocol (validation only).

The benchmark's temporal test lies a validation window after train. Nested inside a split: train' = train
minus each user's last n_val items (n_val = her validation count), val' = those items, test' = val.csv.
So test' lies a validation window after train' exactly as test lies after train, and test.csv is never
read. `mmrec train` runs on (train', val') with the stored config of a run_peers checkpoint and
`model.sequence_blend: true` (every weight chosen on val', gap 0); test' is then scored by the
recommender evaluate loads (profiles from train'), with the chosen transition weight and with it off.
Unlike `bench/temporal_probe.py`'s gapped rows, no weight here saw the items between profile and target.

    OMP_NUM_THREADS=1 .venv/bin/python bench/temporal_nested.py tags:0:<checkpoint folder> ...
    .venv/bin/python bench/temporal_nested.py --merge A.json B.json    # one table of earlier runs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.peers.stored import WORK, probe_keys, stored_settings  # noqa: E402
from bench.temporal_probe import ndcg10  # noqa: E402
from mmrec.fileio import atomic_write_text  # noqa: E402


def nested_split(train: pd.DataFrame, val: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train', val', test'): each user's last n_val training rows (n_val = her validation rows) become val'."""
    ordered = train.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    age = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    n_val = ordered["user_id"].map(val["user_id"].value_counts()).fillna(0).to_numpy()
    held = age < n_val
    return ordered[~held].reset_index(drop=True), ordered[held].reset_index(drop=True), val.reset_index(drop=True)


def check(variant: str, seed: int, folder: str) -> dict:
    from mmrec.data.splits import SplitFrames, load_split, save_split
    from mmrec.data.tables import load_items
    from mmrec.pipeline.evaluate import load_recommender
    from mmrec.pipeline.train import run_train

    name = f"temporal_nested/{variant}-seed{seed}-{hashlib.sha256(folder.encode()).hexdigest()[:8]}"  # one per config
    scratch = WORK / name
    settings, _, _ = stored_settings(variant, seed, "temporal", folder, f"{name}/checkpoints",
                                     {"paths.splits_dir": str(scratch / "splits"), "model.sequence_blend": True})
    split = load_split(WORK / variant / f"seed{seed}" / "splits" / "temporal")
    train, val, test = nested_split(split.train, split.val)
    save_split(SplitFrames(train, val, test), scratch / "splits")
    blend = run_train(settings).item_item
    recommender = load_recommender("multimodal", settings, load_items(Path(settings.paths.processed_dir)), train,
                                   torch.device("cpu"))
    column = {item: j for j, item in enumerate(recommender.item_ids)}
    users = sorted(test["user_id"].astype(str).unique())
    row = {user: r for r, user in enumerate(users)}

    def matrix(frame: pd.DataFrame) -> sp.csr_matrix:
        frame = frame[frame["user_id"].astype(str).isin(row)]
        return sp.csr_matrix((np.ones(len(frame)), ([row[str(u)] for u in frame["user_id"]],
                                                    [column[str(i)] for i in frame["item_id"]])),
                             shape=(len(users), len(column)))

    relevant, seen = matrix(test), matrix(pd.concat([train, val]))
    seen.data[:] = 1.0
    with_transitions = ndcg10(recommender.score(users), relevant, seen)
    recommender.scorer = recommender.scorer.with_sequence(None, 0.0)
    without = ndcg10(recommender.score(users), relevant, seen)
    out = {"variant": variant, "seed": seed, "checkpoint": folder, "users": len(users),
           "val_ndcg@10": blend["monitored"], "sequence_blend": blend["sequence_blend"],
           "sequence_halflife": blend["sequence_halflife"],
           "nested_test_ndcg@10": {"with_transitions": round(with_transitions, 4), "without": round(without, 4)}}
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="variant:seed:checkpoint folder (temporal protocol)")
    parser.add_argument("--merge", nargs="+", type=Path, default=[],
                        help="rows of earlier runs' OUT.json files, kept before the new runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "movielens-small-posters" / "temporal_nested")
    args = parser.parse_args()

    def one(run: str) -> dict:
        variant, seed, folder = run.split(":", 2)
        return check(variant, int(seed), folder)

    earlier = [row for path in args.merge for row in json.loads(path.read_text())["rows"]]
    machine, rows = probe_keys(args.runs, one, args.out, earlier)
    lines = ["# The transition blend, fully nested inside the temporal split (validation only)", "",
             f"Machine: {machine}. `bench/temporal_nested.py`: train' = train minus each user's last n_val items, "
             "val' = those items, test' = val.csv (test.csv never read); `mmrec train` with the stored config and "
             "`model.sequence_blend: true` on (train', val'); test' scored from train' profiles.", "",
             "| key | config (run_peers folder) | chosen transition weight (half-life) | val' NDCG@10 "
             "| test' NDCG@10 without / with transitions |", "|---|---|---|---|---|"]
    for r in rows:
        t = r["nested_test_ndcg@10"]
        lines.append(f"| temporal / {r['variant']} / seed {r['seed']} | {r['checkpoint']} | {r['sequence_blend']:g} "
                     f"({r['sequence_halflife']:g}) | {r['val_ndcg@10']:.4f} | {t['without']:.4f} / {t['with_transitions']:.4f} |")
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
