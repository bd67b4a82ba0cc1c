"""The item-item lambda search's cost: the grid's dense fits one by one, as before, against one shared Gram matrix.

    OMP_NUM_THREADS=1 .venv/bin/python bench/item_item_l2_path.py [--sizes 2000 5000 10000] [--threads 1]

`mmrec train` validates the dense item-item model at model.item_item_l2 x L2_GRID (4 lambdas). B depends on
lambda only through (G + lambda I)^-1, where G = X^T X + alpha sum_m F_m F_m^T, so
`ItemItemModel.fit_l2_path` builds G once; each lambda then factorizes and inverts in one float64 buffer
(`dense_weights`). Side by side in one process, on the synthetic data of `bench/item_item_bench.py`
(power-law interactions, random 1280-d + 384-d content), for each size: (a) the previous dense fit (Gram
per fit, factor and inverse in new buffers; reproduced below as it was), once per lambda; (b) today's
`ItemItemModel.fit` once per lambda (in-place solve); (c) `fit_l2_path` over the 4 lambdas. Seconds, peak
RSS above the start (each variant in its own process), and the largest difference of B's first 256 rows
to (a)'s. Writes bench/results/item_item_l2_path.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bench.item_item_bench import _data  # noqa: E402
from bench.peers.report import machine_info  # noqa: E402
from bench.peers.tuning import PeakRss  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from mmrec.models.item_item import L2_GRID, ItemItemModel, _content_matrices  # noqa: E402

L2 = 200.0
CONTENT_WEIGHT = 20.0


def _previous_fit(matrix, content, l2: float) -> torch.Tensor:
    """The dense fit before the shared Gram matrix (commit c2ed635), for the side-by-side comparison."""
    matrices = _content_matrices(content, CONTENT_WEIGHT, "cpu", torch.float64)
    binary = matrix.copy()
    binary.data[:] = 1.0
    gram = torch.as_tensor((binary.T @ binary).toarray(), dtype=torch.float64)
    for f in matrices:
        gram.addmm_(f, f.T, alpha=CONTENT_WEIGHT)
    gram.diagonal().add_(l2)
    factor, _ = torch.linalg.cholesky_ex(gram)
    del gram
    precision = torch.cholesky_inverse(factor)
    del factor
    weights = precision / (-precision.diagonal()).unsqueeze(0)
    weights.diagonal().zero_()
    return weights.to(torch.float32)


def _variant(name: str, n_items: int, threads: int) -> dict:
    """One variant on fresh data in this (fresh) process: seconds, peak RSS above the start, and the first
    256 rows of the last lambda's B (to compare the variants)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # _data's content features come from torch's generator: the same in every process
    matrix, content = _data(n_items)
    l2s = [L2 * factor for factor in L2_GRID]
    gc.collect()
    with PeakRss() as memory:
        start = time.perf_counter()
        if name == "previous":
            last = [_previous_fit(matrix, content, l2) for l2 in l2s][-1]
        elif name == "separate":
            last = [ItemItemModel.fit(matrix, content, l2, CONTENT_WEIGHT).weights for l2 in l2s][-1]
        else:
            last = [m.weights for m in ItemItemModel.fit_l2_path(matrix, content, l2s, CONTENT_WEIGHT)][-1]
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "peak_rss_mib_above_start": round(memory.peak_mib),
            "rows": last[:256].numpy(), "users": matrix.shape[0], "interactions": int(matrix.nnz)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[2000, 5000, 10000])
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    l2s = [L2 * factor for factor in L2_GRID]
    machine = {**machine_info(), "threads": args.threads, "load_average_before": list(os.getloadavg())}
    rows = []
    # Each variant runs in its own process: memory one variant freed would otherwise make the next look smaller.
    context = multiprocessing.get_context("spawn")
    for n_items in args.sizes:
        row, reference = {"items": n_items, "lambdas": l2s}, None
        for name in ("previous", "separate", "path"):
            with context.Pool(1) as pool:
                result = pool.apply(_variant, (name, n_items, args.threads))
            rows_b = result.pop("rows")
            reference = rows_b if name == "previous" else reference
            row.update(users=result.pop("users"), interactions=result.pop("interactions"))
            row[name] = {**result, "max_abs_diff_to_previous_first_256_rows": float(abs(rows_b - reference).max())}
        rows.append(row)
        print(row, flush=True)
    out = args.out / "item_item_l2_path"
    atomic_write_json(out.with_suffix(".json"), {"machine": machine, "runs": rows})
    lines = ["# The item-item lambda search: 4 dense fits one by one vs one shared Gram matrix", "",
             f"`bench/item_item_l2_path.py`, one process, {args.threads} thread(s); machine: {machine['cpu']}, "
             f"{machine['logical_cores']} cores, load average before "
             f"{', '.join(f'{v:.1f}' for v in machine['load_average_before'])}. Lambdas {', '.join(f'{v:g}' for v in l2s)}, "
             f"content weight {CONTENT_WEIGHT:g}, synthetic data of `bench/item_item_bench.py`.", "",
             "| items | previous: 4 fits, s / peak MiB | `fit` x 4 (in-place solve), s / peak MiB | `fit_l2_path`, s / peak MiB "
             "| path / previous time | max abs diff of B (first 256 rows) |", "|---|---|---|---|---|---|"]
    for row in rows:
        a, b, c = row["previous"], row["separate"], row["path"]
        lines.append(f"| {row['items']:,} | {a['seconds']:.1f} / {a['peak_rss_mib_above_start']:,} | {b['seconds']:.1f} / "
                     f"{b['peak_rss_mib_above_start']:,} | {c['seconds']:.1f} / {c['peak_rss_mib_above_start']:,} | "
                     f"{c['seconds'] / a['seconds']:.2f} | {max(b['max_abs_diff_to_previous_first_256_rows'], c['max_abs_diff_to_previous_first_256_rows']):.1e} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
