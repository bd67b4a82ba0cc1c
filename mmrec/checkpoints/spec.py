"""CheckpointSpec: everything a checkpoint needs to score on its own, as one typed description.

A trained checkpoint holds its weights, its user/item id lists (`state["encoders"]`) and this
spec (embedded as `state["meta"]`, copied to the JSON sidecar): the model dims and settings, the
feature combo, the numeric scaler and the item-item model chosen on validation. Evaluate and
recommend rebuild the model from it alone (`load_trained`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from mmrec.checkpoints.store import BEST, CHECKSUM, read_checkpoint, read_meta, served_checkpoint
from mmrec.data.encoders import IdEncoder, encoder_paths, load_encoders
from mmrec.data.numeric import NumericScaler
from mmrec.errors import CheckpointError
from mmrec.settings import FeaturesSettings, ModelSettings

log = logging.getLogger(__name__)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ItemItemSpec(_Spec):
    """The blend chosen on validation: the item-item model's weight and recency half-life, then the
    content-similarity weight and modality, then the transition weight and half-life, then the trend weight and
    half-life, last the weight and modality of content in the cold items' order (mmrec.training.blend), with their
    searches."""

    blend: float
    halflife: float
    l2: float  # lambda of the item-item model (chosen on validation when model.item_item_l2_search ran)
    content_weight: float
    neighbours: int | None = None  # k of the neighbourhood solver; None = the exact dense solver
    monitored: float | None = None  # validation metric of the chosen pair
    val: dict[str, float] = {}  # all validation metrics of the chosen pair
    val_grid: list[dict[str, float]] = []  # (halflife, blend, metric) of every pair tried
    l2_grid: list[dict[str, float]] = []  # (l2, metric) of every lambda tried, item-item model alone
    fit_seconds: float = 0.0  # the fit, with the lambda search's fits and validations when there was one
    search_seconds: float = 0.0  # the whole choice: the fit and lambda search, then every blend validated
    content_blend: float = 0.0  # weight of the content-profile scores (mmrec.models.content_profile)
    content_modality: str | None = None  # text | image | category, or several joined by + (text+image)
    content_grid: list[dict[str, Any]] = []  # (modality, content_blend, metric) of every pair tried
    sequence_blend: float = 0.0  # weight of the transition scores (mmrec.models.transitions)
    sequence_directions: Literal["next", "both"] = "next"  # next items, or items done close together either way
    sequence_halflife: float = 0.0  # their profile half-life
    sequence_window: int = 0  # transitions counted up to this many items ahead (and back, directions both)
    sequence_grid: list[dict[str, Any]] = []  # (directions, half-life, weight, metric) of every variant tried
    sequence_gain_se: float | None = None  # the best pair's paired gain over none, in standard errors
    trend_blend: float = 0.0  # weight of popularity, recent or of all time (mmrec.models.trend)
    trend_halflife_days: float = 0.0  # its half-life in days, 0 = all time
    trend_grid: list[dict[str, Any]] = []  # (trend_halflife_days, trend_blend, metric) of every pair tried
    trend_gain_se: float | None = None  # the best pair's paired gain over none, in standard errors
    cold_blend: float = 0.0  # weight of content similarity in the cold items' order among themselves
    cold_modality: str | None = None  # as content_modality
    cold_grid: list[dict[str, Any]] = []  # (cold_modality, cold_blend, cold-item metric, metric) of every pair tried
    cold_gain_se: float | None = None  # the best pair's paired gain over none on the cold items, in standard errors
    cold_shift: float = 0.0  # the cold items' scores moved by this many standard deviations of the user's, last
    cold_shift_grid: list[dict[str, Any]] = []  # (cold_shift, metric) of every shift tried
    cold_shift_gain_se: float | None = None  # the best shift's paired gain over none, in standard errors
    # The half-life (days) of the popularity list served to users without training interactions; None = all time
    fallback_halflife_days: float | None = None
    fallback_grid: list[dict[str, Any]] = []  # (fallback_halflife_days, metric): all time (0) first, then each tried
    fallback_gain_se: float | None = None  # the best half-life's paired gain over all time, in standard errors


class NumericSpec(_Spec):
    """The numeric item inputs: configured columns (+ the train count) and their fitted scaler."""

    columns: list[str]
    count_feature: str
    scaler: dict[str, list[float] | None]

    @classmethod
    def of(cls, columns: list[str], count_feature: str, scaler: NumericScaler) -> NumericSpec:
        return cls(columns=list(columns), count_feature=count_feature, scaler=scaler.to_dict())

    def build_scaler(self) -> NumericScaler:
        return NumericScaler.from_dict(self.scaler)


class EncoderFingerprints(_Spec):
    user: str
    item: str


class CheckpointSpec(BaseModel):
    """What `mmrec train` records with every checkpoint (extra keys, e.g. provenance, are kept)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["best", "last"]
    combo: str
    model_args: dict[str, Any]  # mmrec.models.towers.ModelDims
    settings: dict[str, dict[str, Any]]  # the recorded settings sections
    encoders: EncoderFingerprints
    n_users: int
    n_items: int
    numeric: NumericSpec
    categories: dict[str, list[str]] = {}  # per category column, the values with an embedding (CategoryVocab)
    backbones: dict[str, Any]
    monitor: str
    epoch: int
    monitored_value: float
    metrics: dict[str, float]
    loss: float
    best_epoch: int
    best_value: float
    item_item: ItemItemSpec | None = None
    split: dict[str, str] | None = None  # {"splits_dir", "train_sha256"}: the train.csv trained on (None before)
    # A best checkpoint written during training is False until its run ends (the blend chosen): still running,
    # or interrupted. None: written before this was recorded.
    finished: bool | None = None
    # One id per training run, kept by its resumes: which best and last checkpoints belong together (None before).
    run_id: str | None = None

    @classmethod
    def from_meta(cls, meta: Any, path: Path) -> CheckpointSpec:
        """The spec of checkpoint `path` from its metadata; CheckpointError when it lacks a field."""
        try:
            return cls.model_validate(meta)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise CheckpointError(f"Checkpoint {path} lacks the model description ({where}: {first['msg']}).",
                                  hint="Use a checkpoint written by `mmrec train`.") from None

    def to_meta(self) -> dict[str, Any]:
        return self.model_dump()

    def _section(self, name: str, cls: type[Any]) -> Any:
        try:
            return cls(**self.settings[name])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"The recorded {name} settings of this checkpoint are unusable ({exc}).",
                                  hint="Use a checkpoint written by this mmrec version, or retrain.") from None

    def model_settings(self) -> ModelSettings:
        return self._section("model", ModelSettings)

    def features_settings(self) -> FeaturesSettings:
        return self._section("features", FeaturesSettings)

    def features_note(self, here: FeaturesSettings, model: ModelSettings | None = None) -> str | None:
        """A note when this run's settings name other backbones, default weights where the checkpoint's were named,
        or another token limit than the model trained with, or (`model`) other inputs (model.use_vision, use_text,
        use_numeric, use_categories, use_id_embeddings): it serves as it was trained
        (MultimodalRecommender.from_checkpoint), whatever this run's settings say; None when they agree."""
        trained = self.features_settings()
        differ = []
        if model is not None:
            inputs = self.model_settings()
            differ += [f"model.{key} {str(then).lower()} (this config: {str(now).lower()})"
                       for key in ("use_id_embeddings", "use_vision", "use_text", "use_numeric", "use_categories")
                       if (then := getattr(inputs, key)) != (now := getattr(model, key))]
        for modality in self.model_settings().modalities:
            keys = (f"{modality}_backbone", f"{modality}_weights") + (("max_text_tokens",) if modality == "text" else ())
            for key in keys:
                then, now = getattr(trained, key), getattr(here, key)
                if key.endswith("_weights") and now is not None:  # this run's weights are used, their identity checked
                    continue
                if then != now:
                    differ.append(f"features.{key} {then!r} (this config: {now!r})")
        if not differ:
            return None
        return (f"The model served was trained with {', '.join(differ)}: it reads the item inputs it was trained "
                "on, computed as then. To serve with this config's, train with it (into another "
                "paths.checkpoint_dir to keep this model).")

    def check_feature_identities(self, identities: dict[str, str | None], path: Path) -> None:
        """CheckpointError when the item features now at hand are not those this checkpoint was trained on:
        another import (`mmrec cache import`) or other backbone weights for the same combo. Checkpoints written
        before identities were recorded, and modalities no item has now, are not checked."""
        recorded = self.backbones.get("weights") or {}
        for modality, trained in recorded.items():
            now = identities.get(modality)
            if trained is None or now is None or now == trained:
                continue
            imported = str(trained).startswith("imported:")
            raise CheckpointError(
                f"The {modality} features this run reads are "
                + (f"another import ({now}) than the one" if imported else f"computed with other weights ({now}) "
                   "than those") + f" checkpoint {path} was trained with ({trained}, combo "
                f"{self.backbones.get('combo')}): its item tower would read vectors it never learned from.",
                hint=("Import the vectors it was trained with again, or retrain with `mmrec train`." if imported
                      else "Use the backbone weights it was trained with (features.*_weights), or retrain."),
            )

    def check_encoders(self, users: IdEncoder, items: IdEncoder, path: Path) -> None:
        """CheckpointError when `users`/`items` are not the encoders this checkpoint was trained with."""
        for kind, encoder in (("user", users), ("item", items)):
            expected = getattr(self.encoders, kind)
            if expected != encoder.fingerprint:
                raise CheckpointError(
                    f"The {kind} id encoder (fingerprint {encoder.fingerprint[:12]}) is not the one checkpoint "
                    f"{path} was trained with ({expected[:12]}).",
                    hint="Use the data of that training run, or retrain with `mmrec train`.",
                )


