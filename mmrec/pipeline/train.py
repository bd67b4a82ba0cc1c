"""run_train: split + features -> trained two-tower model, organized checkpoints, a training report."""

from __future__ import annotations

import contextlib
import math
import resource
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmrec.checkpoints.spec import CheckpointSpec, EncoderFingerprints, ItemItemSpec, NumericSpec, encoder_state
from mmrec.checkpoints.store import (
    BEST,
    LAST,
    PREVIOUS,
    checkpoint_path,
    copy_checkpoint,
    load_checkpoint,
    read_meta,
    remove_checkpoint,
    save_checkpoint,
)
from mmrec.data.encoders import IdEncoder, fit_encoders, save_encoders
from mmrec.data.splits import SplitFrames, holdout_validation, load_split, read_split_report, stale_split_note
from mmrec.data.tables import load_items
from mmrec.device import resolve_device
from mmrec.errors import CheckpointError, MmrecError
from mmrec.fileio import ProcessLock, mark_in_use, sha256_file
from mmrec.data.categories import CategoryVocab
from mmrec.models.catalogue import COUNT_FEATURE, fit_numeric_scaler, informative_columns, scaled_catalogue
from mmrec.models.towers import ModelDims
from mmrec.models.two_tower import TwoTowerModel
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import FeaturesSettings, ModelSettings, Settings, TrainingSettings, settings_as_dict
from mmrec.models.item_item_store import ItemItemStore
from mmrec.models.transitions import describe_variant
from mmrec.models.trend import days, describe_halflife
from mmrec.pipeline.preprocess import stale_processed_note
from mmrec.models.scoring import Scorer
from mmrec.training.blend import choose_item_item_blend
from mmrec.training.data import build_training_data
from mmrec.training.distributed import DistContext, barrier, context_from_env, init_distributed
from mmrec.training.seeding import seed_everything
from mmrec.training.tracking import NullTracker, make_tracker
from mmrec.training.trainer import EpochRecord, Trainer, check_training_state, distill_weight

# The settings sections a checkpoint depends on (recorded in its sidecar).
RECORDED_SECTIONS = ("data", "split", "features", "model", "training", "evaluation", "tracking")
# Training settings a resumed run may change: how long it goes on and where it runs. Any other (learning rate,
# batch size, schedule, validation sample...) would not be an exact resume: the restored optimizer and schedule
# would silently keep the old values, or the early-stopping record would compare other quantities.
# Features: where the weights are and how extraction runs (the weights' identity is checked apart), so a resume after
# the backbone folder moved goes on.
RESUMABLE = {"training": frozenset({"epochs", "patience", "bf16", *TrainingSettings.RUN_KEYS}),
             "features": frozenset({*FeaturesSettings.LOCATION_KEYS, *FeaturesSettings.RUN_KEYS})}
TRAIN_LOCK = "train.lock"


@dataclass
class TrainResult:
    """What a training run did: per-epoch history, the best epoch, where checkpoints went, speed."""

    history: list[EpochRecord]
    monitor: str
    best_metric: float
    best_epoch: int
    stopped_early: bool
    best_path: Path | None
    last_path: Path | None
    combo: str
    device: str
    world_size: int
    n_train_interactions: int
    n_users: int
    n_items: int
    interactions_per_s: float  # mean over the epochs run now
    epochs_run: int  # epochs trained by this call (0: a resumed run with none left)
    seconds_per_epoch: float
    peak_memory_mb: float  # max RSS of this process (CPU) or max CUDA memory allocated
    resumed_from: Path | None = None
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    # The blended item-item model: blend weight, half-life, validation metric per pair tried (None = off).
    item_item: dict[str, Any] | None = None
    # The monitored metric per validation user of the final model (best epoch + chosen blend), in the
    # trainer's validation-user order; None unless asked for (run_train(per_user=True)), without
    # validation data or off rank 0. `mmrec tune` compares trials user by user with it.
    val_per_user: np.ndarray | None = None
    # Every validation user is new: validation ranks one same list for all, so it ties every candidate.
    validation_all_new: bool = False


def _encoders(settings: Settings, train: Any, ctx: DistContext) -> tuple[IdEncoder, IdEncoder]:
    """Encoders fitted on train. Every checkpoint carries its own; rank 0 also writes them to
    checkpoint_dir/encoders, the copy `mmrec encoders show` reads (nothing loads models from it)."""
    users, items = fit_encoders(train)
    if ctx.is_main:
        save_encoders(Path(settings.paths.checkpoint_dir), users, items)
    return users, items


