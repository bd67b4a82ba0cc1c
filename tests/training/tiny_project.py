"""A tiny processed project on disk (items.parquet, split CSVs, YAML config) for pipeline/CLI tests.

Import from other test folders with `load_tiny_project()` (tests are not a package).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mmrec.data.splits import SplitFrames, save_split
from mmrec.data.tables import save_items


def write_tiny_project(root: Path, n_users: int = 30, n_items: int = 40, per_user: int = 8, seed: int = 0,
                       epochs: int = 3, **model_overrides) -> Path:
    """Writes processed tables + splits under `root`; returns the config path. No images/text backbones."""
    rng = np.random.default_rng(seed)
    clusters = np.arange(n_items) % 4
    item_ids = [f"i{j}" for j in range(n_items)]
    # The cluster shows in a numeric column, so content alone can rank.
    items = pd.DataFrame({
        "item_id": item_ids, "title": item_ids, "description": "", "text": item_ids, "image_path": None,
        "has_image": False, "image_fingerprint": "", "text_fingerprint": "",
        "view_number": (10.0 ** clusters) + rng.integers(0, 3, n_items), "comment_number": rng.random(n_items),
    })
    rows = []
    for u in range(n_users):
        liked = np.flatnonzero(clusters == u % 4)
        for t, j in enumerate(rng.choice(liked, size=per_user, replace=False)):
            rows.append((f"u{u}", item_ids[j], 1000 * u + t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    rank = frame.groupby("user_id").cumcount(ascending=False)
    parts = SplitFrames(frame[rank > 1].reset_index(drop=True), frame[rank == 1].reset_index(drop=True),
                        frame[rank == 0].reset_index(drop=True))
    save_items(items, root / "processed")
    save_split(parts, root / "splits")
    model = dict(embedding_dim=8, num_heads=2, num_layers=1, dropout=0.0, use_vision=False, use_text=False,
                 user_history_length=4, num_negatives=8)
    model.update(model_overrides)
    config = {
        "paths": {name: str(root / sub) for name, sub in (
            ("data_dir", "raw"), ("processed_dir", "processed"), ("splits_dir", "splits"), ("cache_dir", "cache"),
            ("checkpoint_dir", "checkpoints"), ("results_dir", "results"))},
        "data": {"numerical_features_cols": ["view_number", "comment_number"]},
        "model": model,
        "training": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.01, "device": "cpu", "patience": 10},
        "evaluation": {"k_values": [5, 10]},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def load_tiny_project():
    """This module, importable from any test folder."""
    import importlib.util
    import sys

    name = "mmrec_tests_tiny_project"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
