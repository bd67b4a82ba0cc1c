"""Steady-state training throughput at several catalogue sizes, measured side by side in one process.

    .venv/bin/python bench/train_throughput.py [--work bench/.work/scale] [--items 2000 200000] [--rounds 3] [--threads N]

Uses the data `bench/scale_bench.py` prepared (bench/.work/scale/items<N>/scale.yaml: same embedding
size, batch and model settings at every size). Each size gets a Trainer built by mmrec's own
`prepare_training`; rounds alternate between the sizes (A B A B ...) so machine noise hits all of
them alike. A round = whole history-refresh intervals (>= 200 steps) of `Trainer.train_step`, which
refreshes the history table when due, as in an epoch; the first round is a warm-up and not counted.
Writes bench/results/train_throughput.{json,md} (with --threads N: train_throughput_Nthread.{json,md}).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.peers.report import machine_info  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.two_tower import TwoTowerModel  # noqa: E402
from mmrec.pipeline.train import prepare_training  # noqa: E402
from mmrec.settings import load_settings  # noqa: E402
from mmrec.training.distributed import DistContext  # noqa: E402
from mmrec.training.seeding import seed_everything  # noqa: E402
from mmrec.training.trainer import Trainer  # noqa: E402


def build(config: Path) -> Trainer:
    settings = load_settings(config).settings.model_copy()
    settings.training.device = "cpu"
    seed_everything(0)
    inputs = prepare_training(settings, torch.device("cpu"), DistContext())
    model = TwoTowerModel(settings.model, inputs.dims)
    return Trainer(model, inputs.data, inputs.catalogue, settings.model, settings.training, torch.device("cpu"))


def round_rate(trainer: Trainer, steps: int, generator: torch.Generator) -> float:
    """Interactions/s over `steps` train steps from a fresh history table (as at an epoch start)."""
    bs = trainer.cfg.batch_size
    order = torch.randperm(len(trainer.data.pairs), generator=generator)
    trainer._history_table = None
    start = time.perf_counter()
    for step in range(steps):
        offset = (step * bs) % max(1, len(order) - bs)
        trainer.train_step(trainer.data.pairs[order[offset : offset + bs]])
    return steps * bs / (time.perf_counter() - start)


def distinct_candidates(trainer: Trainer, generator: torch.Generator, batches: int = 50) -> float:
    """Mean distinct catalogue rows per training batch: the item tower encodes each once per step."""
    bs = trainer.cfg.batch_size
    pairs = trainer.data.pairs
    return statistics.mean(len(torch.unique(pairs[torch.randperm(len(pairs), generator=generator)[:bs], 1]))
                           for _ in range(batches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench" / ".work" / "scale")
    parser.add_argument("--items", nargs="+", type=int, default=[2000, 200000])
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per size (after one warm-up)")
    parser.add_argument("--min-steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, the cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = {**machine_info(), "load_average_before": list(os.getloadavg()), "torch_threads": torch.get_num_threads()}
    trainers = {n: build(args.work / f"items{n}" / "scale.yaml") for n in args.items}
    steps = {n: t.history_refresh_interval * math.ceil(args.min_steps / t.history_refresh_interval)
             for n, t in trainers.items()}
    rates: dict[int, list[float]] = {n: [] for n in args.items}
    generator = torch.Generator().manual_seed(0)
    for round_ in range(args.rounds + 1):
        for n, trainer in trainers.items():
            rate = round_rate(trainer, steps[n], generator)
            print(f"round {round_} items {n:,}: {rate:,.0f} inter/s", flush=True)
            if round_ > 0:
                rates[n].append(rate)
    smallest = min(args.items)
    # Round i of every size ran back to back: their ratio cancels the machine's slow drifts.
    paired = {n: [r / s for r, s in zip(rates[n], rates[smallest], strict=True)] for n in args.items}
    distinct = {n: distinct_candidates(trainer, generator) for n, trainer in trainers.items()}
    rows = []
    for n, trainer in trainers.items():
        median = statistics.median(rates[n])
        rows.append({"items": n, "users": trainer.data.histories.shape[0] - 1, "steps_per_round": steps[n],
                     "history_refresh_interval": trainer.history_refresh_interval,
                     "rates": [round(r) for r in rates[n]], "median": round(median),
                     "ratio_to_smallest": round(median / statistics.median(rates[smallest]), 3),
                     "paired_ratios": [round(r, 3) for r in paired[n]],
                     "median_paired_ratio": round(statistics.median(paired[n]), 3),
                     "distinct_items_per_step": round(distinct[n], 1),
                     "sparse_embeddings": trainer.cfg.sparse_embeddings})
    first = trainers[smallest]
    setup = {"embedding_dim": first.model_cfg.embedding_dim, "batch_size": first.cfg.batch_size,
             "user_history_length": first.model_cfg.user_history_length, "negatives": first.model_cfg.negatives}
    name = "train_throughput" + (f"_{args.threads}thread" if args.threads else "")
    atomic_write_json(args.out / f"{name}.json", {"machine": machine, "setup": setup, "rows": rows})
    lines = ["# Training throughput vs catalogue size (one process, sizes alternating)", "",
             f"Machine: {machine['cpu']}, {machine['logical_cores']} cores, {machine['torch_threads']} torch threads, "
             f"load average before {machine['load_average_before']}. Data: `bench/scale_bench.py`'s synthetic "
             f"catalogues; model settings identical at every size: {setup}. Median of {args.rounds} rounds "
             "after a warm-up; a round = whole history-refresh intervals (the history-table rebuilds are included). "
             "The item tower encodes each distinct candidate of a batch once, so a step's work grows with the "
             "distinct items per batch (a small catalogue repeats items within a batch).",
             "", "| items | users | steps/round | refresh every | distinct items per step | inter/s per round | median "
             "| vs smallest | per-round ratios (round i / smallest's round i) | median per-round ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['items']:,} | {r['users']:,} | {r['steps_per_round']} | {r['history_refresh_interval']} | "
              f"{r['distinct_items_per_step']:,.0f} | {', '.join(f'{v:,}' for v in r['rates'])} | {r['median']:,} | {r['ratio_to_smallest']:.2f}x | "
              f"{', '.join(f'{v:.2f}' for v in r['paired_ratios'])} | {r['median_paired_ratio']:.2f}x |"
              for r in rows]
    atomic_write_text(args.out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
