"""The cold items' order among themselves (`model.cold_blend`) on splits by time, where new items arrive.

A catalogue that grows (new films, new arrivals) holds, at any cut in time, items nobody had when the model was
trained. On a split by time (`mmrec split --strategy temporal`: train | val | test by date) validation and test
both hold such cold items. mmrec's blend weights are chosen over every validation item, where cold ones are a
few; `model.cold_blend` then chooses, on the validation users' cold items ranked among themselves, how much the
cold items' order follows content similarity to the user's items (mmrec.models.scoring.reorder_cold).

Per dataset and split seed, through the CLI with default settings:

    mmrec data import movielens DATA [--posters DATA/posters] --out W/data    (or: mmrec data synth --out W/data ...)
    mmrec preprocess -c W/data/mmrec.yaml
    mmrec split -c W/data/mmrec.yaml --strategy temporal --seed S
    mmrec train -c W/data/mmrec.yaml

then, in process, on evaluate's own data (`build_evaluation_data`, `evaluate_model`: train items and val masked,
test ranked over the catalogue, and the cold-item table ranking test's cold items among themselves):
- mmrec as trained (the cold items' order chosen on validation), and the same scorer without that last step
  (`Scorer.with_cold(None, 0)`: every earlier choice is the same, as the step comes last);
- content similarity alone (cosine of the mean of the user's training items' content to each item, the model
  mmrec blends) for text, image and text+image; the table's "content (val)" is the modality whose cold-item
  NDCG@10 on validation (val.csv ranked the same way) is best. Test decides nothing.

Paired per user (the same users in both): mean difference of NDCG@10 and a Wilcoxon signed-rank p.

    OMP_NUM_THREADS=1 .venv/bin/python bench/cold_order.py --dataset ml-small:tags --seeds 0 \
        --work /tmp/cold --out bench/results/cold_order
    datasets: ml-small:tags, ml-small:no-tags (../shared), ml-100k (--ml100k DIR, bench/ml100k_from_recbole.py),
    synth (mmrec data synth --users 2500 --items 1200 --interactions 30000 --seed 3), synth-arrivals (that
    catalogue growing week by week, `arrivals`), synth-arrivals:image-first (titles blank or SKU codes, no
    descriptions), synth-arrivals:fashion (that, and a price instead of the view/comment/like counts)

Results are kept per (dataset, seed) in OUT.json as each finishes; a rerun skips those (--redo to run again).
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
from typing import Any

import numpy as np
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SHARED = ROOT.parent / "shared" / "data" / "movielens-small-posters"
MMREC = [sys.executable, "-m", "mmrec"]
METRICS = ("ndcg@10", "recall@10", "ndcg@20")


def mmrec(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    print("$ mmrec", " ".join(args), flush=True)
    subprocess.run([*MMREC, *args], cwd=cwd, env=dict(os.environ, **(env or {})), check=True)


def prepare(dataset: str, work: Path, ml100k: Path | None) -> Path:
    """The dataset's config (imported or generated once under `work`)."""
    from peers.data import variant_source

    data = work / "data"
    config = data / "mmrec.yaml"
    if config.is_file():
        return config
    work.mkdir(parents=True, exist_ok=True)
    if dataset.startswith("synth"):
        mmrec("data", "synth", "--out", str(data), "--users", "2500", "--items", "1200", "--interactions", "30000",
              "--seed", "3", cwd=work)
        variant = dataset.partition(":")[2]
        if dataset != "synth":
            arrivals(data, image_first=variant in ("image-first", "fashion"), counts=variant != "fashion")
        config.write_text("\n".join(["paths:", *(f"  {key}: {data / name}" for key, name in (
            ("data_dir", ""), ("processed_dir", "processed"), ("splits_dir", "splits"), ("cache_dir", "cache"),
            ("checkpoint_dir", "checkpoints"), ("results_dir", "results"))),
            *(("data:", "  numerical_features_cols: [price]") if variant == "fashion" else ()), ""]), encoding="utf-8")
        return config
    name, _, variant = dataset.partition(":")
    source_dir = {"ml-small": SHARED, "ml-100k": ml100k}[name]
    if source_dir is None:
        raise SystemExit("ml-100k needs --ml100k DIR (bench/ml100k_from_recbole.py writes one)")
    source = variant_source(source_dir, variant or "no-tags", work / "view")
    posters = Path(source_dir).resolve() / "posters"
    mmrec("data", "import", "movielens", str(source), *(("--posters", str(posters)) if posters.is_dir() else ()),
          "--out", str(data), cwd=work)
    return config