def encoder_state(users: IdEncoder, items: IdEncoder) -> dict[str, list[str]]:
    """The id lists a checkpoint carries (`state["encoders"]`), so it needs no encoder files."""
    return {"user": users.ids, "item": items.ids}


@dataclass
class TrainedCheckpoint:
    """A checkpoint loaded for scoring: its spec, model weights and id encoders."""

    path: Path
    spec: CheckpointSpec
    weights: dict[str, torch.Tensor]
    users: IdEncoder
    items: IdEncoder
    meta: dict[str, Any]  # as read_meta gives it, of the bytes these weights were loaded from


def load_trained(path: Path, device: torch.device | str = "cpu") -> TrainedCheckpoint:
    """Everything scoring needs, from the checkpoint file alone (read once)."""
    path = Path(path)
    state, digest = read_checkpoint(path, map_location=device)
    embedded = state.get("meta")
    meta = {**embedded, CHECKSUM: digest} if isinstance(embedded, dict) else read_meta(path)  # older: its sidecar
    spec = CheckpointSpec.from_meta(embedded, path)
    ids = state.get("encoders")
    if isinstance(ids, dict) and {"user", "item"} <= set(ids):
        users = IdEncoder([str(v) for v in ids["user"]], "user")
        items = IdEncoder([str(v) for v in ids["item"]], "item")
    else:
        users, items = _legacy_encoders(path)
    spec.check_encoders(users, items, path)
    return TrainedCheckpoint(path, spec, state["model"], users, items, meta)


