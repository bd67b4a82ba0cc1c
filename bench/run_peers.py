"""Peer benchmark entry point: split files once, tune every system on validation, test once, report.

    OMP_NUM_THREADS=2 .venv/bin/python bench/run_peers.py            # everything, all protocols
    .venv/bin/python bench/run_peers.py --protocols random --systems EASE BPR
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `bench.peers` and `mmrec` importable when run as a script

from bench.peers.data import load_positives
from bench.peers.evaluation import check_against_cornac
from bench.peers.features import image_features, text_features
from bench.peers.protocols import PROTOCOLS, load_split, write_protocol
from bench.peers.report import machine_info, merge_previous, write_protocol_report
from bench.peers.systems import Context, all_systems
from bench.peers.tuning import tune_and_test

DEFAULT_DATA = REPO.parent / "shared" / "data" / "movielens-small-posters"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", "--data_dir", type=Path, default=DEFAULT_DATA,
                        help="movielens-small-posters folder (ratings.csv, movies.csv, tags.csv, posters/)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work",
                        help="where split files and cached features go (never committed)")
    parser.add_argument("--results-dir", "--results_dir", type=Path, default=REPO / "bench" / "results",
                        help="where peers_<protocol>.{json,md,png} are written")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS),
                        help="protocols to run")
    parser.add_argument("--systems", nargs="+", default=None, help="subset of system names (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the splits and every model")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                        help="threads per library (torch, implicit, BLAS); 1 avoids spin-waits on a busy machine")
    parser.add_argument("--merge", action="store_true",
                        help="keep systems already in peers_<protocol>.json that this run does not rerun")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)

    def log(message: str) -> None:
        print(message, flush=True)

    positives = load_positives(args.data_dir)
    log(f"data: {len(positives)} positives, {positives.user_id.nunique()} users, "
        f"{positives.item_id.nunique()} items after rating>=4 and 5-core")
    split_root = args.workdir / "splits"
    folders = {p: write_protocol(positives, p, split_root, seed=args.seed) for p in args.protocols}
    first = load_split(folders[args.protocols[0]])
    image = image_features(args.data_dir, first.items, args.workdir)
    text = text_features(args.data_dir, first.items, args.workdir)
    log(f"features: image {image.matrix.shape} ({image.n_missing} items without poster -> zeros), "
        f"text {text.matrix.shape}")
    ctx = Context(seed=args.seed, image=image.matrix, text=text.matrix, threads=args.threads,
                  data_dir=args.data_dir, workdir=args.workdir, log=log)

    # Always on `random`: under `coldstart` Cornac drops every (unknown, cold) test item.
    random_folder = folders.get("random") or write_protocol(positives, "random", split_root, seed=args.seed)
    check = check_against_cornac(load_split(random_folder), seed=args.seed)
    log(f"metric check vs Cornac ranking_eval (BPR): max |diff| = {check['max_abs_diff']:.2e}")

    available = all_systems()
    unknown = set(args.systems or []) - {s.name for s in available}
    if unknown:
        raise SystemExit(f"unknown --systems {sorted(unknown)}; available: {[s.name for s in available]}")
    if not any(s.library == "mmrec" for s in available):
        log("mmrec systems unavailable (mmrec.pipeline.train / mmrec.recommenders.multimodal not importable)")
    chosen = [s for s in available if args.systems is None or s.name in args.systems]
    for protocol, folder in folders.items():
        split = load_split(folder)
        systems = [s for s in chosen if protocol != "coldstart" or s.cold_capable]
        log(f"[{protocol}] {split.n_users} users x {split.n_items} items; "
            f"train/val/test = {', '.join(str(m.nnz) for m in split.matrices.values())}")
        results = []
        for system in systems:
            results.append(tune_and_test(system, split, ctx, log))
            r = results[-1]
            log(f"[{protocol}] {system.name}: test ndcg@10={r.test['ndcg@10']:.4f} recall@20={r.test['recall@20']:.4f}"
                f" fit {r.fit_s:.1f}s")
        header = {
            "data": f"MovieLens ml-latest-small, rating>=4 positives, 5-core: {len(positives)} positives, "
                    f"{split.n_users} users, {split.n_items} items",
            "split": f"{protocol}, seed {args.seed}; train/val/test interactions "
                     + "/".join(str(m.nnz) for m in split.matrices.values())
                     + (f"; {len(split.cold_items)} cold items ranked among themselves" if split.cold_items is not None
                        else "; full ranking over all items, train+val masked"),
            "machine": machine_info(),
            "metric_check_vs_cornac_max_abs_diff": check["max_abs_diff"],
        }
        extra = {"metric_check": check, "image_items_without_poster": image.n_missing,
                 "generated_unix": int(time.time())}
        if args.merge:
            results = merge_previous(args.results_dir, protocol, results)
        paths = write_protocol_report(args.results_dir, protocol, results, header, extra)
        log(f"[{protocol}] wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
