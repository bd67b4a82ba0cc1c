"""What should early stopping watch, and does an EMA of the two-tower weights help? (validation only)

The two-tower model's validation NDCG@10 moves by a few percent from one epoch to the next while the blend it
is served in (with the item-item model) can keep rising after the model alone has peaked. For a stored
`run_peers` key (default: its selected config), this trains that config's two-tower model afresh (its own
seed, `--epochs` long, no early stopping) and, after every epoch, validates the raw weights and exponential
moving averages (EMA, Polyak averaging) of them at decays 0.97 / 0.99: the model alone, and blended with the
item-item model at the key's lambda (best of weights 0.25 / 0.5 / 0.75, whole profile).

Reported per key (`bench/results/<dataset>/epoch_probe.{json,md}`; the per-user values stay in `--work-out`):
each column's best epoch (optimistic alike for every column), and a split-half check of the monitor: half the
validation users replay early stopping (epochs / patience as `mmrec train`'s defaults 30 / 5, and the peer
grid's 12 / 3) on the model alone or on the blend at weight 0.5 and choose the blend weight at the kept epoch;
the other half scores that (epoch, weight); 200 random halves. Test is never read.

    OMP_NUM_THREADS=1 .venv/bin/python bench/epoch_probe.py --dataset ml-100k --keys no-tags:0:random --epochs 30
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DECAYS = (0.97, 0.99)
WEIGHTS = (0.25, 0.5, 0.75)


def probe(dataset: str, variant: str, seed: int, protocol: str, folder: str | None, train_seed: int,
          epochs: int | None = None) -> dict:
    import bench.peers.stored as stored
    from mmrec.models.histories import catalogue_index
    from mmrec.models.item_item import fit_item_item, item_item_profiles
    from mmrec.models.two_tower import TwoTowerModel
    from mmrec.pipeline.train import prepare_training
    from mmrec.training.distributed import DistContext
    from mmrec.training.trainer import Trainer

    stored.WORK = ROOT / "bench" / ".work" / dataset
    folder = folder or stored.selected_folder(variant, seed, protocol)
    settings, meta, _ = stored.stored_settings(variant, seed, protocol, folder, "epoch_probe",
                                               {"training.seed": train_seed,
                                                **({"training.epochs": epochs} if epochs else {})})
    inputs = prepare_training(settings, torch.device("cpu"), DistContext())
    torch.manual_seed(train_seed)
    model = TwoTowerModel(settings.model, inputs.dims)
    trainer = Trainer(model, inputs.data, inputs.catalogue, settings.model, settings.training, torch.device("cpu"))
    rows = catalogue_index(inputs.item_ids)
    train = inputs.split.train
    item_item = fit_item_item(train, inputs.users, rows, inputs.catalogue, settings.model, 0.0)
    item_item = item_item.with_profiles(item_item_profiles(train, inputs.users, rows, 0.0))

    emas = {d: copy.deepcopy(trainer.module) for d in DECAYS}
    step = trainer.train_step

    def train_step(batch: torch.Tensor, generator: torch.Generator | None = None) -> float:
        loss = step(batch, generator)
        with torch.no_grad():
            for decay, ema in emas.items():
                for p_ema, p in zip(ema.parameters(), trainer.module.parameters(), strict=True):
                    p_ema.lerp_(p, 1.0 - decay)
                for b_ema, b in zip(ema.buffers(), trainer.module.buffers(), strict=True):
                    b_ema.copy_(b)
        return loss

    trainer.train_step = train_step  # type: ignore[method-assign]
    from mmrec.models.scoring import Scorer

    epochs: list[dict[str, float]] = []
    per_user: list[list[list[float]]] = []  # [epoch][alone, blend at each of WEIGHTS][validation user]
    for epoch in range(settings.training.epochs):
        loss, _, _ = trainer.train_epoch()
        trainer.epoch += 1
        trainer.schedule.epoch_end(0.0)
        row: dict[str, float] = {"epoch": epoch + 1, "loss": loss}
        for name, module in (("raw", trainer.module), *((f"ema{d:g}", e) for d, e in emas.items())):
            module.eval()
            base = Scorer(module, inputs.catalogue, inputs.data.histories)
            scorers = [base, *(base.with_item_item(item_item, w) for w in WEIGHTS)]
            paired = trainer.validate_paired(scorers)
            values = [m["ndcg@10"] for m, _ in paired]
            row[f"{name}_alone"] = values[0]
            row[f"{name}_blend"] = max(values[1:])
            if name == "raw":  # per validation user, for the split-half selection check (selection_check)
                per_user.append([np.round(u, 5).tolist() for _, u in paired])
        epochs.append(row)
        print(json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    columns = [k for k in epochs[0] if k.endswith(("_alone", "_blend"))]
    best = {k: max(r[k] for r in epochs) for k in columns}
    best_epoch = {k: int(max(epochs, key=lambda r, k=k: r[k])["epoch"]) for k in columns}
    return {"dataset": dataset, "variant": variant, "seed": seed, "protocol": protocol, "folder": folder,
            "train_seed": train_seed, "item_item_l2": meta["item_item"]["l2"], "epochs": epochs, "best": best,
            "best_epoch": best_epoch, "per_user": per_user}


def stop_at(values: np.ndarray, epochs: int, patience: int) -> int:
    """The epoch index `mmrec train`'s early stopping keeps on a series of validation values."""
    from mmrec.training.schedule import EarlyStopping

    stopper = EarlyStopping(patience)
    for i, value in enumerate(values[:epochs]):
        stopper.update(float(value), i)
        if stopper.should_stop:
            break
    return stopper.best_epoch


