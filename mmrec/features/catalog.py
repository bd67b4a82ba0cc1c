"""From an item table to store keys, and filling the store with whatever is missing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from mmrec.features.diskstore import encode_failure, encode_vector, make_key
from mmrec.features.extract import FeatureBatch, iter_text_features, iter_vision_features
from mmrec.features.fingerprint import item_image_fingerprints, item_text_fingerprints, item_texts
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress

if TYPE_CHECKING:
    from mmrec.features.base import TextBackbone, VisionBackbone
    from mmrec.features.diskstore import FeatureStore

MAX_REPORTED_FAILURES = 20


@dataclass
class ItemKeys:
    """Store keys of every item row (None = the item lacks that modality), with what to compute from."""

    item_ids: list[str]
    image_paths: list[str | None]
    texts: list[str]
    vision_keys: list[str | None]
    text_keys: list[str | None]

    def keys(self, modality: str) -> list[str | None]:
        return self.vision_keys if modality == "vision" else self.text_keys


def plan_item_keys(
    items: pd.DataFrame, vision: tuple[str, str], text: tuple[str, str]
) -> ItemKeys:
    """Keys for each row; `vision`/`text` are (backbone name, weights id)."""
    if "item_id" not in items:
        from mmrec.errors import DataError

        raise DataError("The item table has no item_id column.", hint="Run `mmrec preprocess` first.")
    item_ids = [str(value) for value in items["item_id"].tolist()]
    image_fps = item_image_fingerprints(items)
    texts = item_texts(items)
    text_fps = item_text_fingerprints(items, texts)
    paths = items["image_path"].tolist() if "image_path" in items else [None] * len(items)
    return ItemKeys(
        item_ids=item_ids,
        image_paths=[str(p) if fp is not None else None for p, fp in zip(paths, image_fps)],
        texts=texts,
        vision_keys=[None if fp is None else make_key("vision", vision[0], vision[1], i, fp)
                     for i, fp in zip(item_ids, image_fps)],
        text_keys=[None if fp is None else make_key("text", text[0], text[1], i, fp)
                   for i, fp in zip(item_ids, text_fps)],
    )


@dataclass
class FillReport:
    """What one fill of one modality did."""

    computed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (item_id, reason), first few
    failed_count: int = 0
    seconds: float = 0.0


def missing_positions(store: FeatureStore, keys: Sequence[str | None], force: bool = False) -> list[int]:
    """Positions whose key is not stored yet (all keyed positions when `force`)."""
    wanted = [position for position, key in enumerate(keys) if key is not None]
    if force:
        return wanted
    present = store.existing_keys([keys[p] for p in wanted])
    return [position for position in wanted if keys[position] not in present]


def fill_modality(
    store: FeatureStore,
    plan: ItemKeys,
    modality: str,
    positions: list[int],
    backbone: VisionBackbone | TextBackbone,
    batch_size: int,
    num_workers: int,
    progress: ProgressCallback = null_progress,
) -> FillReport:
    """Compute and store features of `positions` (indices into plan), writing batch by batch."""
    report = FillReport()
    started = time.perf_counter()
    task = f"features:{modality}"
    keys = plan.keys(modality)
    description = f"{modality} features ({backbone.name})"
    progress(ProgressEvent(task, 0, len(positions), description))
    if modality == "vision":
        batches = iter_vision_features(backbone, [plan.image_paths[p] for p in positions], batch_size, num_workers)
    else:
        batches = iter_text_features(backbone, [plan.texts[p] for p in positions], batch_size)
    done = 0
    batch: FeatureBatch
    for batch in batches:
        entries = [(keys[positions[local]], encode_vector(vector))
                   for local, vector in zip(batch.positions, batch.features)]
        for local, reason in batch.failed:
            entries.append((keys[positions[local]], encode_failure(reason)))
            report.failed_count += 1
            if len(report.failed) < MAX_REPORTED_FAILURES:
                report.failed.append((plan.item_ids[positions[local]], reason))
        store.put_many(entries)
        report.computed += len(batch.positions)
        done += len(batch.positions) + len(batch.failed)
        progress(ProgressEvent(task, done, len(positions), description))
    report.seconds = time.perf_counter() - started
    store.counters["computed"] += report.computed
    store.counters["failed"] += report.failed_count
    progress(ProgressEvent(task, done, len(positions), description, done=True))
    if report.failed_count:
        progress(ProgressEvent(task, message=(
            f"{report.failed_count} {modality} input(s) could not be read and have no {modality} feature"
            f" (e.g. item {report.failed[0][0]}: {report.failed[0][1]})")))
    return report
