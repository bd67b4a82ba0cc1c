"""mmrec's own systems on the same split files: the multimodal two-tower model and its four baselines.

Baselines: `mmrec.recommenders.factory.create_recommender` fitted on the split's train.csv.
Multimodal: MovieLens imported with mmrec's own importer and restricted to the benchmark catalogue
and positives, preprocessed, features precomputed once (EfficientNet-Lite0 + MiniLM, untimed,
like the peers' cached features), then `run_train` on the protocol's split folder — whose
{train,val,test}.csv are already mmrec's split format — with early stopping on validation only.
The best checkpoint is loaded through `create_recommender("multimodal", ...)` and scored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context, Scorer
from mmrec.errors import DataError
from mmrec.fileio import atomic_path, atomic_write_text


def _scorer(recommender, split: Split) -> Scorer:
    users = np.array(split.users, dtype=object)
    return lambda rows: recommender.score(list(users[rows])).cpu().numpy()


def _baseline(name: str):
    def fit(split: Split, config: dict, ctx: Context) -> Scorer:
        from mmrec.recommenders.factory import create_recommender
        from mmrec.settings import EvaluationSettings

        evaluation = EvaluationSettings(seed=ctx.seed, **config)
        recommender = create_recommender(name, evaluation).fit(split.frames["train"], split.items)
        return _scorer(recommender, split)

    return fit


def _mmrec_root(ctx: Context) -> Path:
    if ctx.data_dir is None or ctx.workdir is None:
        raise DataError("the mmrec multimodal system needs the data dir and a work dir")
    return Path(ctx.workdir).resolve() / "mmrec"


def _base_overrides(root: Path, numeric: tuple[str, ...] = ("year",)) -> dict[str, Any]:
    """mmrec's settings over `root` (its raw/, processed/, cache/ and results/); `numeric`: the item columns read
    as numeric features (MovieLens: the importer's `year`; an input folder: those its preprocess kept)."""
    return {
        "paths.data_dir": str(root / "raw"), "paths.processed_dir": str(root / "processed"),
        "paths.cache_dir": str(root / "cache"), "paths.results_dir": str(root / "results"),
        "data.numerical_features_cols": list(numeric), "data.positive_rating_threshold": None,
        "training.device": "cpu", "features.device": "cpu", "evaluation.device": "cpu",
        "evaluation.k_values": [10, 20], "tracking.use_wandb": False,
    }


def prepare_inputs(split: Split, ctx: Context) -> Path:
    """Import + restrict + preprocess + precompute features once per work dir; returns the mmrec root."""
    from mmrec.pipeline.cache import run_cache_precompute
    from mmrec.pipeline.data import run_import_movielens
    from mmrec.pipeline.preprocess import run_preprocess
    from mmrec.settings import load_settings

    root = _mmrec_root(ctx)
    marker = root / "prepared.txt"
    prepared = "\n".join(split.items) + (f"\ncontent {ctx.content}" if ctx.content else "")
    if marker.is_file() and marker.read_text() == prepared:
        return root
    settings = load_settings(None, _base_overrides(root, ctx.numeric)).settings
    if ctx.processed is not None:
        ctx.log("  mmrec: the input folder's preprocessed catalogue (cleaned text, numeric columns, images)")
        _catalogue_inputs(ctx.processed, root / "raw", settings, ctx.numeric)
    else:
        ctx.log("  mmrec: importing MovieLens with mmrec's importer")
        run_import_movielens(settings, Path(ctx.data_dir), root / "raw", posters=ctx.posters)
    # The same catalogue and the same positives as every peer (rating >= 4 or the folder's threshold, 5-core).
    items = pd.read_csv(root / "raw" / settings.data.item_info_file, dtype={"item_id": str}, keep_default_na=False)
    items = items[items["item_id"].isin(set(split.items))]
    positives = pd.concat(split.frames.values())[["user_id", "item_id", *(["timestamp"] if ctx.timestamps else [])]]
    for name, frame in ((settings.data.item_info_file, items), (settings.data.interactions_file, positives)):
        with atomic_path(root / "raw" / name) as tmp:
            frame.to_csv(tmp, index=False)
    ctx.log("  mmrec: preprocess + feature precompute (untimed, like the peers' cached features)")
    run_preprocess(settings, force=True)
    run_cache_precompute(settings)
    atomic_write_text(marker, prepared)
    return root


def _catalogue_inputs(processed: Path, raw: Path, settings: Any, numeric: tuple[str, ...]) -> None:
    """mmrec's raw inputs from an input folder's preprocessed tables: item_info with the cleaned title and
    description, the numeric columns preprocess kept, and images/ holding the processed images (hard links, or
    copies across file systems) under their processed names, which are safe whatever the id (`image_file_name`)."""
    import os
    import shutil

    from mmrec.data.ids import image_file_name
    from mmrec.data.tables import load_items

    items = load_items(processed)
    shutil.rmtree(raw / settings.data.images_subdir, ignore_errors=True)  # images the items no longer have
    (raw / settings.data.images_subdir).mkdir(parents=True, exist_ok=True)
    for item_id, image in zip(items["item_id"], items["image_path"]):
        if not isinstance(image, str):
            continue
        target = raw / settings.data.images_subdir / image_file_name(item_id)
        try:
            os.link(processed / image, target)
        except OSError:
            shutil.copyfile(processed / image, target)
    table = items[["item_id", "title", "description", *numeric]]
    with atomic_path(raw / settings.data.item_info_file) as tmp:
        table.to_csv(tmp, index=False)


def fit_multimodal(split: Split, config: dict, ctx: Context, checkpoints: Path | None = None) -> Scorer:
    """`mmrec train` with `config` on the split; its checkpoints (and item-item fits) go to `checkpoints`,
    by default the config's folder under `checkpoint_root`."""
    from mmrec.pipeline.train import run_train
    from mmrec.settings import load_settings

    root = prepare_inputs(split, ctx)
    if checkpoints is None:
        checkpoints = checkpoint_root(ctx, split) / config_tag(config)
    overrides = {**_base_overrides(root, ctx.numeric), "paths.splits_dir": str(split.folder),
                 "paths.checkpoint_dir": str(checkpoints), "training.seed": ctx.seed,
                 # Model selection ranks what the protocol ranks: on coldstart, the held-out items only
                 # (they are exactly the catalogue items without train interactions).
                 "training.validate_on": "cold_items" if split.cold_items is not None else "all", **config}
    settings = load_settings(None, overrides).settings
    result = run_train(settings)
    if result.best_path is None:
        raise DataError(f"mmrec training wrote no best checkpoint under {checkpoints}")
    ctx.log(f"  mmrec multimodal: best epoch {result.best_epoch}, {result.seconds_per_epoch:.1f}s/epoch")
    scorer = _checkpoint_scorer(settings, result.best_path, split)
    blended = (result.item_item or {}).get("monitored")
    # The validation objective `mmrec tune` scores a trial by (the blend's when fitted): fit_time.py checks a
    # refit of the selected settings against the trial's value.
    scorer.val_objective = float(blended if blended is not None else result.best_metric)  # type: ignore[attr-defined]
    return scorer


def _checkpoint_scorer(settings: Any, best_path: Path, split: Split) -> Scorer:
    """The recommender `mmrec evaluate` would build from `best_path`, over the split's catalogue."""
    from mmrec.data.tables import load_items
    from mmrec.recommenders.factory import create_recommender

    items = load_items(settings.paths.processed_dir).set_index("item_id")
    missing = [i for i in split.items if i not in items.index]
    if missing:
        raise DataError(f"{len(missing)} catalogue items were dropped by mmrec preprocess, e.g. {missing[:5]}")
    items = items.loc[split.items].reset_index()
    recommender = create_recommender(
        "multimodal", settings.evaluation, checkpoint_path=best_path, items=items,
        cache_dir=Path(settings.paths.cache_dir), cache=settings.cache, device="cpu",
    ).fit(split.frames["train"], split.items)
    return _scorer(recommender, split)


def fit_tuned(split: Split, config: dict, ctx: Context) -> Scorer:
    """`mmrec tune` with the peers' budget (MAX_CONFIGS trials, its default search space, median pruning)
    on this split's train/validation, then the best trial's checkpoint. A study left unfinished by a kill
    resumes; a finished one (a --redo) starts over."""
    import shutil

    from bench.peers.tuning import MAX_CONFIGS
    from mmrec.pipeline.tune import run_tune, selected_values
    from mmrec.settings import load_settings

    root = prepare_inputs(split, ctx)
    study_root = checkpoint_root(ctx, split) / "tune"
    overrides = {**_base_overrides(root, ctx.numeric), "paths.splits_dir": str(split.folder),
                 "paths.results_dir": str(study_root),
                 "paths.checkpoint_dir": str(study_root / "checkpoints"), "training.seed": ctx.seed,
                 "training.validate_on": "cold_items" if split.cold_items is not None else "all",
                 "tune.study_name": "bench", "tune.n_trials": MAX_CONFIGS, **config}
    settings = load_settings(None, overrides).settings
    study = Path(settings.paths.results_dir) / "tune"
    summary = study / "bench" / "summary.json"
    counts = json.loads(summary.read_text()).get("counts", {}) if summary.is_file() else {}
    if counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) >= MAX_CONFIGS:
        shutil.rmtree(study)
    result = run_tune(settings)
    if result.best is None:
        raise DataError(f"mmrec tune finished no trial under {study}")
    best = result.best
    best_path = next((Path(best.attrs["folder"]) / "checkpoints").glob("*/best_model.pth"), None)
    if best_path is None:
        raise DataError(f"the best trial ({best.number}) left no best_model.pth under {best.attrs['folder']}")
    ctx.log(f"  mmrec tune: {len(result.trials)} trials in {result.seconds:.0f}s, best trial {best.number} "
            f"(val {best.value:.4f}, {best.attrs.get('seconds', float('nan')):.0f}s): {best.params}")
    scorer = _checkpoint_scorer(settings, best_path, split)
    # Reported as the selected config (best_config.yaml's values: the params, epochs cut to the best one) and
    # the trial's fit time (the study's total is the tuning time).
    scorer.chosen_config = {"trial": best.number, **selected_values(settings, best)}  # type: ignore[attr-defined]
    scorer.fit_seconds = float(best.attrs.get("seconds", float("nan")))  # type: ignore[attr-defined]
    kept = ("best_epoch", "epochs_run", "seconds", "cpu_seconds")
    scorer.trials = [{"number": t.number, "state": t.state, "value": t.value, "params": t.params,  # type: ignore[attr-defined]
                      "selected": t.number == best.number, **{k: t.attrs[k] for k in kept if k in t.attrs}}
                     for t in result.trials]
    return scorer


