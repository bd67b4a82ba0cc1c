"""Store keys of an item table: which vector each row needs, and which of those are not stored yet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from mmrec.errors import DataError
from mmrec.features.feature_store import FeatureStore
from mmrec.features.file_digests import FileDigests
from mmrec.features.fingerprint import item_image_fingerprints, item_text_fingerprints, item_texts
from mmrec.features.store_format import IMPORTED, make_key


@dataclass
class ItemKeys:
    """Store keys of every item row (None = the item lacks that modality), with what to compute from."""

    item_ids: list[str]
    image_paths: list[str | None]
    texts: list[str]
    vision_keys: list[str | None]
    text_keys: list[str | None]
    vision: tuple[str, str | None] | None  # (backbone name, weights id) in the vision keys; None = not wanted
    text: tuple[str, str | None] | None

    def keys(self, modality: str) -> list[str | None]:
        return self.vision_keys if modality == "vision" else self.text_keys

    def key(self, modality: str, position: int, fingerprint: str) -> str:
        """The key of row `position` for content `fingerprint` (e.g. the bytes read at extraction)."""
        part = self.vision if modality == "vision" else self.text
        if part is None:
            raise ValueError(f"{modality} was not planned")
        backbone, weights_id = part
        return make_key(modality, backbone, weights_id, self.item_ids[position], fingerprint)


def _imported_fingerprints(n_items: int, identity: str | None) -> list[str | None]:
    """An imported vector depends on the imported file only: its identity is every row's fingerprint
    (None for all rows before anything was imported). Rows the file lacks are simply not stored."""
    return [identity] * n_items


def plan_item_keys(
    items: pd.DataFrame, vision: tuple[str, str | None] | None, text: tuple[str, str | None] | None,
    digests: FileDigests
) -> ItemKeys:
    """Keys for each row; `vision`/`text` are (backbone name, weights id), None for a modality not wanted
    (no row gets a key: nothing is read, fingerprinted or computed for it). An imported modality
    (backbone `imported`) is keyed by the import's identity instead of the item's content."""
    if "item_id" not in items:
        raise DataError("The item table has no item_id column.", hint="Run `mmrec preprocess` first.")
    item_ids = [str(value) for value in items["item_id"].tolist()]
    texts = item_texts(items)
    none: list[str | None] = [None] * len(items)
    image_fps = (none if vision is None else _imported_fingerprints(len(items), vision[1]) if vision[0] == IMPORTED
                 else item_image_fingerprints(items, digests))
    text_fps = (none if text is None else _imported_fingerprints(len(items), text[1]) if text[0] == IMPORTED
                else item_text_fingerprints(items, texts))
    paths = items["image_path"].tolist() if "image_path" in items else [None] * len(items)
    return ItemKeys(
        item_ids=item_ids,
        image_paths=[str(p) if fp is not None and vision and vision[0] != IMPORTED else None
                     for p, fp in zip(paths, image_fps)],
        texts=texts,
        vision_keys=[None if fp is None else make_key("vision", vision[0], vision[1], i, fp)
                     for i, fp in zip(item_ids, image_fps)],
        text_keys=[None if fp is None else make_key("text", text[0], text[1], i, fp)
                   for i, fp in zip(item_ids, text_fps)],
        vision=vision,
        text=text,
    )


def missing_positions(store: FeatureStore, keys: Sequence[str | None], force: bool = False) -> list[int]:
    """Positions whose key is not stored yet (all keyed positions when `force`)."""
    wanted = [position for position, key in enumerate(keys) if key is not None]
    if force:
        return wanted
    present = store.existing_keys([keys[p] for p in wanted])
    return [position for position in wanted if keys[position] not in present]
