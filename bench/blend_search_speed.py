"""The scoring cost of `mmrec train`'s blend search on a large catalogue, before and after one change, side by side.

The last stages of the search (mmrec/training/blend.py) validate a grid of weights for one more component on top of
the blend chosen so far: transitions (4 variants x 5 weights) on top of two-tower + item-item + content, then
recent popularity (3 half-lives x 5 weights) on top of that. Each scorer of such a grid used to rebuild the whole
chain (every blend step re-standardized with torch.std_mean); now the standardized blend the grid shares is
computed once per chunk (mmrec.models.scoring._shared_prefixes) and rows are standardized in two passes (sum, then
the norm of the centred rows). Both arms run here in one process, alternating, on the same validation users and
components; the metrics must agree.

A walkthrough's 30,000-item catalogue spent 255 s in the search after 8 training epochs of 24 s (transitions
96 s, recent popularity 83 s); this measures those two stages' validation passes.

    OMP_NUM_THREADS=2 .venv/bin/python bench/blend_search_speed.py            # 10k users, 30k items, 300k rows
    .venv/bin/python bench/blend_search_speed.py --users 300 --items 600 --interactions 6000 --repeats 1 --out /tmp/x

The components are the real ones (transitions, content similarity, trend), the two-tower model is untrained
(random features: the scoring cost does not depend on the weights), and the item-item component is a transition
model standing in for the neighbourhood EASE fit (a minute to fit at this size; both arms score it once per chunk).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmrec.data.encoders import fit_encoders  # noqa: E402
from mmrec.data.splits import load_split  # noqa: E402
from mmrec.data.synth import generate_synthetic  # noqa: E402
from mmrec.data.tables import load_items  # noqa: E402
from mmrec.fileio import atomic_write_text  # noqa: E402
from mmrec.models import scoring  # noqa: E402
from mmrec.models.catalogue import fit_numeric_scaler, informative_columns, scaled_catalogue  # noqa: E402
from mmrec.models.content_profile import ContentProfileModel  # noqa: E402
from mmrec.models.histories import catalogue_index  # noqa: E402
from mmrec.models.item_item import item_item_profiles  # noqa: E402
from mmrec.models.towers import ModelDims  # noqa: E402
from mmrec.models.transitions import SEQUENCE_VARIANTS, SEQUENCE_WEIGHTS, transition_model  # noqa: E402
from mmrec.models.trend import TREND_HALFLIVES_DAYS, TREND_WEIGHTS, TrendModel  # noqa: E402
from mmrec.models.two_tower import TwoTowerModel  # noqa: E402
from mmrec.pipeline.preprocess import run_preprocess  # noqa: E402
from mmrec.pipeline.split import run_split  # noqa: E402
from mmrec.settings import load_settings  # noqa: E402
from mmrec.training.data import build_training_data  # noqa: E402
from mmrec.training.trainer import Trainer  # noqa: E402


def standardize_std_mean(scores: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """The standardization before the change (one-pass torch.std_mean)."""
    if scores.dtype != torch.float32:
        scores, inplace = scores.float(), True
    std, mean = torch.std_mean(scores, dim=1, keepdim=True)
    out = scores if inplace else scores.clone()
    return out.sub_(mean).div_(std.clamp_min_(1e-8))


def build(work: Path, users: int, items: int, interactions: int) -> tuple[Trainer, dict[str, list[Any]]]:
    """A trainer over a synthetic catalogue split by mmrec, and the two grids (name -> scorers)."""
    settings = load_settings(None, {
        "paths.data_dir": str(work / "raw"), "paths.processed_dir": str(work / "processed"),
        "paths.splits_dir": str(work / "splits"), "paths.cache_dir": str(work / "cache"),
        "training.device": "cpu", "model.item_item": False,
    }).settings
    generate_synthetic(Path(settings.paths.data_dir), users=users, items=items, seed=0, interactions=interactions,
                       images=False, data=settings.data)
    run_preprocess(settings)
    run_split(settings)
    table = load_items(Path(settings.paths.processed_dir))
    split = load_split(Path(settings.paths.splits_dir), test=False)
    user_encoder, item_encoder = fit_encoders(split.train)
    item_ids = table["item_id"].astype(str).tolist()
    generator = torch.Generator().manual_seed(0)
    features = SimpleNamespace(vision=torch.randn(len(item_ids), 64, generator=generator),
                               vision_mask=torch.zeros(len(item_ids), dtype=torch.bool),
                               text=torch.randn(len(item_ids), 384, generator=generator),
                               text_mask=torch.ones(len(item_ids), dtype=torch.bool))
    columns = informative_columns(table, settings.data.numerical_features_cols)
    scaler = fit_numeric_scaler(table, columns, split.train)
    catalogue = scaled_catalogue(table, item_encoder.encode(item_ids), features, columns, scaler, split.train, "cpu")
    data = build_training_data(split.train, split.val, item_ids, user_encoder, settings.model.user_history_length)
    dims = ModelDims(len(user_encoder), len(item_encoder), 64, 384, int(catalogue.numeric.shape[1]))
    torch.manual_seed(0)
    trainer = Trainer(TwoTowerModel(settings.model, dims), data, catalogue, settings.model, settings.training,
                      torch.device("cpu"), k_values=(10, 20), eval_batch_size=settings.evaluation.batch_size)
    rows = catalogue_index(item_ids)
    train = split.train
    profiles = item_item_profiles(train, user_encoder, rows, 0.0)
    stand_in = transition_model(train, user_encoder, rows, 10, 0.0, "cpu", "both")  # for the item-item fit
    content = ContentProfileModel.build(catalogue, "text", profiles)
    chosen = trainer.scorer().with_item_item(stand_in, 0.25).with_content(content, 0.5)
    matrices = {d: transition_model(train, user_encoder, rows, 10, 0.0, "cpu", d) for d in ("next", "both")}
    sequences = [matrices[d].with_profiles(item_item_profiles(train, user_encoder, rows, h)) for d, h in
                 SEQUENCE_VARIANTS]
    transitions = [chosen, *(chosen.with_sequence(m, w) for m in sequences for w in SEQUENCE_WEIGHTS)]
    with_sequence = chosen.with_sequence(sequences[2], 0.05)
    # The recent half-lives, as measured (results/blend_search_speed.md); all time (0) was added to the grid after.
    trends = [TrendModel.build(train, rows, h) for h in TREND_HALFLIVES_DAYS if h > 0]
    trend = [with_sequence, *(with_sequence.with_trend(m, w) for m in trends if m is not None for w in TREND_WEIGHTS)]
    return trainer, {"transitions": transitions, "recent popularity": trend}


def timed(trainer: Trainer, scorers: list[Any], before: bool) -> tuple[float, list[float]]:
    """(seconds, each scorer's validation NDCG@10) of one validate_paired pass, in the before or the now arm."""
    saved = scoring._shared_prefixes, scoring.standardize
    if before:
        scoring._shared_prefixes, scoring.standardize = (lambda scorers: set()), standardize_std_mean
    try:
        started = time.perf_counter()
        results = trainer.validate_paired(scorers)
        seconds = time.perf_counter() - started
    finally:
        scoring._shared_prefixes, scoring.standardize = saved
    return seconds, [metrics["ndcg@10"] for metrics, _ in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--interactions", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=2, help="alternating (before, now) rounds; the best of each")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        trainer, grids = build(Path(work), args.users, args.items, args.interactions)
        rows = []
        for name, scorers in grids.items():
            seconds: dict[bool, list[float]] = {True: [], False: []}
            values: dict[bool, list[float]] = {}
            for _ in range(args.repeats):
                for before in (True, False):
                    spent, values[before] = timed(trainer, scorers, before)
                    seconds[before].append(spent)
            gap = float(np.max(np.abs(np.subtract(values[True], values[False]))))
            if gap > 1e-4:
                raise SystemExit(f"{name}: the two arms' NDCG@10 differ by {gap:.2e}")
            rows.append({"stage": name, "scorers": len(scorers), "before_s": round(min(seconds[True]), 2),
                         "now_s": round(min(seconds[False]), 2),
                         "speedup": round(min(seconds[True]) / min(seconds[False]), 2), "max_ndcg_gap": gap,
                         "before_all_s": [round(s, 2) for s in seconds[True]],
                         "now_all_s": [round(s, 2) for s in seconds[False]]})
            print(rows[-1], flush=True)
        n_val = int((np.diff(trainer.data.val_relevant.indptr) > 0).sum())
    machine = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
               f"torch {torch.__version__}, Python {platform.python_version()}")
    report = {"users": args.users, "items": args.items, "interactions": args.interactions,
              "validation_users": n_val, "repeats": args.repeats, "machine": machine, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "blend_search_speed.json", json.dumps(report, indent=2) + "\n")
    lines = [f"# Blend search scoring, before / now ({args.items:,} items, {n_val:,} validation users)", "",
             f"`bench/blend_search_speed.py`; {machine}; best of {args.repeats} alternating rounds.", "",
             "| stage | scorers | before s | now s | speedup | max NDCG@10 gap |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['stage']} | {r['scorers']} | {r['before_s']} | {r['now_s']} | {r['speedup']}x | "
              f"{r['max_ndcg_gap']:.1e} |" for r in rows]
    atomic_write_text(args.out / "blend_search_speed.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
