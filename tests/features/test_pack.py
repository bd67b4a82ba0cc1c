"""The dense pack beside the diskcache: fast bulk reads that never serve stale vectors."""

from __future__ import annotations

import numpy as np
import torch

from mmrec.features.feature_store import PACK_MIN_ROWS, FeatureStore
from mmrec.features.pack import FeaturePack
from mmrec.features.store_format import encode_vector
from mmrec.settings import CacheSettings

N = PACK_MIN_ROWS + 50


def _fill(root, n=N, dim=6):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float16)
    keys = [f"vision|bb|w1|item{i}|fp{i}" for i in range(n)]
    with FeatureStore(root, "a_b", CacheSettings(memory_lru_bytes=0)) as store:
        store.put_many([(key, encode_vector(vector)) for key, vector in zip(keys, vectors)])
    return keys, vectors


def test_first_bulk_read_writes_a_pack_that_the_next_read_uses(tmp_path):
    keys, vectors = _fill(tmp_path)
    with FeatureStore(tmp_path, "a_b", CacheSettings(memory_lru_bytes=0)) as store:
        first, mask, missing, dim = store.materialize(keys)
    pack = FeaturePack(tmp_path / "a_b", "vision|bb|w1")
    index, matrix = pack.load()
    assert len(index) == N and matrix.shape == (N, 6)
    with FeatureStore(tmp_path, "a_b", CacheSettings(memory_lru_bytes=0)) as store:
        second, mask2, _, _ = store.materialize(keys[::-1] + [None])
        assert store.counters["misses"] == 0  # everything came from the pack, nothing from SQLite
    assert missing == [] and bool(mask.all()) and dim == 6
    assert torch.equal(first, torch.from_numpy(vectors.astype(np.float32)))
    assert torch.equal(second[:-1], first.flip(0)) and not bool(mask2[-1])


def test_keys_missing_from_the_pack_fall_through_to_the_diskcache(tmp_path):
    keys, vectors = _fill(tmp_path)
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.materialize(keys)  # writes the pack
        edited = "vision|bb|w1|item0|fp-edited"  # edited content -> new fingerprint -> new key
        store.put_many([(edited, encode_vector(np.full(6, 7.0)))])
        tensor, mask, missing, _ = store.materialize([edited, keys[1], "vision|bb|w1|gone|x"])
    assert tensor[0].tolist() == [7.0] * 6
    assert tensor[1].tolist() == vectors[1].astype(np.float32).tolist()
    assert mask.tolist() == [True, True, False] and missing == [2]


def test_a_damaged_pack_is_ignored(tmp_path):
    keys, vectors = _fill(tmp_path)
    with FeatureStore(tmp_path, "a_b", CacheSettings(memory_lru_bytes=0)) as store:
        store.materialize(keys)
    pack = FeaturePack(tmp_path / "a_b", "vision|bb|w1")
    pack.pointer.write_text("{not json")
    with FeatureStore(tmp_path, "a_b", CacheSettings(memory_lru_bytes=0)) as store:
        tensor, mask, _, _ = store.materialize(keys[:3])
    assert bool(mask.all()) and tensor[2].tolist() == vectors[2].astype(np.float32).tolist()
