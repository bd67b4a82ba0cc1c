"""What each lever buys the two-tower model alone (no item-item or content blend), on validation only.

    OMP_NUM_THREADS=1 .venv/bin/python bench/two_tower_levers.py [--levers NAME ...] [--text-variants tags no-tags]
        [--seeds 0 1 2] [--protocol random]

Run `bench/run_peers.py` first (it writes the split files, imports the data into mmrec, fills its
feature store and stores EASE's validation metrics, the reference). Every lever is one `mmrec train`
run (early stopping on validation NDCG@10) with `model.item_item: false`, so the score is the
two-tower model's own; the "whole model (blend)" rows keep the item-item and content blends on and
report the blend's validation NDCG@10 (does a lever on the two-tower model lift the product's score?).
Test is never read: this table chooses defaults. Results are stored per (variant, seed, lever) under
bench/results/<dataset>/two_tower_levers/ and merged into bench/results/<dataset>/two_tower_levers.{json,md}
(`random`; other protocols: two_tower_levers_<protocol>.{json,md}).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.peers.data import TEXT_VARIANTS, dataset_name, variant_source  # noqa: E402
from bench.peers.layout import Layout  # noqa: E402
from bench.peers.protocols import load_split  # noqa: E402
from bench.peers.systems import Context  # noqa: E402
from bench.peers.systems.mmrec import _base_overrides, checkpoint_root, prepare_inputs  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402

# The benchmark grid's first two-tower setting, alone.
BASE: dict[str, Any] = {"training.epochs": 12, "training.patience": 3, "model.user_history_length": 30,
                        "training.learning_rate": 0.005, "model.id_dropout": 0.1, "model.item_item": False,
                        "model.distill_weight": 0.0}  # the levers ran before distillation became the default
LEVERS: dict[str, dict[str, Any]] = {
    "base (in-batch softmax, log-Q)": {},
    "base, dense Adam on the id tables": {"training.sparse_embeddings": False},
    "full softmax": {"model.negatives": "full"},
    "full softmax, history 50": {"model.negatives": "full", "model.user_history_length": 50},
    "history table refreshed every 60 steps (about once per epoch)": {"training.history_refresh_steps": 60},
    "history 100": {"model.user_history_length": 100},
    "full softmax, history 100": {"model.negatives": "full", "model.user_history_length": 100},
    "full softmax, history 200": {"model.negatives": "full", "model.user_history_length": 200},
    "full softmax, history 100, lr 0.001": {"model.negatives": "full", "model.user_history_length": 100,
                                            "training.learning_rate": 0.001},
    "full softmax, dim 128": {"model.negatives": "full", "model.embedding_dim": 128},
    "full softmax, lr 0.001": {"model.negatives": "full", "training.learning_rate": 0.001},
    "full softmax, cosine t=0.1": {"model.negatives": "full", "model.score": "cosine"},
    # Mult-DAE's recipe: users are their (partly hidden) history, scored against the whole catalogue.
    "history dropout 0.5": {"model.history_dropout": 0.5},
    "no user ids": {"model.user_ids": False},
    "no user ids, history dropout 0.5": {"model.user_ids": False, "model.history_dropout": 0.5},
    "no user ids, history dropout 0.5, full softmax, history 200": {
        "model.user_ids": False, "model.history_dropout": 0.5, "model.negatives": "full",
        "model.user_history_length": 200},
    "history encoded with grad": {"training.history_refresh_steps": 0},
    "no user ids, history encoded with grad": {"model.user_ids": False, "training.history_refresh_steps": 0},
    "no user ids, history encoded with grad, history dropout 0.5, history 100": {
        "model.user_ids": False, "training.history_refresh_steps": 0, "model.history_dropout": 0.5,
        "model.user_history_length": 100},
    # SVD++'s implicit item factors: a second embedding per item for reading histories.
    "history item embeddings": {"model.history_item_embeddings": True},
    "history item embeddings, history 100": {"model.history_item_embeddings": True, "model.user_history_length": 100},
    "no user ids, history item embeddings": {"model.history_item_embeddings": True, "model.user_ids": False},
    "no user ids, history item embeddings, history 100": {
        "model.history_item_embeddings": True, "model.user_ids": False, "model.user_history_length": 100},
    # Distillation from the item-item model (EASE + content, closed form) over each batch's candidates.
    "distill 1, t 0.5": {"model.distill_weight": 1.0},
    "distill 1, t 0.25": {"model.distill_weight": 1.0, "model.distill_temperature": 0.25},
    "distill 3, t 0.5": {"model.distill_weight": 3.0},
    "distill 1, t 1": {"model.distill_weight": 1.0, "model.distill_temperature": 1.0},
    "distill 1, t 1, 30 epochs": {"model.distill_weight": 1.0, "model.distill_temperature": 1.0,
                                  "training.epochs": 30, "training.patience": 4},
    "distill 2, t 1": {"model.distill_weight": 2.0, "model.distill_temperature": 1.0},
    # The teacher's whole ranking, not the batch's candidates.
    "distill 1, t 0.5, full softmax": {"model.distill_weight": 1.0, "model.distill_temperature": 0.5,
                                       "model.negatives": "full"},
    "distill 1, t 1, full softmax": {"model.distill_weight": 1.0, "model.distill_temperature": 1.0,
                                     "model.negatives": "full"},
    "distill 1, t 1, full softmax, 30 epochs": {"model.distill_weight": 1.0, "model.distill_temperature": 1.0,
                                                "model.negatives": "full", "training.epochs": 30,
                                                "training.patience": 4},
    "distill 1, t 2, full softmax, 30 epochs": {"model.distill_weight": 1.0, "model.distill_temperature": 2.0,
                                                "model.negatives": "full", "training.epochs": 30,
                                                "training.patience": 4},
    "distill 1, t 2, full softmax, 30 epochs, history encoded with grad": {
        "model.distill_weight": 1.0, "model.distill_temperature": 2.0, "model.negatives": "full",
        "training.epochs": 30, "training.patience": 4, "training.history_refresh_steps": 0},
    "distill 2, t 2, full softmax, 30 epochs": {"model.distill_weight": 2.0, "model.distill_temperature": 2.0,
                                                "model.negatives": "full", "training.epochs": 30,
                                                "training.patience": 4},
    "distill 1, t 2, 1024 uniform negatives, 30 epochs": {
        "model.distill_weight": 1.0, "model.distill_temperature": 2.0, "model.negatives": "uniform",
        "model.num_negatives": 1024, "training.epochs": 30, "training.patience": 4},
    "distill 1, t 4, full softmax, 30 epochs": {"model.distill_weight": 1.0, "model.distill_temperature": 4.0,
                                                "model.negatives": "full", "training.epochs": 30,
                                                "training.patience": 4},
    "distill 1, t 2, 30 epochs": {"model.distill_weight": 1.0, "model.distill_temperature": 2.0,
                                  "training.epochs": 30, "training.patience": 4},
    "distill 1, t 1, dim 128": {"model.distill_weight": 1.0, "model.distill_temperature": 1.0,
                                "model.embedding_dim": 128},
    "distill 1, t 0.5, history encoded with grad": {"model.distill_weight": 1.0, "training.history_refresh_steps": 0},
    "distill 1, t 0.5, 30 epochs": {"model.distill_weight": 1.0, "training.epochs": 30, "training.patience": 4},
    "30 epochs": {"training.epochs": 30, "training.patience": 4},
    "history encoded with grad, 30 epochs": {"training.history_refresh_steps": 0, "training.epochs": 30,
                                             "training.patience": 4},
    "weight decay 0.05, 30 epochs": {"training.weight_decay": 0.05, "training.epochs": 30, "training.patience": 4},
    "dim 128, weight decay 0.05, 30 epochs": {"model.embedding_dim": 128, "training.weight_decay": 0.05,
                                              "training.epochs": 30, "training.patience": 4},
    "history encoded with grad, weight decay 0.05, full softmax, 30 epochs": {
        "training.history_refresh_steps": 0, "training.weight_decay": 0.05, "model.negatives": "full",
        "training.epochs": 30, "training.patience": 4},
    # Does a better two-tower model lift the product's blend (item-item + content, weights chosen on validation)?
    "whole model (blend): base": {"model.item_item": True},
    "whole model (blend): distill 1, t 0.5": {"model.item_item": True, "model.distill_weight": 1.0},
    # coldstart: model selection on the held-out (cold) items, as the peer benchmark's mmrec systems do.
    "whole model (blend), cold-item selection: base": {"model.item_item": True, "training.validate_on": "cold_items"},
    "whole model (blend), cold-item selection: distill 1, t 0.5": {
        "model.item_item": True, "training.validate_on": "cold_items", "model.distill_weight": 1.0},
    "whole model (blend): distill 1, t 2, full softmax, 30 epochs": {
        "model.item_item": True, "model.distill_weight": 1.0, "model.distill_temperature": 2.0,
        "model.negatives": "full", "training.epochs": 30, "training.patience": 4},
    "whole model (blend): history encoded with grad, 30 epochs": {
        "model.item_item": True, "training.history_refresh_steps": 0, "training.epochs": 30, "training.patience": 4},
}


def run_one(split: Any, ctx: Context, config: dict[str, Any]) -> dict[str, Any]:
    from mmrec.pipeline.train import run_train
    from mmrec.settings import load_settings

    root = prepare_inputs(split, ctx)
    tag = "levers_" + "_".join(f"{k.split('.')[-1]}-{v}" for k, v in sorted(config.items()))
    overrides = {**_base_overrides(root), "paths.splits_dir": str(split.folder),
                 "paths.checkpoint_dir": str(checkpoint_root(ctx, split) / tag), "training.seed": ctx.seed, **config}
    start = time.perf_counter()
    result = run_train(load_settings(None, overrides).settings)
    best = next(record for record in result.history if record.epoch == result.best_epoch)
    # With the item-item model on, the score is the whole model's: the blend chosen on validation.
    val = result.item_item["val"] if result.item_item else best.val
    return {"val": val, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
            "seconds": round(time.perf_counter() - start, 1), "seconds_per_epoch": round(result.seconds_per_epoch, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "movielens-small-posters")
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--protocol", default="random")
    parser.add_argument("--levers", nargs="+", choices=sorted(LEVERS), default=list(LEVERS))
    parser.add_argument("--text-variants", nargs="+", choices=TEXT_VARIANTS, default=list(TEXT_VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--redo", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    layout = Layout(args.workdir.resolve(), args.results_dir.resolve(), dataset_name(args.data_dir))
    store = layout.report_dir / "two_tower_levers"
    posters = args.data_dir.resolve() / "posters"
    for variant in args.text_variants:
        variant_dir = layout.variant_dir(variant)
        for seed in args.seeds:
            split = load_split(layout.split_root(variant, seed) / args.protocol)
            ctx = Context(seed=seed, image=None, text=None, log=lambda message: None, workdir=variant_dir,
                          data_dir=variant_source(args.data_dir, variant, variant_dir / "source"),
                          posters=posters if posters.is_dir() else None)
            for lever in args.levers:
                path = store / variant / f"seed{seed}" / args.protocol / (_slug(lever) + ".json")
                if path.is_file() and not args.redo:
                    continue
                row = {"lever": lever, "config": {**BASE, **LEVERS[lever]}, **run_one(split, ctx, {**BASE, **LEVERS[lever]})}
                atomic_write_json(path, row)
                print(f"[{args.protocol}/{variant}/seed{seed}] {lever}: val ndcg@10 {row['val']['ndcg@10']:.4f} "
                      f"(epoch {row['best_epoch']}, {row['seconds_per_epoch']}s/epoch)", flush=True)
    merge(layout, store, args.protocol)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def merge(layout: Layout, store: Path, protocol: str) -> None:
    """Table: mean +- std of validation NDCG@10 per lever and variant over stored seeds, vs EASE's."""
    rows: dict[tuple[str, str], list[float]] = {}
    seeds: set[tuple[str, str]] = set()
    for path in sorted(store.glob(f"*/seed*/{protocol}/*.json")):
        row = json.loads(path.read_text())
        rows.setdefault((row["lever"], path.parts[-4]), []).append(row["val"]["ndcg@10"])
        seeds.add((path.parts[-4], path.parts[-3]))
    ease: dict[str, list[float]] = {}
    for variant, seed in sorted(seeds):
        peer = layout.report_dir / "runs" / variant / seed / protocol / "EASE.json"
        if peer.is_file():
            ease.setdefault(variant, []).append(json.loads(peer.read_text())["result"]["val"]["ndcg@10"])
    variants = sorted({variant for _, variant in rows})
    order = [lever for lever in LEVERS if any((lever, v) in rows for v in variants)]

    def cell(values: list[float]) -> str:
        if not values:
            return "-"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {spread:.4f} (n={len(values)})"

    lines = [f"# The two-tower model alone: what each lever buys (`{protocol}`, {layout.dataset})", "",
             "Validation NDCG@10 only (test never read), mean ± std over split seeds; each run = `mmrec train` "
             f"with `model.item_item: false` from `{json.dumps(BASE)}` plus the lever. Reference: EASE's validation "
             "NDCG@10 (its best of 6 lambdas, from the peer benchmark's stored runs).", "",
             "| lever | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    lines.append("| EASE (reference) | " + " | ".join(cell(ease.get(v, [])) for v in variants) + " |")
    for lever in order:
        lines.append(f"| {lever} | " + " | ".join(cell(rows.get((lever, v), [])) for v in variants) + " |")
    # random (the headline protocol) keeps the plain name; other protocols get their own table.
    out = layout.report_dir / ("two_tower_levers" if protocol == "random" else f"two_tower_levers_{protocol}")
    atomic_write_json(out.with_suffix(".json"), {"protocol": protocol, "base": BASE, "levers": LEVERS,
                                                 "val_ndcg10": {f"{l}|{v}": vals for (l, v), vals in rows.items()},
                                                 "ease_val_ndcg10": ease})
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
