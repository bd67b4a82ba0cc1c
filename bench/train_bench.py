"""Training benchmark: throughput, s/epoch, peak memory and val NDCG@10 vs popularity, demo + MovieLens.

    .venv/bin/python bench/train_bench.py [--work DIR] [--datasets demo movielens] [--device cpu]

Prepares each dataset with the mmrec CLI (steps whose outputs exist in --work are reused):
demo = `data synth` + preprocess + split (mmrec/configs/demo.yaml); MovieLens = `data import movielens`
+ preprocess + split temporal_user + cache precompute. Then trains with the config's defaults
(`run_train`) and computes the popularity baseline's val NDCG@10 with the same full ranking
(train items masked). Writes bench/results/train.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from mmrec.data.encoders import fit_encoders
from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
from mmrec.evaluation.full_ranking import full_ranking
from mmrec.fileio import atomic_write_json, atomic_write_text
from mmrec.pipeline.train import run_train
from mmrec.settings import load_settings
from mmrec.training.data import build_training_data

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "data" / "movielens-small-posters"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                if line.startswith("model name")), "unknown")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__, "load_average_before": list(os.getloadavg())}


def mmrec(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "mmrec", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def prepare_demo(work: Path) -> Path:
    folder = work / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "demo.yaml"
    config.write_text((ROOT / "mmrec" / "configs" / "demo.yaml").read_text())
    if not (folder / "demo" / "splits" / "train.csv").is_file():
        mmrec("data", "synth", "-c", str(config), cwd=folder)
        mmrec("preprocess", "-c", str(config), "--skip-caching", cwd=folder)
        mmrec("split", "-c", str(config), cwd=folder)
    return config


def prepare_movielens(work: Path) -> Path:
    data = work / "movielens" / "data"
    config = data / "mmrec.yaml"
    if not (data / "splits" / "train.csv").is_file():
        mmrec("data", "import", "movielens", str(SRC), "--posters", str(SRC / "posters"), "--out", str(data),
              cwd=work)
        mmrec("preprocess", "-c", str(config), "--skip-caching", cwd=work)
        mmrec("split", "-c", str(config), "--strategy", "temporal_user", cwd=work)
    mmrec("cache", "precompute", "-c", str(config), cwd=work)  # a no-op when every feature is cached
    return config


def popularity_val_ndcg(settings) -> dict[str, float]:
    """Train-count popularity ranked over the full catalogue on the validation split."""
    items = load_items(Path(settings.paths.processed_dir))
    split = load_split(Path(settings.paths.splits_dir))
    users, _ = fit_encoders(split.train)
    data = build_training_data(split.train, split.val, items["item_id"].tolist(), users, 0)
    counts = data.item_counts
    result = full_ranking(lambda rows: counts.expand(len(rows), -1).clone(), data.val_relevant, data.val_exclude,
                          [10])
    return {"ndcg@10": result.metrics["ndcg@10"], "recall@10": result.metrics["recall@10"]}


def bench(name: str, config: Path, device: str, cwd: Path) -> dict:
    os.chdir(cwd)  # the demo config uses paths relative to its folder
    settings = load_settings(config, {"training.device": device}).settings
    result = run_train(settings)
    popularity = popularity_val_ndcg(settings)
    best = result.history[result.best_epoch - 1]
    return {
        "dataset": name, "config": str(config), "device": result.device, "combo": result.combo,
        "train_interactions": result.n_train_interactions, "users": result.n_users, "items": result.n_items,
        "epochs_run": len(result.history), "epochs_max": settings.training.epochs,
        "stopped_early": result.stopped_early, "best_epoch": result.best_epoch,
        "val_ndcg@10": result.best_metric, "val_recall@10": best.val.get("recall@10"),
        "popularity_val_ndcg@10": popularity["ndcg@10"], "popularity_val_recall@10": popularity["recall@10"],
        "beats_popularity": result.best_metric > popularity["ndcg@10"],
        # After training, `mmrec train` blends in the item-item model (weight and half-life chosen on val).
        "item_item": None if result.item_item is None else {
            key: result.item_item[key] for key in ("blend", "halflife", "monitored", "fit_seconds")},
        "interactions_per_s": result.interactions_per_s, "seconds_per_epoch": result.seconds_per_epoch,
        "peak_memory_mb": result.peak_memory_mb,
        "history": [{"epoch": r.epoch, "loss": r.loss, "val_ndcg@10": r.val.get("ndcg@10"),
                     "seconds": r.seconds, "interactions_per_s": r.interactions_per_s} for r in result.history],
        "model": yaml.safe_dump(settings.model.model_dump(mode="json"), default_flow_style=True).strip(),
    }


def markdown(info: dict, runs: list[dict]) -> str:
    lines = ["# Training benchmark", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}, torch {info['torch']}, "
             f"load average before: {', '.join(f'{v:.1f}' for v in info['load_average_before'])}"
             " (the machine is shared; throughput varies with load).", "",
             "`val NDCG@10` = two-tower model at its best epoch; `blended` = with the item-item model "
             "(blend weight w, recency half-life h, fit seconds), as `mmrec evaluate`/`recommend` score.", "",
             "| dataset | device | train inter. | epochs (best) | val NDCG@10 | blended (w, h, fit s) | "
             "popularity val NDCG@10 | inter/s | s/epoch | peak MiB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        blend = r.get("item_item")
        blended = "-" if not blend else (f"{blend['monitored']:.4f} ({blend['blend']:g}, {blend['halflife']:g}, "
                                         f"{blend['fit_seconds']:.1f})")
        lines.append(f"| {r['dataset']} | {r['device']} | {r['train_interactions']:,} | {r['epochs_run']} "
                     f"({r['best_epoch']}) | {r['val_ndcg@10']:.4f} | {blended} | {r['popularity_val_ndcg@10']:.4f} | "
                     f"{r['interactions_per_s']:,.0f} | {r['seconds_per_epoch']:.1f} | {r['peak_memory_mb']:,.0f} |")
    for r in runs:
        lines += ["", f"## {r['dataset']}: per epoch", "", "| epoch | loss | val NDCG@10 | s | inter/s |",
                  "|---|---|---|---|---|"]
        lines += [f"| {h['epoch']} | {h['loss']:.4f} | {h['val_ndcg@10']:.4f} | {h['seconds']:.1f} | "
                  f"{h['interactions_per_s']:,.0f} |" for h in r["history"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="reusable work folder (default: a temp dir)")
    parser.add_argument("--datasets", nargs="+", default=["demo", "movielens"], choices=["demo", "movielens"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag", default="train", help="result file stem (e.g. train_cuda)")
    args = parser.parse_args()
    info = machine()
    work = (args.work or Path(tempfile.mkdtemp(prefix="mmrec-train-bench-"))).resolve()
    runs = []
    for name in args.datasets:
        config = prepare_demo(work) if name == "demo" else prepare_movielens(work)
        runs.append(bench(name, config, args.device, config.parent))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "history"}, indent=1))
    atomic_write_json(args.out / f"{args.tag}.json", {"machine": info, "runs": runs})
    atomic_write_text(args.out / f"{args.tag}.md", markdown(info, runs))


if __name__ == "__main__":
    main()
