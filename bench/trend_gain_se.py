"""Whether popularity (model.trend_blend: recent, or of all time) is blended on the benchmark's data (validation only).

For each given key, `mmrec train` runs with the config mmrec-multimodal selected in the stored
`bench/run_peers.py` run (as `bench/fit_time.py` refits it, in a scratch folder) and today's defaults, which
try popularity (every half-life in days, 0 = all time, x weight) on top of the chosen blend. Reported: the best
(half-life, weight), its per-user validation gain over none in paired standard errors (`mmrec train` keeps
it only at model.sequence_min_se, 1, or more), whether it was kept, and the validation objective (the same as
`fit_time.md`'s refit of that config when nothing is kept). test.csv is never read.

    OMP_NUM_THREADS=1 .venv/bin/python bench/trend_gain_se.py tags:0:random tags:0:temporal ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.fit_time import DEFAULT_DATA, _stored_config  # noqa: E402
from bench.peers.data import dataset_name, load_dataset  # noqa: E402
from bench.peers.features import image_features, text_features  # noqa: E402
from bench.peers.layout import Layout  # noqa: E402
from bench.peers.protocols import load_split, write_protocol  # noqa: E402
from bench.peers.report import machine_info  # noqa: E402
from bench.peers.systems import Context  # noqa: E402
from mmrec.fileio import atomic_write_json, atomic_write_text, read_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="*", help="variant:seed:protocol")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / ".work")
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--only-report", action="store_true", help="write the table from the stored JSON only")
    args = parser.parse_args(argv)
    layout = Layout(args.workdir, args.results_dir, dataset_name(args.data_dir))
    out = layout.report_dir / "trend_gain_se"
    if args.only_report:
        stored = read_json(out.with_suffix(".json"))
        return write_report(out, stored["machine"], stored["rows"])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from bench.peers.systems.mmrec import fit_multimodal, prepare_inputs

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    machine = {**machine_info(), "threads": threads}
    rows = []
    for key in args.keys:
        variant, seed, protocol = key.split(":")
        seed = int(seed)
        config = _stored_config(layout.runs_dir, variant, seed, protocol, "mmrec-multimodal")
        dataset = load_dataset(args.data_dir, variant, layout.variant_dir(variant))
        split = load_split(write_protocol(dataset.positives, protocol, layout.split_root(variant, seed), seed=seed))
        ctx = Context(seed=seed, image=image_features(dataset.posters, split.items, layout.features_dir).matrix,
                      text=text_features(dataset.item_texts(split.items), layout.features_dir).matrix,
                      threads=threads, data_dir=dataset.source, workdir=layout.variant_dir(variant),
                      log=lambda m: None, posters=dataset.posters)
        prepare_inputs(split, ctx)
        with tempfile.TemporaryDirectory(prefix="trend_") as scratch:
            scorer = fit_multimodal(split, config, ctx, checkpoints=Path(scratch))
            sidecar = next(Path(scratch).rglob("best_model.json"))
            chosen = read_json(sidecar)["item_item"]
        grid = chosen.get("trend_grid", [])
        best = max(grid, key=lambda row: row["ndcg@10"]) if grid else None
        row = {"key": f"{protocol} / {variant} / seed {seed}", "config": config,
               "best": None if best is None else {"half-life days": best["trend_halflife_days"],
                                                 "weight": best["trend_blend"]},
               "gain_se": chosen.get("trend_gain_se"), "kept": chosen.get("trend_blend", 0.0) > 0,
               "val_objective": scorer.val_objective,
               "grid": grid}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("grid", "config")}), flush=True)
        atomic_write_json(out.with_suffix(".json"), {"machine": machine, "rows": rows})
    return write_report(out, machine, rows)


def write_report(out: Path, machine: dict, rows: list[dict]) -> int:
    lines = ["# Popularity on top of the blend, on the benchmark's splits (validation only)", "",
             f"`bench/trend_gain_se.py`; machine: {machine['cpu']}, {machine['threads']} thread(s). `mmrec train` with "
             "each key's selected mmrec-multimodal config and the defaults that try popularity, recent or of all time "
             "(model.trend_blend), on top of the chosen blend. Gain: the best (half-life, weight)'s mean per-user validation NDCG@10 gain "
             "over none, in paired standard errors; kept at model.sequence_min_se (1) or more.", "",
             "| key | best (half-life days, weight) | gain in paired SE | kept | validation objective |",
             "|---|---|---|---|---|"]
    for row in rows:
        best = row["best"]
        se = row["gain_se"]
        shown = "none beats the blend" if best is None or se is None else f"{best['half-life days']:g}, {best['weight']:g}"
        lines.append(f"| {row['key']} | {shown} | {'-' if se is None else f'{se:+.2f}'} | "
                     f"{'yes' if row['kept'] else 'no'} | {row['val_objective']:.6f} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
