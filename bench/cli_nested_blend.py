"""Does the blend `mmrec train` chooses on its holdout carry to the model it serves? Validation only.

On a split without validation rows (`bench/cli_no_val.py`'s protocol: all ratings, per user 75/25),
`mmrec train` carves a holdout (training.holdout_ratio) out of train.csv, trains the two-tower model
and chooses the item-item lambda and blend weight on it, then refits the item-item model on all of
train.csv, while the two-tower model stays the one trained without the holdout. This script asks
whether the blend weight chosen for two models fitted on the same rows is still right for that pair.

Test is never read: inside seed S's train.csv, 25% of each user's rows are a pseudo-test and the
rest plays train.csv (`mmrec train` with default settings, through the CLI). On the pseudo-test:

- the served scorer (chosen blend, item-item refitted on the rest) at every blend weight;
- the same with the item-item model fitted on the holdout's inner part, as validation saw it;
- the item-item model alone and blended at each lambda of the grid;
- EASE with lambda chosen on the same holdout (`cli_no_val.ease_metrics`);

and on the holdout itself, the blend weight chosen again with the item-item model cross-fitted (K folds
of holdout users; each fold's model also fits the other folds' holdout rows), which puts it on more rows
than the two-tower model, as serving does.

Needs `bench/cli_no_val.py`'s work dir (import, preprocess, the seeds' splits):

    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --seeds 0 1   # or only its import + split steps
    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_nested_blend.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
BLENDS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)
PSEUDO_TEST_SHARE, PSEUDO_TEST_SEED = 0.25, 7


def nested_split(work: Path, seed: int) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """(splits dir, rest, pseudo-test): 25% of each user's train.csv rows as test, the rest as train, no val."""
    from mmrec.data.splits import holdout_validation, load_split

    train = load_split(work / f"seed{seed}" / "splits").train
    rest, pseudo = holdout_validation(train, PSEUDO_TEST_SHARE, "stratified", PSEUDO_TEST_SEED)
    folder = work / f"nested{seed}" / "splits"
    if not (folder / "test.csv").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rest.to_csv(folder / "train.csv", index=False)
        rest.iloc[:0].to_csv(folder / "val.csv", index=False)
        shutil.copy(work / f"seed{seed}" / "splits" / "split_report.json", folder / "split_report.json")
        pseudo.to_csv(folder / "test.csv", index=False)
    return folder, rest, pseudo


def train(work: Path, seed: int, splits: Path, name: str) -> Path:
    """`mmrec train` with default settings on the nested split (once per `name`); the best checkpoint."""
    checkpoints = work / f"nested{seed}" / name
    if not list(checkpoints.glob("*/best_model.pth")):
        env = dict(os.environ, COLUMNS="120", PYTHONPATH=str(ROOT), MMREC_TRACKING__USE_WANDB="false",
                   MMREC_PATHS__SPLITS_DIR=str(splits), MMREC_PATHS__CHECKPOINT_DIR=str(checkpoints),
                   MMREC_PATHS__RESULTS_DIR=str(work / f"nested{seed}" / f"results-{name}"))
        subprocess.run([sys.executable, "-m", "mmrec", "train", "-c", str(work / "ml" / "mmrec.yaml"), "--device", "cpu"],
                       env=env, cwd=work, check=True)
    return next(checkpoints.glob("*/best_model.pth"))