def config_tag(config: dict) -> str:
    """The folder name of a grid config's checkpoints under `checkpoint_root`."""
    tag = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in sorted(config.items())) or "default"
    if len(tag) > 120:  # e.g. a tuned trial's float settings: too long for a folder name
        tag = "config-" + hashlib.sha256(tag.encode()).hexdigest()[:16]
    return tag


def checkpoint_root(ctx: Context, split: Split) -> Path:
    """Checkpoints of every grid config for this split: {mmrec root}/checkpoints/seed{k}/{protocol}/."""
    return _mmrec_root(ctx) / "checkpoints" / f"seed{split.seed}" / split.protocol


# Within the peers' budget (<= 6 configs): two two-tower settings (user-history length with its
# learning rate and id dropout; id dropout is how much content alone must carry an item, which
# matters for cold start) x the item-item model's L2 penalty (lambda, as in EASE's grid). History 30
# rather than 50: the same validation NDCG@10 after blending (0.1886 vs 0.1897 on `random`) at 4.0
# instead of 5.1 s/epoch. 12 epochs
# max, early stopping (patience 3) on validation NDCG@10 picks the epoch; `mmrec train` then picks the
# item-item blend weight on validation. Chosen from single runs on validation only (bench/README.md,
# "mmrec: what each change bought").
MULTIMODAL_GRID: list[dict[str, Any]] = [
    {"training.epochs": 12, "training.patience": 3, "model.user_history_length": history,
     "training.learning_rate": lr, "model.id_dropout": id_dropout, "model.item_item_l2": l2}
    for history, lr, id_dropout in ((30, 0.005, 0.1), (20, 0.001, 0.3)) for l2 in (100.0, 200.0, 500.0)
]


