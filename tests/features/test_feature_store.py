import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrec.errors import FeatureError
from mmrec.features.feature_store import ByteLRU, FeatureStore
from mmrec.features.store_format import decode_value, encode_failure, encode_vector, make_key, split_key
from mmrec.settings import CacheSettings

WORKER = str(Path(__file__).with_name("store_worker.py"))
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}


def test_values_are_raw_float16_bytes_not_pickles():
    vector = np.arange(5, dtype=np.float32)
    value = encode_vector(vector)
    assert isinstance(value, bytes) and len(value) == 8 + 10 and b"pickle" not in value
    dim, decoded = decode_value(value)
    assert dim == 5 and decoded.dtype == np.float16 and np.array_equal(decoded, vector)
    assert decode_value(encode_failure("broken jpeg")) == (0, "broken jpeg")
    with pytest.raises(FeatureError):
        decode_value(b"\x80\x04junk-junk")


def test_keys_carry_content_and_weights_and_split_back():
    key = make_key("vision", "clip", "hf:x@abc", "id|with|bars", "f" * 64)
    assert split_key(key) == ("vision", "clip", "hf:x@abc", "id|with|bars", "f" * 64)
    assert make_key("vision", "clip", "w2", "a", "f") != make_key("vision", "clip", "w1", "a", "f")


@pytest.mark.parametrize("bad", ["../etc", "a/b_c", "nounderscore", "_x", ""])
def test_combo_names_cannot_escape_the_cache_dir(tmp_path, bad):
    with pytest.raises(FeatureError, match="not a valid feature combo name"):
        FeatureStore(tmp_path, bad, CacheSettings())


def test_lru_is_bounded_in_bytes():
    lru = ByteLRU(capacity=100)
    for i in range(10):
        lru.put(str(i), b"x" * 30)
    assert lru.size <= 100 and len(lru) == 3
    assert lru.get("9") is not None and lru.get("0") is None
    lru.put("huge", b"x" * 101)
    assert lru.get("huge") is None


def test_materialize_gives_dense_rows_masks_and_missing(tmp_path):
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.put_many([("k0", encode_vector(np.ones(4))), ("k2", encode_vector(np.full(4, 2.0))),
                        ("k3", encode_failure("corrupt"))])
        tensor, mask, missing, dim = store.materialize(["k0", None, "k2", "k3", "k4"], "cpu")
    assert dim == 4 and tensor.dtype == torch.float32 and tensor.shape == (5, 4)
    assert mask.tolist() == [True, False, True, False, False]
    assert missing == [4]
    assert tensor[0].tolist() == [1.0] * 4 and tensor[2].tolist() == [2.0] * 4 and tensor[1].abs().sum() == 0


def test_counters_meta_and_stats_persist(tmp_path):
    with FeatureStore(tmp_path, "a_b", CacheSettings(memory_lru_bytes=0)) as store:
        store.put_many([("k0", encode_vector(np.ones(3)))])
        store.get_many(["k0", "nope"])
        store.write_meta("vision", "a", 3, "w1")
        store.save_stats()
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        assert store.read_stats()["hits"] == 1 and store.read_stats()["misses"] == 1
        assert store.read_meta()["vision"] == {"backbone": "a", "dim": 3, "weights_id": "w1"}


def test_meta_details_stay_while_the_vectors_stay_the_same(tmp_path):
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.write_meta("vision", "imported", 3, "imported:1", file="v.npy")
        store.write_meta("vision", "imported", 3, "imported:1")  # e.g. a later load records the same vectors
        assert store.read_meta()["vision"]["file"] == "v.npy"
        store.write_meta("vision", "imported", 3, "imported:2")
        assert "file" not in store.read_meta()["vision"]


def test_a_run_that_only_loads_vectors_leaves_their_update_time(tmp_path, monkeypatch):
    """`cache list`'s "last update" moved on every evaluate and recommend, which only read the vectors."""
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.put_many([("k", encode_vector(np.ones(3)))])
        store.counters["computed"] += 1
        store.write_meta("text", "sentence-bert", 3, "w1")
        first = store.read_meta()["updated_at"]
    import mmrec.features.feature_store as module

    real = module.datetime

    class Later:
        @staticmethod
        def now(zone):
            return real(2099, 1, 1, tzinfo=zone)

    monkeypatch.setattr(module, "datetime", Later)
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:  # a load: nothing stored, the same record
        store.write_meta("text", "sentence-bert", 3, "w1")
        assert store.read_meta()["updated_at"] == first
        store.write_meta("text", "sentence-bert", 3, "w2")  # other weights: recorded, and dated
        assert store.read_meta()["updated_at"].startswith("2099")