def _features(settings: Settings, items: Any, device: torch.device, ctx: DistContext,
              progress: ProgressCallback) -> Any | None:
    """Vision/text features on the training device, of the modalities the model reads (None: neither)."""
    if not settings.model.modalities:
        return None
    from mmrec.features.item_features import load_item_features

    def load() -> Any:
        return load_item_features(items, settings.features, settings.cache, Path(settings.paths.cache_dir), device,
                                  progress, settings.model.modalities)

    # Rank 0 computes missing features first; the others then read them from the shared cache.
    features = load() if ctx.is_main else None
    barrier(ctx)
    return features if features is not None else load()


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@dataclass
class UntrainedIds:
    """Encoder indices of the items and users train.csv holds only in the validation holdout: training never
    sees them, so a checkpoint gives their id rows the values of row 0, the "no id" row training read them as."""

    items: np.ndarray
    users: np.ndarray

    def tie_to_unseen(self, model: TwoTowerModel) -> None:
        """Copy row 0 of every id-indexed table into these ids' rows (in place; training never reads them)."""
        tables = [(getattr(model.item_tower, "id_embedding", None), self.items),
                  (model.user_tower.history_embedding, self.items), (model.user_tower.id_embedding, self.users)]
        with torch.no_grad():
            for table, rows in tables:
                if table is not None and len(rows) and table.num_embeddings > 1:
                    table.weight[torch.as_tensor(rows, device=table.weight.device)] = table.weight[0].clone()


@dataclass
class TrainingInputs:
    """What a run trains on: the split, fitted encoders, the scaled catalogue and the training tensors."""

    split: Any
    users: IdEncoder
    item_encoder: IdEncoder
    item_ids: list[str]
    columns: list[str]
    scaler: Any
    catalogue: Any
    data: Any
    dims: ModelDims
    holdout: str | None = None  # the note when validation was carved out of train
    full_train: Any = None  # all of train.csv (split.train lacks the holdout)
    feature_identities: dict[str, str | None] = field(default_factory=dict)  # ItemFeatures.identities
    untrained: UntrainedIds | None = None  # ids of a holdout's own items and users
    categories: CategoryVocab | None = None  # the category values with an embedding (None: no category token)
    category_note: str | None = None  # category columns that got no token


def prepare_training(settings: Settings, device: torch.device, ctx: DistContext,
                     progress: ProgressCallback = null_progress) -> TrainingInputs:
    """Load the split and item features and build the training inputs (also used by bench/train_throughput.py)."""
    items = load_items(Path(settings.paths.processed_dir))
    full = load_split(Path(settings.paths.splits_dir), test=False)  # training never opens test.csv
    # Encoders know every user and item of the whole train.csv: evaluate and recommend read all of it.
    users, item_encoder = _encoders(settings, full.train, ctx)
    split, holdout = _validation_holdout(settings, full)
    if holdout is not None:
        progress(ProgressEvent("holdout", message=holdout, done=True))
    features = _features(settings, items, device, ctx, progress)
    columns = informative_columns(items, settings.data.numerical_features_cols)  # recorded in the checkpoint
    scaler = fit_numeric_scaler(items, columns, split.train)
    trained_items = pd.Index(split.train["item_id"].astype(str).unique())
    vocab, category_note = category_vocab(items, settings, trained_items)  # recorded in the checkpoint
    item_ids = items["item_id"].astype(str).tolist()
    # A holdout's own items and users have ids (evaluate and recommend read all of train.csv) but no training row:
    # training reads them as unseen (id 0, the learned "no id" row), and checkpoints give their rows row 0's values.
    item_index = np.where(pd.Index(item_ids).isin(trained_items), item_encoder.encode(item_ids), 0)
    catalogue = scaled_catalogue(items, item_index, features, columns, scaler, split.train, device,
                                 vocab.encode(items) if vocab is not None else None)
    data = build_training_data(split.train, split.val, item_ids, users, settings.model.user_history_length, device,
                               settings.training.validation_user_cap(len(item_ids)), settings.training.seed)
    dims = ModelDims(len(users), len(item_encoder), int(catalogue.vision.shape[1]), int(catalogue.text.shape[1]),
                     int(catalogue.numeric.shape[1]), tuple(vocab.sizes) if vocab is not None else ())
    untrained = UntrainedIds(
        items=_untrained(item_encoder, full.train["item_id"], trained_items),
        users=_untrained(users, full.train["user_id"], pd.Index(split.train["user_id"].astype(str).unique())))
    return TrainingInputs(split, users, item_encoder, item_ids, columns, scaler, catalogue, data, dims, holdout,
                          full.train, features.identities if features is not None else {}, untrained, vocab,
                          category_note)


def category_vocab(items: pd.DataFrame, settings: Settings, trained_items: pd.Index
                   ) -> tuple[CategoryVocab | None, str | None]:
    """The category values the model learns embeddings for (mmrec.data.categories): held by
    model.category_min_items catalogue items, one at least among `trained_items`; None without category columns
    (or with model.use_categories off). A column without such a value has no token, and the note says so."""
    if not (settings.model.use_categories and settings.data.category_columns):
        return None, None
    minimum = settings.model.category_min_items
    trained = items["item_id"].astype(str).isin(trained_items).to_numpy()
    vocab = CategoryVocab.fit(items, settings.data.category_columns, minimum, trained)
    held = {name: values for name, values in vocab.values.items() if values}
    empty = [name for name in vocab.values if name not in held]
    note = (f"Category column(s) {', '.join(map(repr, empty))} (data.category_columns) hold no value shared by "
            f"{minimum} or more catalogue items of which one has a training interaction (model.category_min_items "
            f"{minimum}): no token reads them." if empty else None)
    return (CategoryVocab(held) if held else None), note


