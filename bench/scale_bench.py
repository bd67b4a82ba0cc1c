"""The whole pipeline at catalogue scale, through the CLI: time and peak memory of every stage.

    .venv/bin/python bench/scale_bench.py [--items 2000 20000 200000] [--users-per-item 0.5]
        [--interactions-per-item 10] [--epochs 1] [--work bench/.work/scale]

For each catalogue size: `mmrec data synth --no-images --interactions N` (power-law popularity),
random 512-d image and 384-d text embeddings written as .npy + ids and brought in with
`mmrec cache import` (the pipeline for catalogues whose embeddings exist already), then
`preprocess`, `split`, `train` (the item-item fit and blend search included; its fit time comes from
the checkpoint), `evaluate` (full ranking) and `recommend --all-users` into parquet. Each stage is a
separate process; its peak RSS (process tree, polled every 50 ms) and wall time are recorded.
Writes bench/results/scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402

from bench.peers.report import machine_info  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402

MMREC = [sys.executable, "-m", "mmrec"]


def _tree_rss(process: psutil.Process) -> int:
    try:
        procs = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_stage(name: str, args: list[str], cwd: Path, log: Path) -> dict:
    """Run one CLI stage; wall seconds, peak RSS of its process tree, exit code."""
    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(args)}\n")
        out.flush()
        child = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"})
        process, peak, done = psutil.Process(child.pid), 0, threading.Event()

        def poll() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(process))
                done.wait(0.05)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        code = child.wait()
        done.set()
        watcher.join()
    row = {"stage": name, "seconds": round(time.perf_counter() - start, 1), "peak_rss_mib": round(peak / 2**20),
           "exit_code": code}
    print(row, flush=True)
    if code != 0:
        raise RuntimeError(f"stage {name} failed (exit {code}); see {log}")
    return row


def epoch_rates(log: Path) -> list[int]:
    """Interactions/s of each training epoch, from `mmrec train`'s epoch lines in the stage log."""
    rates = re.findall(r"^epoch \d+: .*?([\d,]+) inter/s", log.read_text(encoding="utf-8"), flags=re.M)
    return [int(rate.replace(",", "")) for rate in rates]