def test_delete_prefix_removes_those_vectors_and_their_pack_only(tmp_path):
    from mmrec.features.pack import FeaturePack

    old = [make_key("vision", "imported", "imported:1", f"i{n}", "imported:1") for n in range(3)]
    new = [make_key("vision", "imported", "imported:2", f"i{n}", "imported:2") for n in range(3)]
    other = make_key("text", "imported", "imported:1", "i0", "imported:1")
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.put_many([(key, encode_vector(np.ones(2))) for key in old + new + [other]])
        FeaturePack(store.folder, "vision|imported|imported:1").write(old, np.ones((3, 2), np.float16))
        store.get_many(old)  # into the LRU
        assert store.delete_prefix("vision|imported|", keep="vision|imported|imported:2|") == 3
        assert store.existing_keys(old + new + [other]) == set(new + [other])
        assert store.get_many(old) == [None] * 3
        assert list((store.folder / "packs").iterdir()) == []


def test_size_limit_is_an_error_not_silent_eviction(tmp_path):
    with FeatureStore(tmp_path, "a_b", CacheSettings(size_limit_bytes=1)) as store:
        with pytest.raises(FeatureError, match="size limit"):
            store.put_many([("k", encode_vector(np.ones(3)))])


def test_two_processes_writing_the_same_cache(tmp_path):
    # Overlapping key ranges, written at the same time by two real processes.
    procs = [subprocess.Popen([sys.executable, WORKER, "write", str(tmp_path), "a_b", str(start), "150"], env=ENV)
             for start in (0, 100)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    sys.path.insert(0, str(Path(WORKER).parent))
    from store_worker import vector_for

    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        keys = [f"vision|fake|w|item{i}|fp" for i in range(250)]
        tensor, mask, missing, _ = store.materialize(keys)
    assert mask.all() and not missing
    expected = np.stack([vector_for(i) for i in range(250)]).astype(np.float16).astype(np.float32)
    assert np.array_equal(tensor.numpy(), expected)


def test_killed_precompute_resumes_without_recomputing(tmp_path, tiny_hf_text_dirs, build):
    from mmrec.features.item_features import precompute_item_features
    from mmrec.settings import FeaturesSettings

    items = build.items(tmp_path / "img", n=30, no_image=tuple(range(30)))
    items.to_parquet(tmp_path / "items.parquet")
    root = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, WORKER, "precompute", str(root), str(tmp_path / "items.parquet"),
                             str(tiny_hf_text_dirs["bert"])], env=ENV)
    db = root / "efficientnet-lite_sentence-bert" / "cache.db"
    deadline = time.time() + 90
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if db.is_file():
            with FeatureStore(root, db.parent.name, CacheSettings()) as store:
                stored = len(store)
            if stored >= 4:
                break
        time.sleep(0.1)
    assert proc.poll() is None, "the precompute finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with FeatureStore(root, db.parent.name, CacheSettings()) as store:
        kept = len(store)
    assert 4 <= kept < 30
    features = FeaturesSettings(text_weights=str(tiny_hf_text_dirs["bert"]), batch_size=8, device="cpu")
    report = precompute_item_features(items, features, CacheSettings(), root)
    assert report.already_cached["text"] == kept and report.computed["text"] == 30 - kept
    again = precompute_item_features(items, features, CacheSettings(), root)
    assert again.computed["text"] == 0 and again.already_cached["text"] == 30
    with FeatureStore(root, db.parent.name, CacheSettings()) as store:  # what `mmrec cache stats` shows
        assert {k: store.read_stats()[k] for k in ("kind", "hits", "misses", "computed")} == {
            "kind": "precompute", "hits": 30, "misses": 0, "computed": 0}


