"""Full-ranking evaluation throughput vs a bare matmul + topk, and peak memory of evaluation.

Usage: python bench/eval_bench.py [--users 10000 --items 50000 --dim 64 --batch-size 1024] [--name eval]
Writes bench/results/<name>.json and .md (eval_200k: --users 5000 --items 200000 --memory-items 200000 1000000).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmrec.evaluation.full_ranking import full_ranking
from mmrec.fileio import atomic_write_json, atomic_write_text

K_VALUES = (5, 10, 20)


def make_problem(users: int, items: int, dim: int, seen: int, held_out: int, seed: int = 0):
    """Random user/item vectors, `seen` masked and `held_out` relevant items per user."""
    generator = torch.Generator().manual_seed(seed)
    user_vectors = torch.randn(users, dim, generator=generator)
    item_vectors = torch.randn(items, dim, generator=generator)
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, items, size=(users, seen + held_out))
    rows = np.repeat(np.arange(users), seen)
    exclude = sp.csr_matrix(
        (np.ones(users * seen, np.float32), (rows, cols[:, :seen].ravel())), shape=(users, items)
    )
    rows = np.repeat(np.arange(users), held_out)
    relevant = sp.csr_matrix(
        (np.ones(users * held_out, np.float32), (rows, cols[:, seen:].ravel())), shape=(users, items)
    )
    relevant.data[:] = 1.0
    exclude = exclude - exclude.multiply(relevant)
    exclude.eliminate_zeros()
    exclude.data[:] = 1.0
    return user_vectors, item_vectors, relevant, exclude


def bare_matmul_topk(user_vectors, item_vectors, batch_size: int, k: int) -> float:
    """Seconds for chunked matmul + topk alone (the speed limit of any full ranking)."""
    item_t = item_vectors.T.contiguous()
    started = time.perf_counter()
    for start in range(0, len(user_vectors), batch_size):
        torch.topk(torch.matmul(user_vectors[start : start + batch_size], item_t), k, dim=1)
    return time.perf_counter() - started


def evaluation(user_vectors, item_vectors, relevant, exclude, batch_size: int) -> tuple[float, dict]:
    item_t = item_vectors.T.contiguous()
    started = time.perf_counter()
    result = full_ranking(
        lambda rows: user_vectors[torch.from_numpy(rows)] @ item_t,
        relevant,
        exclude,
        K_VALUES,
        batch_size=batch_size,
    )
    return time.perf_counter() - started, result.metrics


def peak_memory_child(args) -> None:
    """Run one evaluation and print peak RSS (MB) — executed in a fresh subprocess."""
    problem = make_problem(args.users, args.items, args.dim, args.seen, args.held_out)
    evaluation(*problem, args.batch_size)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--seen", type=int, default=50, help="masked training items per user")
    parser.add_argument("--held-out", type=int, default=10, help="relevant test items per user")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--memory-items",
        type=int,
        nargs="*",
        default=[50_000, 500_000],
        help="catalogue sizes for the peak-memory check",
    )
    parser.add_argument(
        "--memory-users",
        type=int,
        default=2_000,
        help="users in the peak-memory check (memory is per chunk, not per user)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default="eval", help="output stem: <out>/<name>.json and .md")
    args = parser.parse_args()
    if args.child:
        peak_memory_child(args)
        return

    problem = make_problem(args.users, args.items, args.dim, args.seen, args.held_out)
    bare, full = [], []
    evaluation(*problem, args.batch_size)  # warm-up (allocator, thread pool)
    for _ in range(args.repeats):  # interleaved so both see the same machine state
        bare.append(bare_matmul_topk(problem[0], problem[1], args.batch_size, max(K_VALUES)))
        seconds, metrics = evaluation(*problem, args.batch_size)
        full.append(seconds)
    bare_rate, full_rate = args.users / min(bare), args.users / min(full)

    memory = {}
    for items in args.memory_items:
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--users",
                str(args.memory_users),
                "--items",
                str(items),
                "--dim",
                str(args.dim),
                "--seen",
                str(args.seen),
                "--held-out",
                str(args.held_out),
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        memory[str(items)] = json.loads(child.stdout.strip().splitlines()[-1])["peak_rss_mb"]

    result = {
        "shape": {
            "users": args.users,
            "items": args.items,
            "dim": args.dim,
            "seen_per_user": args.seen,
            "held_out_per_user": args.held_out,
            "batch_size": args.batch_size,
            "k_values": list(K_VALUES),
        },
        "bare_matmul_topk_users_per_s": round(bare_rate, 1),
        "full_ranking_users_per_s": round(full_rate, 1),
        "ratio": round(full_rate / bare_rate, 3),
        "target_ratio": 0.5,
        "peak_rss_mb_by_catalogue_size": {k: round(v, 1) for k, v in memory.items()},
        "memory_target_mb": 2048,
        "seconds": {"bare": [round(s, 3) for s in bare], "full_ranking": [round(s, 3) for s in full]},
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            # Other jobs on a shared machine slow both measurements; the ratio is what compares.
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "sanity_metrics": {
            k: round(v, 6) for k, v in metrics.items() if k in ("ndcg@10", "recall@20", "mrr")
        },
    }
    atomic_write_json(args.out / f"{args.name}.json", result)
    lines = [
        "# Full-ranking evaluation benchmark",
        "",
        (
            f"{args.users:,} users x {args.items:,} items x {args.dim} dims, batch {args.batch_size}, "
            f"{args.seen} masked + {args.held_out} relevant items per user, K = {', '.join(map(str, K_VALUES))}."
        ),
        "",
        "| | users/s |",
        "|---|---:|",
        f"| bare `torch.matmul` + `torch.topk` | {bare_rate:,.0f} |",
        f"| `full_ranking` (mask + top-K + all metrics + MRR) | {full_rate:,.0f} |",
        f"| **ratio** (target >= 0.5) | **{full_rate / bare_rate:.2f}** |",
        "",
        (
            f"Peak RSS of an evaluation process ({args.memory_users:,} users, fresh subprocess, includes the ~700 MB "
            "of Python + torch + scipy imports); the score chunk is capped at 64M cells whatever the catalogue size:"
        ),
        "",
        "| catalogue items | peak RSS MB |",
        "|---:|---:|",
        *[f"| {int(k):,} | {v:,.0f} |" for k, v in memory.items()],
        "",
        f"Machine: {result['machine']}",
        "",
    ]
    atomic_write_text(args.out / f"{args.name}.md", "\n".join(lines))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
