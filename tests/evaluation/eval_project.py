"""A tiny processed project on disk (items.parquet + split CSVs + config) for pipeline/CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mmrec.data.splits import SplitFrames, save_split
from mmrec.data.tables import save_interactions, save_items


def make_tiny_project(root: Path, n_users: int = 40, n_items: int = 30, seed: int = 0) -> Path:
    """Write data under root and return the config path.

    Users like one of three item groups (structure KNN can find); item i029 appears only in test
    (a cold item) and user `newcomer` only in test (a cold user).
    """
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({
        "item_id": [f"i{j:03d}" for j in range(n_items)],
        "title": [f"Item {j}" for j in range(n_items)],
        "description": [f"group {j % 3}" for j in range(n_items)],
        "text": [f"Item {j}. group {j % 3}" for j in range(n_items)],
        "image_path": [None] * n_items,
        "has_image": [False] * n_items,
        "image_fingerprint": [""] * n_items,
        "text_fingerprint": [f"t{j}" for j in range(n_items)],
    })
    rows = []
    for u in range(n_users):
        group = u % 3
        liked = [j for j in range(n_items - 1) if j % 3 == group]
        for j in rng.choice(liked, size=7, replace=False):
            rows.append((f"u{u:03d}", f"i{j:03d}", int(rng.integers(0, 1000))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    part = rng.choice(3, size=len(frame), p=[0.7, 0.1, 0.2])
    train, val, test = (frame[part == k].reset_index(drop=True) for k in range(3))
    extra = pd.DataFrame([("u000", f"i{n_items - 1:03d}", 5), ("newcomer", "i000", 7)], columns=frame.columns)
    test = pd.concat([test, extra], ignore_index=True)
    processed, splits = root / "processed", root / "splits"
    processed.mkdir(parents=True, exist_ok=True)
    save_items(items, processed)
    save_interactions(pd.concat([train, val, test], ignore_index=True), processed)
    save_split(SplitFrames(train, val, test), splits)
    config = {
        "paths": {"processed_dir": str(processed), "splits_dir": str(splits), "results_dir": str(root / "results"),
                  "checkpoint_dir": str(root / "checkpoints"), "cache_dir": str(root / "cache")},
        "evaluation": {"k_values": [5, 10], "device": "cpu", "knn_neighbors": 10},
        "inference": {"device": "cpu"},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
