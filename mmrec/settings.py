"""One validated settings object: defaults < YAML (--config) < MMREC_* env vars < CLI options.

Each core piece receives only its own section (e.g. `settings.training`), never the whole object.
Environment variables nest with `__`: `MMREC_TRAINING__EPOCHS=5`.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import re
import typing
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from mmrec.errors import ConfigError
from mmrec.fileio import read_text_file
from mmrec.registry import TEXT_BACKBONES, VISION_BACKBONES

log = logging.getLogger(__name__)

# Backbone names come from the registries (mmrec/registry.py); these have no registry.
SPLIT_STRATEGIES = ("stratified", "temporal", "temporal_user", "user", "item", "leave_one_out")
METRICS = ("precision", "recall", "ndcg", "mrr", "hit_rate")


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors, assignments are validated, and a number setting
    refuses true/false (pydantic would read `epochs: true` as 1) and inf or nan (`--lr inf` trained to NaN)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            kinds = {annotation, *typing.get_args(annotation)}
            if bool not in kinds and kinds & {int, float}:
                raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


class PathsSettings(Section):
    """Where inputs and artefacts live (relative paths resolve against the working directory)."""

    data_dir: Path = Field(Path("data/raw"), description="input folder: item_info.csv, interactions.csv, images/")
    processed_dir: Path = Field(Path("data/processed"), description="preprocessed tables and images")
    splits_dir: Path = Field(Path("data/splits"), description="train/val/test CSVs and split report")
    cache_dir: Path = Field(Path("cache"), description="feature store root: one folder per combo")
    checkpoint_dir: Path = Field(Path("models/checkpoints"), description="checkpoints and encoders")
    results_dir: Path = Field(Path("results"), description="evaluation JSON, markdown tables, plots")

    @field_validator("*", mode="before")
    @classmethod
    def _home_and_not_empty(cls, value: Any) -> Any:
        """`~` is the home folder, as in a shell (YAML and MMREC_* values are not shell-expanded: `~/data` made a
        folder named '~' in the working directory); an empty value is refused (it read as '.')."""
        if isinstance(value, (str, os.PathLike)):
            if not str(value).strip():
                raise ValueError("a folder path cannot be empty")
            return Path(os.path.expanduser(value))
        return value

    @model_validator(mode="after")
    def _processed_dir_is_its_own(self) -> PathsSettings:
        """Preprocess replaces processed_dir whole: no other folder may be it or lie inside it."""
        processed = self.processed_dir.expanduser().resolve()
        for name in ("data_dir", "splits_dir", "cache_dir", "checkpoint_dir", "results_dir"):
            other = getattr(self, name).expanduser().resolve()
            if other == processed or processed in other.parents:
                where = "is" if other == processed else "lies inside"
                raise ValueError(f"paths.{name} ({getattr(self, name)}) {where} paths.processed_dir "
                                 f"({self.processed_dir}), which preprocess replaces as a whole: give each its "
                                 "own folder")
        return self


class DataSettings(Section):
    """Input format: which files and columns hold the catalogue and interactions."""

    item_info_file: str = "item_info.csv"
    interactions_file: str = "interactions.csv"
    images_subdir: str = "images"
    image_column: str | None = Field(
        None, min_length=1, description="an item_info column naming each item's image file, relative to the "
                                        "images folder (e.g. thumbs/v1.jpg); null: images/{item_id}.<ext>")
    title_column: str | None = Field("title", min_length=1, description="item_info's title column (null: none)")
    description_column: str | list[str] | None = Field(
        "description", description="item_info's description column, or a list of columns whose texts are joined "
                                   "in that order (e.g. [description, brand, category]); null: none")
    item_id_column: str = Field("item_id", min_length=1, description="the item id column of both files")
    interactions_item_id_column: str | None = Field(
        None, min_length=1, description="the interactions' item id column, where it is named otherwise than "
                                        "item_id_column (e.g. `video` beside item_info's `video_id`)")
    user_id_column: str = Field("user_id", min_length=1, description="the user id column of the interactions")
    timestamp_column: str = Field("timestamp", min_length=1, description="the interactions' (optional) time column")
    timestamp_format: str | None = Field(
        None, min_length=1, description="how the time column is written: null = unix times (seconds; milliseconds, "
                                        "micro- or nanoseconds by their size) or ISO-8601 text; "
                                        "a strftime format such as '%d/%m/%Y' or '%m/%d/%Y %H:%M' (UTC); 'excel' = "
                                        "spreadsheet serial days (45850 = 2025-07-12)")
    rating_column: str = Field("rating", min_length=1, description="the interactions' (optional) rating column")
    numerical_features_cols: list[str] = Field(
        default_factory=lambda: ["view_number", "comment_number", "thumbup_number"],
        description="numeric item columns used as features (validated against item_info.csv)",
    )
    category_columns: list[str] = Field(
        default_factory=list,
        description="item_info columns naming categories an item belongs to (a channel, brand, author, genre): each "
                    "value shared by several items learns an embedding, so an item, a new one too, is placed by its "
                    "categories by exact match ([] = none); validated against item_info",
    )
    category_separator: str | None = Field(
        "|", min_length=1, description="splits a category cell holding several values (`Action|Comedy`); null: a "
                                       "cell is one value")
    positive_rating_threshold: float | None = Field(
        None, description="if set and a rating column exists, only ratings >= this are positives"
    )
    decimal_separator: Literal["auto", ".", ","] = Field(
        "auto", description="how numeric item columns and ratings write decimals: auto (a column that writes decimal "
                            "commas, and never points, is read so), '.' (English: '1,234' is 1234), ',' (German: "
                            "'12,5' is 12.5 and '1.234' is 1234, in every numeric column)")
    rating_values: dict[str, float] | None = Field(
        None, description="words of the rating column read as numbers (an event log's types, e.g. {view: 1, cart: 2, "
                          "purchase: 4}; letter case and surrounding spaces aside); numbers are read as they are")
    unrated: Literal["drop", "positive"] = Field(
        "drop", description="with positive_rating_threshold set, a row whose rating is blank or not a number: "
                            "dropped (bad_rating), or kept as a positive (an order never reviewed)")
    encoding: str = Field(
        "utf-8", min_length=1, description="the text encoding of the item_info and interactions files (CSV, JSON "
                                           "Lines): utf-8 (a byte-order mark is read too), or e.g. cp1252 / latin-1 "
                                           "for a Windows or Excel export")

    @field_validator("rating_values", mode="before")
    @classmethod
    def _no_bool_ratings(cls, value: Any) -> Any:
        if isinstance(value, dict) and (flags := [word for word, number in value.items() if isinstance(number, bool)]):
            raise ValueError(f"{flags[0]!r} maps to true/false, not a number (a YAML typo?)")
        return value

    @field_validator("rating_values")
    @classmethod
    def _rating_words(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("an empty mapping: name at least one word, or set null")
        words = [word.strip().casefold() for word in value]
        if any(not word for word in words):
            raise ValueError("a word is empty")
        if len(set(words)) < len(words):
            raise ValueError("a word is named twice (letter case aside)")
        if any(not math.isfinite(number) for number in value.values()):
            raise ValueError("every word needs a finite number")
        return value

    @field_validator("description_column", mode="before")
    @classmethod
    def _numbers_are_names(cls, value: Any) -> Any:
        """A column named 2020 (an environment value reads as JSON now that a list is allowed): its name."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value] \
            if isinstance(value, list) else value

    @field_validator("description_column")
    @classmethod
    def _description_columns(cls, value: str | list[str] | None) -> str | list[str] | None:
        names = [value] if isinstance(value, str) else value or []
        if isinstance(value, list) and not value:
            raise ValueError("an empty list: name at least one column, or set null for none")
        if any(not name for name in names):
            raise ValueError("a column name is empty")
        if len(set(names)) < len(names):
            raise ValueError(f"a column is named twice in {names}")
        return value

    @field_validator("category_columns")
    @classmethod
    def _category_columns(cls, value: list[str]) -> list[str]:
        if any(not name for name in value):
            raise ValueError("a column name is empty")
        if len(set(value)) < len(value):
            raise ValueError(f"a column is named twice in {value}")
        return value

    @model_validator(mode="after")
    def _no_id_category(self) -> DataSettings:
        if self.item_id_column in self.category_columns:
            raise ValueError(f"category_columns names the item id column {self.item_id_column!r}: an item's own id "
                             "is no category (the id embedding is that)")
        return self

    @property
    def description_columns(self) -> list[str]:
        """The description column(s), in order ([] for none)."""
        value = self.description_column
        return [value] if isinstance(value, str) else list(value or [])

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            "".encode(value)  # unknown names, and rot13, base64, zlib (codecs, but no text encodings): LookupError
        except LookupError:
            raise ValueError(f"{value!r} is not a text encoding Python knows (e.g. utf-8, cp1252, latin-1, "
                             "utf-16)") from None
        return value

    @field_validator("timestamp_format")
    @classmethod
    def _timestamp_format(cls, value: str | None) -> str | None:
        if value is not None and value != "excel" and "%" not in value:
            raise ValueError(f"{value!r} is neither 'excel' nor a strftime format such as '%d/%m/%Y' (null: unix "
                             "seconds or ISO-8601)")
        if value is not None and value != "excel":
            try:
                datetime.strptime("", value)
            except ValueError as exc:  # a directive strptime does not know, or a lone % at the end
                if "does not match format" not in str(exc):
                    raise ValueError(f"{value!r} is not a strftime format: {exc}") from None
        return value