def selection_check(row: dict, epochs: int, patience: int, halves: int = 200) -> dict:
    """Split-half check of what early stopping should monitor: the validation users are split in two at
    random; half A runs early stopping on (a) the two-tower model alone, (b) the blend with the item-item model
    at weight 0.5, and picks the blend weight at the kept epoch; half B scores that (epoch, weight). Returns the
    mean B value of each policy and how often (b) beats (a)."""
    values = np.asarray(row["per_user"], dtype=np.float64)  # [epoch, 1 + len(WEIGHTS), user]
    rng = np.random.default_rng(0)
    n = values.shape[2]
    out = {"alone": [], "blend0.5": []}
    for _ in range(halves):
        a = rng.permutation(n) < n // 2
        mean_a, mean_b = values[:, :, a].mean(2), values[:, :, ~a].mean(2)
        for policy, column in (("alone", 0), ("blend0.5", 1 + WEIGHTS.index(0.5))):
            e = stop_at(mean_a[:, column], epochs, patience)
            w = 1 + int(np.argmax(mean_a[e, 1:]))
            out[policy].append(mean_b[e, w])
    alone, blend = np.asarray(out["alone"]), np.asarray(out["blend0.5"])
    return {"epochs": epochs, "patience": patience, "alone": float(alone.mean()), "blend0.5": float(blend.mean()),
            "gain": float(blend.mean() / alone.mean() - 1), "wins": int((blend > alone).sum()),
            "losses": int((blend < alone).sum()), "halves": halves}


def summarize(rows: list[dict]) -> dict:
    """The committed figures of each key: best epoch per column and the split-half checks (no per-user values)."""
    keys = ("dataset", "variant", "seed", "protocol", "folder", "train_seed", "item_item_l2", "best", "best_epoch")
    return {"rows": [{**{k: row[k] for k in keys},
                      "split_half": [selection_check(row, e, p) for e, p in ((30, 5), (12, 3))]} for row in rows]}


def write_summary(out: Path, rows: list[dict]) -> None:
    from mmrec.fileio import atomic_write_json, atomic_write_text

    summary = summarize(rows)
    atomic_write_json(out.with_suffix(".json"), summary)
    lines = ["# Early stopping's monitor, and an EMA of the weights: validation NDCG@10 (`bench/epoch_probe.py`)", "",
             "Best epoch of each column (model alone / blended with the item-item model, raw weights or EMA):", "",
             "| key | raw alone | raw blend | EMA 0.97 alone | EMA 0.97 blend | EMA 0.99 alone | EMA 0.99 blend |",
             "|---|---|---|---|---|---|---|"]
    columns = ("raw_alone", "raw_blend", "ema0.97_alone", "ema0.97_blend", "ema0.99_alone", "ema0.99_blend")
    for row in summary["rows"]:
        key = f"{row['dataset']} {row['variant']} seed {row['seed']} {row['protocol']}"
        lines.append(f"| {key} | " + " | ".join(f"{row['best'][c]:.4f} (ep {row['best_epoch'][c]})" for c in columns)
                     + " |")
    lines += ["", "Split-half check (half A early-stops on the monitor and picks the blend weight, half B scores it; "
              "mean over 200 halves):", "",
              "| key | epochs / patience | monitor: model alone | monitor: blend 0.5 | gain | halves won / lost |",
              "|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        key = f"{row['dataset']} {row['variant']} seed {row['seed']} {row['protocol']}"
        for check in row["split_half"]:
            lines.append(f"| {key} | {check['epochs']} / {check['patience']} | {check['alone']:.4f} | "
                         f"{check['blend0.5']:.4f} | {check['gain']:+.2%} | {check['wins']} / {check['losses']} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="movielens-small-posters")
    parser.add_argument("--keys", nargs="+", default=["tags:0:random"], help="variant:seed:protocol[:folder]")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=None, help="train this many epochs (default: the config's)")
    parser.add_argument("--work-out", type=Path, default=None,
                        help="every epoch's per-user values (default bench/.work/<dataset>/epoch_probe.json)")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/<dataset>/epoch_probe")
    parser.add_argument("--summarize", action="store_true", help="only rewrite OUT.{json,md} from --work-out")
    args = parser.parse_args()
    work_out = args.work_out or ROOT / "bench" / ".work" / args.dataset / "epoch_probe.json"
    out = args.out or ROOT / "bench" / "results" / args.dataset / "epoch_probe"
    if args.summarize:
        write_summary(out, json.loads(work_out.read_text()))
        return
    torch.set_num_threads(1)
    rows = []
    for key in args.keys:
        variant, seed, protocol, *folder = key.split(":")
        for train_seed in args.train_seeds:
            rows.append(probe(args.dataset, variant, int(seed), protocol, folder[0] if folder else None, train_seed,
                              args.epochs))
            work_out.parent.mkdir(parents=True, exist_ok=True)
            work_out.write_text(json.dumps(rows))
            write_summary(out, rows)


if __name__ == "__main__":
    main()