def _untrained(encoder: IdEncoder, ids: Any, trained: pd.Index) -> np.ndarray:
    """Encoder indices of the `ids` (all of train.csv) that no training row has (a holdout's own)."""
    known = pd.Index(ids.astype(str).unique())
    return np.sort(encoder.encode(list(known[~known.isin(trained)]))).astype(np.int64)


def _validation_holdout(settings: Settings, split: SplitFrames) -> tuple[SplitFrames, str | None]:
    """The split to train on, and a note when validation was carved out of train (no validation rows,
    training.holdout_ratio > 0), following the strategy recorded in split_report.json."""
    ratio = settings.training.holdout_ratio
    if len(split.val) or ratio <= 0 or split.train.empty:
        return split, None
    strategy = str(read_split_report(Path(settings.paths.splits_dir)).get("strategy", "stratified"))
    train, val = holdout_validation(split.train, ratio, strategy, settings.training.seed)
    note = (f"No validation rows (val.csv empty or missing): {len(val):,} of {len(split.train):,} training "
            f"interactions ({val['user_id'].nunique():,} users; training.holdout_ratio {ratio:g}, {strategy} "
            "like the split) "
            "are held out as validation for early stopping and the blend choices; evaluate uses all of train.csv "
            "(recommend every processed interaction).")
    return SplitFrames(train, val, split.test), note


def run_train(settings: Settings, resume: Path | None = None, progress: ProgressCallback = null_progress,
              per_user: bool = False) -> TrainResult:
    """Train the multimodal model on the split under settings.paths and write organized checkpoints.

    per_user: also rank the validation users once more with the final model and return their
    monitored metric (TrainResult.val_per_user; `mmrec tune` compares trials with it).
    One run at a time per checkpoint folder: a second `mmrec train` into it stops at once (ConfigError)."""
    ctx = context_from_env()
    folder = Path(settings.paths.checkpoint_dir) / settings.features.combo
    lock = (ProcessLock(folder / TRAIN_LOCK, f"Another `mmrec train` is writing checkpoints into {folder}",
                        "Wait for it to finish, or train into another folder (MMREC_PATHS__CHECKPOINT_DIR=...).")
            if ctx.is_main else contextlib.nullcontext())
    # Its split and processed data must not change under it: `mmrec split` and `mmrec preprocess` refuse meanwhile.
    with lock, contextlib.ExitStack() as marks:
        for read in (settings.paths.splits_dir, settings.paths.processed_dir) if ctx.is_main else ():
            marks.enter_context(mark_in_use(Path(read), f"A `mmrec train` into {folder}"))
        return _train(settings, ctx, resume, progress, per_user)


