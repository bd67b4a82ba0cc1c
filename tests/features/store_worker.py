"""Subprocess helper for the multi-process store tests (run as a script, not collected by pytest).

  write ROOT COMBO START N      : write vectors of keys START..START+N (value derived from the key)
  precompute ROOT ITEMS_PARQUET TEXT_DIR : slow text-only precompute (sleeps per batch) to be killed
"""

import sys
import time
from pathlib import Path

import numpy as np


def vector_for(index: int) -> np.ndarray:
    return np.random.default_rng(index).standard_normal(64).astype(np.float32)


def write(root: str, combo: str, start: int, count: int) -> None:
    from mmrec.features.feature_store import FeatureStore
    from mmrec.features.store_format import encode_vector
    from mmrec.settings import CacheSettings

    with FeatureStore(Path(root), combo, CacheSettings()) as store:
        for begin in range(start, start + count, 10):
            store.put_many([(f"vision|fake|w|item{i}|fp", encode_vector(vector_for(i)))
                            for i in range(begin, min(begin + 10, start + count))])


def precompute(root: str, items_parquet: str, text_dir: str) -> None:
    import pandas as pd

    from mmrec.features import extract
    from mmrec.features.item_features import precompute_item_features
    from mmrec.settings import CacheSettings, FeaturesSettings

    real = extract.iter_text_features

    def slow(*args, **kwargs):
        for batch in real(*args, **kwargs):
            time.sleep(0.3)
            yield batch

    extract.iter_text_features = slow
    features = FeaturesSettings(text_weights=text_dir, batch_size=2, device="cpu")
    precompute_item_features(pd.read_parquet(items_parquet), features, CacheSettings(), Path(root))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "write":
        write(args[0], args[1], int(args[2]), int(args[3]))
    else:
        precompute(*args)
