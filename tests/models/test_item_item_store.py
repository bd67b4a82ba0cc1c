"""Stored item-item fits: keyed by what B depends on, reused only for the same inputs, bounded on disk."""

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from mmrec.data.encoders import IdEncoder
from mmrec.models.histories import catalogue_index
from mmrec.models.inputs import ItemInputs
from mmrec.models.item_item import ItemItemModel, fit_item_item
from mmrec.models.item_item_store import ItemItemStore, fit_key
from mmrec.settings import ModelSettings


def _pattern(seed: int = 0, users: int = 30, items: int = 12) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < 0.3).astype(np.float32)
    return sp.csr_matrix(dense)


def _content(items: int = 12, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(items, 5, generator=gen), torch.ones(items, dtype=torch.bool))]


def test_key_depends_on_the_gram_inputs_only():
    x, content, settings = _pattern(), _content(), {"l2": 10.0, "neighbours": None}
    key = fit_key(x, content, settings)
    # Row order, empty rows and profile weights (recency half-life) leave X^T X's pattern alone.
    assert fit_key(x[np.random.default_rng(1).permutation(x.shape[0])], content, settings) == key
    assert fit_key(sp.vstack([sp.csr_matrix((2, x.shape[1])), x]).tocsr(), content, settings) == key
    weighted = x.copy()
    weighted.data *= 0.25
    assert fit_key(weighted, content, settings) == key
    # ... even where a weight underflowed to 0: a user's 400th item back at half-life 2 is still one of their items
    # (train stored its fit at half-life 0, evaluate looked for it at the chosen 2 and refitted; a walkthrough's LOO).
    from mmrec.models.item_item import interaction_csr

    one_user = np.zeros(400, dtype=np.int64), np.arange(400)
    decayed = interaction_csr(*one_user, 1, 400, halflife=2.0)
    assert (decayed.data == 0).sum() > 0
    assert fit_key(decayed, [], settings) == fit_key(interaction_csr(*one_user, 1, 400), [], settings)
    # Anything B depends on changes it.
    other = x.tolil()
    other[0, 0] = 0 if other[0, 0] else 1
    assert fit_key(other.tocsr(), content, settings) != key
    assert fit_key(x, _content(seed=1), settings) != key
    assert fit_key(x, [(content[0][0], torch.arange(12) % 2 == 0)], settings) != key
    assert fit_key(x, content, {**settings, "l2": 11.0}) != key
    assert fit_key(x, [], settings) != key


@pytest.mark.parametrize("neighbours", [None, 4])
def test_store_round_trips_dense_and_sparse_weights(tmp_path, neighbours):
    x, content = _pattern(), _content()
    model = ItemItemModel.fit(x, content, l2=10.0, content_weight=1.0, neighbours=neighbours)
    store = ItemItemStore(tmp_path / "item_item")
    key = fit_key(x, content, {"neighbours": neighbours})
    assert store.load(key, "cpu") is None
    store.save(key, model.weights)
    loaded = store.load(key, "cpu")
    assert loaded.layout == model.weights.layout
    assert torch.equal(loaded.to_dense(), model.weights.to_dense())
    rows = np.arange(x.shape[0])
    assert torch.equal(ItemItemModel(loaded, x).scores(rows), model.scores(rows))


def test_store_keeps_the_most_recently_used_fits(tmp_path):
    store = ItemItemStore(tmp_path, keep=2)
    keys = [fit_key(_pattern(seed), [], {}) for seed in range(3)]
    for key in keys[:2]:
        store.save(key, torch.eye(3))
    assert store.load(keys[0], "cpu") is not None  # used: now newer than keys[1]
    store.save(keys[2], torch.eye(3))
    assert sorted(p.stem for p in tmp_path.glob("*.safetensors")) == sorted([keys[0], keys[2]])
    assert store.load(keys[1], "cpu") is None


def test_a_damaged_or_foreign_file_is_refitted_not_trusted(tmp_path, caplog):
    store = ItemItemStore(tmp_path)
    key, other = fit_key(_pattern(0), [], {}), fit_key(_pattern(1), [], {})
    store.path(key).write_bytes(b"not safetensors")
    with caplog.at_level(logging.WARNING):
        assert store.load(key, "cpu") is None
    assert "refitting" in caplog.text
    store.save(other, torch.eye(3))
    store.path(other).rename(store.path(key))  # a file whose recorded key is not its name
    assert store.load(key, "cpu") is None
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_fit_item_item_reuses_a_stored_fit(tmp_path, monkeypatch):
    train = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c", "c", "c"],
                          "item_id": ["i0", "i1", "i1", "i2", "i0", "i2", "i3"]})
    users = IdEncoder(["a", "b", "c"], "user")
    rows = catalogue_index(["i0", "i1", "i2", "i3"])
    catalogue = ItemInputs(ids=torch.arange(1, 5), vision=torch.randn(4, 3), vision_mask=torch.ones(4, dtype=torch.bool),
                           text=torch.randn(4, 2), text_mask=torch.ones(4, dtype=torch.bool),
                           numeric=torch.zeros(4, 0))
    cfg = ModelSettings(item_item_l2=5.0, item_item_content_weight=1.0)
    store = ItemItemStore(tmp_path)
    first = fit_item_item(train, users, rows, catalogue, cfg, 0.0, store=store)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1

    def no_refit(*args, **kwargs):
        raise AssertionError("refitted")

    monkeypatch.setattr(ItemItemModel, "fit", no_refit)
    again = fit_item_item(train, users, rows, catalogue, cfg, 5.0, store=store)  # other half-life: same B
    assert torch.equal(again.weights, first.weights)
    with pytest.raises(AssertionError, match="refitted"):  # other settings: another B
        fit_item_item(train, users, rows, catalogue, cfg.model_copy(update={"item_item_l2": 6.0}), 0.0, store=store)


def test_an_unwritable_folder_warns_and_still_serves(tmp_path, caplog, monkeypatch):
    store = ItemItemStore(tmp_path)
    key = fit_key(_pattern(), [], {})
    store.save(key, torch.eye(3))

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("mmrec.models.item_item_store.os.utime", refuse)
    monkeypatch.setattr("mmrec.models.item_item_store.atomic_path", refuse)
    assert torch.equal(store.load(key, "cpu"), torch.eye(3))
    with caplog.at_level(logging.WARNING):
        assert store.save(fit_key(_pattern(1), [], {}), torch.eye(3)) is None
    assert "Could not store" in caplog.text
    assert store.load(fit_key(_pattern(), [], {}), "cpu") is not None  # nothing pruned, nothing lost


def test_a_file_of_another_dtype_is_not_trusted(tmp_path):
    from safetensors.torch import save_file

    store = ItemItemStore(tmp_path)
    key = fit_key(_pattern(), [], {})
    save_file({"weights": torch.eye(3, dtype=torch.float64)}, str(store.path(key)),
              metadata={"format": "mmrec.item_item/1", "key": key, "shape": "3,3", "layout": "dense"})
    assert store.load(key, "cpu") is None


def test_a_file_size_limit_while_saving_a_fit_warns_like_a_full_disk(tmp_path, caplog, monkeypatch):
    from safetensors import SafetensorError

    def too_large(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: File too large (os error 27)")

    monkeypatch.setattr("safetensors.torch.save_file", too_large)
    with caplog.at_level(logging.WARNING):
        assert ItemItemStore(tmp_path).save(fit_key(_pattern(), [], {}), torch.eye(3)) is None
    assert "Could not store" in caplog.text and not list(tmp_path.glob("*.safetensors"))
