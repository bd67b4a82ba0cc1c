"""Ablation of mmrec's multimodal model on the peer benchmark's split files: what each part buys.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ablation.py [--protocols random coldstart] [--workdir DIR]
        [--data-dir DIR] [--text-variant tags|no-tags] [--seed K]

Run `bench/run_peers.py` first with the same --workdir, --data-dir, text variant and seed (it writes
the split files, imports the data into mmrec and fills its feature store). Every variant is one
`mmrec train` run (that seed, early
stopping on validation, item-item blend weight chosen on validation) from a fixed base config;
no variant is selected on test: test is computed once per variant for the table.
Outputs bench/results/<dataset>/ablation_<text variant>_seed<k>_<protocol>.{json,md}; a run of some --variants
keeps the stored rows of the others (same base config).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.peers.data import TEXT_VARIANTS, dataset_name, layout_of, variant_source  # noqa: E402
from bench.peers.evaluation import evaluate  # noqa: E402
from bench.peers.layout import Layout  # noqa: E402
from bench.peers.protocols import load_split  # noqa: E402
from bench.peers.systems import Context  # noqa: E402
from bench.peers.systems.mmrec import checkpoint_root, config_tag, fit_multimodal  # noqa: E402
from mmrec.checkpoints.store import read_meta  # noqa: E402
from mmrec.errors import DataError  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402

# Base configs: the first two-tower setting of the benchmark grid for `random`, the id-dropout one
# for `coldstart` (content must carry cold items), each with the grid's middle item-item penalty.
BASE = {
    "random": {"training.epochs": 12, "training.patience": 3, "model.user_history_length": 30,
               "training.learning_rate": 0.005, "model.id_dropout": 0.1, "model.item_item_l2": 200.0},
    "coldstart": {"training.epochs": 12, "training.patience": 3, "model.user_history_length": 20,
                  "training.learning_rate": 0.001, "model.id_dropout": 0.3, "model.item_item_l2": 200.0},
}
WHOLE_CATALOGUE = {"model.negatives": "full", "training.epochs": 30, "training.patience": 4}
NO_CONTENT = {"model.use_vision": False, "model.use_text": False, "model.use_numeric": False}
VARIANTS: list[tuple[str, dict]] = [
    ("ids only", NO_CONTENT),
    ("ids + text", {**NO_CONTENT, "model.use_text": True}),
    ("ids + image", {**NO_CONTENT, "model.use_vision": True}),
    ("ids + numeric (year)", {**NO_CONTENT, "model.use_numeric": True}),
    ("all modalities, attention fusion (default)", {}),
    ("all, concat fusion", {"model.fusion": "concat"}),
    ("all, sum fusion", {"model.fusion": "sum"}),
    ("all, + contrastive image-text alignment", {"model.use_contrastive": True}),
    ("all, two-tower alone (no item-item model)", {"model.item_item": False}),
    # Distillation from the item-item model (on by default; candidates = the batch's items, t 0.5), off,
    # and over the whole catalogue (model.negatives: full, t 2 by default, trained longer).
    ("all, no distillation", {"model.distill_weight": 0.0}),
    ("all, two-tower alone, no distillation", {"model.item_item": False, "model.distill_weight": 0.0}),
    ("all, whole-catalogue distillation (negatives full, 30 epochs)", WHOLE_CATALOGUE),
    ("all, two-tower alone, whole-catalogue distillation", {"model.item_item": False, **WHOLE_CATALOGUE}),
    ("all, two-tower alone, whole-catalogue distillation, weight 2",
     {"model.item_item": False, **WHOLE_CATALOGUE, "model.distill_weight": 2.0}),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "movielens-small-posters")
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--protocols", nargs="+", choices=sorted(BASE), default=sorted(BASE, reverse=True))
    parser.add_argument("--text-variant", choices=TEXT_VARIANTS, default="tags")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", choices=[label for label, _ in VARIANTS],
                        default=[label for label, _ in VARIANTS], help="rows to run (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # Its rows name MovieLens's features (year, posters) and read the MovieLens import: a folder in mmrec's input
    # format is compared with `mmrec tune` instead (the same search, on its own columns).
    try:
        movielens = layout_of(args.data_dir) == "movielens"
    except (DataError, OSError):
        movielens = False
    if not movielens or args.text_variant not in ("tags", "no-tags"):
        _refuse(f"bench/ablation.py runs on MovieLens folders (text variant tags or no-tags); {args.data_dir} with "
                f"--text-variant {args.text_variant} is not one.",
                "on a catalogue of your own, compare settings with `mmrec tune` (docs/tuning.md), or `mmrec train` "
                "with each change and `mmrec evaluate`.")
    layout = Layout(args.workdir.resolve(), args.results_dir.resolve(), dataset_name(args.data_dir))
    variant_dir = layout.variant_dir(args.text_variant)
    posters = args.data_dir.resolve() / "posters"
    for protocol in args.protocols:
        folder = layout.split_root(args.text_variant, args.seed) / protocol
        if not (folder / "train.csv").is_file():
            _refuse(f"no split files in {folder}.", "run bench/run_peers.py with the same --data-dir, --workdir, "
                    "--text-variant, --protocols and --seed first (it writes them).")
        split = load_split(folder)
        ctx = Context(seed=args.seed, image=None, text=None, log=lambda message: None, workdir=variant_dir,
                      data_dir=variant_source(args.data_dir, args.text_variant, variant_dir / "source"),
                      posters=posters if posters.is_dir() else None)
        rows = []
        for label, change in VARIANTS:
            if label not in args.variants:
                continue
            config = {**BASE[protocol], **change}
            start = time.perf_counter()
            scorer = fit_multimodal(split, config, ctx)
            fit_s = time.perf_counter() - start
            val, test = evaluate(split, scorer, "val"), evaluate(split, scorer, "test")
            combos = list((checkpoint_root(ctx, split) / config_tag(config)).glob("*/best_model.json"))
            blend = (read_meta(combos[0].with_suffix(".pth")).get("item_item") or {}) if combos else {}
            grid = blend.get("val_grid") or []
            rows.append({"variant": label, "config": change, "fit_s": round(fit_s, 1), "val": val, "test": test,
                         "item_item_blend": blend.get("blend"), "item_item_halflife": blend.get("halflife"),
                         "val_two_tower_alone": next((r["ndcg@10"] for r in grid if r["blend"] == 0), None),
                         "val_item_item_alone": max((r["ndcg@10"] for r in grid if r["blend"] == 1), default=None)})
            print(f"[{protocol}] {label}: val ndcg@10 {val['ndcg@10']:.4f} test ndcg@10 {test['ndcg@10']:.4f} "
                  f"recall@20 {test['recall@20']:.4f} blend {blend.get('blend')} fit {fit_s:.0f}s", flush=True)
        stem = layout.report_dir / f"ablation_{args.text_variant}_seed{args.seed}_{protocol}"
        write(stem, protocol, merged(stem, rows), f"{layout.dataset}, text variant `{args.text_variant}`, "
              f"split seed {args.seed}")


def _refuse(message: str, hint: str) -> None:
    """A user error: one message and exit 2, as bench/run_peers.py gives them."""
    print(f"error: {message}\nhint: {hint}", file=sys.stderr)
    raise SystemExit(2)


def merged(stem: Path, rows: list[dict]) -> list[dict]:
    """`rows` plus the stored rows of the variants not rerun (same base config), in VARIANTS order: a run of a
    few variants adds to the table instead of replacing it."""
    stored = stem.with_suffix(".json")
    old = json.loads(stored.read_text()) if stored.is_file() else {}
    new = {row["variant"] for row in rows}
    same_base = old.get("protocol") in BASE and old.get("base") == BASE[old["protocol"]]
    keep = [row for row in old.get("variants", []) if same_base and row["variant"] not in new]
    order = {label: index for index, (label, _) in enumerate(VARIANTS)}
    return sorted(keep + rows, key=lambda row: order.get(row["variant"], len(order)))


def write(stem: Path, protocol: str, rows: list[dict], where: str) -> None:
    atomic_write_json(stem.with_suffix(".json"),
                      {"protocol": protocol, "data": where, "base": BASE[protocol], "variants": rows})
    lines = [f"# mmrec multimodal ablation on `{protocol}` ({where})", "",
             (f"Base: `{json.dumps(BASE[protocol])}`; one run per variant. Validation NDCG@10 of the "
              "blend, of the two-tower model alone (`val 2T`, blend weight 0) and of the item-item model alone "
              "(`val II`, weight 1); `w` = blend weight chosen on validation; test = the blend at `w`."), "",
             "| variant | val NDCG@10 | val 2T | val II | w | test NDCG@10 | test Recall@20 | test MRR | fit s |",
             "|---|---|---|---|---|---|---|---|---|"]

    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['val']['ndcg@10']:.4f} | {show(row['val_two_tower_alone'])} | "
            f"{show(row['val_item_item_alone'])} | "
            f"{'-' if row['item_item_blend'] is None else row['item_item_blend']} | {row['test']['ndcg@10']:.4f} | "
            f"{row['test']['recall@20']:.4f} | {row['test']['mrr']:.4f} | {row['fit_s']:.0f} |")
    atomic_write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
