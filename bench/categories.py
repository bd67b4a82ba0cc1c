"""Category columns (`data.category_columns`) through the CLI: the default model with and without them.

Two datasets, each preprocessed once with its category column:

- `movielens`: ml-latest-small (or the MovieLens folder `--movielens-dir` names, e.g. ML-100K), item text
  "title. Genres: ..." (no tags, the benchmark's text-poor variant, no posters), and the importer's `genres`
  column as a category column (`Action|Comedy`): real data, where the text already names the genres, so the
  column adds exact matching of what the text says.
- `synth`: `mmrec data synth` (no images) with a `channel` column: CHANNELS channels; each user follows 3 and
  60% of her interactions go to videos of those (the rest as synth drew them); a tenth of the videos are new
  uploads nobody has interacted with. A mechanism check: here the channel is what drives choices.

Per dataset, split strategy (`item`: every val and test item is cold; `stratified`: per user at random, warm;
`temporal`: one global time cut, so items first seen after it are cold; `temporal_user`: each user's latest) and
seed: `mmrec split`, then `mmrec train` + `mmrec evaluate` with the default settings, once as they are and once
with `MMREC_MODEL__USE_CATEGORIES=false` (the same processed data and split: only the category tokens and the
category content modality differ). Validation (what `mmrec train` chooses on; the blend's monitored value) decides;
test NDCG@10 / Recall@20 overall and on cold items are reported beside it.

    OMP_NUM_THREADS=2 .venv/bin/python bench/categories.py --datasets movielens synth --seeds 0 1

Results go to bench/results/categories.{json,md}; each finished run is kept under --work and skipped when rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "movielens-small-posters"
CHANNELS = 60
VARIANTS = {"categories": {}, "no categories": {"MMREC_MODEL__USE_CATEGORIES": "false"},
            # The cold items' offset (model.cold_shift, chosen on validation) off too: what the shift adds.
            "no categories, no shift": {"MMREC_MODEL__USE_CATEGORIES": "false", "MMREC_MODEL__COLD_SHIFT": "false"},
            # The new users' popularity list of all time, not of the recency validation chose (model.fallback_halflife).
            "no categories, all-time fallback": {"MMREC_MODEL__USE_CATEGORIES": "false",
                                                 "MMREC_MODEL__FALLBACK_HALFLIFE": "false"}}


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                if line.startswith("model name")), "unknown")
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "threads": os.environ.get("OMP_NUM_THREADS"), "load_average_before": list(os.getloadavg())}


def mmrec(*args: str, env: dict[str, str], log: Path) -> None:
    print("$ mmrec", " ".join(args), flush=True)
    with open(log, "a", encoding="utf-8") as out:
        subprocess.run([sys.executable, "-m", "mmrec", *args], cwd=ROOT, env=env, check=True, stdout=out,
                       stderr=subprocess.STDOUT)


def write_config(folder: Path, data: dict) -> Path:
    import yaml

    config = {"paths": {"data_dir": str(folder / "raw"), "processed_dir": str(folder / "processed"),
                        "cache_dir": str(folder / "cache")},
              "data": data}
    path = folder / "mmrec.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def prepare_movielens(folder: Path, env: dict[str, str], source: Path = SHARED) -> Path:
    raw = folder / "raw"
    if not (raw / "item_info.csv").is_file():
        view = folder / "source"  # ratings and movies only: no tags.csv, so the text is "title. Genres: ..."
        view.mkdir(parents=True, exist_ok=True)
        for name in ("ratings.csv", "movies.csv"):
            if not (view / name).exists():
                (view / name).symlink_to(source.resolve() / name)
        # The importer writes the genres as a column of their own (`genres`, A|B).
        mmrec("data", "import", "movielens", str(view), "--out", str(raw), env=env, log=folder / "import.log")
    return write_config(folder, {"numerical_features_cols": ["year"], "positive_rating_threshold": 4.0,
                                 "category_columns": ["genres"]})


def prepare_synth(folder: Path, env: dict[str, str], seed: int = 7) -> Path:
    raw = folder / "raw"
    if not (raw / "item_info.csv").is_file():
        sys.path.insert(0, str(ROOT))
        from mmrec.data.synth import generate_synthetic

        generate_synthetic(raw, users=600, items=2000, seed=seed, images=False)
        rng = np.random.default_rng(seed)
        items = pd.read_csv(raw / "item_info.csv", dtype=str, keep_default_na=False)
        interactions = pd.read_csv(raw / "interactions.csv", dtype=str, keep_default_na=False)
        channel = rng.integers(0, CHANNELS, len(items))
        items["channel"] = [f"Channel {c}" for c in channel]
        new = rng.random(len(items)) < 0.1  # new uploads: no interaction
        by_channel = [items["item_id"].to_numpy()[(channel == c) & ~new] for c in range(CHANNELS)]
        follows = {user: rng.choice(CHANNELS, 3, replace=False) for user in interactions["user_id"].unique()}
        moved = rng.random(len(interactions)) < 0.6
        interactions.loc[moved, "item_id"] = [rng.choice(by_channel[rng.choice(follows[user])])
                                              for user in interactions.loc[moved, "user_id"]]
        interactions = interactions[~interactions["item_id"].isin(set(items["item_id"][new]))]
        interactions.drop_duplicates(["user_id", "item_id"]).to_csv(raw / "interactions.csv", index=False)
        items.to_csv(raw / "item_info.csv", index=False)
    return write_config(folder, {"category_columns": ["channel"]})


def one_run(folder: Path, config: Path, strategy: str, seed: int, variant: str, env: dict[str, str]) -> dict:
    from mmrec.checkpoints.store import read_meta

    base = folder / f"{strategy}-seed{seed}"
    split_env = dict(env, MMREC_PATHS__SPLITS_DIR=str(base / "splits"))
    if not (base / "splits" / "test.csv").is_file():
        mmrec("split", "-c", str(config), "--strategy", strategy, "--seed", str(seed), env=split_env,
              log=base.with_suffix(".log"))
    out = base / variant.replace(",", "").replace(" ", "-")
    stored = out / "result.json"
    if stored.is_file():
        return json.loads(stored.read_text())
    run_env = dict(split_env, **VARIANTS[variant], MMREC_TRAINING__SEED=str(seed),
                   MMREC_PATHS__CHECKPOINT_DIR=str(out / "checkpoints"), MMREC_PATHS__RESULTS_DIR=str(out / "results"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    mmrec("train", "-c", str(config), "--device", "cpu", "--no-wandb", env=run_env, log=out / "train.log")
    train_s = time.perf_counter() - start
    mmrec("evaluate", "-c", str(config), "--device", "cpu", "--k", "10 20", env=run_env, log=out / "evaluate.log")
    meta = read_meta(next((out / "checkpoints").glob("*/best_model.pth")))
    blend = meta.get("item_item") or {}
    model = json.loads((out / "results" / "evaluation.json").read_text())["models"]["multimodal"]
    kept = ("ndcg@10", "recall@20")
    result = {"val": blend.get("monitored", meta["best_value"]), "two_tower_val": meta["best_value"],
              "best_epoch": meta["best_epoch"], "item_item_blend": blend.get("blend"),
              "content": [blend.get("content_modality"), blend.get("content_blend")],
              "cold": [blend.get("cold_modality"), blend.get("cold_blend")],
              "categories": {name: len(values) for name, values in (meta.get("categories") or {}).items()},
              "cold_shift": blend.get("cold_shift"), "fallback_halflife_days": blend.get("fallback_halflife_days"),
              "test": {k: model["metrics"][k] for k in kept},
              "test_cold": {k: model["cold_item_metrics"].get(k) for k in kept},
              "cold_users": model["n_cold_item_users"], "train_s": round(train_s, 1)}
    stored.write_text(json.dumps(result, indent=1))
    return result


def write(out: Path, rows: list[dict], host: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": host, "runs": rows}, indent=1))
    lines = ["# Category columns: the default model with and without them (`bench/categories.py`)", "",
             f"Machine: {host['cpu']}, {host['cores']} cores, OMP_NUM_THREADS={host['threads']}, torch "
             f"{host['torch']}. Validation decides (the blend's monitored NDCG@10 in `mmrec train`); test beside it.",
             "", "| dataset | split | seed | variant | val NDCG@10 | test NDCG@10 | test Recall@20 | cold-item NDCG@10 "
             "(users) | content / cold modality | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r = row["result"]
        cold = r["test_cold"]["ndcg@10"]
        lines.append(f"| {row['dataset']} | {row['strategy']} | {row['seed']} | {row['variant']} | {r['val']:.4f} | "
                     f"{r['test']['ndcg@10']:.4f} | {r['test']['recall@20']:.4f} | "
                     + (f"{cold:.4f} ({r['cold_users']})" if cold is not None else "-")
                     + f" | {r['content'][0] or '-'} / {r['cold'][0] or '-'} | {r['train_s']:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=("movielens", "synth"), default=["movielens", "synth"])
    parser.add_argument("--strategies", nargs="+", choices=("item", "stratified", "temporal", "temporal_user"),
                        default=["item", "stratified"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--movielens-dir", type=Path, default=SHARED,
                        help="the `movielens` dataset's folder (ratings.csv, movies.csv: e.g. ML-100K as "
                             "bench/ml100k_from_recbole.py writes it; give it its own --work)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "categories")
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "categories")
    args = parser.parse_args()
    host = machine()
    env = dict(os.environ, COLUMNS="120", PYTHONPATH=str(ROOT), MMREC_TRACKING__USE_WANDB="false")
    rows = []
    for dataset in args.datasets:
        folder = (args.work / dataset).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        config = (prepare_movielens(folder, env, args.movielens_dir) if dataset == "movielens" else
                  prepare_synth(folder, env))
        mmrec("preprocess", "-c", str(config), env=env, log=folder / "preprocess.log")
        for strategy in args.strategies:
            for seed in args.seeds:
                for variant in args.variants:
                    result = one_run(folder, config, strategy, seed, variant, env)
                    rows.append({"dataset": dataset, "strategy": strategy, "seed": seed, "variant": variant,
                                 "result": result})
                    print(json.dumps(rows[-1]), flush=True)
                    write(args.out, rows, host)


if __name__ == "__main__":
    main()