class PreprocessSettings(Section):
    """Cleaning and validation of the raw inputs."""

    num_workers: int = Field(2, ge=1, description="worker processes for image verification")
    max_image_side: int = Field(512, ge=32, description="larger images are resized to this side")
    jpeg_quality: int = Field(90, ge=1, le=100)
    max_image_pixels: int = Field(89_478_485, ge=1, description="decompression-bomb limit (pixels)")
    max_text_length: int = Field(2000, ge=1, description="characters kept of each cleaned text")
    numeric_impute: Literal["median", "mean", "zero"] = "median"
    min_user_interactions: int = Field(1, ge=1, description="k-core threshold for users")
    min_item_interactions: int = Field(1, ge=1, description="k-core threshold for items")
    drop_duplicates: bool = Field(True, description="keep the last of duplicate user-item pairs")
    duplicate_rating: Literal["latest", "highest"] = Field(
        "latest", description="which row of a duplicate pair is kept: the latest (a re-rating replaces the "
                              "old one) or the highest rated (event logs: view 1, purchase 2)")
    unknown_items: Literal["drop", "error"] = Field("drop", description="interactions on items absent from item_info")
    malformed_lines: Literal["skip", "error"] = Field(
        "skip", description="CSV lines with more fields than the header (an unquoted separator inside a value), "
                            "and JSON Lines lines that are no JSON object (a line cut short): skipped and counted, "
                            "or an error")


class SplitSettings(Section):
    """How interactions are divided into train/validation/test."""

    strategy: Literal["stratified", "temporal", "temporal_user", "user", "item", "leave_one_out"] = "stratified"
    train_ratio: float = Field(0.8, gt=0.0, lt=1.0)
    val_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    test_ratio: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = Field(42, ge=0)
    sample_n: int | None = Field(None, ge=1, description="use only this many interactions (sampled, seeded)")

    @field_validator("strategy", mode="before")
    @classmethod
    def _dashes(cls, value: Any) -> Any:
        """leave-one-out / temporal-user, as the docs and the CLI spell them, are leave_one_out / temporal_user."""
        return value.replace("-", "_") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> SplitSettings:
        total = self.train_ratio + self.val_ratio + self.test_ratio
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train_ratio + val_ratio + test_ratio must be 1.0, got {total:g}")
        return self


class FeaturesSettings(Section):
    """Pretrained backbones that turn images and text into vectors."""

    # Where the weights are found and how extraction runs, not what the vectors are (that is the weights' sha256,
    # checked apart): serving takes them from its own settings, a resume may change them, tune does not compare RUN.
    LOCATION_KEYS: ClassVar[tuple[str, ...]] = ("vision_weights", "text_weights")
    RUN_KEYS: ClassVar[tuple[str, ...]] = ("allow_download", "batch_size", "num_workers", "device")

    vision_backbone: str = Field(
        "efficientnet-lite", description="a registered vision backbone (listed by `mmrec cache backbones`)"
    )
    text_backbone: str = Field(
        "sentence-bert", description="a registered text backbone (listed by `mmrec cache backbones`)"
    )
    vision_weights: str | None = Field(None, description="explicit weights path/dir for the vision backbone")
    text_weights: str | None = Field(None, description="explicit weights path/dir for the text backbone")
    allow_download: bool = Field(True, description="download weights when online (never if HF_HUB_OFFLINE=1)")
    batch_size: int = Field(32, ge=1)
    num_workers: int = Field(2, ge=0, description="DataLoader workers decoding images")
    max_text_tokens: int = Field(128, ge=8, description="fixed max token length for text backbones")
    device: str = Field("auto", description="auto|cpu|cuda|cuda:N")

    @field_validator("vision_backbone")
    @classmethod
    def _registered_vision_backbone(cls, name: str) -> str:
        return VISION_BACKBONES.check(name)  # against the declared names: imports no backbone module

    @field_validator("text_backbone")
    @classmethod
    def _registered_text_backbone(cls, name: str) -> str:
        return TEXT_BACKBONES.check(name)

    @property
    def combo(self) -> str:
        """Feature-store folder name, e.g. `efficientnet-lite_sentence-bert`."""
        return f"{self.vision_backbone}_{self.text_backbone}"


