"""Is cold-item validation noisy because of the cold items' offset to the warm ones? (validation only)

On a split whose validation items are cold (`mmrec split --strategy item`), the two-tower model's validation
NDCG@10 jumps from epoch to epoch (bench/README.md "Category columns"). Every cold item shares the learned
"no id" row, so a step that moves that row moves every cold item up or down against the warm catalogue at once.
This trains the default two-tower model of an mmrec project afresh (`--epochs`, no early stopping) and after
every epoch validates its scores as they are and with the cold items' scores shifted by delta x (the user's score
spread over the catalogue), for each delta of DELTAS: if the swings are the offset, the best shift of each epoch
should give a steadier, higher curve. A split-half check then asks whether choosing (epoch, delta) on half the
validation users carries to the other half, against choosing the epoch alone (delta 0), as `mmrec train` does.
Test is never read.

    OMP_NUM_THREADS=2 .venv/bin/python bench/cold_offset_probe.py -c bench/.work/categories/movielens/mmrec.yaml \\
        --splits bench/.work/categories/movielens/item-seed1/splits --out bench/results/cold_offset_probe_ml_item1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DELTAS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument("--splits", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--categories", action="store_true", help="keep model.use_categories (default: off)")
    parser.add_argument("--blend", type=float, default=0.0,
                        help="validate the two-tower model blended with the item-item model at this weight (the "
                        "served blend's first step; lambda model.item_item_l2, no recency half-life)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from mmrec.evaluation.full_ranking import full_ranking
    from mmrec.models.scoring import Scorer
    from mmrec.models.two_tower import TwoTowerModel
    from mmrec.pipeline.train import prepare_training
    from mmrec.settings import load_settings
    from mmrec.training.distributed import DistContext
    from mmrec.training.trainer import Trainer

    settings = load_settings(args.config, {"paths.splits_dir": str(args.splits), "training.seed": args.seed,
                                           "training.epochs": args.epochs,
                                           "model.use_categories": args.categories}).settings
    torch.manual_seed(args.seed)
    inputs = prepare_training(settings, torch.device("cpu"), DistContext())
    model = TwoTowerModel(settings.model, inputs.dims)
    trainer = Trainer(model, inputs.data, inputs.catalogue, settings.model, settings.training, torch.device("cpu"))
    data = inputs.data
    cold = torch.as_tensor((inputs.catalogue.ids == 0).numpy())  # items without a training interaction
    item_item = None
    if args.blend > 0:
        from mmrec.models.histories import catalogue_index
        from mmrec.models.item_item import fit_item_item, item_item_profiles

        rows = catalogue_index(inputs.item_ids)
        train = inputs.split.train
        item_item = fit_item_item(train, inputs.users, rows, inputs.catalogue, settings.model, 0.0)
        item_item = item_item.with_profiles(item_item_profiles(train, inputs.users, rows, 0.0))
    print(f"{int(cold.sum()):,} cold items of {len(cold):,}; {data.val_relevant.shape[0]:,} validation users",
          flush=True)
    epochs, per_user = [], []  # per_user: [epoch][delta][validation user]
    for epoch in range(args.epochs):
        loss, _, _ = trainer.train_epoch()
        trainer.epoch += 1
        trainer.schedule.epoch_end(0.0)
        trainer.module.eval()
        scorer = Scorer(trainer.module, inputs.catalogue, data.histories).with_item_item(item_item, args.blend)
        row: dict = {"epoch": epoch + 1, "loss": round(loss, 4)}
        values = []
        for delta in DELTAS:
            def score(rows: np.ndarray, delta: float = delta) -> torch.Tensor:
                users = data.val_users[torch.as_tensor(rows)]
                with torch.no_grad():
                    scores = scorer.scores(users, users).float()
                spread = scores.std(dim=1, keepdim=True)
                return scores + delta * spread * cold.unsqueeze(0)

            result = full_ranking(score, data.val_relevant, data.val_exclude, [10], return_per_user=True)
            row[f"delta {delta:g}"] = round(result.metrics["ndcg@10"], 4)
            values.append(result.per_user["ndcg@10"])
        per_user.append(values)
        trainer.module.train()
        epochs.append(row)
        print(json.dumps(row), flush=True)
    check = split_half(np.asarray(per_user, dtype=np.float64))
    print(json.dumps(check), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"config": str(args.config), "splits": str(args.splits),
                                                         "seed": args.seed, "categories": args.categories,
                                                         "blend": args.blend,
                                                         "epochs": epochs, "split_half": check}, indent=1))


def split_half(values: np.ndarray, halves: int = 200) -> dict:
    """values [epoch, delta, user]. Half A chooses the epoch (delta 0: as training does) or the (epoch, delta);
    half B scores the choice; mean over random halves."""
    rng = np.random.default_rng(0)
    zero = DELTAS.index(0.0)
    plain, shifted = [], []
    for _ in range(halves):
        a = rng.permutation(values.shape[2]) < values.shape[2] // 2
        mean_a, mean_b = values[:, :, a].mean(2), values[:, :, ~a].mean(2)
        e = int(np.argmax(mean_a[:, zero]))
        plain.append(mean_b[e, zero])
        e, d = np.unravel_index(int(np.argmax(mean_a)), mean_a.shape)
        shifted.append(mean_b[e, d])
    plain_a, shifted_a = np.asarray(plain), np.asarray(shifted)
    return {"epoch_only": float(plain_a.mean()), "epoch_and_delta": float(shifted_a.mean()),
            "gain": float(shifted_a.mean() / plain_a.mean() - 1), "wins": int((shifted_a > plain_a).sum()),
            "losses": int((shifted_a < plain_a).sum()), "halves": halves}


if __name__ == "__main__":
    main()