def load_served(checkpoint_dir: Path, combo: str | None, name: str | None = None,
                device: torch.device | str = "cpu") -> tuple[TrainedCheckpoint, str | None]:
    """The checkpoint evaluate and recommend serve (served_checkpoint's choice and note), loaded.

    The choice reads metadata, the load reads the file again: a training run that starts in between moves the
    finished model to previous_best_model.pth and saves its first epoch as best_model.pth, which the load then
    read (a cron overlap served an epoch-1 model, saying the finished one was served). So when what was loaded
    is an unfinished run's best_model.pth, the choice is made again, and followed when it now differs; and when the
    chosen file is gone by the load (a run that ended removed previous_best_model.pth), it is made again too."""
    for attempt in range(3):
        path, note = served_checkpoint(checkpoint_dir, combo, name)
        try:
            trained = load_trained(path, device)
        except CheckpointError:
            if path.exists() or attempt == 2:
                raise
            continue
        if name is not None or path.name != BEST or trained.meta.get("finished") is not False:
            break
        if served_checkpoint(checkpoint_dir, combo, name)[0] == path:  # no finished model to serve instead
            break
    return trained, note


def _legacy_encoders(path: Path) -> tuple[IdEncoder, IdEncoder]:
    """Checkpoints written before they carried their id lists: the shared encoders/ folder beside them."""
    for folder in (path.parent.parent, path.parent):
        if all(p.is_file() for p in encoder_paths(folder)):
            log.warning("Checkpoint %s holds no id encoders (older mmrec); using %s/encoders.", path, folder)
            return load_encoders(folder)
    raise CheckpointError(f"Checkpoint {path} holds no id encoders (written by an older mmrec) and no "
                          "encoders/ folder is beside it.", hint="Retrain with `mmrec train`.")