def _train(settings: Settings, ctx: DistContext, resume: Path | None, progress: ProgressCallback,
           per_user: bool) -> TrainResult:
    device = init_distributed(ctx, resolve_device(settings.training.device))
    if not ctx.is_main:
        progress = null_progress
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    notes: list[str] = []
    seed_everything(settings.training.seed)
    inputs = prepare_training(settings, device, ctx, progress)
    split, users, item_encoder, item_ids = inputs.split, inputs.users, inputs.item_encoder, inputs.item_ids
    catalogue, data, dims, columns, scaler = inputs.catalogue, inputs.data, inputs.dims, inputs.columns, inputs.scaler
    notes += [note for note in (inputs.holdout, inputs.category_note) if note is not None]
    if settings.training.validate_on == "cold_items":
        notes.append("training.validate_on is cold_items: the best epoch and the blend are chosen for ranking "
                     "items without train interactions among themselves. Against the whole catalogue such a model "
                     "can rank far below one chosen with validate_on: all, so serve it for cold items (e.g. "
                     "recommend --new-items) and train with validate_on: all for everyday lists.")
    splits_dir = Path(settings.paths.splits_dir)
    train_sha256 = sha256_file(splits_dir / "train.csv")  # recorded, and checked by --resume
    stale = stale_processed_note(settings) or stale_split_note(splits_dir, Path(settings.paths.processed_dir))
    off_catalogue = sum(data.skipped.get(f"{part}_interactions_on_items_not_in_catalogue", 0)
                        for part in ("train", "val"))
    if stale:
        notes.append(stale)
        progress(ProgressEvent("split", message=stale))  # before training, when the user can still act on it
    elif off_catalogue:  # a split whose report does not name its input
        notes.append(f"{off_catalogue:,} split interaction(s) name items the processed catalogue lacks: the split "
                     "predates the last `mmrec preprocess`. Run `mmrec split` again to split the current data.")
    combo = settings.features.combo
    n_val_users = len(data.val_users)
    all_new = bool(n_val_users) and data.skipped.get("val_users_unseen_in_train", 0) == n_val_users
    if all_new:  # the `user` strategy holds out whole users: none has a history to rank from
        notes.append(f"Every one of the {n_val_users:,} validation users is new (no training interaction, as when "
                     "whole users are held out): each model serves them one same list, so validation cannot tell the "
                     "epochs or the blends apart. The best epoch and the blend weights below are ties broken by "
                     "order, not choices (but the recency of that list, model.fallback_halflife, which they decide); "
                     "validate on users with a history (a per-user split) to choose them.")
        progress(ProgressEvent("validation", message=notes[-1]))

    seed_everything(settings.training.seed)  # same initial weights whatever ran before
    model = TwoTowerModel(settings.model, dims)
    lacking = [m for m in ("vision", "text") if m not in model.item_tower.modalities]
    if settings.model.use_contrastive and lacking:
        why = {m: f"model.use_{m} is false" if not getattr(settings.model, f"use_{m}") else f"no item has {m} input"
               for m in lacking}
        notes.append(f"model.use_contrastive is on, but the item tower reads no {' and no '.join(lacking)} "
                     f"({'; '.join(why.values())}): there is no image-text pair to align, so no contrastive loss "
                     "is trained.")
        progress(ProgressEvent("contrastive", message=notes[-1]))
    recorded = {name: settings_as_dict(settings)[name] for name in RECORDED_SECTIONS}
    tracker = NullTracker()
    if ctx.is_main:
        tracker = make_tracker(settings.tracking, {**recorded, "world_size": ctx.world_size},
                               Path(settings.paths.results_dir))
        if tracker.note:
            notes.append(tracker.note)
            progress(ProgressEvent("tracking", message=tracker.note))
    model_cfg = settings.model
    if distill_weight(model_cfg, settings.training) > 0 and len(item_ids) > model_cfg.item_item_max_items:
        notes.append(f"No distillation: its teacher, the item-item model, is off above model.item_item_max_items "
                     f"({model_cfg.item_item_max_items:,} items; this catalogue has {len(item_ids):,}).")
        model_cfg = model_cfg.model_copy(update={"distill_weight": 0.0})
    # A resume is checked before the trainer is built (which fits the distillation teacher: minutes).
    resumed = (_resume_state(Path(resume), dims, users, item_encoder, recorded, device, inputs.feature_identities,
                             train_sha256, Path(settings.paths.checkpoint_dir),
                             inputs.categories.to_dict() if inputs.categories is not None else {})
               if resume is not None else None)
    # A resume continues its run's id: best and last checkpoints of one run say so, whatever failed between them.
    run_id = ((resumed.get("meta") or {}).get("run_id") if resumed is not None else None) or uuid.uuid4().hex
    trainer = Trainer(model, data, catalogue, model_cfg, settings.training, device,
                      k_values=settings.evaluation.k_values, eval_batch_size=settings.evaluation.batch_size,
                      dist_ctx=ctx, progress=progress, tracker=tracker)
    if resumed is not None:
        trainer.load_state_dict(resumed)
        notes.append(f"Resumed from {resume} after epoch {trainer.epoch}.")
        trained_by = int(resumed.get("world_size", 1))
        if trained_by != ctx.world_size:
            notes[-1] += (f" That run had {trained_by} process(es) and this one has {ctx.world_size}: the shards and "
                          f"steps per epoch differ, so the run continues, but not exactly as it would have.")
        if trainer.epoch >= settings.training.epochs:
            notes[-1] += (f" training.epochs is {settings.training.epochs}, so no epoch is left to train: "
                          f"raise it (--epochs) to continue training.")
        elif trainer.stopped_early:
            stopper = trainer.stopper
            notes[-1] += (f" Early stopping had ended that run ({stopper.bad_epochs} epochs without improving on "
                          f"epoch {stopper.best_epoch}; training.patience is {stopper.patience}), so no epoch is "
                          f"trained: raise training.patience to continue training.")
        progress(ProgressEvent("resume", message=notes[-1]))

    base_spec = {
        "combo": combo,
        "model_args": dims.to_dict(),
        "settings": recorded,
        "encoders": EncoderFingerprints(user=users.fingerprint, item=item_encoder.fingerprint),
        "n_users": len(users) - 1,
        "n_items": len(item_ids),
        "numeric": NumericSpec.of(columns, COUNT_FEATURE, scaler),
        "categories": inputs.categories.to_dict() if inputs.categories is not None else {},
        "backbones": {"combo": combo, "vision_dim": dims.vision_dim, "text_dim": dims.text_dim,
                      "weights": inputs.feature_identities},
        # Without validation rows early stopping and the best epoch follow the negated training loss: the label says so.
        "monitor": settings.training.monitor if data.val_relevant.nnz else NO_VALIDATION_MONITOR,
        # The train.csv trained on: evaluate refuses a test split whose rows this model may have trained on.
        "split": {"splits_dir": str(splits_dir), "train_sha256": train_sha256},
        "run_id": run_id,
    }
    encoders = encoder_state(users, item_encoder)
    checkpoint_dir = Path(settings.paths.checkpoint_dir)
    best_path, last_path = checkpoint_path(checkpoint_dir, combo, BEST), checkpoint_path(checkpoint_dir, combo, LAST)

    # The finished model this run may replace: an earlier run's, or (resumed with more epochs) this run's own, whose
    # blend may validate higher than the blend a later best epoch gets. Only one validated on the same split
    # compares (_settle_previous); an interrupted run's unfinished best is not kept.
    earlier = _meta_or_none(best_path) if ctx.is_main else None
    previous_path = best_path.with_name(PREVIOUS)
    # Served until this run's first best epoch replaces it, and copied then (not before: a run stopped before it
    # changes nothing): kept until the run ends, so an interrupted run does not leave only its unfinished model
    # (evaluate and recommend then say where the finished one is).
    keep = {"pending": earlier is not None and earlier.get("finished") is not False, "copied": False}

    def write_checkpoints(record: EpochRecord, current: Trainer) -> None:
        spec = {**base_spec, "epoch": record.epoch, "monitored_value": record.monitored, "metrics": record.val,
                "loss": record.loss, "best_epoch": current.stopper.best_epoch, "best_value": current.stopper.best}
        if inputs.untrained is not None:
            inputs.untrained.tie_to_unseen(current.module)
        if record.is_best:  # weights only: what evaluate/recommend need; unfinished until the run ends
            if keep["pending"]:
                _keep_earlier(best_path, previous_path, base_spec["split"]["train_sha256"])
                keep.update(pending=False, copied=True)
            save_checkpoint(best_path, {"model": current.module.state_dict(), "epoch": record.epoch,
                                        "encoders": encoders},
                            CheckpointSpec(kind="best", finished=False, **spec).to_meta())
        save_checkpoint(last_path, {**current.state_dict(), "encoders": encoders},
                        CheckpointSpec(kind="last", **spec).to_meta())

    epochs_before = trainer.epoch
    train_sha = base_spec["split"]["train_sha256"]
    if note := _other_weights_note(earlier, best_path, inputs.feature_identities):
        notes.append(note)
        progress(ProgressEvent("train", message=note))
    history = trainer.fit(on_epoch_end=write_checkpoints)
    strategy = str(read_split_report(splits_dir).get("strategy", ""))
    if note := _validation_note(history[epochs_before:], trainer.monitor, data.val_relevant.nnz > 0, strategy,
                                settings.training.validate_on):
        notes.append(note)
    item_item, val_per_user = None, None
    # A resumed run with no epoch left keeps the blend its best checkpoint already records (choosing it again
    # would cost minutes and rewrite best_model.pth for the same weights).
    recorded = (read_meta(best_path).get("item_item") if resume is not None and trainer.epoch == epochs_before
                and not per_user and best_path.is_file() else None)
    if recorded is not None:
        item_item = ItemItemSpec.model_validate(recorded)
        notes.append(f"No epoch was trained, so the item-item blend {best_path.name} records stands (weight "
                     f"{item_item.blend:g}); it is chosen again when training continues.")
    elif ctx.is_main and best_path.is_file():
        best = load_checkpoint(best_path, map_location=trainer.device)
        trainer.module.load_state_dict(best["model"])
        chosen = _blend_item_item(trainer, settings, split.train, users, item_ids, best_path, best, notes, progress,
                                  refit=inputs.holdout is not None)
        item_item = chosen[0] if chosen is not None else None
        if inputs.holdout is not None and item_item is not None and item_item.blend > 0:
            _refit_for_serving(settings, inputs.full_train, device, progress)
        if chosen is None:  # no blend recorded it: the run's end is written here
            _mark_finished(best_path, best)
        if per_user:
            val_per_user = trainer.validation_per_user(chosen[1] if chosen is not None else trainer.scorer())
    if ctx.is_main and keep["copied"] and (note := _settle_previous(best_path, previous_path, train_sha,
                                                                     trainer.monitor)):
        notes.append(note)
    tracker.summary(_served_summary(trainer, item_item))
    tracker.finish()
    barrier(ctx)
    ran = history[epochs_before:]
    seconds = [r.seconds for r in ran]
    return TrainResult(
        history=history,
        monitor=settings.training.monitor,
        best_metric=trainer.stopper.best,
        best_epoch=trainer.stopper.best_epoch,
        stopped_early=trainer.stopped_early,
        best_path=best_path if best_path.is_file() else None,
        last_path=last_path if last_path.is_file() else None,
        combo=combo,
        device=str(device),
        world_size=ctx.world_size,
        n_train_interactions=len(data.pairs),
        n_users=len(users) - 1,
        n_items=len(item_ids),
        interactions_per_s=float(np.mean([r.interactions_per_s for r in ran])) if ran else 0.0,
        epochs_run=len(ran),
        seconds_per_epoch=float(np.mean(seconds)) if seconds else 0.0,
        peak_memory_mb=_peak_memory_mb(device),
        resumed_from=Path(resume) if resume is not None else None,
        notes=notes,
        skipped={k: v for k, v in data.skipped.items() if v},
        item_item=item_item.model_dump() if item_item is not None else None,
        val_per_user=val_per_user,
        validation_all_new=all_new,
    )


