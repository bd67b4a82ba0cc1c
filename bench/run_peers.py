"""Peer benchmark entry point: split files once per seed, tune every system on validation, test once, report.

    OMP_NUM_THREADS=1 .venv/bin/python bench/run_peers.py      # everything: all protocols, variants, seed 0
    .venv/bin/python bench/run_peers.py --protocols random --systems EASE BPR --seeds 0 1 2
    .venv/bin/python bench/run_peers.py --only-merge            # rebuild the tables from the stored results

Resumable: each (protocol, text variant, seed, system) result is stored as its own JSON file the
moment it finishes (bench/peers/runs.py); a rerun skips those already stored (`--redo` recomputes
the named --systems) and the tables are always rebuilt from every stored result; within a system, each
grid config's validation is kept as it finishes (`<system>.partial`), so a slow grid resumes midway.
A system that reads no item text (`BenchSystem.reads_text`) scores a split the same under every text
variant, so its stored result of another variant on byte-identical split files (context
`split_sha256`) is copied instead of rerun, marked `reused_from` (unless --redo).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `bench.peers` and `mmrec` importable when run as a script

from bench.peers.data import (
    CATALOGUE,
    TEXT_VARIANTS,
    available_variants,
    catalogue_content,
    dataset_name,
    load_dataset,
)
from bench.peers.layout import Layout
from bench.peers.protocols import PROTOCOLS, load_split, write_protocol
from bench.peers.report import machine_info, write_reports
from bench.peers.runs import RunKey, is_done, load_runs, reusable_run, save_run, split_digest
from bench.peers.systems import BenchSystem, Context, all_systems
from mmrec.errors import ConfigError, DataError

DEFAULT_DATA = REPO.parent / "shared" / "data" / "movielens-small-posters"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", "--data_dir", type=Path, default=DEFAULT_DATA,
                        help="MovieLens folder: ml-latest (ratings.csv, movies.csv[, tags.csv]) or ml-100k "
                             "(u.data, u.item), an optional posters/ subfolder holding {movieId}.jpg; or a folder "
                             "in mmrec's input format (item_info.csv, interactions.csv, images/, optional mmrec.yaml)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work",
                        help="where split files, imports and cached features go (never committed)")
    parser.add_argument("--results-dir", "--results_dir", type=Path, default=REPO / "bench" / "results",
                        help="tables go to RESULTS/<dataset>/peers_<protocol>.*, single results to RESULTS/<dataset>/runs/")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--systems", nargs="+", default=None, help="subset of system names (default: all)")
    parser.add_argument("--text-variants", "--text-variant", nargs="+", choices=TEXT_VARIANTS, default=None,
                        help="item text with tags, or 'title. genres' only (default: every variant the data has)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="split (and model) seeds")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                        help="threads per library (torch, implicit, BLAS); 1 avoids spin-waits on a busy machine")
    parser.add_argument("--redo", action="store_true", help="recompute the named --systems even if stored")
    parser.add_argument("--only-merge", action="store_true", help="run nothing: rebuild the tables from stored results")
    return parser.parse_args(argv)


def pending(runs_dir: Path, systems: list[BenchSystem], protocol: str, variant: str, seed: int,
            redo: bool, digest: str | None = None) -> tuple[list[BenchSystem], list[str], list[str], list[str]]:
    """(systems still to run for this key, names skipped because their result is stored on split files with
    sha256 `digest`, names whose stored result was made on other split files (run again), names that do not
    run this protocol)."""
    todo, skipped, stale, not_run = [], [], [], []
    for system in systems:
        if (protocol == "coldstart" and not system.cold_capable) or (
                system.protocols is not None and protocol not in system.protocols):
            not_run.append(system.name)
            continue
        key = RunKey(protocol, variant, seed, system.name)
        if not redo and is_done(runs_dir, key, digest):
            skipped.append(system.name)
        else:
            if not redo and is_done(runs_dir, key):
                stale.append(system.name)
            todo.append(system)
    return todo, skipped, stale, not_run


def main(argv: list[str] | None = None) -> int:
    """Run and report; a user error (a wrong --data-dir, an unknown system, a damaged stored result) is one
    message and exit 2, as in the mmrec CLI; Ctrl-C or SIGTERM says what was kept, rebuilds the tables from it
    and exits 130 / 143."""
    from mmrec.cli.app import Terminated, terminate_as_interrupt
    from mmrec.errors import MmrecError

    args = parse_args(argv)
    terminate_as_interrupt()
    layout = None
    try:
        if not args.data_dir.is_dir():
            raise DataError(f"--data-dir {args.data_dir} is not a folder",
                            hint="pass a MovieLens folder: ml-latest (ratings.csv, movies.csv) or ml-100k (u.data, "
                                 "u.item), or a folder in mmrec's input format (item_info.csv, interactions.csv)")
        layout = Layout(args.workdir.resolve(), args.results_dir.resolve(), dataset_name(args.data_dir))
        if not args.only_merge:
            run_matrix(args, layout, _log)
        return merge(layout, _log)
    except MmrecError as error:
        print(f"error: {error.message}" + (f"\nhint: {error.hint}" if error.hint else ""), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as stop:
        code = stop.exit_code if isinstance(stop, Terminated) else 130
        if layout is None:
            return code
        _log(f"interrupted: every result finished so far is stored under {layout.runs_dir} (a system's grid keeps "
             "each validated config in <system>.partial); run the same command again to go on, finished systems "
             "are skipped. The tables are rebuilt from what is stored:")
        try:
            merge(layout, _log)
        except (MmrecError, KeyboardInterrupt):
            pass
        return code


def _log(message: str) -> None:
    print(message, flush=True)


def merge(layout: Layout, log) -> int:
    """The tables from every stored result of these split files (`current_runs`)."""
    runs, left_out = current_runs(layout, load_runs(layout.runs_dir), log)
    if not runs and not left_out:
        log(f"no stored results under {layout.runs_dir}")
        return 0
    for path in write_reports(layout.report_dir, runs, left_out):
        log(f"wrote {path}")
    return 0


def current_runs(layout: Layout, runs: list, log) -> tuple[list, list]:
    """(the stored results the tables are made of: those made on the split files in the work dir, or that cannot
    be checked (no split folder there: e.g. the committed results in a fresh clone); those left out: of other
    files (another dataset under this name, another split), with a line saying so; the tables name them too)."""
    digests: dict[Path, str] = {}
    kept, left_out = [], []
    for run in runs:
        folder = layout.split_root(run.key.variant, run.key.seed) / run.key.protocol
        if not (folder / "train.csv").is_file():
            kept.append(run)
            continue
        if folder not in digests:  # an input folder's results count for its item content too (`catalogue_content`)
            processed = layout.variant_dir(run.key.variant) / "import" / "processed"
            content = (catalogue_content(processed) if run.key.variant == CATALOGUE and processed.is_dir() else None)
            digests[folder] = split_digest(folder, content)
        (kept if run.context.get("split_sha256") == digests[folder] else left_out).append(run)
    if left_out:
        shown = ", ".join(f"{r.key.protocol}/{r.key.variant}/seed {r.key.seed}/{r.key.system}" for r in left_out[:4])
        log(f"left out of the tables: {len(left_out)} stored result(s) made on other split files than those under "
            f"{layout.workdir / layout.dataset} (e.g. {shown}); rerun them with these files")
    return kept, left_out


def run_matrix(args: argparse.Namespace, layout: Layout, log) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from threadpoolctl import threadpool_limits

    from bench.peers.evaluation import check_against_cornac
    from bench.peers.features import image_features, text_features
    from bench.peers.tuning import tune_and_test

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    available = all_systems()
    unknown = set(args.systems or []) - {s.name for s in available}
    if unknown:
        from bench.peers.systems.cornac_deep import unavailable

        cannot = {name: why for name, why in unavailable().items() if name in unknown}
        said = [f"unknown --systems {sorted(unknown - set(cannot))}"] if unknown - set(cannot) else []
        said += [f"{name} cannot run here ({why})" for name, why in cannot.items()]
        raise ConfigError("; ".join(said), hint=f"available: {', '.join(s.name for s in available)}")
    if not any(s.library == "mmrec" for s in available):
        log("mmrec systems unavailable (mmrec.pipeline.train / mmrec.recommenders.multimodal not importable)")
    chosen = [s for s in available if args.systems is None or s.name in args.systems]
    from bench.peers.systems.cornac_deep import unavailable

    for name, reason in unavailable().items():
        log(f"peer {name} not run: {reason}")
    variants = args.text_variants or available_variants(args.data_dir)
    for variant in variants:
        dataset = load_dataset(args.data_dir, variant, layout.variant_dir(variant))
        log(f"data: {dataset.describe()}")
        features = None
        for seed in args.seeds:
            split_root = layout.split_root(variant, seed)
            protocols = [p for p in args.protocols if dataset.timestamps or p != "temporal"]
            if len(protocols) < len(args.protocols):
                log(f"[temporal/{variant}] not run: the interactions have no timestamp column")
            folders = {p: write_protocol(dataset.positives, p, split_root, seed=seed) for p in protocols}
            check = None
            for protocol, folder in folders.items():
                digest = split_digest(folder, dataset.content)
                todo, skipped, stale, not_run = pending(layout.runs_dir, chosen, protocol, variant, seed, args.redo,
                                                        digest)
                where = f"[{protocol}/{variant}/seed {seed}]"
                if skipped:
                    log(f"{where} stored, skipped: {', '.join(skipped)}")
                if stale:
                    log(f"{where} stored results made on other split files or item content (another dataset "
                        f"under this name, another split, edited items), run again: {', '.join(stale)}")
                if not_run and args.systems:
                    log(f"{where} not run on this protocol: {', '.join(not_run)} ("
                        + ("coldstart needs systems that score items without interactions" if protocol == "coldstart"
                           else "each runs only on the protocols it is made for") + ")")
                if not args.redo:
                    todo = [s for s in todo if not _reuse(layout, s, RunKey(protocol, variant, seed, s.name), digest,
                                                          dataset.describe(), log)]
                if not todo:
                    continue
                split = load_split(folder)
                if features is None:  # the catalogue (5-core items) is the same for every seed and protocol
                    image = image_features(dataset.posters, split.items, layout.features_dir)
                    text = text_features(dataset.item_texts(split.items), layout.features_dir)
                    features = (image, text)
                    log(f"features: image {image.matrix.shape} ({image.n_missing} items without poster -> zeros), "
                        f"text {text.matrix.shape} ({text.n_missing} empty)")
                if check is None:  # always on `random`: under `coldstart` Cornac drops every cold test item
                    random_folder = folders.get("random") or write_protocol(dataset.positives, "random", split_root, seed)
                    check = check_against_cornac(load_split(random_folder), seed=seed)
                    log(f"metric check vs Cornac ranking_eval (BPR): max |diff| = {check['max_abs_diff']:.2e}")
                ctx = Context(seed=seed, image=features[0].matrix, text=features[1].matrix, threads=args.threads,
                              data_dir=dataset.source, workdir=layout.variant_dir(variant), log=log,
                              posters=dataset.posters, processed=dataset.processed, numeric=dataset.numeric,
                              timestamps=dataset.timestamps, content=dataset.content)
                context = {
                    "data": dataset.describe(),
                    "split": f"{protocol}, seed {seed}; train/val/test interactions "
                             + "/".join(str(m.nnz) for m in split.matrices.values())
                             + (f"; {len(split.cold_items)} cold items ranked among themselves"
                                if split.cold_items is not None else "; full ranking over all items, train+val masked"),
                    "machine": machine_info(), "metric_check_vs_cornac_max_abs_diff": check["max_abs_diff"],
                    "image_items_without_poster": features[0].n_missing, "generated_unix": int(time.time()),
                    "split_sha256": digest,
                }
                log(f"[{protocol}/{variant}/seed {seed}] {split.n_users} users x {split.n_items} items; "
                    f"train/val/test = {', '.join(str(m.nnz) for m in split.matrices.values())}")
                for system in todo:
                    key = RunKey(protocol, variant, seed, system.name)
                    # Each config's validation is kept beside the result as it finishes (<system>.partial),
                    # so a slow grid killed midway resumes with the configs not yet done.
                    result = tune_and_test(system, split, ctx, log, partial=key.path(layout.runs_dir).with_suffix(
                        ".partial"), split_sha256=digest)
                    save_run(layout.runs_dir, key, result, context)
                    log(f"[{protocol}/{variant}/seed {seed}] {system.name}: test ndcg@10={result.test['ndcg@10']:.4f} "
                        f"recall@20={result.test['recall@20']:.4f} fit {result.fit_s:.1f}s (stored)")


def _reuse(layout: Layout, system: BenchSystem, key: RunKey, digest: str, data: str, log) -> bool:
    """Store another text variant's result of a system that reads no item text, on the same split files;
    True when there was one."""
    stored = None if system.reads_text else reusable_run(layout.runs_dir, key, TEXT_VARIANTS, digest)
    if stored is None:
        return False
    save_run(layout.runs_dir, key, stored.result,
             {**stored.context, "data": data, "reused_from": stored.key.variant, "reused_unix": int(time.time())})
    log(f"[{key.protocol}/{key.variant}/seed {key.seed}] {system.name}: the `{stored.key.variant}` variant's result "
        "reused (same split files, and the system reads no item text)")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
