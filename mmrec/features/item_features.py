"""What the rest of mmrec reads: dense per-item feature tensors from the feature store.

`load_item_features` materializes vision and text features for an item table (computing missing
ones on demand unless settings forbid it); `precompute_item_features` fills the store ahead of time.
An imported modality (backbone `imported`) is never computed: items the import lacks have no
vector (mask False), and both functions count them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch

from mmrec.errors import FeatureError
from mmrec.features.backbone_set import BackboneSet
from mmrec.features.base import Backbone
from mmrec.features.extract import fill_modality
from mmrec.features.feature_store import FeatureStore, find_combo_folders
from mmrec.features.file_digests import FileDigests
from mmrec.features.item_keys import ItemKeys, missing_positions, plan_item_keys
from mmrec.features.vector_file import EXAMPLES, examples
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import CacheSettings, FeaturesSettings

__all__ = ["ItemFeatures", "PrecomputeReport", "load_item_features", "precompute_item_features",
           "prune_item_features"]
MODALITIES = ("vision", "text")


@dataclass
class ItemFeatures:
    """Dense features of an item table, row order = the table's order."""

    vision: torch.Tensor  # [n_items, vision_dim] float32 on device, zeros where missing
    vision_mask: torch.Tensor  # [n_items] bool, True = item has a vision feature
    text: torch.Tensor  # [n_items, text_dim]
    text_mask: torch.Tensor
    combo: str  # e.g. "efficientnet-lite_sentence-bert"
    vision_dim: int
    text_dim: int
    computed: int  # items computed on demand during this call
    not_imported: dict[str, int] = field(default_factory=dict)  # imported modality -> items without a vector
    # modality -> weights id of the vectors (a backbone's weights digest, or `imported:<import>`), for the
    # modalities some item has: what a checkpoint records and checks (CheckpointSpec.check_feature_identities)
    identities: dict[str, str | None] = field(default_factory=dict)

    def widened(self, modality: str, dim: int) -> ItemFeatures:
        """These features with an empty modality (dim 0: no item has its content) as `dim` zero columns, for a
        model trained where items had that content; the mask stays False, so the model treats it as missing."""
        if getattr(self, f"{modality}_dim") != 0:
            raise ValueError(f"only an empty modality is widened, not {modality}")
        values = getattr(self, modality)
        return replace(self, **{modality: values.new_zeros(values.shape[0], dim), f"{modality}_dim": dim})


def _plan(items: pd.DataFrame, backbones: BackboneSet, modalities: Collection[str]) -> ItemKeys:
    """Keys of the wanted modalities (an unwanted one's backbone is not even resolved: no weights needed)."""
    parts = {modality: backbones.key_part(modality) if modality in modalities else None for modality in MODALITIES}
    plan = plan_item_keys(items, parts["vision"], parts["text"], backbones.digests)
    backbones.digests.save()
    return plan


def borrow_from_other_combos(store: FeatureStore, cache_dir: Path, combo: str, modality: str,
                             keys: list[str | None], positions: list[int]) -> dict[str, int]:
    """Copy into `store` the entries of rows `positions` that another combo with the same `modality` backbone
    already holds under the same keys. A key names the backbone, its weights and the content, so the entry is the
    vector this combo would compute (e.g. the ResNet-50 vectors of resnet_clip for resnet_bert: a text backbone
    tried after another no longer recomputes every image). Returns {other combo: entries copied}."""
    side = 0 if modality == "vision" else 1  # a combo is named {vision}_{text}

    def part(name: str) -> str:
        return name.split("_", 1)[side]

    wanted = list(dict.fromkeys(keys[p] for p in positions if keys[p] is not None))
    copied: dict[str, int] = {}
    for folder in find_combo_folders(cache_dir)[0]:
        if not wanted:
            break
        if folder.name == combo or part(folder.name) != part(combo):
            continue
        with FeatureStore(Path(cache_dir), folder.name, CacheSettings(memory_lru_bytes=0)) as other:
            found = [(key, value) for key, value in zip(wanted, other.get_many(wanted)) if value is not None]
        if found:
            store.put_many(found)
            copied[folder.name] = len(found)
            taken = {key for key, _ in found}
            wanted = [key for key in wanted if key not in taken]
    return copied


def borrowed_message(modality: str, copied: dict[str, int]) -> str:
    return (f"{sum(copied.values()):,} {modality} feature(s) copied from "
            f"{', '.join(f'{name} ({n:,})' for name, n in copied.items())}: the same backbone, weights and content.")


def _no_import(modality: str, combo: str) -> FeatureError:
    return FeatureError(
        f"features.{modality}_backbone is 'imported' but no {modality} vectors were imported into {combo}.",
        hint=f"Run `mmrec cache import --modality {modality} FILE` with this config first.",
    )