NO_VALIDATION_MONITOR = "-train_loss"  # what a run without validation rows monitors (Trainer.fit)


def _meta_or_none(path: Path) -> dict[str, Any] | None:
    """The metadata of checkpoint `path`, or None when there is none or it does not read."""
    try:
        return read_meta(path) if path.is_file() else None
    except MmrecError:
        return None


def _other_weights_note(earlier: dict[str, Any] | None, best_path: Path,
                        identities: dict[str, str | None]) -> str | None:
    """A note when the model this run is about to replace (`earlier`, its metadata) read features of other backbone
    weights (the same combo name, e.g. a local sentence-bert folder instead of the default one): evaluate and
    recommend with either config then serve this run's model."""
    recorded = ((earlier or {}).get("backbones") or {}).get("weights") or {}
    changed = [f"{modality} {before} -> {identities[modality]}" for modality, before in recorded.items()
               if before and identities.get(modality) and identities[modality] != before]
    if not changed:
        return None
    return (f"This run replaces the model in {best_path.parent}, which was trained on features of other backbone "
            f"weights ({'; '.join(changed)}): evaluate and recommend will serve this run's model. To keep both, train "
            "into another folder (paths.checkpoint_dir, e.g. MMREC_PATHS__CHECKPOINT_DIR=...).")