class Ranker:
    """Per-user NDCG@10 of a recommender's scorer variants for `target`'s users, `known` rows masked
    (`mmrec.evaluation.full_ranking`, the metric code `mmrec evaluate` uses)."""

    def __init__(self, recommender, item_ids: list[str], known: pd.DataFrame, target: pd.DataFrame) -> None:
        self.recommender = recommender
        self.users = sorted(set(target["user_id"].astype(str)) & set(recommender.user_index))
        rows = {u: i for i, u in enumerate(self.users)}
        columns = {item: j for j, item in enumerate(item_ids)}

        def matrix(frame: pd.DataFrame) -> sp.csr_matrix:
            frame = frame[frame["user_id"].astype(str).isin(rows)].drop_duplicates(["user_id", "item_id"])
            return sp.csr_matrix((np.ones(len(frame)), (frame["user_id"].astype(str).map(rows),
                                                        frame["item_id"].astype(str).map(columns))),
                                 shape=(len(rows), len(item_ids)))

        self.known, self.target = matrix(known), matrix(target)

    def ndcg(self, scorer) -> np.ndarray:
        from mmrec.evaluation.full_ranking import full_ranking

        self.recommender.scorer = scorer
        result = full_ranking(lambda rows: self.recommender.score([self.users[r] for r in rows]).float(),
                              self.target, self.known, [10], return_per_user=True)
        assert result.n_users == len(self.users)  # every user has a target row (users come from `target`)
        return result.per_user["ndcg@10"]


def diagnose(work: Path, seed: int, folds: int, name: str) -> dict:
    from cli_no_val import LAMBDAS, ease_metrics
    from mmrec.checkpoints.store import read_meta
    from mmrec.data.encoders import IdEncoder
    from mmrec.data.splits import holdout_validation
    from mmrec.data.tables import load_items
    from mmrec.models.histories import catalogue_index
    from mmrec.models.item_item import ItemItemModel, item_item_content, item_item_profiles
    from mmrec.recommenders.factory import create_recommender
    from mmrec.settings import load_settings

    splits, rest, pseudo = nested_split(work, seed)
    best = train(work, seed, splits, name)
    spec = read_meta(best)["item_item"]
    settings = load_settings(work / "ml" / "mmrec.yaml").settings
    inner, held = holdout_validation(rest, settings.training.holdout_ratio, "stratified", settings.training.seed)
    items = load_items(Path(settings.paths.processed_dir))
    item_ids = items["item_id"].astype(str).tolist()

    def recommender(frame: pd.DataFrame):
        return create_recommender("multimodal", settings.evaluation, checkpoint_path=best, items=items,
                                  cache_dir=Path(settings.paths.cache_dir), cache=settings.cache,
                                  device="cpu").fit(frame, item_ids)

    def fit(rec, frame: pd.DataFrame, l2s: list[float]):  # the item-item model of `frame` (0/1 profiles)
        profiles = item_item_profiles(frame, IdEncoder(list(rec.user_index), "user"), catalogue_index(item_ids), 0.0)
        content = item_item_content(rec.model.cfg, rec.scorer.catalogue)
        return ItemItemModel.fit_l2_path(profiles, content, l2s, rec.model.cfg.item_item_content_weight, "cpu")

    out: dict = {"seed": seed, "chosen": {k: spec[k] for k in ("l2", "blend", "halflife", "content_blend",
                                                                  "content_modality", "sequence_blend", "monitored")},
                 "holdout_blend_grid": {g["blend"]: g[settings.training.monitor] for g in spec["val_grid"]
                                        if g["halflife"] == spec["halflife"]}}
    # Pseudo-test: the served scorer (item-item refitted on the rest), and with the holdout's inner fit.
    served = recommender(rest)
    scorer = served.scorer
    ranker = Ranker(served, item_ids, rest, pseudo)
    out["pseudo_served"] = float(ranker.ndcg(scorer).mean())
    out["pseudo_by_blend"] = {b: float(ranker.ndcg(scorer.with_item_item(scorer.item_item, b)).mean()) for b in BLENDS}
    inner_fit = next(fit(served, inner, [spec["l2"]])).with_profiles(scorer.item_item.interactions)
    out["pseudo_by_blend_inner_fit"] = {b: float(ranker.ndcg(scorer.with_item_item(inner_fit, b)).mean())
                                        for b in BLENDS}
    l2s = [row["l2"] for row in spec["l2_grid"]]
    out["pseudo_by_l2"] = {}
    for l2, model in zip(l2s, fit(served, rest, l2s)):
        out["pseudo_by_l2"][l2] = {"alone": float(ranker.ndcg(scorer.with_item_item(model, 1.0).with_content(None, 0.0)).mean()),
                                   "chosen_blend": float(ranker.ndcg(scorer.with_item_item(model, spec["blend"])).mean())}
    val = {l2: ease_metrics(inner, held, item_ids, l2)["ndcg@10"] for l2 in LAMBDAS}
    chosen_l2 = max(val, key=val.get)
    out["ease"] = {"l2": chosen_l2, "holdout": val,
                   "pseudo": {l2: ease_metrics(rest, pseudo, item_ids, l2)["ndcg@10"] for l2 in LAMBDAS}}
    # Holdout: the blend weight again with a cross-fitted item-item model.
    validated = recommender(inner)
    base = validated.scorer
    ranker = Ranker(validated, item_ids, inner, held)
    fold = np.random.default_rng(0).integers(0, folds, len(ranker.users))
    of_user = dict(zip(ranker.users, fold))
    per_user = {b: np.zeros(len(ranker.users)) for b in BLENDS}
    for k in range(folds):
        others = held[held["user_id"].astype(str).map(of_user) != k]
        model = next(fit(validated, pd.concat([inner, others]), [spec["l2"]])).with_profiles(base.item_item.interactions)
        for b in BLENDS:
            per_user[b][fold == k] = ranker.ndcg(base.with_item_item(model, b))[fold == k]
    out["holdout_by_blend"] = {b: float(ranker.ndcg(base.with_item_item(base.item_item, b)).mean()) for b in BLENDS}
    out["holdout_by_blend_crossfit"] = {b: float(v.mean()) for b, v in per_user.items()}
    return out


