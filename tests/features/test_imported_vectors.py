"""Imported vectors in the feature store: what an import writes, what loading then reads, and the refusals."""

import numpy as np
import pytest

from mmrec.errors import FeatureError
from mmrec.features.feature_store import FeatureStore
from mmrec.features.imported_vectors import import_item_vectors, imported_record
from mmrec.features.item_features import load_item_features, precompute_item_features
from mmrec.features.vector_file import read_vector_file
from mmrec.progress import ProgressEvent
from mmrec.settings import CacheSettings, FeaturesSettings

IMPORTED_BOTH = FeaturesSettings(vision_backbone="imported", text_backbone="imported", num_workers=0, device="cpu")
COMBO = IMPORTED_BOTH.combo


@pytest.fixture
def items(tmp_path, build):
    return build.items(tmp_path / "images", n=6)


def _ids(items) -> list[str]:
    return items["item_id"].tolist()


def _import(cache_dir, tmp_path, modality, matrix, row_ids, catalogue, name="v"):
    """Save `matrix` + `row_ids` as .npy + id list and import them into COMBO."""
    np.save(tmp_path / f"{name}.npy", matrix)
    (tmp_path / f"{name}.txt").write_text("\n".join(row_ids) + "\n")
    vectors = read_vector_file(tmp_path / f"{name}.npy", str(tmp_path / f"{name}.txt"), catalogue)
    with FeatureStore(cache_dir, COMBO, CacheSettings()) as store:
        return import_item_vectors(store, modality, vectors, catalogue)


def _store_size(cache_dir) -> int:
    with FeatureStore(cache_dir, COMBO, CacheSettings()) as store:
        return len(store)


def test_loading_reads_the_imported_vectors_and_masks_items_the_file_lacks(tmp_path, items):
    cache_dir, ids = tmp_path / "cache", _ids(items)
    rng = np.random.default_rng(0)
    vision = rng.normal(size=(5, 4)).astype(np.float32)  # item5 has no row; 'stranger' is not in the catalogue
    report = _import(cache_dir, tmp_path, "vision", np.vstack([vision, np.ones((1, 4))]), ids[:5] + ["stranger"], ids)
    assert (report.written, report.unknown_ids, report.missing_items) == (5, ["stranger"], ["item5"])
    assert report.identity.startswith("imported:") and not report.unchanged
    text = rng.normal(size=(6, 3)).astype(np.float32)
    _import(cache_dir, tmp_path, "text", text[::-1], ids[::-1], ids, name="t")  # rows in another order
    events: list[ProgressEvent] = []
    features = load_item_features(items, IMPORTED_BOTH, CacheSettings(compute_missing=False), cache_dir,
                                  progress=events.append)
    assert (features.vision_dim, features.text_dim, features.computed) == (4, 3, 0)
    np.testing.assert_array_equal(features.vision[:5].numpy(), vision.astype(np.float16).astype(np.float32))
    assert features.vision[5].abs().sum() == 0 and features.vision_mask.tolist() == [True] * 5 + [False]
    np.testing.assert_array_equal(features.text.numpy(), text.astype(np.float16).astype(np.float32))
    assert features.text_mask.all() and features.not_imported == {"vision": 1, "text": 0}
    note = "1 of 6 items have no imported vision vector (treated as lacking vision): 'item5'"
    assert any(note in event.message for event in events)


def test_the_same_file_again_is_a_no_op_and_a_new_file_replaces_the_vectors(tmp_path, items):
    cache_dir, ids = tmp_path / "cache", _ids(items)
    first = _import(cache_dir, tmp_path, "vision", np.ones((6, 2)), ids, ids)
    again = _import(cache_dir, tmp_path, "vision", np.ones((6, 2)), ids, ids)
    assert again.unchanged and again.written == 0 and again.identity == first.identity
    assert _store_size(cache_dir) == 6
    second = _import(cache_dir, tmp_path, "vision", np.full((6, 2), 2.0), ids, ids)
    assert second.identity != first.identity and second.replaced == first.identity and second.removed == 6
    assert _store_size(cache_dir) == 6
    with FeatureStore(cache_dir, COMBO, CacheSettings()) as store:
        assert imported_record(store.read_meta(), "vision")["weights_id"] == second.identity
    _import(cache_dir, tmp_path, "text", np.ones((6, 2)), ids, ids, name="t")
    features = load_item_features(items, IMPORTED_BOTH, CacheSettings(), cache_dir)
    assert features.vision.unique().tolist() == [2.0] and features.vision_mask.all()


def test_the_same_matrix_under_other_ids_is_another_import(tmp_path, items):
    cache_dir, ids = tmp_path / "cache", _ids(items)
    first = _import(cache_dir, tmp_path, "vision", np.eye(6), ids, ids)
    second = _import(cache_dir, tmp_path, "vision", np.eye(6), ids[::-1], ids)
    assert not second.unchanged and second.identity != first.identity