def _keep_earlier(best_path: Path, previous_path: Path, train_sha256: str) -> None:
    """Before this run's first best epoch replaces best_model.pth: copy it to previous_best_model.pth, unless the
    model kept there by an earlier run validated at least as high on the same train.csv (it stays: a run that
    replaced the best model with a lower one, then another run, had lost the best of the three)."""
    kept = _final_value(_meta_or_none(previous_path), train_sha256)
    served = _final_value(_meta_or_none(best_path), train_sha256)
    if kept is None or (served is not None and served[0] > kept[0]):
        copy_checkpoint(best_path, previous_path)


def _settle_previous(best_path: Path, previous_path: Path, train_sha256: str, monitor: str) -> str | None:
    """Once this run's best_model.pth is finished, the earlier run's copy kept while it trained: kept, with a note,
    when it validated higher on the same train.csv; else removed (a model of another split does not compare)."""
    current, kept = _meta_or_none(best_path), _meta_or_none(previous_path)
    if kept is None or current is None or current.get("finished") is False:
        return None
    final, previous = _final_value(current, train_sha256), _final_value(kept, train_sha256)
    if final is None or previous is None or final[0] >= previous[0]:
        remove_checkpoint(previous_path)
        return None
    return (f"The model of an earlier run{previous[1]} validated higher than this run's, which now is "
            f"{best_path.name} ({monitor} {previous[0]:.4f}; this run {final[0]:.4f}). That model is kept as "
            f"{previous_path}: "
            f"evaluate or recommend it with --checkpoint-name {PREVIOUS}, or move it back over {best_path.name} to "
            f"serve it (a later run into this folder keeps the better of it and the model it replaces). To keep "
            f"models side by side, train into another folder "
            f"(MMREC_PATHS__CHECKPOINT_DIR=...).")


def _final_value(meta: dict[str, Any] | None, train_sha256: str) -> tuple[float, str] | None:
    """(the validation value a best checkpoint (its metadata `meta`) ends at: its blend's when chosen, else its
    epoch's; ' of <date>'), or None without one or when it trained on another train.csv than `train_sha256`."""
    if meta is None:
        return None
    if (meta.get("split") or {}).get("train_sha256") != train_sha256:
        return None
    value = (meta.get("item_item") or {}).get("monitored")
    value = meta.get("monitored_value") if value is None else value
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    created = str(meta.get("created_at") or "")[:16].replace("T", " ")
    return float(value), f" of {created} UTC" if created else ""