def _not_imported_message(modality: str, plan: ItemKeys, missing: list[int]) -> str:
    return (f"{len(missing):,} of {len(plan.item_ids):,} items have no imported {modality} vector "
            f"(treated as lacking {modality}): {examples([plan.item_ids[p] for p in missing[:EXAMPLES + 1]])}")


def _record_meta(store: FeatureStore, backbones: BackboneSet, modality: str, dim: int) -> None:
    name, weights_id = backbones.key_part(modality)
    # Whether the vectors came from the backbone's default weights: only those may be served on a machine where
    # the weights are missing (BackboneSet._resolve_key_part).
    store.write_meta(modality, name, dim, weights_id,
                     default_weights=not backbones.is_imported(modality) and not backbones.explicit_weights(modality))


def load_item_features(
    items: pd.DataFrame,
    features: FeaturesSettings,
    cache: CacheSettings,
    cache_dir: Path,
    device: torch.device | str = "cpu",
    progress: ProgressCallback = null_progress,
    modalities: Collection[str] = MODALITIES,
    check_identities: Callable[[dict[str, str | None]], None] | None = None,
) -> ItemFeatures:
    """Vision and text features of every row of `items` as dense tensors on `device`. A modality not in
    `modalities` (one the model does not read) gets no columns, as if no item had its content.
    `check_identities`: called with each modality's weights identity before any feature is computed (a
    checkpoint refusing other weights refuses before hours of backbone work, not after)."""
    with FeatureStore(Path(cache_dir), features.combo, cache) as store:
        backbones = BackboneSet(features, store, FileDigests.in_folder(cache_dir))
        plan = _plan(items, backbones, modalities)
        if check_identities is not None:
            check_identities({modality: backbones.key_part(modality)[1] for modality in modalities})
        tensors: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}
        computed = 0
        not_imported: dict[str, int] = {}
        for modality in MODALITIES:
            keys = plan.keys(modality)
            if modality not in modalities:
                tensors[modality] = (torch.zeros(len(keys), 0, device=device),
                                     torch.zeros(len(keys), dtype=torch.bool, device=device), 0)
                continue
            if backbones.is_imported(modality):
                record = backbones.imported_record(modality)
                if record is None:
                    raise _no_import(modality, features.combo)
                tensor, mask, missing, dim = store.materialize(keys, device, int(record["dim"]))
                not_imported[modality] = len(missing)
                if missing:
                    progress(ProgressEvent(f"features:{modality}", done=True,  # a note, no progress bar
                                           message=_not_imported_message(modality, plan, missing)))
                tensors[modality] = (tensor, mask, dim)
                continue
            tensor, mask, missing, dim = store.materialize(keys, device)
            if missing and (copied := borrow_from_other_combos(store, Path(cache_dir), features.combo, modality,
                                                               keys, missing)):
                progress(ProgressEvent(f"features:{modality}", done=True,
                                       message=borrowed_message(modality, copied)))
                before = len(missing)
                tensor, mask, missing, dim = store.materialize(keys, device)
                store.counters["copied"] += before - len(missing)
            if missing:
                if not cache.compute_missing:
                    raise FeatureError(
                        f"{len(missing)} of {len(keys)} items have no cached {modality} features in "
                        f"{store.folder} (e.g. item {plan.item_ids[missing[0]]}).",
                        hint="Run `mmrec cache precompute` for this config, or set cache.compute_missing=true.",
                    )
                progress(ProgressEvent(f"features:{modality}", message=(
                    f"Computing {len(missing)} missing {modality} feature(s) for {features.combo}")))
                backbone = backbones.get(modality)
                report = fill_modality(store, plan, modality, missing, backbone, features.batch_size,
                                       features.num_workers, progress)
                computed += report.computed
                tensor, mask, still_missing, dim = store.materialize(keys, device, dim or backbone.dim)
                if still_missing:  # a concurrent `cache clear`; never hand out silent zeros
                    raise FeatureError(f"{len(still_missing)} {modality} features vanished from {store.folder}.",
                                       hint="Do not clear the cache while features load; run again.")
            if dim is None:  # no item has this modality's content: no columns (the towers leave it out)
                dim = 0
                tensor = torch.zeros(len(keys), 0, device=device)
            else:
                _record_meta(store, backbones, modality, dim)
            tensors[modality] = (tensor, mask, dim)
        store.save_stats({"kind": "load", "items": len(items)})
    (vision, vision_mask, vision_dim), (text, text_mask, text_dim) = tensors["vision"], tensors["text"]
    identities = {modality: backbones.key_part(modality)[1] for modality in MODALITIES if tensors[modality][2]}
    return ItemFeatures(vision, vision_mask, text, text_mask, features.combo, vision_dim, text_dim, computed,
                        not_imported, identities)