def arrivals(data: Path, image_first: bool, counts: bool = True, seed: int = 7) -> None:
    """The synthetic catalogue made to grow (in place): 70% of the items are there from the start, 30% arrive
    week by week over six months (their interactions moved after their arrival), 5% after the last interaction
    (never interacted with). image_first: titles blank (45%) or SKU codes (40%), no descriptions, as a fashion
    shop's export (the last notes' walkthrough F); without `counts`, the view/comment/like counts (which tell how
    popular an item is, new or not) give way to a price, as in that export."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    items = pd.read_csv(data / "item_info.csv", dtype=str, keep_default_na=False)
    inter = pd.read_csv(data / "interactions.csv", dtype={"user_id": str, "item_id": str})
    start, span, week = 1_700_000_000, 182 * 86400, 7 * 86400
    stamps = inter["timestamp"].astype(np.int64)
    inter["timestamp"] = start + ((stamps - stamps.min()) / max(1, stamps.max() - stamps.min()) * (span - 1)).astype(
        np.int64)
    draw = rng.random(len(items))
    arrival = np.where(draw < 0.3, start + rng.integers(0, span // week, len(items)) * week, start)
    arrival[::20] = start + span  # after the last interaction
    at = dict(zip(items["item_id"], arrival))
    inter = inter[inter["item_id"].map(at) < start + span].copy()
    item_arrival = inter["item_id"].map(at).to_numpy()
    late = inter["timestamp"].to_numpy() < item_arrival
    after = rng.random(int(late.sum())) * (start + span - item_arrival[late])  # a time between arrival and end
    inter.loc[late, "timestamp"] = item_arrival[late] + after.astype(np.int64)
    inter.sort_values("timestamp", kind="stable").to_csv(data / "interactions.csv", index=False)
    if image_first:
        kind = rng.random(len(items))
        codes = [f"SS24-{rng.integers(0, 10000):04d}-BLK" for _ in range(len(items))]
        items["title"] = np.where(kind < 0.45, "", np.where(kind < 0.85, codes, items["title"]))
        items["description"] = ""
    if not counts:
        items = items.drop(columns=["view_number", "comment_number", "thumbup_number"])
        items["price"] = np.round(rng.uniform(9.0, 70.0, len(items)), 2)
    items.to_csv(data / "item_info.csv", index=False)


class ContentAlone:
    """Content similarity alone as a recommender: the ContentProfileModel mmrec blends, on the same catalogue."""

    def __init__(self, name: str, modality: str, rec: Any, profiles: Any) -> None:
        from mmrec.models.content_profile import ContentProfileModel

        self.name, self.rec = name, rec
        self.model = ContentProfileModel.build(rec.scorer.catalogue, modality, profiles)

    def score(self, user_ids: list[str], device: str | torch.device = "cpu") -> torch.Tensor:
        rows = torch.as_tensor([self.rec._profile_row(u) for u in user_ids])
        return self.model.scores(rows).float().to(device)


def evaluate_all(settings: Any, parts: str) -> dict[str, Any]:
    """{system: ModelEvaluation} on test ('test') or on val ranked given train ('val')."""
    from mmrec.data.splits import load_split
    from mmrec.data.tables import load_items
    from mmrec.evaluation.dataset import build_evaluation_data
    from mmrec.evaluation.evaluator import evaluate_model
    from mmrec.data.encoders import IdEncoder
    from mmrec.models.content_profile import content_modalities
    from mmrec.models.histories import catalogue_index
    from mmrec.models.item_item import item_item_profiles
    from mmrec.pipeline.evaluate import load_recommender
    from mmrec.recommenders.factory import create_recommender

    split = load_split(Path(settings.paths.splits_dir))
    items = load_items(Path(settings.paths.processed_dir))
    item_ids = items["item_id"].astype(str).tolist()
    held, masked = (split.test, [split.val]) if parts == "test" else (split.val, [])
    data = build_evaluation_data(split.train, held, item_ids, masked)
    evaluation = settings.evaluation.model_copy(update={"k_values": [10, 20]})
    device = torch.device("cpu")
    fallback = create_recommender(evaluation.cold_user_fallback, evaluation).fit(split.train, item_ids)
    rec = load_recommender("multimodal", settings, items, split.train, device)
    scorer = rec.scorer
    # Profile rows as the recommender's (local train-user index + 1).
    profiles = item_item_profiles(split.train, IdEncoder(list(rec.user_index), "user"), catalogue_index(item_ids), 0.0)
    systems: dict[str, Any] = {"mmrec": rec}

    class Without:
        name = "mmrec, no cold order"

        def score(self, user_ids: list[str], device: str | torch.device = "cpu") -> torch.Tensor:
            idx, rows, _ = rec._user_inputs(user_ids)
            return scorer.with_cold(None, 0.0).scores(idx, rows).to(device)

    systems["mmrec, no cold order"] = Without()
    for modality in content_modalities(rec.model.cfg, scorer.catalogue):
        systems[f"content {modality}"] = ContentAlone(f"content {modality}", modality, rec, profiles)
    out = {name: evaluate_model(name, model, data, evaluation, device=device, fallback=fallback)
           for name, model in systems.items()}
    out["_counts"] = {"cold_items": len(data.cold_items), "users": out["mmrec"].n_users,
                      "cold_users": out["mmrec"].n_cold_item_users}
    return out


def paired(a: dict[str, np.ndarray], b: dict[str, np.ndarray], metric: str = "ndcg@10") -> dict[str, float]:
    x, y = np.asarray(a[metric]), np.asarray(b[metric])
    diff = x - y
    p = float(stats.wilcoxon(x, y).pvalue) if np.any(diff) else 1.0
    return {"diff": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0,
            "p": p}


def run_one(dataset: str, seed: int, work: Path, ml100k: Path | None) -> dict[str, Any]:
    from mmrec.checkpoints.store import read_meta
    from mmrec.settings import load_settings

    config = prepare(dataset, work, ml100k)
    mmrec("preprocess", "-c", str(config), cwd=work)
    base = work / f"seed{seed}"
    # A split by time is the same for every seed: the seed draws the training (initialization, batches).
    env = {"MMREC_PATHS__SPLITS_DIR": str(base / "splits"), "MMREC_PATHS__CHECKPOINT_DIR": str(base / "checkpoints"),
           "MMREC_PATHS__RESULTS_DIR": str(base / "results"), "MMREC_TRAINING__SEED": str(seed)}
    if not (base / "splits" / "test.csv").is_file():
        mmrec("split", "-c", str(config), "--strategy", "temporal", "--seed", str(seed), cwd=work, env=env)
    start = time.perf_counter()
    if not list((base / "checkpoints").glob("*/best_model.pth")):
        mmrec("train", "-c", str(config), "--device", "cpu", cwd=work, env=env)
    train_s = time.perf_counter() - start
    settings = load_settings(config, {"paths.splits_dir": env["MMREC_PATHS__SPLITS_DIR"],
                                      "paths.checkpoint_dir": env["MMREC_PATHS__CHECKPOINT_DIR"]}).settings
    blend = read_meta(next((base / "checkpoints").glob("*/best_model.pth"))).get("item_item") or {}
    val, test = evaluate_all(settings, "val"), evaluate_all(settings, "test")
    contents = [name for name in test if name.startswith("content ")]
    chosen_content = max(contents, key=lambda n: val[n].cold_item_metrics.get("ndcg@10", -1.0))
    row: dict[str, Any] = {
        "dataset": dataset, "seed": seed, "train_s": round(train_s, 1), **test["_counts"],
        "val_cold_users": val["_counts"]["cold_users"],
        "chosen": {key: blend.get(key) for key in ("blend", "content_blend", "content_modality", "sequence_blend",
                                                   "trend_blend", "cold_blend", "cold_modality", "cold_gain_se")},
        "cold_grid": blend.get("cold_grid"), "content_by_val": chosen_content,
        "main": {name: {m: r.metrics.get(m) for m in METRICS} for name, r in test.items() if name != "_counts"},
        "cold": {name: {m: r.cold_item_metrics.get(m) for m in METRICS} for name, r in test.items()
                 if name != "_counts"},
        "val_cold": {name: r.cold_item_metrics.get("ndcg@10") for name, r in val.items() if name != "_counts"},
    }
    on, off, content = test["mmrec"], test["mmrec, no cold order"], test[chosen_content]
    row["paired"] = {"cold: on vs off": paired(on.cold_per_user, off.cold_per_user),
                     "cold: on vs content (val)": paired(on.cold_per_user, content.cold_per_user),
                     "cold: off vs content (val)": paired(off.cold_per_user, content.cold_per_user),
                     "main: on vs off": paired(on.per_user, off.per_user)}
    return row


def write(out: Path, rows: list[dict[str, Any]]) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, OMP_NUM_THREADS=" \
              f"{os.environ.get('OMP_NUM_THREADS', '-')}"
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    lines = ["# The cold items' order among themselves (model.cold_blend), splits by time",
             "", f"`bench/cold_order.py`; {machine}. Test NDCG@10; the cold-item table ranks test's cold items "
             "(no training interaction) among themselves, as `mmrec evaluate` does. \"off\" is the same trained "
             "scorer without the last step; \"content (val)\": content similarity alone, modality chosen on "
             "validation's cold-item table. Paired: mean difference per user (Wilcoxon p).", "",
             "| dataset | seed | cold items (test users with one) | chosen on val | cold: on | cold: off | "
             "cold: content (val) | on - off (p) | on - content (p) | main: on | main: off | main on - off (p) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        chosen = row["chosen"]
        weight = (f"{chosen['cold_modality']} {chosen['cold_blend']:g} ({chosen['cold_gain_se']:.1f} SE)"
                  if chosen.get("cold_blend") else
                  "none" + (f" ({chosen['cold_gain_se']:.1f} SE)" if chosen.get("cold_gain_se") is not None else ""))
        p = row["paired"]
        cold, main = row["cold"], row["main"]
        lines.append(
            f"| {row['dataset']} | {row['seed']} | {row['cold_items']:,} ({row['cold_users']:,}) | {weight} | "
            f"{cold['mmrec']['ndcg@10']:.4f} | {cold['mmrec, no cold order']['ndcg@10']:.4f} | "
            f"{cold[row['content_by_val']]['ndcg@10']:.4f} ({row['content_by_val'].split(' ', 1)[1]}) | "
            f"{p['cold: on vs off']['diff']:+.4f} ({p['cold: on vs off']['p']:.2g}) | "
            f"{p['cold: on vs content (val)']['diff']:+.4f} ({p['cold: on vs content (val)']['p']:.2g}) | "
            f"{main['mmrec']['ndcg@10']:.4f} | {main['mmrec, no cold order']['ndcg@10']:.4f} | "
            f"{p['main: on vs off']['diff']:+.4f} ({p['main: on vs off']['p']:.2g}) |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cold_order")
    parser.add_argument("--ml100k", type=Path, default=None)
    parser.add_argument("--redo", action="store_true")
    args = parser.parse_args()
    stored = args.out.with_suffix(".json")
    rows = json.loads(stored.read_text())["rows"] if stored.is_file() else []
    for dataset in args.dataset:
        for seed in args.seeds:
            if not args.redo and any(r["dataset"] == dataset and r["seed"] == seed for r in rows):
                continue
            row = run_one(dataset, seed, args.work / dataset.replace(":", "-"), args.ml100k)
            rows = [r for r in rows if (r["dataset"], r["seed"]) != (dataset, seed)] + [row]
            write(args.out, rows)
            print(json.dumps(row, indent=1), flush=True)


if __name__ == "__main__":
    main()