def _blend_item_item(trainer: Trainer, settings: Settings, train: Any, users: IdEncoder, item_ids: list[str],
                     best_path: Path, state: dict[str, Any], notes: list[str], progress: ProgressCallback,
                     refit: bool = False) -> tuple[ItemItemSpec, Scorer] | None:
    """Choose the item-item blend for the best epoch's weights (`state`, loaded from `best_path`; the
    trainer must hold them) and record it in the best checkpoint; returns it and the blended scorer, or
    None (no blend). refit: the served item-item model is refitted on all of train.csv (a holdout)."""
    chosen = choose_item_item_blend(trainer, settings.model, train, users, item_ids, notes,
                                    ItemItemStore.beside(best_path, settings.cache.item_item_fits), refit=refit
                                    ) if settings.model.item_item else None
    if chosen is None:
        return None
    choice, scorer = chosen
    spec = CheckpointSpec.from_meta(state["meta"], best_path).model_copy(update={"item_item": choice, "finished": True})
    save_checkpoint(best_path, {key: state[key] for key in ("model", "epoch", "encoders") if key in state},
                    spec.to_meta())
    monitored = choice.monitored if choice.monitored is not None else float("nan")
    progress(ProgressEvent("item_item", message=f"item-item blend {choice.blend:g}, half-life {choice.halflife:g}, "
                           + (f"content similarity {choice.content_blend:g} ({choice.content_modality})"
                              if choice.content_blend else "no content similarity")
                           + (f", transitions {choice.sequence_blend:g}"
                              + (f": {describe_variant(choice.sequence_directions, choice.sequence_halflife)}"
                                 if choice.sequence_blend else "") if choice.sequence_grid else "")
                           + (f", popularity {choice.trend_blend:g}"
                              + (f" ({describe_halflife(choice.trend_halflife_days)})" if choice.trend_blend else "")
                              if choice.trend_grid else "")
                           + (f", cold items by content {choice.cold_blend:g}"
                              + (f" ({choice.cold_modality})" if choice.cold_blend else "") if choice.cold_grid else "")
                           + (f", cold items shifted {choice.cold_shift:g}" if choice.cold_shift_grid else "")
                           + (", new users' popularity " + (f"half-life {days(choice.fallback_halflife_days)}"
                                                            if choice.fallback_halflife_days else "of all time")
                              if choice.fallback_grid else "")
                           + f" (val {trainer.monitor} {monitored:.4f})"))
    return choice, scorer


def _validation_note(ran: list[EpochRecord], monitor: str, validated: bool, strategy: str,
                     validate_on: str) -> str | None:
    """A note when validation gave the same value at every epoch of several (early stopping had nothing to go on,
    and the first epoch was kept), naming the likely cause: an item split validated on the whole catalogue; else,
    for an item split validated so, what the other choice of training.validate_on is for."""
    values = {round(record.monitored, 12) for record in ran}
    if not validated:
        return None
    if (len(ran) < 2 or len(values) != 1) and strategy == "item" and validate_on != "cold_items":
        return ("Every validation item of this item split is cold (no train interaction), and validation ranked them "
                "against the whole catalogue (training.validate_on: all), as evaluate's main table ranks test items. "
                "To choose the model for ranking new items among themselves (evaluate's cold-item table, recommend "
                "--new-items), train with training.validate_on: cold_items.")
    if len(ran) < 2 or len(values) != 1:
        return None
    cause = (" With --strategy item every validation item is new, and no ranking of the whole catalogue puts them "
             "first: training.validate_on: cold_items ranks them among themselves." if strategy == "item"
             and validate_on != "cold_items" else "")
    return (f"Validation {monitor} was {ran[0].monitored:.4f} at every one of the {len(ran)} epochs: early stopping "
            f"and the best epoch had nothing to go on, so the first epoch's model was kept.{cause}")


def _mark_finished(best_path: Path, state: dict[str, Any]) -> None:
    """Record in the best checkpoint that its training run ended (its weights as they are)."""
    spec = CheckpointSpec.from_meta(state["meta"], best_path)
    if spec.finished is False:
        save_checkpoint(best_path, {key: state[key] for key in ("model", "epoch", "encoders") if key in state},
                        spec.model_copy(update={"finished": True}).to_meta())


def _served_summary(trainer: Any, item_item: ItemItemSpec | None) -> dict[str, Any]:
    """What the tracker's run summary says of the model as served: the best epoch, the two-tower model's
    validation at it, and the blend validation chose with its validation (the figure evaluate and tune read)."""
    monitor = trainer.monitor
    values: dict[str, Any] = {"selected/epoch": trainer.stopper.best_epoch,
                              f"selected/two_tower/{monitor}": trainer.stopper.best}
    if item_item is not None:
        values |= {f"selected/val/{name}": value for name, value in item_item.val.items()}
        values |= {f"selected/blend/{name}": getattr(item_item, name)
                   for name in ("blend", "halflife", "l2", "content_blend", "sequence_blend", "trend_blend",
                                "cold_blend")}
    else:
        values[f"selected/val/{monitor}"] = trainer.stopper.best
    return values


