"""Training throughput with the distillation teacher on a large catalogue: its candidate columns alone vs a full block.

    OMP_NUM_THREADS=1 .venv/bin/python bench/teacher_step.py [--work bench/.work/scale] [--items 20000] [--rounds 3]

Above the teacher-table budget (users x items > 2^27 floats when this was measured; now up to 2^29 as free memory
allows: this bench keeps 2^27) a training step asks the item-item teacher for its scores of the batch's users over
the step's candidates. With the neighbourhood solver (sparse B, catalogues above
model.item_item_dense_max_items) `ItemItemModel.scores(rows, columns)` used to build every user's scores over the
whole catalogue ([batch, n_items] from a sparse product, then dense) and keep the candidates' columns; it now
multiplies the profiles by those columns of B alone (rows of the stored B^T). On `bench/scale_bench.py`'s data
(a Trainer from mmrec's own `prepare_training`, default settings: distillation on), rounds alternate (A B C A B C
...) between: the previous block (reproduced below), today's columns, and no teacher at all (the floor). A round =
whole history-refresh intervals of `Trainer.train_step`, as `bench/train_throughput.py`. Writes
bench/results/teacher_step.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.peers.report import machine_info  # noqa: E402
import mmrec.training.trainer as trainer_module  # noqa: E402
from bench.train_throughput import build, round_rate  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.item_item import ItemItemModel  # noqa: E402

TODAY = ItemItemModel.scores


def previous_scores(self: ItemItemModel, rows, columns=None) -> torch.Tensor:
    """The sparse-B CPU path before this change: the whole [b, n_items] block, then the columns."""
    if not (self.is_sparse and self.weights.device.type == "cpu" and columns is not None):
        return TODAY(self, rows, columns)
    rows = np.asarray(torch.as_tensor(rows).cpu())
    scores = torch.as_tensor((self.interactions[rows] @ self._scipy_weights()).toarray(), dtype=torch.float32)
    return scores[:, torch.as_tensor(columns)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench" / ".work" / "scale")
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    machine = {**machine_info(), "load_average_before": list(os.getloadavg()), "torch_threads": torch.get_num_threads()}
    trainer_module.TEACHER_TABLE_MAX_ELEMENTS = 2**27  # the budget of the measurement: the per-step path
    trainer = build(args.work / f"items{args.items}" / "scale.yaml")
    assert trainer.teacher is not None and trainer.teacher.is_sparse and trainer._teacher_table is None, \
        "this bench is about the per-step sparse teacher (neighbourhood solver, no precomputed table)"
    teacher = trainer.teacher
    steps = trainer.history_refresh_interval * math.ceil(args.min_steps / trainer.history_refresh_interval)
    generator = torch.Generator().manual_seed(0)
    variants = {"previous: whole block": previous_scores, "today: candidate columns": TODAY, "no teacher": None}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds + 1):
        for name, scores in variants.items():
            trainer.teacher = teacher if scores is not None else None
            ItemItemModel.scores = scores or TODAY
            rate = round_rate(trainer, steps, generator)
            print(f"round {round_} {name}: {rate:,.0f} inter/s", flush=True)
            if round_ > 0:
                rates[name].append(rate)
    ItemItemModel.scores, trainer.teacher = TODAY, teacher
    rows = [{"variant": name, "rates": [round(r) for r in values], "median": round(statistics.median(values))}
            for name, values in rates.items()]
    users, items = trainer.data.histories.shape[0] - 1, trainer.catalogue.n
    atomic_write_json(args.out / "teacher_step.json", {"machine": machine, "items": items, "users": users,
                                                       "steps_per_round": steps, "rows": rows})
    base = rows[0]["median"]
    lines = ["# Training with the distillation teacher on a large catalogue: candidate columns vs a whole block", "",
             f"`bench/teacher_step.py`: {items:,} items, {users:,} users (`bench/scale_bench.py`'s data), the "
             f"neighbourhood solver's sparse B, batch {trainer.cfg.batch_size}, {steps} steps per round, rounds "
             f"alternating, median of {args.rounds} after a warm-up. Machine: {machine['cpu']}, "
             f"{machine['logical_cores']} cores, {machine['torch_threads']} torch thread(s), load average before "
             f"{', '.join(f'{v:.1f}' for v in machine['load_average_before'])}.", "",
             "| variant | inter/s per round | median | vs previous |", "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {', '.join(f'{v:,}' for v in r['rates'])} | {r['median']:,} | "
              f"{r['median'] / base:.2f}x |" for r in rows]
    atomic_write_text(args.out / "teacher_step.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