def prune_item_features(items: pd.DataFrame, features: FeaturesSettings, cache: CacheSettings, cache_dir: Path,
                        dry_run: bool = False) -> tuple[int, int]:
    """Delete the entries of the configured combo's store that no row of `items` reads with these settings:
    vectors of other weights or token limits, of edited images and texts, of items no longer in the catalogue.
    Returns (entries deleted, or that would be with `dry_run`; entries there were)."""
    with FeatureStore(Path(cache_dir), features.combo, cache) as store:
        plan = _plan(items, BackboneSet(features, store, FileDigests.in_folder(cache_dir)), MODALITIES)
        live = {key for key in (*plan.vision_keys, *plan.text_keys) if key is not None}
        stored = [key for key, _ in store.scan()]
        stale = [key for key in stored if key not in live]
        if stale and not dry_run:
            store.delete_keys(stale)
    return len(stale), len(stored)


@dataclass
class PrecomputeReport:
    """Per modality: items with content, already cached, computed now, failed, lacking an imported
    vector; plus timing."""

    combo: str
    n_items: int
    with_content: dict[str, int] = field(default_factory=dict)
    already_cached: dict[str, int] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    not_imported: dict[str, int] = field(default_factory=dict)  # 0 for computed modalities
    imported: dict[str, str | None] = field(default_factory=dict)  # imported modality -> identity (None: none yet)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (modality, item_id, reason)
    borrowed: dict[str, dict[str, int]] = field(default_factory=dict)  # modality -> {other combo: entries copied}
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        done = sum(self.computed.values()) + sum(self.failed.values())
        return done / self.seconds if self.seconds > 0 else 0.0


def precompute_item_features(
    items: pd.DataFrame,
    features: FeaturesSettings,
    cache: CacheSettings,
    cache_dir: Path,
    force: bool = False,
    progress: ProgressCallback = null_progress,
    backbones: dict[str, Backbone] | None = None,
    modalities: Collection[str] = MODALITIES,
) -> PrecomputeReport:
    """Fill the store for every row of `items` (resumes: stored keys are skipped unless `force`).

    `backbones` may supply already-loaded models (benchmarks, tests); otherwise they load from settings.
    Only `modalities` are filled (the report has counts for those alone).
    """
    started = time.perf_counter()
    report = PrecomputeReport(features.combo, len(items))
    with FeatureStore(Path(cache_dir), features.combo, cache) as store:
        backbone_set = BackboneSet(features, store, FileDigests.in_folder(cache_dir), backbones)
        plan = _plan(items, backbone_set, modalities)
        for modality in (m for m in MODALITIES if m in modalities):
            keys = plan.keys(modality)
            imported = backbone_set.is_imported(modality)
            todo = missing_positions(store, keys, force and not imported)
            absent = len(todo)  # before copies from other combos: what this store lacked
            if todo and not imported and not force:
                report.borrowed[modality] = borrow_from_other_combos(store, Path(cache_dir), features.combo,
                                                                     modality, keys, todo)
                if report.borrowed[modality]:
                    todo = missing_positions(store, keys)
                    store.counters["copied"] += absent - len(todo)  # misses served by a copy, not computed
            report.with_content[modality] = sum(key is not None for key in keys)
            report.already_cached[modality] = report.with_content[modality] - len(todo)
            # Presence checks read no vector, so count them here: `mmrec cache stats` shows this run's hits (a
            # vector copied from another combo was a miss here; the table counts it as cached, with a line saying so).
            store.counters["hits"] += report.with_content[modality] - absent
            store.counters["misses"] += absent
            report.not_imported[modality] = 0
            fill = None
            if imported:  # nothing to compute: report what the import lacks
                report.imported[modality] = backbone_set.key_part(modality)[1]
                report.not_imported[modality] = len(todo) if report.imported[modality] else len(keys)
                todo = []
            if todo:
                backbone = backbone_set.get(modality)
                fill = fill_modality(store, plan, modality, todo, backbone, features.batch_size,
                                     features.num_workers, progress)
                _record_meta(store, backbone_set, modality, backbone.dim)
            elif report.borrowed.get(modality):  # filled by copies alone: recorded as a computed fill would be
                with FeatureStore(Path(cache_dir), next(iter(report.borrowed[modality])),
                                  CacheSettings(memory_lru_bytes=0)) as other:
                    dim = (other.read_meta().get(modality) or {}).get("dim")
                if dim:
                    _record_meta(store, backbone_set, modality, int(dim))
            report.computed[modality] = fill.computed if fill else 0
            report.failed[modality] = fill.failed_count if fill else 0
            report.failures += [(modality, item, reason) for item, reason in (fill.failed if fill else [])]
        report.seconds = time.perf_counter() - started
        store.save_stats({"kind": "precompute", "items": len(items), "seconds": round(report.seconds, 3)})
    return report
