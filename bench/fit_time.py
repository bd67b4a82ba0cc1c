"""Fit time of the selected configs, side by side: mmrec's (tuned trial, fixed-grid config) against VBPR's.

    OMP_NUM_THREADS=1 .venv/bin/python bench/fit_time.py [--protocols random] [--text-variants tags no-tags]
        [--seeds 0 1 2] [--repeats 1] [--rerun] [--only-merge]

The peer benchmark times each system when it runs, and its runs happen hours apart on a shared
machine, so two stored fit times compare load as much as code (VBPR's stored fit of the same config
on the same interactions varies 42-62 s between keys). Here both selected configs are refitted in
one process, one after the other, on the same split files and thread count: for each stored
(protocol, variant, seed) key, VBPR's best config (`system.fit`, as in the benchmark), then the settings
`mmrec-tuned` selected (its trial's, as best_config.yaml writes them: training.epochs cut to the trial's best
epoch; each key records the refit's validation objective beside the stored trial's, which also differ by
what changed in mmrec since the study ran) and those `mmrec-multimodal` selected (its fixed grid's config), each
trained with `mmrec train` (run_train + the checkpoint's scorer, as `mmrec-multimodal` fits a config).
Nothing is tuned or tested here. Each key's times are kept as it finishes
(bench/results/<dataset>/fit_time_runs/<protocol>-<variant>-seed<S>.json, with the machine and its load),
keys already there are skipped unless --rerun, and bench/results/<dataset>/fit_time.{json,md} are
written from every stored key, so processes run side by side (e.g. one per protocol) or a later session
add to the same tables; --only-merge only writes the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.peers.data import TEXT_VARIANTS, dataset_name, load_dataset  # noqa: E402
from bench.peers.features import image_features, text_features  # noqa: E402
from bench.peers.layout import Layout  # noqa: E402
from bench.peers.protocols import PROTOCOLS, load_split, write_protocol  # noqa: E402
from bench.peers.report import machine_info  # noqa: E402
from bench.peers.systems import Context, all_systems  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "movielens-small-posters"
MMREC = ("mmrec-tuned", "mmrec-multimodal")  # the mmrec systems whose selected configs are timed


def _stored_config(runs_dir: Path, variant: str, seed: int, protocol: str, system: str) -> dict | None:
    path = runs_dir / variant / f"seed{seed}" / protocol / f"{system}.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())["result"]
    config = dict(result["best_config"])
    config.pop("trial", None)
    selected = [t for t in result.get("trials", []) if t.get("selected")]
    if system == "mmrec-tuned" and selected:  # runs stored before best_config.yaml cut the epochs: the same rule
        from mmrec.pipeline.tune import selected_values
        from mmrec.pipeline.tune_study import TrialSummary
        from mmrec.settings import Settings

        trial = TrialSummary(selected[0]["number"], "COMPLETE", selected[0]["value"], config, None,
                             {"best_epoch": selected[0].get("best_epoch")})
        config = selected_values(Settings(), trial)
    return config


def _stored_objective(runs_dir: Path, variant: str, seed: int, protocol: str, system: str) -> float | None:
    """The selected trial's validation objective (mmrec-tuned; None for systems without trials)."""
    trials = json.loads((runs_dir / variant / f"seed{seed}" / protocol / f"{system}.json").read_text())["result"].get(
        "trials") or []
    return next((t["value"] for t in trials if t.get("selected")), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work")
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=["random"])
    parser.add_argument("--text-variants", nargs="+", choices=TEXT_VARIANTS, default=list(TEXT_VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="fits of each config (the table reports the mean)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--rerun", action="store_true", help="time keys again even when stored")
    parser.add_argument("--only-merge", action="store_true", help="write the tables from the stored keys only")
    args = parser.parse_args(argv)
    layout = Layout(args.workdir, args.results_dir, dataset_name(args.data_dir))
    stored = layout.report_dir / "fit_time_runs"
    if args.only_merge:
        return write_tables(stored, layout.report_dir / "fit_time")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from threadpoolctl import threadpool_limits

    from bench.peers.systems.mmrec import fit_multimodal, prepare_inputs

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    vbpr = next(s for s in all_systems() if s.name == "VBPR")
    for variant in args.text_variants:
        dataset = load_dataset(args.data_dir, variant, layout.variant_dir(variant))
        for seed in args.seeds:
            for protocol in args.protocols:
                key = stored / f"{protocol}-{variant}-seed{seed}.json"
                if key.is_file() and not args.rerun:
                    print(f"[{protocol}/{variant}/seed {seed}] stored: {key}", flush=True)
                    continue
                configs = {name: _stored_config(layout.runs_dir, variant, seed, protocol, name)
                           for name in ("VBPR", *MMREC)}
                if None in configs.values():
                    print(f"[{protocol}/{variant}/seed {seed}] skipped: no stored run of "
                          f"{', '.join(n for n, c in configs.items() if c is None)}", flush=True)
                    continue
                split = load_split(write_protocol(dataset.positives, protocol, layout.split_root(variant, seed), seed=seed))
                image = image_features(dataset.posters, split.items, layout.features_dir)
                text = text_features(dataset.item_texts(split.items), layout.features_dir)
                ctx = Context(seed=seed, image=image.matrix, text=text.matrix, threads=args.threads,
                              data_dir=dataset.source, workdir=layout.variant_dir(variant), log=lambda m: None,
                              posters=dataset.posters)
                prepare_inputs(split, ctx)  # mmrec's import, preprocess and features: once per work dir, not timed
                machine = {**machine_info(), "threads": args.threads, "load_average_before": list(os.getloadavg())}
                seconds: dict[str, list[float]] = {name: [] for name in configs}
                objective: dict[str, list[float]] = {name: [] for name in MMREC}
                for _ in range(args.repeats):
                    for name in configs:
                        # Each mmrec fit writes to a fresh folder: no item-item fit of an earlier run is
                        # reused, and the benchmark's stored checkpoints are left alone.
                        with tempfile.TemporaryDirectory(prefix="fit_time_") as scratch:
                            start = time.perf_counter()
                            if name == "VBPR":
                                vbpr.fit(split, configs[name], ctx)
                            else:
                                scorer = fit_multimodal(split, configs[name], ctx, checkpoints=Path(scratch))
                                objective[name].append(scorer.val_objective)
                            seconds[name].append(time.perf_counter() - start)
                row = {"protocol": protocol, "variant": variant, "seed": seed, "configs": configs,
                       "fit_s": {name: [round(s, 2) for s in values] for name, values in seconds.items()},
                       # validation objective of each refit beside the stored run's (the trial's value for
                       # mmrec-tuned): equal when the refit is the selected model
                       "val_objective": {name: {"refit": values, "stored": _stored_objective(
                           layout.runs_dir, variant, seed, protocol, name)} for name, values in objective.items()},
                       "machine": machine, "load_average_after": list(os.getloadavg())}
                atomic_write_json(key, row)
                print({k: v for k, v in row.items() if k not in ("configs", "machine")}, flush=True)
    return write_tables(stored, layout.report_dir / "fit_time")


def write_tables(stored: Path, out: Path) -> int:
    """fit_time.{json,md} from every key stored in `stored` (random before temporal, then variant, seed)."""
    rows = [json.loads(path.read_text()) for path in sorted(stored.glob("*.json"))]
    if not rows:
        print(f"no stored keys in {stored}", flush=True)
        return 1
    order = {name: i for i, name in enumerate(PROTOCOLS)}
    rows.sort(key=lambda r: (order.get(r["protocol"], len(order)), TEXT_VARIANTS.index(r["variant"]), r["seed"]))
    atomic_write_json(out.with_suffix(".json"), {"runs": rows})

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    machines = sorted({f"{r['machine']['cpu']}, {r['machine']['logical_cores']} cores, {r['machine']['threads']} "
                       f"thread(s)" for r in rows})
    loads = [r["machine"]["load_average_before"][0] for r in rows]
    lines = ["# Fit time of the selected configs, side by side (mmrec's selected settings vs VBPR's best config)", "",
             "The fits of a key one after the other in one process on the same split files (processes may run "
             f"side by side, one per set of keys); machine: {'; '.join(machines)}; 1-minute load average when a "
             f"key (or its process) started {min(loads):.1f}-{max(loads):.1f}. `bench/fit_time.py`. mmrec-tuned: "
             "the trial `mmrec tune` selected, trained as its best_config.yaml says (training.epochs = the trial's best "
             "epoch); mmrec-multimodal: the fixed grid's validation choice.", "",
             "| protocol | variant | seed | VBPR fit s | " + " | ".join(f"{n} fit s | {n} / VBPR" for n in MMREC) + " |",
             "|---|---|---|---|" + "---|---|" * len(MMREC)]
    for row in rows:
        v = mean(row["fit_s"]["VBPR"])
        cells = [f"{mean(row['fit_s'][n]):.1f} | {mean(row['fit_s'][n]) / v:.2f}" for n in MMREC]
        lines.append(f"| {row['protocol']} | {row['variant']} | {row['seed']} | {v:.1f} | " + " | ".join(cells) + " |")
    for protocol in dict.fromkeys(row["protocol"] for row in rows):
        keys = [row for row in rows if row["protocol"] == protocol]
        v = mean([mean(r["fit_s"]["VBPR"]) for r in keys])
        means = {n: mean([mean(r["fit_s"][n]) for r in keys]) for n in MMREC}
        lines += ["", f"`{protocol}`, mean over {len(keys)} keys: VBPR {v:.1f} s; "
                  + "; ".join(f"{n} {m:.1f} s ({m / v:.2f}x)" for n, m in means.items()) + "."]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