def test_a_replacement_that_dies_before_the_switch_leaves_the_old_vectors_served(tmp_path, items, monkeypatch):
    cache_dir, ids = tmp_path / "cache", _ids(items)
    _import(cache_dir, tmp_path, "vision", np.ones((6, 2)), ids, ids)
    _import(cache_dir, tmp_path, "text", np.ones((6, 2)), ids, ids, name="t")

    def die(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(FeatureStore, "write_meta", die)
    with pytest.raises(KeyboardInterrupt):
        _import(cache_dir, tmp_path, "vision", np.full((6, 2), 3.0), ids, ids)
    monkeypatch.undo()
    features = load_item_features(items, IMPORTED_BOTH, CacheSettings(), cache_dir)
    assert features.vision.unique().tolist() == [1.0] and features.vision_mask.all()


def test_another_dimension_replaces_the_earlier_import(tmp_path, items):
    cache_dir, ids = tmp_path / "cache", _ids(items)
    _import(cache_dir, tmp_path, "vision", np.ones((6, 2)), ids, ids)
    _import(cache_dir, tmp_path, "text", np.ones((6, 4)), ids, ids, name="t")
    report = _import(cache_dir, tmp_path, "vision", np.full((6, 3), 2.0), ids, ids, name="w")
    assert report.replaced and report.replaced_dim == 2 and report.removed == 6
    features = load_item_features(items, IMPORTED_BOTH, CacheSettings(compute_missing=False), cache_dir)
    assert (features.vision_dim, features.text_dim) == (3, 4)  # the other modality is untouched
    assert bool((features.vision == 2).all()) and features.vision_mask.all()


@pytest.mark.parametrize("bad, message", [
    (np.nan, r"2 row\(s\) contain NaN or infinite values \(items 'item1', 'item4'\)"),
    (np.inf, r"2 row\(s\) contain NaN or infinite values \(items 'item1', 'item4'\)"),
    (1e6, r"2 row\(s\) hold values beyond 65504, which the float16 store cannot keep \(items 'item1', 'item4'\)"),
])
def test_rows_that_are_not_finite_or_too_large_refuse_the_file_and_write_nothing(tmp_path, items, bad, message):
    cache_dir, ids = tmp_path / "cache", _ids(items)
    matrix = np.ones((6, 2))
    matrix[[1, 4], 0] = bad
    with pytest.raises(FeatureError, match=message):
        _import(cache_dir, tmp_path, "vision", matrix, ids, ids)
    assert _store_size(cache_dir) == 0
    with FeatureStore(cache_dir, COMBO, CacheSettings()) as store:
        assert store.read_meta() == {}


def test_a_file_with_no_catalogue_id_is_refused(tmp_path, items):
    with pytest.raises(FeatureError, match=r"None of the 2 item ids .* is in the catalogue \(e.g. 'x', 'y'\)"):
        _import(tmp_path / "cache", tmp_path, "vision", np.ones((2, 2)), ["x", "y"], _ids(items))


def test_loading_before_any_import_says_to_import(tmp_path, items):
    with pytest.raises(FeatureError, match="no vision vectors were imported into imported_imported") as info:
        load_item_features(items, IMPORTED_BOTH, CacheSettings(), tmp_path / "cache")
    assert "mmrec cache import --modality vision" in info.value.hint


def test_precompute_computes_the_other_modality_and_reports_what_the_import_lacks(tmp_path, items, tiny_hf_text_dirs):
    from mmrec.features.text import SentenceBert
    from mmrec.features.weights import WeightsSource

    cache_dir, ids = tmp_path / "cache", _ids(items)
    features = IMPORTED_BOTH.model_copy(update={"text_backbone": "sentence-bert"})
    text = SentenceBert.load(WeightsSource(tiny_hf_text_dirs["sentence-bert"], "explicit"), max_tokens=16)
    before = precompute_item_features(items, features, CacheSettings(), cache_dir, backbones={"text": text})
    assert before.imported == {"vision": None} and before.not_imported == {"vision": 6, "text": 0}
    assert before.computed == {"vision": 0, "text": 6}
    np.save(tmp_path / "v.npy", np.ones((4, 2)))
    (tmp_path / "v.txt").write_text("\n".join(ids[:4]))
    with FeatureStore(cache_dir, features.combo, CacheSettings()) as store:
        import_item_vectors(store, "vision", read_vector_file(tmp_path / "v.npy", str(tmp_path / "v.txt"), ids), ids)
    after = precompute_item_features(items, features, CacheSettings(), cache_dir, force=True, backbones={"text": text})
    assert after.imported["vision"].startswith("imported:") and after.not_imported == {"vision": 2, "text": 0}
    assert after.already_cached["vision"] == 4 and after.computed == {"vision": 0, "text": 6}