def write(out: Path, rows: list[dict], folds: int) -> None:
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only, " \
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "folds": folds, "rows": rows}, indent=1))

    def best(curve: dict) -> str:
        b = max(curve, key=curve.get)
        return f"{float(b):g} ({curve[b]:.4f})"

    lines = ["# The holdout's blend weight vs the served model's (`bench/cli_nested_blend.py`, validation only)", "",
             f"Machine: {machine}. Inside each seed's train.csv: 25% of each user's rows as a pseudo-test, "
             "`mmrec train` defaults on the rest. NDCG@10.", "",
             "| seed | chosen (lambda, blend) | pseudo-test: served | best blend, served | best blend, item-item fit as "
             "validated | EASE (lambda on the holdout) | holdout: best blend | holdout: best blend, "
             f"{folds}-fold cross-fit |", "|---" * 8 + "|"]
    for r in rows:
        ease = {float(l2): v for l2, v in r["ease"]["pseudo"].items()}[float(r["ease"]["l2"])]  # keys: str once in JSON
        lines.append(f"| {r['seed']} | {r['chosen']['l2']:g}, {r['chosen']['blend']:g} | {r['pseudo_served']:.4f} | "
                     f"{best(r['pseudo_by_blend'])} | {best(r['pseudo_by_blend_inner_fit'])} | "
                     f"{ease:.4f} ({r['ease']['l2']:g}) | {best(r['holdout_by_blend'])} | "
                     f"{best(r['holdout_by_blend_crossfit'])} |")
    lines += ["", "Pseudo-test NDCG@10 by blend weight (served / item-item fit as validated):", ""]
    for r in rows:
        lines.append(f"- seed {r['seed']}: " + ", ".join(
            f"{float(b):g}: {r['pseudo_by_blend'][b]:.4f} / {r['pseudo_by_blend_inner_fit'][b]:.4f}"
            for b in r["pseudo_by_blend"]))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "cli_no_val")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cli_nested_blend")
    parser.add_argument("--checkpoints", default="checkpoints",
                        help="checkpoint folder name under nested<seed>/: trains there unless it holds a model")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        rows.append(diagnose(args.work.resolve(), seed, args.folds, args.checkpoints))
        print(json.dumps(rows[-1]), flush=True)
    write(args.out, rows, args.folds)


if __name__ == "__main__":
    main()
