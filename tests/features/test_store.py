import pytest
import torch

from mmrec.errors import FeatureError
from mmrec.features.fingerprint import text_fingerprint
from mmrec.features.store import ItemFeatures, load_item_features
from mmrec.progress import ProgressEvent
from mmrec.settings import CacheSettings, FeaturesSettings


@pytest.fixture
def features(tiny_hf_text_dirs):
    # Real EfficientNet-Lite0 for images (fast to load), the tiny BERT folder for text.
    return FeaturesSettings(text_weights=str(tiny_hf_text_dirs["bert"]), num_workers=0, batch_size=4, device="cpu")


def test_load_computes_missing_once_then_serves_the_cache(tmp_path, features, build):
    items = build.items(tmp_path / "img", n=6, corrupt=(3,), no_image=(5,))
    events: list[ProgressEvent] = []
    first = load_item_features(items, features, CacheSettings(), tmp_path / "cache", progress=events.append)
    assert isinstance(first, ItemFeatures) and first.combo == "efficientnet-lite_sentence-bert"
    assert first.vision.shape == (6, 1280) and first.text.shape == (6, 32)
    assert first.vision_dim == 1280 and first.text_dim == 32
    assert first.vision_mask.tolist() == [True, True, True, False, True, False]  # corrupt + no image
    assert first.text_mask.all() and first.computed == 4 + 6  # the corrupt image is counted as failed
    assert first.vision[3].abs().sum() == 0 and first.vision[0].abs().sum() > 0
    assert any("could not be read" in e.message for e in events)
    assert any("Computing" in e.message for e in events)
    second = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    assert second.computed == 0  # the corrupt image is remembered, not retried
    assert torch.allclose(first.vision, second.vision) and torch.equal(first.vision_mask, second.vision_mask)
    # Row order follows the table, whatever order it comes in.
    reversed_ = load_item_features(items.iloc[::-1], features, CacheSettings(), tmp_path / "cache")
    assert torch.allclose(reversed_.text, second.text.flip(0))


def test_edited_text_is_recomputed_never_served_stale(tmp_path, features, build):
    items = build.items(tmp_path / "img", n=3)
    before = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    items.loc[1, "text"] = "A completely different description"
    items.loc[1, "text_fingerprint"] = text_fingerprint(items.loc[1, "text"])
    after = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    assert after.computed == 1
    assert not torch.allclose(before.text[1], after.text[1]) and torch.allclose(before.text[0], after.text[0])


def test_missing_features_error_when_computing_is_off(tmp_path, features, build):
    items = build.items(tmp_path / "img", n=2)
    with pytest.raises(FeatureError) as info:
        load_item_features(items, features, CacheSettings(compute_missing=False), tmp_path / "cache")
    assert "mmrec cache precompute" in info.value.hint


def test_items_without_any_content_give_zero_rows_and_false_masks(tmp_path, features, build):
    items = build.items(tmp_path / "img", n=2, no_image=(0, 1), texts=["", "  "])
    feats = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    assert feats.vision.shape == (2, 1280) and not feats.vision_mask.any() and not feats.text_mask.any()
    assert feats.computed == 0
