"""`mmrec` with default settings on a split without a validation part, against EASE on the same files.

The held-out CLI protocol of the quality issue: all ratings implicit, per user 75% train / 25% test,
top-10. Every mmrec step is the CLI as a user would type it; only the rating threshold (none: every
rating is an interaction) and the split ratios differ from the importer's config:

    mmrec data import movielens SHARED --posters SHARED/posters --out W/ml   (+ positive_rating_threshold: null)
    mmrec preprocess -c W/ml/mmrec.yaml
    MMREC_SPLIT__TRAIN_RATIO=0.75 MMREC_SPLIT__VAL_RATIO=0 MMREC_SPLIT__TEST_RATIO=0.25 mmrec split --seed S
    mmrec train    (training.holdout_ratio: the default 0.1, validation carved out of train)
    MMREC_TRAINING__HOLDOUT_RATIO=0 mmrec train    (no validation at all: the behaviour before the holdout)
    mmrec evaluate --compare --k 10 20

EASE (closed form, float64 numpy on the items with training rows) has its lambda chosen on the same
holdout mmrec carves (`mmrec.data.splits.holdout_validation`, same seed and ratio), then is refitted on
all of train.csv: the same information mmrec gets. Test metrics of every lambda are stored too, as a
hindsight reference only. Metrics: `mmrec.evaluation.full_ranking` over the whole catalogue with the
training items masked, as `mmrec evaluate` does.

    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --work bench/.work/cli_no_val --seeds 0 1 2
    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --nested   # validation-only: the holdout share

A `--work` dir whose config already exists is used as it is: one imported with the importer's default
`positive_rating_threshold: 4.0` gives the positives-only variant of the protocol (the tables say which).
`--text-variant no-tags` imports a view of `--data` without tags.csv (item text "title. genres", as the
peer benchmark's `no-tags` variant); give it its own `--work`:

    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --text-variant no-tags --work bench/.work/cli_no_val_notags \
        --seeds 0 1 2 --runs holdout --out bench/results/cli_no_val_no_tags

`--max-users N` imports the first N users only (a sparser catalogue: fewer interactions per item);
`MMREC_PATHS__CACHE_DIR=<another work dir>/ml/cache` reuses that dir's poster and text features:

    MMREC_PATHS__CACHE_DIR=$PWD/bench/.work/cli_no_val/ml/cache OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py \
        --max-users 200 --work bench/.work/cli_no_val_200u --seeds 0 1 --runs holdout --out bench/results/cli_no_val_200_users

`--strategy temporal_user` splits each user's latest 25% off as test instead (the holdout is then each
user's latest 10% of train, as `mmrec train` carves it for such a split, and EASE's alike), so test
follows the training profiles directly, as when `mmrec recommend` serves; `--runs` picks the mmrec runs,
`holdout-transitions` being the default plus `model.sequence_blend: true`:

    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --strategy temporal_user --runs holdout holdout-transitions \
        --out bench/results/cli_no_val_temporal_user

`--strategy leave_one_out` runs `mmrec split`'s own leave-one-out (each user's last row test, the one before
it val) instead: the split then has a validation part, so `mmrec train` carves no holdout, and EASE's lambda
is chosen on the val rows and scored as `mmrec evaluate` scores (fitted on train, val masked):

    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --strategy leave_one_out --out bench/results/cli_leave_one_out
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SHARED = ROOT.parent / "shared" / "data" / "movielens-small-posters"
MMREC = [sys.executable, "-m", "mmrec"]
LAMBDAS = (100.0, 250.0, 500.0, 1000.0, 2000.0)
RATIOS = {"MMREC_SPLIT__TRAIN_RATIO": "0.75", "MMREC_SPLIT__VAL_RATIO": "0", "MMREC_SPLIT__TEST_RATIO": "0.25"}
# The mmrec runs (environment over the defaults) and their table headers.
RUNS = {"holdout": ({}, "mmrec (holdout 0.1, default)"),
        "no-validation": ({"MMREC_TRAINING__HOLDOUT_RATIO": "0"}, "mmrec (no validation)"),
        "holdout-transitions": ({"MMREC_MODEL__SEQUENCE_BLEND": "true"}, "mmrec (holdout, + transitions)")}


def mmrec(*args: str, env: dict[str, str], cwd: Path) -> None:
    print("$ mmrec", " ".join(args), flush=True)
    subprocess.run([*MMREC, *args], cwd=cwd, env=env, check=True)


def ease_weights(matrix: sp.csr_matrix, l2: float) -> np.ndarray:
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights


def ease_metrics(train: pd.DataFrame, test: pd.DataFrame, item_ids: list[str], l2: float,
                 ks: tuple[int, ...] = (10, 20), masked: pd.DataFrame | None = None) -> dict[str, float]:
    """EASE fitted on `train`, ranked over `item_ids` (train items, and `masked`'s, masked) for the users of
    `test`."""
    from mmrec.evaluation.full_ranking import full_ranking

    index = {item: j for j, item in enumerate(item_ids)}
    users = sorted(set(test["user_id"]))
    user_index = {user: i for i, user in enumerate(users)}
    train = train[train["user_id"].isin(user_index)]

    def csr(frame: pd.DataFrame) -> sp.csr_matrix:
        rows = frame["user_id"].map(user_index).to_numpy()
        cols = frame["item_id"].map(index).to_numpy()
        matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), len(item_ids)))
        matrix.data[:] = 1.0
        return matrix

    history, relevant = csr(train), csr(test)
    exclude = history if masked is None else history + csr(masked[masked["user_id"].isin(user_index)])
    seen = np.flatnonzero(np.asarray(history.sum(0)).ravel() > 0)  # items EASE can score
    weights = ease_weights(history[:, seen], l2)
    sub = history[:, seen]

    def score(rows: np.ndarray) -> torch.Tensor:
        out = torch.full((len(rows), len(item_ids)), -1e9, dtype=torch.float32)
        out[:, torch.from_numpy(seen)] = torch.from_numpy((sub[rows] @ weights).astype(np.float32))
        return out

    return dict(full_ranking(score, relevant, exclude, list(ks)).metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "cli_no_val")
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cli_no_val")
    parser.add_argument("--strategy", choices=("stratified", "temporal_user", "leave_one_out"), default="stratified",
                        help="how `mmrec split` makes the 75/25 split (temporal_user: each user's latest 25%% is test); "
                        "leave_one_out: `mmrec split`'s own (each user's last row test, the one before it val)")
    parser.add_argument("--runs", nargs="+", choices=tuple(RUNS), default=None,
                        help="default: holdout and no-validation; holdout only for leave_one_out (it has a val part)")
    parser.add_argument("--text-variant", choices=("tags", "no-tags"), default="tags",
                        help="item text of a new --work dir: with tags, or title and genres only (no tags.csv)")
    parser.add_argument("--max-users", type=int, default=None,
                        help="a new --work dir imports only the first N users (`mmrec data import --max-users`): "
                        "the same kind of data with fewer interactions per item")
    parser.add_argument("--nested", action="store_true",
                        help="only the validation-only check of the holdout share (needs seed 0's split)")
    args = parser.parse_args()
    with_val = args.strategy == "leave_one_out"  # a split with its own validation part: no holdout is carved
    if args.runs is None:
        args.runs = ["holdout"] if with_val else ["holdout", "no-validation"]
    if args.nested:
        nested(args.work.resolve(), args.out.with_name(args.out.name + "_nested.json"))
        return
    from mmrec.data.splits import holdout_validation, load_split
    from mmrec.data.tables import load_items
    from mmrec.settings import load_settings

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, COLUMNS="120", PYTHONPATH=str(ROOT), MMREC_TRACKING__USE_WANDB="false")
    config = work / "ml" / "mmrec.yaml"
    if not config.is_file():
        from peers.data import variant_source

        source = variant_source(args.data, args.text_variant, work / "no-tags-view")
        posters = args.data.resolve() / "posters"  # none (ml-100k): zero image features; absolute: cwd is work
        mmrec("data", "import", "movielens", str(source), *(("--posters", str(posters)) if posters.is_dir() else ()),
              "--out", str(work / "ml"), *(("--max-users", str(args.max_users)) if args.max_users else ()),
              env=env, cwd=work)
        text = config.read_text()
        assert "positive_rating_threshold: 4.0" in text
        config.write_text(text.replace("positive_rating_threshold: 4.0", "positive_rating_threshold: null"))
    mmrec("preprocess", "-c", str(config), env=env, cwd=work)  # a no-op once done; caches the features
    settings = load_settings(config).settings
    holdout_ratio = settings.training.holdout_ratio
    rows = []
    for seed in args.seeds:
        base = work / (f"seed{seed}" if args.strategy == "stratified" else f"{args.strategy}-seed{seed}")
        paths = {"MMREC_PATHS__SPLITS_DIR": str(base / "splits"), **({} if with_val else RATIOS)}
        if not (base / "splits" / "test.csv").is_file():
            mmrec("split", "-c", str(config), "--strategy", args.strategy, "--seed", str(seed),
                  env=dict(env, **paths), cwd=work)
        split = load_split(base / "splits")
        assert split.val.empty != with_val
        items = load_items(Path(settings.paths.processed_dir))["item_id"].astype(str).tolist()
        row: dict = {"seed": seed, "strategy": args.strategy, "train": len(split.train), "val": len(split.val),
                     "test": len(split.test),
                     "users": int(split.test["user_id"].nunique()), "items": len(items)}
        for name in args.runs:
            extra = RUNS[name][0]
            run_env = dict(env, **paths, **extra, MMREC_PATHS__CHECKPOINT_DIR=str(base / name / "checkpoints"),
                           MMREC_PATHS__RESULTS_DIR=str(base / name / "results"))
            report = base / name / "results" / "evaluation.json"
            if not report.is_file():
                start = time.perf_counter()
                mmrec("train", "-c", str(config), "--device", "cpu", env=run_env, cwd=work)
                row[f"{name}_train_s"] = round(time.perf_counter() - start, 1)
                mmrec("evaluate", "-c", str(config), "--compare", "--device", "cpu", "--k", "10 20",
                      env=run_env, cwd=work)
            evaluation = json.loads(report.read_text())
            kept = ("ndcg@10", "recall@20", "hit_rate@10")
            row[name] = {model: {k: v for k, v in entry["metrics"].items() if k in kept}
                         for model, entry in evaluation["models"].items()}
        from mmrec.checkpoints.store import read_meta

        best = next((base / "holdout" / "checkpoints").glob("*/best_model.pth"))
        blend = read_meta(best).get("item_item") or {}
        row["holdout_val"] = blend.get("monitored")
        row["holdout_transitions"] = blend.get("sequence_blend", 0.0)  # the weight validation chose (0 = none)
        # EASE: lambda on the same holdout, refitted on all of train (kept in the work dir once computed).
        stored = base / "ease.json"
        if not stored.is_file():
            if with_val:  # lambda on the split's val, then scored as mmrec evaluate scores: fit on train, val masked
                inner, held, masked = split.train, split.val, split.val
            else:
                inner, held = holdout_validation(split.train, holdout_ratio, args.strategy, settings.training.seed)
                masked = None
            val = {l2: ease_metrics(inner, held, items, l2)["ndcg@10"] for l2 in LAMBDAS}
            chosen = max(val, key=val.get)
            test = {l2: ease_metrics(split.train, split.test, items, l2, masked=masked) for l2 in LAMBDAS}
            stored.write_text(json.dumps({
                "val_ndcg@10": val, "l2": chosen, "test": test[chosen],
                "test_ndcg@10_every_l2 (hindsight)": {l2: m["ndcg@10"] for l2, m in test.items()}}, indent=1))
        row["ease"] = json.loads(stored.read_text())
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
    threshold = settings.data.positive_rating_threshold
    tagged = "Tags:" in (work / "ml" / "item_info.csv").read_text(encoding="utf-8")
    write(args.out, rows, ("all ratings" if threshold is None else f"ratings >= {threshold:g}")
          + (", item text with tags" if tagged else ", item text title + genres (no tags)"))


def nested(work: Path, out: Path, shares: tuple[float, ...] = (0.1, 0.25)) -> None:
    """Which holdout share picks the better EASE lambda for this protocol, decided without test.csv:
    25% of each user's training rows become a pseudo-test (as the split made test), the rest is split
    again into inner train + a holdout of each share; the lambda chosen on each holdout is scored on
    the pseudo-test after fitting on the rest."""
    from mmrec.data.splits import holdout_validation, load_split
    from mmrec.data.tables import load_items

    items = load_items(work / "ml" / "processed")["item_id"].astype(str).tolist()
    train = load_split(work / "seed0" / "splits").train
    rest, pseudo = holdout_validation(train, 0.25, "stratified", seed=7)
    result: dict = {"pseudo_test_ndcg@10": {l2: ease_metrics(rest, pseudo, items, l2)["ndcg@10"] for l2 in LAMBDAS}}
    for share in shares:
        inner, held = holdout_validation(rest, share, "stratified", seed=42)
        val = {l2: ease_metrics(inner, held, items, l2)["ndcg@10"] for l2 in LAMBDAS}
        chosen = max(val, key=val.get)
        result[f"share {share:g}"] = {"val_ndcg@10": val, "chosen_l2": chosen,
                                      "pseudo_test_ndcg@10": result["pseudo_test_ndcg@10"][chosen]}
        print(share, result[f"share {share:g}"], flush=True)
    out.write_text(json.dumps(result, indent=1))


BASELINES = (("item_knn", "item_knn"), ("user_knn", "user_knn"), ("popularity", "popularity"))


def columns(rows: list[dict]) -> list[tuple[str, Callable[[dict], dict]]]:
    """(header, the metrics of one seed's row): the mmrec runs present, EASE, then the baselines of the first run."""
    runs = [name for name in RUNS if all(name in row for row in rows)]
    out: list[tuple[str, Callable[[dict], dict]]] = [
        (RUNS[name][1] if not rows[0].get("val") else "mmrec (default)", lambda row, name=name: row[name]["multimodal"])
        for name in runs]
    out.append((f"EASE (lambda on the {'val part' if rows[0].get('val') else 'holdout'})", lambda row: row["ease"]["test"]))
    out += [(header, lambda row, model=model: row[runs[0]][model]) for header, model in BASELINES]
    return out


def write(out: Path, rows: list[dict], interactions: str = "all ratings") -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only, " \
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))

    table = columns(rows)

    def line(label: str, group: list[dict]) -> str:
        cells = [" / ".join(f"{np.mean([get(r)[metric] for r in group]):.4f}" for metric in ("ndcg@10", "recall@20"))
                 for _, get in table]
        ratio = np.mean([r["holdout"]["multimodal"]["ndcg@10"] / r["ease"]["test"]["ndcg@10"] for r in group])
        return f"| {label} | " + " | ".join(cells) + f" | {ratio:.3f}x |"

    strategy = rows[0].get("strategy", "stratified")
    with_val = bool(rows[0].get("val"))
    shape = "each user's last row test, the one before it val" if with_val else "per user 75/25, no validation part"
    lines = [f"# `mmrec` defaults ({interactions}, {shape}, `{strategy}`) vs EASE",
             "",
             f"Machine: {machine}. `bench/cli_no_val.py`; test NDCG@10 / Recall@20; EASE's lambda per seed: "
             + ", ".join(f"{row['ease']['l2']:g}" for row in rows) + ".",
             f"Data: {rows[0]['users']:,} users, {rows[0]['items']:,} catalogue items, "
             f"{rows[0]['train'] + rows[0].get('val', 0) + rows[0]['test']:,} interactions.", "",
             "| seed | " + " | ".join(name for name, _ in table) + " | default / EASE (NDCG@10) |",
             "|---" * (len(table) + 2) + "|"]
    lines += [line(str(row["seed"]), [row]) for row in rows]
    if len(rows) > 1:
        lines.append(line("mean", rows))
    lines += ["", f"Validation NDCG@10 on the {'val part' if with_val else 'holdout carved out of train'}: mmrec's "
              "chosen blend vs EASE at its lambda:",
              ""]
    lines += [f"- seed {row['seed']}: mmrec {row['holdout_val']:.4f}, "
              f"EASE {max(row['ease']['val_ndcg@10'].values()):.4f}"
              + (f"; transition weight chosen {row['holdout_transitions']:g}" if "holdout_transitions" in row else "")
              for row in rows if row.get("holdout_val")]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