def systems() -> list[BenchSystem]:
    """mmrec systems, or [] (with the reason printed by the runner) when mmrec lacks them."""
    try:
        import mmrec.pipeline.train
        import mmrec.recommenders.factory
        import mmrec.recommenders.multimodal  # noqa: F401
    except ImportError:
        return []
    knn_grid = [{"knn_neighbors": n, "knn_shrinkage": s} for n in (20, 50, 200) for s in (0.0, 10.0)]
    return [
        BenchSystem("mmrec-multimodal", "mmrec", MULTIMODAL_GRID, fit_multimodal, cold_capable=True,
                    notes="two-tower (EfficientNet-Lite0 + MiniLM + the numeric item columns: a MovieLens film's year, "
                          "a catalogue's own, id dropout) blended with the item-item model (EASE + image/text side "
                          "information); early stopping and blend weight on val",
                    prepare=prepare_inputs),
        BenchSystem("mmrec-tuned", "mmrec", [{}], fit_tuned, cold_capable=True,
                    notes="the same model tuned by `mmrec tune` (6 Optuna trials over its default search space, "
                          "median pruning) on validation; the dataset picks the settings; the selected trial is "
                          "the fastest within one paired standard error of the best",
                    prepare=prepare_inputs),
        BenchSystem("mmrec-popularity", "mmrec", [{}], _baseline("popularity"), reads_text=False),
        BenchSystem("mmrec-item_knn", "mmrec", knn_grid, _baseline("item_knn"), notes="cosine with shrinkage",
                    reads_text=False),
        BenchSystem("mmrec-user_knn", "mmrec", knn_grid, _baseline("user_knn"), notes="cosine with shrinkage",
                    reads_text=False),
        BenchSystem("mmrec-random", "mmrec", [{}], _baseline("random"), reads_text=False),
    ]
