"""How far the best transition blend rises above validation noise, per key (validation only).

For the selected mmrec-multimodal config of each given key (its stored `bench/run_peers.py` checkpoint), the
blend is rebuilt as the run chose it (lambda, item-item weight and half-life, content weight fixed), then
`mmrec.training.blend` tries every transition (half-life, weight) on top with model.sequence_min_se 0 and
reports the best pair's per-user gain over no transitions in paired standard errors (`sequence_gain_se`),
the number model.sequence_min_se compares. test.csv is never read.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sequence_gain_se.py tags:0:random tags:0:temporal ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.peers.stored import WORK, load_stored_run, probe_keys  # noqa: E402
from mmrec.fileio import atomic_write_text  # noqa: E402

RUNS = ROOT / "bench" / "results" / "movielens-small-posters" / "runs"


def selected_folder(variant: str, seed: int, protocol: str) -> str:
    """The checkpoint folder of the config mmrec-multimodal selected on validation for this key."""
    chosen = json.loads((RUNS / variant / f"seed{seed}" / protocol / "mmrec-multimodal.json").read_text())
    config = {key.split(".", 1)[1]: float(value) for key, value in chosen["result"]["best_config"].items()}
    for folder in sorted((WORK / variant / "mmrec" / "checkpoints" / f"seed{seed}" / protocol).iterdir()):
        values = {}
        for name in config:  # folder names are key-value pairs joined by "_", e.g. id_dropout-0.1_epochs-12
            start = folder.name.index(f"{name}-") + len(name) + 1
            values[name] = float(folder.name[start:].split("_", 1)[0])
        if values == config:
            return folder.name
    raise SystemExit(f"no checkpoint folder for {variant} seed {seed} {protocol}: {config}")


def gain(variant: str, seed: int, protocol: str) -> dict:
    from mmrec.training.blend import choose_item_item_blend

    folder = selected_folder(variant, seed, protocol)
    run = load_stored_run(variant, seed, protocol, folder, "sequence_gain_se")
    stored = run.meta["item_item"]
    cfg = run.settings.model.model_copy(update={
        "item_item_l2_search": False, "item_item_blend": stored["blend"], "item_item_halflife": stored["halflife"],
        "content_blend_weight": stored["content_blend"], "sequence_blend": True, "sequence_min_se": 0.0})
    notes: list[str] = []
    spec, _ = choose_item_item_blend(run.trainer, cfg, run.inputs.split.train, run.inputs.users,
                                     run.inputs.item_ids, notes)
    # With model.sequence_min_se 0 the best pair is kept whenever it beats the blend: monitored is then its
    # metric, else the blend's (and no gain is computed).
    return {"key": f"{protocol} / {variant} / seed {seed}", "folder": folder,
            "best_pair": {"directions": spec.sequence_directions, "half-life": spec.sequence_halflife,
                          "weight": spec.sequence_blend},
            "val_ndcg@10": spec.monitored, "gain_se": spec.sequence_gain_se, "grid": spec.sequence_grid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("keys", nargs="+", help="variant:seed:protocol")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "movielens-small-posters" / "sequence_gain_se")
    args = parser.parse_args()

    def probe(key: str) -> dict:
        variant, seed, protocol = key.split(":")
        row = gain(variant, int(seed), protocol)
        print(json.dumps({k: v for k, v in row.items() if k != "grid"}), flush=True)
        return row

    write_report(args.out, *probe_keys(args.keys, probe, args.out))


def write_report(out: Path, machine: str, rows: list[dict]) -> None:
    lines = ["# The best transition blend's validation gain, in paired standard errors", "",
             f"Machine: {machine}. `bench/sequence_gain_se.py`: the selected mmrec-multimodal config of each key, its "
             "blend as chosen, every transition (half-life, weight) on top; the best pair's mean per-user NDCG@10 "
             "gain over none divided by the standard error of the per-user differences (validation users of the "
             "split's val.csv). `mmrec train` keeps the pair only when this is at least model.sequence_min_se (1).",
             "", "| key | best pair (directions half-life, weight) | validation NDCG@10 (best pair, or the blend) | gain in paired SE | kept at 1 SE |",
             "|---|---|---|---|---|"]
    for row in rows:
        pair = row["best_pair"]
        best = (f"{pair.get('directions', 'next')} {pair['half-life']:g}, {pair['weight']:g}" if pair["weight"]
                else "none beats the blend")
        se = row["gain_se"]
        lines.append(f"| {row['key']} | {best} | {row['val_ndcg@10']:.4f} | "
                     f"{'-' if se is None else f'{se:+.2f}'} | {'yes' if se is not None and se >= 1 else 'no'} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