def write_config(work: Path, epochs: int) -> Path:
    config = {
        "paths": {"data_dir": str(work / "raw"), "processed_dir": str(work / "processed"),
                  "splits_dir": str(work / "splits"), "cache_dir": str(work / "cache"),
                  "checkpoint_dir": str(work / "checkpoints"), "results_dir": str(work / "results")},
        "features": {"vision_backbone": "imported", "text_backbone": "imported"},
        "training": {"epochs": epochs, "batch_size": 1024, "device": "cpu"},
    }
    path = work / "scale.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def write_embeddings(work: Path, dims: dict[str, int], seed: int = 0) -> None:
    """Random unit vectors for every catalogue item, one .npy per modality plus the id list."""
    import pandas as pd

    ids = pd.read_csv(work / "raw" / "item_info.csv", usecols=["item_id"], dtype=str)["item_id"].tolist()
    (work / "ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    rng = np.random.default_rng(seed)
    for modality, dim in dims.items():
        matrix = rng.standard_normal((len(ids), dim), dtype=np.float32)
        np.save(work / f"{modality}.npy", matrix / np.linalg.norm(matrix, axis=1, keepdims=True))


def _first_test_user(work: Path) -> str:
    with open(work / "splits" / "test.csv", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
        return handle.readline().strip().split(",")[header.index("user_id")]


def run_size(n_items: int, args: argparse.Namespace) -> dict:
    work = args.work / f"items{n_items}"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    log = work / "log.txt"
    n_users = max(100, int(n_items * args.users_per_item))
    n_interactions = int(n_items * args.interactions_per_item)
    config = str(write_config(work, args.epochs))
    stages = [run_stage("synth", MMREC + ["data", "synth", "--out", str(work / "raw"), "--items", str(n_items),
                                          "--users", str(n_users), "--interactions", str(n_interactions),
                                          "--no-images"], work, log)]
    write_embeddings(work, {"vision": 512, "text": 384})
    stages.append(run_stage("preprocess", MMREC + ["preprocess", "-c", config, "--skip-caching"], work, log))
    stages.append(run_stage("split", MMREC + ["split", "-c", config], work, log))
    for modality in ("vision", "text"):
        stages.append(run_stage(f"import {modality}", MMREC + ["cache", "import", "--modality", modality,
                                                                 str(work / f"{modality}.npy"), "--ids",
                                                                 str(work / "ids.txt"), "-c", config], work, log))
    stages.append(run_stage("train", MMREC + ["train", "-c", config], work, log))
    stages.append(run_stage("evaluate", MMREC + ["evaluate", "-c", config, "--recommender-type", "multimodal"],
                            work, log))
    stages.append(run_stage("recommend --all-users", MMREC + ["recommend", "-c", config, "--all-users",
                                                               "--output", str(work / "recs.parquet")], work, log))
    # The same model serving one user: its peak RSS is the model's own (weights, features, item-item
    # model); --all-users' peak above it is what streaming every user costs.
    one_user = _first_test_user(work)
    stages.append(run_stage("recommend (one user)", MMREC + ["recommend", "-c", config, "--user", one_user],
                            work, log))
    sidecar = next((work / "checkpoints").glob("*/best_model.json"))
    meta = json.loads(sidecar.read_text())
    blend = meta.get("item_item") or {}
    history = json.loads((work / "results" / "evaluation.json").read_text()) \
        if (work / "results" / "evaluation.json").is_file() else {}
    return {"items": n_items, "users": n_users, "interactions": n_interactions, "stages": stages,
            "train_interactions_per_s": epoch_rates(log),
            "item_item_fit_s": blend.get("fit_seconds"), "item_item_neighbours": blend.get("neighbours"),
            "val_monitored": blend.get("monitored", meta.get("best_value")),
            "evaluation": {k: v for k, v in history.items() if k in ("metrics", "n_users")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", nargs="*", type=int, default=[2000, 20000, 200000],
                        help="catalogue sizes to run (none: rewrite the tables from stored results)")
    parser.add_argument("--users-per-item", type=float, default=0.5)
    parser.add_argument("--interactions-per-item", type=float, default=10.0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / ".work" / "scale")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--fresh", action="store_true", help="drop the sizes an earlier run stored")
    args = parser.parse_args()
    machine = {**machine_info(), "load_average_before": list(os.getloadavg())}
    previous = args.out / "scale.json"
    # Sizes run earlier (e.g. the small ones in another session) stay unless rerun now.
    runs = [r for r in json.loads(previous.read_text())["runs"] if r["items"] not in args.items] \
        if previous.is_file() and not args.fresh else []
    for run in runs:
        log = args.work / f"items{run['items']}" / "log.txt"
        if "train_interactions_per_s" not in run and log.is_file():
            run["train_interactions_per_s"] = epoch_rates(log)
    for n in args.items:
        runs.append({**run_size(n, args), "machine": machine})
        runs.sort(key=lambda r: r["items"])
        atomic_write_json(args.out / "scale.json", {"machine": machine, "runs": runs})
    lines = ["# The whole pipeline at scale (CLI, one process per stage)", "",
             f"Machine: {machine['cpu']}, {machine['logical_cores']} cores (load average before each size in "
             "scale.json). Synthetic catalogue without "
             f"images ({args.users_per_item:g} users and {args.interactions_per_item:g} power-law interactions per "
             f"item), random 512-d + 384-d embeddings imported with `mmrec cache import`; {args.epochs} epoch(s).",
             "", "| items | users | interactions | stage | seconds | peak RSS MiB |", "|---|---|---|---|---|---|"]
    for run in runs:
        for stage in run["stages"]:
            lines.append(f"| {run['items']:,} | {run['users']:,} | {run['interactions']:,} | {stage['stage']} | "
                         f"{stage['seconds']} | {stage['peak_rss_mib']:,} |")
    lines += ["", "| items | train inter/s per epoch | item-item fit s (inside train) | neighbours (None = dense) | "
              "val monitored |", "|---|---|---|---|---|"]
    lines += [f"| {r['items']:,} | {', '.join(f'{v:,}' for v in r.get('train_interactions_per_s', []))} | "
              f"{r['item_item_fit_s']} | {r['item_item_neighbours']} | {r['val_monitored']} |" for r in runs]
    for run in runs:
        peaks = {stage["stage"]: stage["peak_rss_mib"] for stage in run["stages"]}
        if "recommend (one user)" in peaks and "recommend --all-users" in peaks:
            lines.append(f"\n{run['items']:,} items: `recommend --all-users` ({run['users']:,} users) peaks "
                         f"{peaks['recommend --all-users'] - peaks['recommend (one user)']:,} MiB above the same "
                         f"model serving one user ({peaks['recommend (one user)']:,} MiB).")
    atomic_write_text(args.out / "scale.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