class CacheSettings(Section):
    """The diskcache-backed feature store, and the fitted item-item models kept beside checkpoints."""

    memory_lru_bytes: int = Field(512 * 1024**2, ge=0, description="in-memory LRU in front of disk (bytes)")
    compute_missing: bool = Field(True, description="compute missing features on demand (else error)")
    size_limit_bytes: int = Field(64 * 1024**3, ge=1, description="diskcache size limit per combo")
    item_item_fits: int = Field(
        2, ge=0, description="fitted item-item models kept beside each checkpoint (its folder's item_item/), so "
        "evaluate and recommend reuse a fit of the same data instead of refitting; 0 = always refit")


class ModelSettings(Section):
    """The two-tower multimodal model."""

    embedding_dim: int = Field(64, ge=2)
    num_heads: int = Field(4, ge=1)
    num_layers: int = Field(1, ge=0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    fusion: Literal["attention", "concat", "sum"] = "attention"
    use_id_embeddings: bool = True
    use_vision: bool = True
    use_text: bool = True
    use_numeric: bool = True
    use_categories: bool = Field(True, description="a token per data.category_columns column (when it names any)")
    category_min_items: int = Field(
        2, ge=2, description="a category value held by fewer catalogue items reads as none (a value of one item is "
                             "its own code, which would learn that item alone, never hidden by id_dropout)")
    id_dropout: float = Field(0.1, ge=0.0, le=1.0, description="rate at which item ids are hidden in training")
    user_history_length: int = Field(20, ge=0, description="recent items the user tower attends to (0=off)")
    history_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="rate at which each training example's history items are hidden, so the "
        "user tower learns to predict an item from part of the history (Mult-DAE's input dropout)")
    history_item_embeddings: bool = Field(
        False, description="a second learned embedding per item, added to the item vectors the user tower reads "
        "history through (SVD++'s implicit item factors): history items get a representation trained for "
        "describing users, not only for being scored")
    user_ids: bool = Field(
        True, description="a learned embedding per training user; off: users are their history alone (no "
        "per-user parameters, as in Mult-VAE / EASE; needs user_history_length > 0)")
    score: Literal["dot", "cosine"] = "dot"
    temperature: float = Field(0.1, gt=0.0, description="softmax temperature when score=cosine")
    loss: Literal["softmax", "bpr"] = "softmax"
    negatives: Literal["in_batch", "uniform", "popularity", "full"] = Field(
        "in_batch",
        description="softmax candidates: the batch's positives (in_batch), plus num_negatives sampled uniformly "
        "or by popularity, or every catalogue item (full: exact softmax, the item tower runs on the whole "
        "catalogue each step)",
    )
    num_negatives: int = Field(64, ge=0, description="extra sampled negatives per batch")
    distill_weight: float | None = Field(
        None, ge=0.0,
        description="weight of a distillation loss toward the item-item model (EASE + content, fitted on the "
        "training interactions before training): soft cross-entropy between its scores and the two-tower "
        "model's over each batch's candidate items (the whole catalogue with negatives=full); 0 = off; "
        "null = 1 when validation ranks every item (training.validate_on: all), 0 when it ranks cold items "
        "(the collaborative teacher cost cold items 8-13% on validation, bench/README.md)",
    )
    distill_temperature: float | None = Field(
        None, gt=0.0,
        description="softmax temperature on the teacher's scores, standardised per user over the candidates; "
        "null = 2 over the whole catalogue (negatives=full), 0.5 over a batch's candidates (each the best on "
        "validation, bench/README.md)",
    )
    use_contrastive: bool = Field(False, description="CLIP-style InfoNCE between image and text projections")
    contrastive_weight: float = Field(0.1, ge=0.0)
    contrastive_temperature: float = Field(0.07, gt=0.0)
    logq_correction: bool = Field(
        True, description="subtract log expected count of each candidate in sampled softmax (popularity debiasing)"
    )
    item_item: bool = Field(
        True,
        description="blend in a closed-form item-item model (EASE with the image/text features as side "
        "information); its weight is chosen on validation",
    )
    item_item_l2: float = Field(200.0, gt=0.0, description="L2 penalty (lambda) of the item-item model")
    item_item_l2_search: bool = Field(
        True,
        description="try item_item_l2 x (0.5, 1, 2, 4) and keep the best on validation (item-item model alone; "
        "the neighbourhood solver solves the four in one pass of its neighbour search)",
    )
    item_item_content_weight: float = Field(
        20.0, ge=0.0, description="weight (alpha) of the image/text similarity constraints in the item-item model"
    )
    item_item_blend: float | None = Field(
        None, ge=0.0, le=1.0,
        description="share of the item-item scores in the final score (0..1); null = chosen on validation",
    )
    item_item_refit_within_se: float = Field(
        1.0, ge=0.0,
        description="when validation was carved out of train.csv (training.holdout_ratio), the item-item model is "
        "refitted on all of it for serving and the two-tower model is not, which moves the best blend weight "
        "toward the item-item model: after the other choices, take the largest item-item weight within this many "
        "paired standard errors (per validation user) of the chosen blend; 0 = validation's choice (docs/data.md)",
    )
    item_item_halflife: float | None = Field(
        None, ge=0.0,
        description="recency half-life (in items) of a user's training items in the item-item profile "
        "(0 = all weigh 1); null = chosen on validation (without timestamps, in file order: a half-life > 0 "
        "must then beat 0 by model.sequence_min_se paired standard errors)",
    )
    content_blend: bool = Field(
        True,
        description="after the item-item blend, blend in content similarity to the user's items (cosine with "
        "the mean of their text/image features); weight and modality chosen on validation, so the model is "
        "never worse on validation than content similarity alone (needs model.item_item)",
    )
    content_blend_weight: float | None = Field(
        None, ge=0.0, le=1.0, description="fixed weight of the content-similarity scores; null = chosen on validation"
    )
    sequence_blend: bool = Field(
        True,
        description="last, blend in transitions of the users' time-ordered training items "
        "(mmrec.models.transitions): next items after the latest ones, or items done close together either way; "
        "variant, weight and profile half-life chosen on validation (0 when none helps), so it never lowers "
        "validation, and kept only above validation noise (model.sequence_min_se). Next items: on time-ordered "
        "MovieLens splits about +1.5% NDCG@10 on nested tests, +4% where test follows the profiles; items done "
        "close together: the gaps a random holdout leaves in sessions (docs/evaluation.md; needs "
        "model.item_item and timestamps)",
    )
    sequence_window: int = Field(
        10, ge=1, description="how many following items count as a transition (weight 1/distance; items done close "
        "together: that many before or after, weight 1/distance^2)")
    sequence_min_se: float = Field(
        1.0, ge=0.0,
        description="keep the best transition (and trend, and cold items' order) blend only when its gain over the "
        "blend without it is at least this many paired standard errors (per validation user) and not one user's "
        "alone, so a gain within validation noise adds nothing (the same for a recency half-life without "
        "timestamps); 0 = any gain",
    )
    trend_blend: bool = Field(
        True,
        description="last, blend in popularity (mmrec.models.trend): each item's training interactions decayed by "
        "age in days (half-life 1, 7 or 30: what is trending, for news and other fresh catalogues; needs "
        "timestamps) or all counted alike (all time: best sellers); weight and half-life chosen on validation, "
        "kept only above validation noise (model.sequence_min_se), so it adds nothing where it does not help "
        "(needs model.item_item)",
    )
    cold_blend: bool = Field(
        True,
        description="last, order the cold items (no training interaction) among themselves toward content "
        "similarity to the user's items, keeping where they stand in the list as a group; weight and modality "
        "chosen on validation users' cold items ranked among themselves (as evaluate's cold-item table ranks "
        "them), kept only above validation noise (model.sequence_min_se) and when validation over the items "
        "training.validate_on ranks does not fall by as much; none without cold validation items (needs "
        "model.item_item)",
    )
    cold_shift: bool = Field(
        True,
        description="after that, move every cold item's score by a shift (in standard deviations of the user's "
        "scores) chosen on validation from -1 to 3, kept only above validation noise (model.sequence_min_se): "
        "their offset to the warm items, which the shared \"no id\" row sets; none without cold validation items "
        "(needs model.item_item)",
    )
    fallback_halflife: bool = Field(
        True,
        description="choose on validation the recency half-life (1, 7, 30 or 365 days, or all time) of the popularity "
        "list the multimodal model's users without training interactions get (evaluation.cold_user_fallback "
        "popularity; evaluation.popularity_halflife_days, when set, wins): its validation users unseen in training "
        "decide, kept only above validation noise (model.sequence_min_se); needs timestamps (and model.item_item)",
    )
    item_item_solver: Literal["auto", "dense", "neighbourhood"] = Field(
        "auto",
        description="item-item solver: dense = exact (memory items^2, time items^3), neighbourhood = each item "
        "regresses on its item_item_neighbours nearest items (memory items x k), auto = dense up to "
        "item_item_dense_max_items items, neighbourhood above",
    )
    item_item_dense_max_items: int = Field(10000, ge=1, description="largest catalogue `auto` solves densely")
    item_item_neighbours: int = Field(128, ge=1, description="regressors per item of the neighbourhood solver")
    item_item_neighbour_search: Literal["auto", "exact", "ivf"] = Field(
        "auto",
        description="how the neighbourhood solver finds each item's neighbours: exact = every item pair (time "
        "items^2), ivf = every co-occurring item plus the items of the nearest content clusters (inverted "
        "file; only neighbours by content alone are approximate), auto = exact up to "
        "item_item_exact_search_max_items items, ivf above",
    )
    item_item_exact_search_max_items: int = Field(
        200_000, ge=1, description="largest catalogue whose neighbours `auto` searches exactly"
    )
    item_item_max_items: int = Field(
        2_000_000, ge=1, description="largest catalogue the item-item model is fitted for at all"
    )

    @property
    def modalities(self) -> tuple[str, ...]:
        """The feature modalities the model reads (features of the others are never loaded or computed)."""
        return tuple(name for name, used in (("vision", self.use_vision), ("text", self.use_text)) if used)

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> ModelSettings:
        if self.embedding_dim % self.num_heads:
            raise ValueError(
                f"embedding_dim ({self.embedding_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if not self.user_ids and self.user_history_length == 0:
            raise ValueError("user_ids: false needs user_history_length > 0 (users would have no representation)")
        return self


MIN_VALIDATION_USERS = 2000


class TrainingSettings(Section):
    """Optimisation, validation and early stopping."""

    RUN_KEYS: ClassVar[tuple[str, ...]] = ("device", "log_every")  # where a run happens and how it reports

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(512, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    scheduler: Literal["none", "cosine", "step", "plateau", "onecycle"] = "none"
    warmup_steps: int = Field(0, ge=0, description="linear learning-rate warmup steps")
    step_size: int = Field(10, ge=1, description="epochs between decays for scheduler=step")
    gamma: float = Field(0.5, gt=0.0, le=1.0)
    grad_clip: float | None = Field(1.0, gt=0.0)
    sparse_embeddings: bool = Field(
        True,
        description="sparse gradients and lazy Adam for the user/item id tables: a step updates only the rows "
        "its batch used, so its cost does not grow with the catalogue (single process with adam/adamw)",
    )
    patience: int = Field(5, ge=1, description="epochs without validation improvement before stopping")
    monitor: str = Field("ndcg@10", description="validation metric for model selection, e.g. ndcg@10")
    seed: int = Field(42, ge=0)
    device: str = Field("auto", description="auto|cpu|cuda|cuda:N")
    bf16: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    log_every: int = Field(50, ge=1, description="steps between verbose log lines")
    max_validation_users: int | None = Field(
        20000, ge=1,
        description="validation (model selection, early stopping, the blend search) ranks the catalogue for at "
        "most this many validation users, a seeded random sample (null = all)",
    )
    max_validation_cells: int | None = Field(
        2_000_000_000, ge=1,
        description="validation ranks at most this many (user x catalogue item) cells: a large catalogue "
        "validates on fewer users (never fewer than 2,000), so the blend search stays minutes at 200k items "
        "(null = no cap)",
    )
    validate_on: Literal["all", "cold_items"] = Field(
        "all",
        description="items validation ranks: all, or cold_items = only items without train interactions "
        "(model selection for a cold-start protocol)",
    )
    holdout_ratio: float = Field(
        0.1, ge=0.0, lt=1.0,
        description="when the split has no validation rows (val.csv empty or missing): hold out this share of "
        "the training interactions (following the split's own strategy, e.g. per user at random) as validation "
        "for early stopping and every validation choice (item-item lambda and blend); evaluate and recommend "
        "still use all of train; 0 = train without validation (early stopping on the training loss, no blend)",
    )
    history_refresh_steps: int = Field(
        10, ge=0,
        description="steps between refreshes of the detached item-vector table the user tower reads history "
        "from (also refreshed every epoch; at least 5 x history items / batch_size steps, so a refresh costs "
        "at most 1/5 item encoding per training example at any catalogue size); 0 = encode history items "
        "with grad every step (slow)",
    )

    @field_validator("monitor")
    @classmethod
    def _valid_monitor(cls, value: str) -> str:
        _parse_metric(value)
        return value

    def validation_user_cap(self, n_items: int) -> int | None:
        """Validation users to rank for a catalogue of n_items: max_validation_users, fewer when
        max_validation_cells says so (never below MIN_VALIDATION_USERS); None = all."""
        caps = [self.max_validation_users] if self.max_validation_users is not None else []
        if self.max_validation_cells is not None:
            caps.append(max(MIN_VALIDATION_USERS, self.max_validation_cells // max(1, n_items)))
        return min(caps) if caps else None


class EvaluationSettings(Section):
    """How recommenders are scored."""

    k_values: list[int] = Field(default_factory=lambda: [5, 10, 20])
    eval_task: Literal["retrieval", "ranking"] = "retrieval"
    batch_size: int = Field(1024, ge=1, description="users scored per chunk in full ranking")
    num_negatives: int = Field(99, ge=1, description="sampled negatives per positive (ranking task)")
    sampling_strategy: Literal["random", "popularity"] = "random"
    knn_neighbors: int = Field(50, ge=1)
    knn_shrinkage: float = Field(10.0, ge=0.0)
    cold_user_fallback: Literal["popularity", "random"] = "popularity"
    popularity_halflife_days: float | None = Field(
        None, gt=0, description="popularity (the baseline and the cold-user fallback) counts an interaction "
        "0.5^(age / half-life), age in days before the newest training interaction: what is popular now, for "
        "fast-moving catalogues such as news; None = every interaction counts 1, but the multimodal model's cold "
        "users get the recency `mmrec train` chose (model.fallback_halflife); needs timestamps when set")
    seed: int = Field(42, ge=0)
    device: str = Field("auto", description="auto|cpu|cuda|cuda:N: where scores and top-K are computed")

    @field_validator("k_values")
    @classmethod
    def _positive_ks(cls, values: list[int]) -> list[int]:
        if not values or any(k < 1 for k in values):
            raise ValueError(f"every k must be >= 1, got {values}")
        return sorted(set(values))


class InferenceSettings(Section):
    """Generating recommendations."""

    top_k: int = Field(10, ge=1)
    exclude_seen: bool = True
    use_diversity: bool = False
    diversity_lambda: float = Field(0.7, ge=0.0, le=1.0, description="MMR: 1 = relevance only, 0 = diversity only")
    checkpoint_name: str | None = Field(
        None, description="checkpoint file of the multimodal model; null = best_model.pth, or while a newer "
        "training run has not finished (still running, or killed), the last finished model it keeps as "
        "previous_best_model.pth")
    device: str = "auto"
    ann: Literal["none", "faiss_ivf", "faiss_hnsw"] = Field(
        "none", description="approximate candidates from a faiss index over item vectors (extra mmrec[ann])")
    ann_pool_factor: int = Field(10, ge=1, description="ANN candidates per user = factor x top_k + seen items")
    ann_nprobe: int = Field(16, ge=1, description="IVF lists searched (HNSW: efSearch >= 4 x nprobe)")
    new_items: int = Field(0, ge=0, description="places of each top-K list kept for the best-scored items that "
                                                "no interaction names yet (0 = none)")
    unknown_users: Literal["auto", "fallback", "error"] = Field(
        "auto", description="requested users with no interaction: auto = the flagged fallback list, but an error "
        "(exit 2) when no requested user is known (wrong ids or the wrong config); fallback = always the fallback "
        "list (a service's new visitors); error = an error for any unknown one")

    @model_validator(mode="after")
    def _new_items_fit(self) -> InferenceSettings:
        if self.new_items > self.top_k:
            raise ValueError(f"new_items ({self.new_items}) cannot exceed top_k ({self.top_k}): it is the number "
                             "of places of each top-K list kept for new items")
        return self


class TrackingSettings(Section):
    """Experiment tracking."""

    use_wandb: bool = False
    wandb_project: str = "mmrec"
    wandb_run_name: str | None = None


# Sections whose settings `mmrec tune` may search (the rest describe data and files, not the model).
TUNABLE_SECTIONS = ("model", "training", "features")
# Settings that decide how a trial is scored: trials that differ in them are measured on other metrics or users, so
# their figures do not compare (the study keeps each the same for all trials; set it in the base settings instead).
SCORING_SETTINGS = {
    "training.monitor": "the metric every trial is scored by",
    "training.max_validation_users": "the validation users every trial is scored on",
    "training.max_validation_cells": "the validation users every trial is scored on (their number, by catalogue size)",
    "training.seed": "the draws every trial is scored with (the holdout carved out of train, the validation users)",
    "training.validate_on": "the items every trial's validation ranks",
    "training.holdout_ratio": "the rows every trial is validated on",
}


def _shown(value: float | None) -> str:
    """A bound as written: 5, not 5.0 (pydantic stores them as floats)."""
    return "none" if value is None else f"{value:g}"


class SearchDimension(Section):
    """One searched setting: a float/int range (optionally log-scaled or stepped) or a list of choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = Field(False, description="sample on a log scale (low must be > 0)")
    step: float | None = Field(None, gt=0.0, description="grid step of a float/int range (not with log)")
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty `choices` list")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("a categorical dimension takes only `choices` (no low/high/log/step)")
            return self
        kind = "an int" if self.type == "int" else "a float"
        if self.choices is not None:
            raise ValueError(f"{kind} dimension takes low/high, not `choices`")
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"{kind} dimension needs low < high, got low={_shown(self.low)}, high={_shown(self.high)}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled dimension needs low > 0, got {_shown(self.low)}")
        if self.log and self.step is not None:
            raise ValueError("`log` and `step` cannot be combined")
        if self.type == "int" and any(v is not None and float(v) != int(v) for v in (self.low, self.high, self.step)):
            raise ValueError("an int dimension needs whole-number low/high/step")
        return self

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this dimension can draw (a choice; inside the range and on its step)."""
        if self.type == "categorical":
            return value in (self.choices or [])
        assert self.low is not None and self.high is not None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        if self.type == "int" and value != int(value):
            return False
        step = self.step or (1 if self.type == "int" else None)
        return step is None or abs((value - self.low) / step - round((value - self.low) / step)) < 1e-9

    def nearest(self, value: Any) -> Any | None:
        """The value this dimension can draw that is closest to `value` (itself when it `contains` it): a number
        clamped into the range and put on its step; None for a choice not among the choices, or a non-number."""
        if self.contains(value):
            return value
        if self.type == "categorical" or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        assert self.low is not None and self.high is not None
        clamped = min(max(float(value), self.low), self.high)
        step = self.step or (1 if self.type == "int" else None)
        if step is not None:
            clamped = min(self.low + round((clamped - self.low) / step) * step, self.high)
        return int(round(clamped)) if self.type == "int" else clamped

    def samples(self) -> list[Any]:
        """Values the setting must accept: the choices, or both ends and a fractional point of a float range."""
        if self.type == "categorical":
            return list(self.choices or [])
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high, self.low + 0.37 * (self.high - self.low)]


def _dimension(kind: str, **spec: Any) -> dict[str, Any]:
    return {"type": kind, **spec}


# The default search space of `mmrec tune`: the model, loss and item-item settings that matter most.
DEFAULT_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "model.embedding_dim": _dimension("categorical", choices=[32, 64, 128]),
    "model.dropout": _dimension("float", low=0.0, high=0.3),
    "model.id_dropout": _dimension("float", low=0.0, high=0.5),
    "model.user_history_length": _dimension("int", low=0, high=50, step=10),
    "model.item_item_l2": _dimension("float", low=10.0, high=2000.0, log=True),
    "model.item_item_content_weight": _dimension("float", low=0.0, high=50.0),
    "training.learning_rate": _dimension("float", low=1e-4, high=1e-2, log=True),
    "training.weight_decay": _dimension("float", low=1e-8, high=1e-2, log=True),
    "training.epochs": _dimension("int", low=5, high=30),
    # 0 = history items encoded with grad every step (better user tower, ~2x the epoch time), 10 = the
    # detached table: on MovieLens validation the blend gained 1.1-2.8% with 0 (bench/README.md).
    "training.history_refresh_steps": _dimension("categorical", choices=[0, 10]),
}


class TuneSettings(Section):
    """`mmrec tune`: an Optuna study over the search space, chosen on validation only."""

    study_name: str = Field(
        "mmrec", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="study name; the study lives in results_dir/tune/<name>.db and resumes under the same name",
    )
    n_trials: int = Field(20, ge=1, description="trials the study holds when done (finished + pruned)")
    timeout_s: float | None = Field(None, gt=0.0, description="start no new trial after this many seconds")
    search_space: dict[str, SearchDimension | None] = Field(
        default_factory=lambda: {name: SearchDimension(**spec) for name, spec in DEFAULT_SEARCH_SPACE.items()},
        description="dotted setting -> {type: float|int|categorical, low, high, log, step, choices}; entries "
        "merge over the defaults; null stops searching one",
    )
    params: list[str] | None = Field(None, description="search only these search_space names (null = all)")
    pruner_startup_trials: int = Field(3, ge=0, description="trials finished before median pruning starts")
    pruner_warmup_epochs: int = Field(1, ge=0, description="epochs of a trial never pruned")
    keep_checkpoints: Literal["best", "all"] = Field(
        "best", description="keep the checkpoints of the selected trial (and of the trials it may still be "
        "swapped for) only, or of every trial"
    )
    fastest_within_se: float = Field(
        1.0, ge=0.0,
        description="select the fastest-fitting complete trial whose validation metric is within this many "
        "paired standard errors (over validation users) of the best trial's -- the one-standard-error rule, "
        "with the fit's CPU time as the cost; 0 = the best trial",
    )

    @field_validator("study_name")
    @classmethod
    def _not_another_studys_file(cls, value: str) -> str:
        if value.lower().endswith((".db", ".lock")):  # results/tune/<name>.db and .lock are a study's files
            raise ValueError(f"{value!r} ends like a study's own files (results/tune/<study>.db, <study>.lock): "
                             f"the study {value.rsplit('.', 1)[0]!r} keeps them; name it otherwise")
        return value

    @field_validator("search_space", mode="before")
    @classmethod
    def _merge_over_defaults(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {**DEFAULT_SEARCH_SPACE, **value}  # a null entry stays, so a dumped section loads back the same

    @field_validator("search_space")
    @classmethod
    def _known_settings(cls, value: dict[str, SearchDimension | None]) -> dict[str, SearchDimension | None]:
        problems = []  # all of them at once: one run to fix a search space, not one run per mistake
        for name, dimension in value.items():
            section, _, key = name.partition(".")
            if section not in TUNABLE_SECTIONS:
                problems.append(f"cannot search {name!r}: use a setting of {', '.join(TUNABLE_SECTIONS)} "
                                "(section.key, e.g. training.learning_rate)")
                continue
            fields = Settings.model_fields[section].annotation.model_fields  # type: ignore[union-attr]
            if key not in fields:
                problems.append(f"unknown setting {name!r}; {section} has: {', '.join(fields)}")
                continue
            adapter = TypeAdapter(Annotated[fields[key].annotation, fields[key]])
            for sample in dimension.samples() if dimension is not None else ():
                try:
                    adapter.validate_python(sample)
                except ValidationError as exc:
                    problems.append(f"{name} cannot take {sample!r} from its search range: {exc.errors()[0]['msg']}")
                    break
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _params_in_space(self) -> TuneSettings:
        unknown = [name for name in self.params or () if self.search_space.get(name) is None]
        if unknown:
            raise ValueError(f"tune.params names {', '.join(unknown)}, not in tune.search_space")
        if self.params is not None and not self.params:
            raise ValueError("tune.params is empty: list at least one search_space name, or null for all")
        return self

    def space(self) -> dict[str, SearchDimension]:
        """The dimensions searched: search_space restricted to `params` when given. A setting that decides how a
        trial is scored (SCORING_SETTINGS) is a ConfigError here, when a study would search it, not when the
        settings load: a config holding one (mmrec before 2026-12-05 wrote such best_config.yaml files) still
        trains, evaluates and serves."""
        space = {name: dim for name, dim in self.search_space.items()
                 if dim is not None and (self.params is None or name in self.params)}
        if scoring := [name for name in space if name in SCORING_SETTINGS]:
            raise ConfigError(
                "tune.search_space: " + "; ".join(f"cannot search {name!r}: it sets {SCORING_SETTINGS[name]}, so "
                                                  "trials with other values would not compare" for name in scoring)
                + ".", hint=f"Remove {', '.join(scoring)} from tune.search_space (or set it to null) and set its "
                            "value in the base settings.")
        return space


class Settings(BaseSettings):
    """Everything mmrec can be told. Build with `load_settings`, not directly, to get provenance."""

    model_config = SettingsConfigDict(
        env_prefix="MMREC_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    paths: PathsSettings = Field(default_factory=PathsSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    preprocess: PreprocessSettings = Field(default_factory=PreprocessSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    tune: TuneSettings = Field(default_factory=TuneSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        # load_settings merges YAML, env and CLI itself (to record where each value came from), so
        # validation sees only the merged init values.
        return (init_settings,)


def _parse_metric(name: str) -> tuple[str, int | None]:
    """`ndcg@10` -> ("ndcg", 10); `mrr` -> ("mrr", None)."""
    metric, _, k = name.lower().partition("@")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {name!r}; use one of {', '.join(METRICS)} (with @K, e.g. ndcg@10)")
    if k and (not k.isdigit() or int(k) < 1):
        raise ValueError(f"bad cut-off in {name!r}; K must be a positive integer")
    return metric, int(k) if k else None


def parse_metric(name: str) -> tuple[str, int | None]:
    """Public form of the metric-name parser, raising ConfigError."""
    try:
        return _parse_metric(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class LoadedSettings:
    """Validated settings plus where each value came from ("default", "yaml:<file>", "env:<VAR>", "cli")."""

    def __init__(self, settings: Settings, sources: dict[str, str]) -> None:
        self.settings = settings
        self.sources = sources

    def source_of(self, dotted_key: str) -> str:
        return self.sources.get(dotted_key, "default")


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing a key written twice in one mapping (YAML keeps the last silently: in a long
    edited config a second `epochs:` overrode the first unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden here, as meant
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):  # `1:`, `true:`, `? [a, b]`: no setting or section is named so
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    (f"found a {type(key).__name__} as a key" if isinstance(key, (list, dict)) else
                     f"found the key {key!r} ({type(key).__name__})") + "; setting and section names are text "
                    "(quote a key that looks like a number: '1':)", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found the key {key!r} a second time (first {seen[key]}); YAML would keep only the last one",
                    key_node.start_mark)
            seen[key] = f"on line {key_node.start_mark.line + 1}"
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config (safe_load); an empty file is an empty config."""
    text = read_text_file(path, "Config file", ConfigError, hint="Pass an existing YAML file to --config.")
    loader = _UniqueKeyLoader(text)  # safe_load's loader (no Python objects), refusing a key written twice
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:  # empty, or comments only: said, since a truncated or wrong file reads the same
        log.warning("Config file %s holds no settings (empty or comments only): the defaults apply.", path)
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections, got {type(data).__name__}.")
    empty = [section for section, values in data.items() if values is None]  # `training:` with its keys commented
    if empty:
        log.warning("Config file %s: section(s) %s hold no settings: their defaults apply.", path, ", ".join(empty))
    return {section: {} if values is None else values for section, values in data.items()}


def _env_values() -> dict[str, Any]:
    source = EnvSettingsSource(
        Settings, env_prefix="MMREC_", env_nested_delimiter="__", case_sensitive=False
    )
    try:
        values = _null_strings(source())
    except SettingsError as exc:
        raise _unparsable_env(exc) from None
    known = list(Settings.model_fields)
    unknown = sorted(
        name for name in os.environ
        if name.upper().startswith("MMREC_") and name[6:].split("__")[0].lower() not in known
    )
    if unknown:
        named = []
        for name in unknown:
            close = difflib.get_close_matches(name[6:].split("__")[0].lower(), known, n=1)
            named.append(f"{name} (did you mean MMREC_{close[0].upper()}__...?)" if close else name)
        raise ConfigError(
            f"Unknown environment setting(s): {', '.join(named)}.",
            hint=f"MMREC_<SECTION>__<KEY>, with SECTION one of: {', '.join(known)}.",
        )
    return values


def _unparsable_env(exc: SettingsError) -> ConfigError:
    """pydantic-settings reads list and dict values from the environment as JSON; say which variable is not."""
    match = re.search(r'field "(\w+)"', str(exc))
    section = match.group(1) if match else ""
    field = Settings.model_fields.get(section)
    fields = getattr(field.annotation, "model_fields", {}) if field is not None else {}
    suspects = []
    for name, value in sorted(os.environ.items()):
        key = name[6:].partition("__")[2].lower()
        if not name.upper().startswith(f"MMREC_{section.upper()}__") or not _is_complex(fields.get(key)):
            continue
        try:
            json.loads(value)
        except ValueError:
            suspects.append(f"{name}={value!r}")
    named = ", ".join(suspects) or f"a MMREC_{section.upper()}__* variable"
    return ConfigError(
        f"Could not read {named}: list and mapping settings are read from the environment as JSON.",
        hint="Write lists as JSON, e.g. MMREC_EVALUATION__K_VALUES='[5, 10]' "
             "(or set them in the YAML config).",
    )


def _is_complex(field: Any) -> bool:
    """Whether pydantic-settings parses this field's environment value as JSON (a list, mapping or model)."""
    if field is None:
        return False
    annotations = [field.annotation]
    while annotations:
        annotation = annotations.pop()
        origin = typing.get_origin(annotation)
        if origin in (list, dict, tuple, set, frozenset) or (
            isinstance(annotation, type) and issubclass(annotation, (BaseModel, list, dict, tuple, set))
        ):
            return True
        annotations.extend(arg for arg in typing.get_args(annotation) if origin is not Literal)
    return False


def _null_strings(values: Any) -> Any:
    """`null` in an environment variable is YAML's null, as in a config file (MMREC_DATA__IMAGE_COLUMN=null)."""
    if isinstance(values, dict):
        return {key: _null_strings(value) for key, value in values.items()}
    return None if isinstance(values, str) and values.strip().lower() == "null" else values


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not prefix:
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """`layer` over `base`, section by section and setting by setting: a setting's value from a later layer
    replaces the earlier one whole, a mapping too (an environment's `MMREC_DATA__RATING_VALUES='{"buy": 4}'` over the
    YAML's `{view: 1, cart: 2}` had kept view and cart)."""
    merged = dict(base)
    for section, values in layer.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def load_settings(
    config: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> LoadedSettings:
    """Build Settings from defaults < YAML `config` < MMREC_* env vars < `overrides` (CLI options).

    `overrides` uses dotted keys (`{"training.epochs": 3}`); None values are ignored so unset CLI
    options never mask lower layers.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if config is not None:
        layers.append((f"yaml:{config}", load_yaml(config)))
    layers.append(("env", _env_values()))
    cli: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        cli.setdefault(section, {})[key] = value
    layers.append(("cli", cli))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, layer in layers:
        merged = _merge(merged, layer)
        for dotted in _flatten(layer):
            if name == "env":
                section, _, key = dotted.partition(".")
                sources[dotted] = f"env:MMREC_{section.upper()}" + (f"__{key.upper()}" if key else "")
            else:
                sources[dotted] = name
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, sources)) from None
    return LoadedSettings(settings, sources)


def format_validation_error(exc: ValidationError, sources: dict[str, str] | None = None) -> str:
    """One line per problem: the dotted key, what is wrong, and where the value came from."""
    lines = ["Invalid settings:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(settings)"
        message = error["msg"].removeprefix("Value error, ")  # a validator's own words, without pydantic's label
        if error["type"] == "model_type" and len(error["loc"]) == 1:
            message = (f"a section holds settings, not one value: set them key by key ({key}: {{key: value}} in "
                       f"YAML, MMREC_{key.upper()}__<KEY>=value in the environment)")
        if error["type"] == "string_pattern_mismatch" and error["loc"][-1] == "study_name":
            message = (f"{error['input']!r} is not a plain file name: up to 64 letters, digits, '_', '.' and '-', "
                       "starting with a letter or digit")
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(error["loc"][:-1])
            close = _closest_key(error["loc"], allowed)
            message = (f"unknown key{f' (did you mean {close}?)' if close else ''}; "
                       f"allowed here: {', '.join(allowed)}")
        # A section-level problem (a whole section mistyped, ratios that do not add up) has no value of its
        # own: it comes from where the keys its message names were set (else any key under it).
        under = {dotted: where for dotted, where in (sources or {}).items() if dotted.startswith(f"{key}.")}
        named = {where for dotted, where in under.items()
                 if re.search(rf"\b{re.escape(dotted.rpartition('.')[2])}\b", message)}
        origins = [(sources or {}).get(key)] if (sources or {}).get(key) else sorted(named or set(under.values()))
        lines.append(f"  {key}: {message}" + (f" (from {', '.join(origins)})" if origins else ""))
    return "\n".join(lines)


# Names other tools give a setting, which spelling alone would match to another (models_dir is no results_dir).
_MEANT = {"models_dir": "checkpoint_dir", "model_dir": "checkpoint_dir", "checkpoints_dir": "checkpoint_dir",
          "checkpoint_path": "checkpoint_dir", "output_dir": "results_dir", "log_dir": "results_dir",
          "lr": "learning_rate", "num_epochs": "epochs", "max_epochs": "epochs", "embed_dim": "embedding_dim",
          "hidden_dim": "embedding_dim", "batchsize": "batch_size", "topk": "top_k", "k": "top_k"}
# ... and those a section reads otherwise: evaluate's cut-offs are its k_values, not inference.top_k.
_MEANT_IN = {"evaluation": {name: "k_values" for name in ("k", "ks", "top_k", "topk", "cutoffs", "k_list")}}


def _closest_key(loc: tuple[Any, ...], allowed: list[str]) -> str | None:
    """The key an unknown one most likely meant: _MEANT_IN's or _MEANT's (dotted when another section has it), else
    the closest of its section's `allowed` keys, or a clearly closer key of another section, dotted
    (`paths.images_dir` -> data.images_subdir, not cache_dir)."""
    name = str(loc[-1])
    meant = _MEANT_IN.get(str(loc[0]), {}).get(name.lower()) or _MEANT.get(name.lower())
    if meant in allowed:
        return meant
    if meant and len(loc) == 2:  # the key of one other section: dotted (training.models_dir -> paths.checkpoint_dir)
        owners = [section for section in Settings.model_fields if meant in _allowed_keys((section,))]
        if len(owners) == 1:
            return f"{owners[0]}.{meant}"

    def score(key: str) -> float:
        return difflib.SequenceMatcher(None, name, key).ratio()

    here = max(allowed, key=score, default=None)
    if len(loc) == 2:  # a section's own key: the key may belong to another section
        others = [f"{section}.{key}" for section in Settings.model_fields if section != loc[0]
                  for key in _allowed_keys((section,))]
        there = max(others, key=lambda dotted: score(dotted.partition(".")[2]), default=None)
        if there is not None and score(there.partition(".")[2]) >= max(0.6, (score(here) if here else 0) + 0.1):
            return there
    return here if here is not None and score(here) >= 0.6 else None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys of the model an error's location ends in (a section, or a nested one such as a search dimension)."""
    model: Any = Settings
    annotation: Any = None
    for part in loc:
        if annotation is not None and typing.get_origin(annotation) is dict:  # a mapping's key: on to its value
            annotation = typing.get_args(annotation)[1]
        elif part in getattr(model, "model_fields", {}):
            annotation = model.model_fields[part].annotation
        else:
            return list(getattr(model, "model_fields", {}))
        models = [arg for arg in (annotation, *typing.get_args(annotation))
                  if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if models:
            model, annotation = models[0], None
    return list(getattr(model, "model_fields", {}))


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """JSON-ready dict of every section (paths as strings), for sidecars and `config show`."""
    return settings.model_dump(mode="json")