def _refit_for_serving(settings: Settings, train: Any, device: torch.device, progress: ProgressCallback) -> None:
    """Validation was carved out of train, so the chosen item-item model was fitted on part of it. Fit it
    on all of train.csv now, through the recommender evaluate and recommend build: the fit lands in the
    best checkpoint's item-item store, where they find it instead of refitting on every call."""
    if settings.cache.item_item_fits <= 0:  # no store: every evaluate/recommend fits for itself
        return
    from mmrec.pipeline.evaluate import load_recommender

    progress(ProgressEvent("item_item_refit", done=True,
                           message="Fitting the chosen item-item model on all of train.csv (what evaluate and "
                                   "recommend use)."))
    load_recommender("multimodal", settings, load_items(Path(settings.paths.processed_dir)), train, device,
                     progress=progress)


def _run_of(path: Path) -> str | None:
    """The run id a checkpoint records (None: none there, unreadable, or written before run ids)."""
    try:
        return read_meta(path).get("run_id") if path.is_file() else None
    except MmrecError:
        return None


def _resume_state(path: Path, dims: ModelDims, users: IdEncoder, items: IdEncoder, recorded: dict[str, Any],
                  device: torch.device, identities: dict[str, str | None], train_sha256: str,
                  checkpoint_dir: Path, categories: dict[str, list[str]]) -> dict[str, Any]:
    """The full training state to resume from; the run must have the same data (train.csv), encoders, category
    values, features, model settings, features and training settings (but the RESUMABLE keys), and the best
    checkpoint in `checkpoint_dir`, if any, must be that run's."""
    state = load_checkpoint(path, map_location=device)
    check_training_state(state)
    spec = CheckpointSpec.from_meta(state.get("meta"), path)
    trained_on = (spec.split or {}).get("train_sha256")
    if trained_on and trained_on != train_sha256:
        raise CheckpointError(
            f"Checkpoint {path} was trained on another train.csv than the split holds now (another project's, "
            "or split again since?): resuming would go on from weights that trained on rows this split may hold "
            "out for validation and test.",
            hint="Resume with the config it was trained with, train from scratch (without --resume), or restore the "
                 "split the checkpoint was trained on.")
    best = checkpoint_path(Path(checkpoint_dir), spec.combo, BEST)
    best_run = _run_of(best)
    if spec.run_id is not None and best_run is not None and best_run != spec.run_id:
        if best.parent.resolve() != Path(path).parent.resolve():  # a checkpoint from another folder
            raise CheckpointError(
                f"Checkpoint {path} is not in the folder this run writes to ({best.parent}), whose best_model.pth is "
                "another training run's: resuming would finish with that run's model.",
                hint="Resume with the config that trained it (its paths.checkpoint_dir), or train from scratch.")
        raise CheckpointError(
            f"{best} is from another training run than {path}: a later run wrote it (then stopped before its "
            "own last_model.pth was saved, e.g. a full disk). The best weights of the run being resumed are gone, "
            "so resuming would finish with another run's model.",
            hint="Train from scratch (without --resume); or move that best_model.pth away if it is the one to drop.")
    spec.check_encoders(users, items, path)
    spec.check_feature_identities(identities, path)
    if ModelDims(**spec.model_args) != dims:
        raise CheckpointError(
            f"Checkpoint {path} was built for {spec.model_args}, this run needs {dims.to_dict()}.",
            hint="Resume with the same config and data the checkpoint was trained with.",
        )
    if spec.categories != categories:  # the same counts can hold other values: each row would serve another one
        name = next(name for name in {**spec.categories, **categories}
                    if spec.categories.get(name) != categories.get(name))
        then, now = spec.categories.get(name, []), categories.get(name, [])
        differ = sorted(set(then) ^ set(now))
        raise CheckpointError(
            f"Checkpoint {path} learned other values of category column {name!r} than the catalogue holds now "
            f"({len(then):,} then, {len(now):,} now"
            + (f"; e.g. {differ[0]!r} is in one and not the other" if differ else "") + "): resuming would "
            "give its embeddings to other values.",
            hint="Resume with the catalogue it was trained on (the same item_info and data.category_columns), or "
                 "train from scratch (without --resume).")
    defaults = {"model": ModelSettings, "features": FeaturesSettings, "training": TrainingSettings}
    for section in ("model", "features", "training"):
        then, now = spec.settings.get(section), recorded[section]
        if then is None:
            continue
        # A setting added since the checkpoint was written is not recorded there: it ran as the default does.
        then = {**defaults[section]().model_dump(mode="json"), **then}
        differ = [f"{section}.{key} {then.get(key)!r} -> {now.get(key)!r}" for key in sorted({*then, *now})
                  if then.get(key) != now.get(key) and key not in RESUMABLE.get(section, ())]
        if differ:
            allowed = (f" (a resume may change {', '.join(f'{section}.{key}' for key in sorted(RESUMABLE[section]))})"
                       if section in RESUMABLE else "")
            raise CheckpointError(
                f"The {section} settings differ from those checkpoint {path} was trained with: "
                f"{', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}{allowed}.",
                hint="Resume with the same --config (see `mmrec checkpoints info`), or train from scratch with the "
                     "new settings (without --resume).",
            )
    return state