def test_an_unexpected_diskcache_layout_is_a_clear_error(tmp_path):
    import sqlite3

    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.put_many([("k", encode_vector(np.ones(3)))])
    with sqlite3.connect(tmp_path / "a_b" / "cache.db") as db:
        db.execute("ALTER TABLE Cache RENAME COLUMN raw TO raw_v2")
    with pytest.raises(FeatureError, match="table layout"):
        FeatureStore(tmp_path, "a_b", CacheSettings())


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["MMREC_TEST_PWNED"]),))


@pytest.mark.parametrize("tamper", ["pickled_value", "value_in_a_file", "pickled_key"])
def test_a_tampered_store_is_refused_never_unpickled(tmp_path, monkeypatch, tamper):
    """diskcache unpickles an entry whose mode says pickle (and opens the file an entry names): a cache folder copied
    from elsewhere ran code on a plain evaluate. A store holding any entry mmrec never writes is not read."""
    import pickle
    import sqlite3

    pwned = tmp_path / "pwned"
    monkeypatch.setenv("MMREC_TEST_PWNED", str(pwned))
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.put_many([("k", encode_vector(np.ones(3))), ("big", encode_vector(np.ones(40_000)))])
        assert store.get_many(["big"])[0] is not None  # over diskcache's 32 KB file threshold: still in the table
    (tmp_path / "a_b" / "ab").mkdir()
    (tmp_path / "a_b" / "ab" / "x.val").write_bytes(pickle.dumps(_Payload()))
    with sqlite3.connect(tmp_path / "a_b" / "cache.db") as db:
        change = {"pickled_value": ("value = ?, mode = 4", (pickle.dumps(_Payload()),)),
                  "value_in_a_file": ("value = NULL, mode = 4, filename = 'ab/x.val'", ()),
                  "pickled_key": ("key = ?, raw = 0", (pickle.dumps(_Payload()),))}[tamper]
        db.execute(f"UPDATE Cache SET {change[0]} WHERE key = 'k'", change[1])
    with pytest.raises(FeatureError, match="holds 1 entry mmrec never writes") as caught:
        FeatureStore(tmp_path, "a_b", CacheSettings())
    assert "cache clear a_b" in caught.value.hint and not pwned.exists()


def test_a_store_created_by_a_failed_request_is_removed_again(tmp_path):
    class Refused(Exception):
        pass

    with pytest.raises(Refused):
        with FeatureStore(tmp_path, "clip_bert", CacheSettings()):
            raise Refused  # e.g. the backbone's weights are not here
    assert not (tmp_path / "clip_bert").exists()
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.put_many([("vision|a|w|item0|fp0", encode_vector(np.ones(4)))])
    for combo in ("a_b", "clip_bert"):  # a store that holds vectors, or was there before, stays
        (tmp_path / combo).mkdir(exist_ok=True)
        with pytest.raises(Refused):
            with FeatureStore(tmp_path, combo, CacheSettings()):
                raise Refused
        assert (tmp_path / combo).is_dir()
    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        assert len(store) == 1


def test_a_write_the_disk_refuses_is_a_feature_error_and_keeps_what_was_stored(tmp_path, monkeypatch):
    import contextlib
    import sqlite3

    from mmrec.errors import FeatureError
    from mmrec.features.feature_store import FeatureStore
    from mmrec.settings import CacheSettings

    with FeatureStore(tmp_path, "a_b", CacheSettings()) as store:
        store.put_many([("k1", b"one")])

        @contextlib.contextmanager
        def full_disk(retry=False):
            yield
            raise sqlite3.OperationalError("disk I/O error")  # as COMMIT fails under `ulimit -f`

        monkeypatch.setattr(store.disk, "transact", full_disk)
        with pytest.raises(FeatureError, match="disk I/O error.*the disk is full"):
            store.put_many([("k2", b"two")])
        monkeypatch.undo()
        assert store.get_many(["k1"]) == [b"one"]


def test_a_cache_folder_this_user_cannot_write_is_a_clear_error(tmp_path, monkeypatch):
    import sqlite3

    import diskcache

    from mmrec.features.feature_store import FeatureStore
    from mmrec.settings import CacheSettings

    def read_only(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(diskcache, "Cache", read_only)
    with pytest.raises(FeatureError, match="readonly database.*must be writable by this user"):
        FeatureStore(tmp_path, "a_b", CacheSettings())
