import pytest
import torch

from mmrec.errors import FeatureError
from mmrec.features.fingerprint import text_fingerprint
from mmrec.features.item_features import ItemFeatures, load_item_features
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


def test_a_modality_the_model_does_not_read_is_never_resolved_or_computed(tmp_path, features, build):
    # model.use_vision: false -> load_item_features(modalities=("text",)): no vision columns, nothing computed
    # for it, and its backbone's weights are not even looked for (here they do not exist).
    items = build.items(tmp_path / "img", n=3)
    text_only = features.model_copy(update={"vision_backbone": "resnet", "vision_weights": str(tmp_path / "none")})
    feats = load_item_features(items, text_only, CacheSettings(), tmp_path / "cache", modalities=("text",))
    assert feats.vision.shape == (3, 0) and feats.vision_dim == 0 and not feats.vision_mask.any()
    assert feats.text.shape == (3, 32) and feats.computed == 3 and set(feats.identities) == {"text"}
    from mmrec.features.item_features import precompute_item_features

    report = precompute_item_features(items, text_only, CacheSettings(), tmp_path / "cache", modalities=("text",))
    assert list(report.with_content) == ["text"] and report.already_cached == {"text": 3}


def test_missing_features_error_when_computing_is_off(tmp_path, features, build):
    items = build.items(tmp_path / "img", n=2)
    with pytest.raises(FeatureError) as info:
        load_item_features(items, features, CacheSettings(compute_missing=False), tmp_path / "cache")
    assert "mmrec cache precompute" in info.value.hint


def test_items_without_any_content_give_zero_rows_and_false_masks(tmp_path, features, build):
    items = build.items(tmp_path / "img", n=2, no_image=(0, 1), texts=["", "  "])
    feats = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    # No item has an image or text: no columns at all (the model leaves such a modality out).
    assert feats.vision.shape == (2, 0) and feats.text.shape == (2, 0) and (feats.vision_dim, feats.text_dim) == (0, 0)
    assert not feats.vision_mask.any() and not feats.text_mask.any()
    assert feats.computed == 0


def _vision_of(path, features, cache_dir, build):
    """The vision vector of one image file, computed in a fresh cache."""
    import pandas as pd

    from mmrec.features.file_digests import sha256_file

    item = pd.DataFrame([{"item_id": "probe", "text": "", "image_path": str(path), "has_image": True,
                          "image_fingerprint": sha256_file(path), "text_fingerprint": None}])
    return load_item_features(item, features, CacheSettings(), cache_dir).vision[0]


def test_an_image_replaced_after_caching_gets_a_new_vector(tmp_path, features, build):
    # The table's fingerprint (taken at preprocess) is not what decides the key: the bytes are.
    items = build.items(tmp_path / "img", n=2)
    first = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    path = items.loc[0, "image_path"]
    build.striped(seed=7, horizontal=False).save(path, "JPEG")
    second = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    assert second.computed == 1
    assert not torch.allclose(first.vision[0], second.vision[0])
    assert torch.allclose(second.vision[0], _vision_of(path, features, tmp_path / "fresh", build), atol=1e-3)


def test_vectors_of_a_wrong_image_never_land_under_the_original_content(tmp_path, features, build):
    items = build.items(tmp_path / "img", n=2)
    path = items.loc[0, "image_path"]
    original = open(path, "rb").read()
    build.striped(seed=7, horizontal=False).save(path, "JPEG")  # replaced before the first extraction
    load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    with open(path, "wb") as handle:
        handle.write(original)  # the original is back: its own vector, not the replacement's
    restored = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    assert torch.allclose(restored.vision[0], _vision_of(path, features, tmp_path / "fresh", build), atol=1e-3)


def test_a_repaired_image_is_retried_and_gets_a_vector(tmp_path, features, build):
    from mmrec.features.item_features import precompute_item_features

    items = build.items(tmp_path / "img", n=3, corrupt=(1,))
    cache_dir = tmp_path / "cache"
    first = precompute_item_features(items, features, CacheSettings(), cache_dir)
    assert first.failed["vision"] == 1 and first.computed["vision"] == 2
    build.blob(seed=5).save(items.loc[1, "image_path"], "JPEG")  # repaired in place
    second = precompute_item_features(items, features, CacheSettings(), cache_dir)
    assert second.computed["vision"] == 1 and second.failed["vision"] == 0
    assert load_item_features(items, features, CacheSettings(), cache_dir).vision_mask.all()


def test_a_refused_backbone_leaves_no_combo_folder(tmp_path, build):
    from mmrec.errors import WeightsNotFoundError
    from mmrec.features.item_features import precompute_item_features

    items = build.items(tmp_path / "img", n=2)
    refused = FeaturesSettings(vision_backbone="resnet", vision_weights=str(tmp_path / "nope.pth"))
    for run in (precompute_item_features, load_item_features):
        with pytest.raises(WeightsNotFoundError):
            run(items, refused, CacheSettings(), tmp_path / "cache")
        assert not (tmp_path / "cache" / "resnet_sentence-bert").exists()


def test_rows_of_the_same_content_are_computed_once_and_share_the_vector(tmp_path, features, build, monkeypatch):
    """A cover shared by several items (an album's tracks, a placeholder image) and a repeated description
    are embedded once; every row gets the vector under its own key, as if computed alone."""
    import shutil

    from mmrec.features import extract
    from mmrec.features.file_digests import sha256_file

    items = build.items(tmp_path / "img", n=4)
    for row in (1, 2):  # items 1 and 2 carry item 0's image bytes
        shutil.copy(items.loc[0, "image_path"], items.loc[row, "image_path"])
        items.loc[row, "image_fingerprint"] = sha256_file(items.loc[row, "image_path"])
    items.loc[3, "text"], items.loc[3, "text_fingerprint"] = items.loc[0, "text"], items.loc[0, "text_fingerprint"]
    embedded: dict[str, int] = {"vision": 0, "text": 0}
    vision, text = extract.iter_vision_features, extract.iter_text_features

    def count_vision(backbone, paths, *args):
        embedded["vision"] += len(paths)
        return vision(backbone, paths, *args)

    def count_text(backbone, texts, *args):
        embedded["text"] += len(texts)
        return text(backbone, texts, *args)

    monkeypatch.setattr(extract, "iter_vision_features", count_vision)
    monkeypatch.setattr(extract, "iter_text_features", count_text)
    shared = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    assert embedded == {"vision": 2, "text": 3} and shared.computed == 4 + 4
    assert torch.equal(shared.vision[1], shared.vision[0]) and torch.equal(shared.vision[2], shared.vision[0])
    assert torch.equal(shared.text[3], shared.text[0]) and shared.vision_mask.all()
    assert torch.allclose(shared.vision[1], _vision_of(items.loc[1, "image_path"], features, tmp_path / "fresh", build),
                          atol=1e-3)
    assert load_item_features(items, features, CacheSettings(), tmp_path / "cache").computed == 0  # all stored


def test_another_combo_with_the_same_backbone_lends_its_vectors_instead_of_recomputing(tmp_path, features, build,
                                                                                       tiny_hf_text_dirs):
    from mmrec.features.item_features import precompute_item_features

    items = build.items(tmp_path / "img", n=4, corrupt=(2,))
    first = load_item_features(items, features, CacheSettings(), tmp_path / "cache")
    assert first.combo == "efficientnet-lite_sentence-bert" and first.computed == 3 + 4  # the corrupt: failed
    other_text = features.model_copy(update={"text_backbone": "bert", "text_weights": str(tiny_hf_text_dirs["bert"])})
    report = precompute_item_features(items, other_text, CacheSettings(), tmp_path / "cache")
    # The images' vectors (and the corrupt one's "unreadable" mark) come from the first combo; text is computed.
    assert report.borrowed["vision"] == {"efficientnet-lite_sentence-bert": 4}
    assert report.computed == {"vision": 0, "text": 4} and report.failed["vision"] == 0
    from mmrec.features.feature_store import FeatureStore

    with FeatureStore(tmp_path / "cache", report.combo, CacheSettings()) as store:  # copies alone fill it: recorded
        assert store.read_meta()["vision"]["dim"] == first.vision_dim
        assert store.read_stats()["misses"] == 4 + 4  # the copied images were misses here, as the texts were
        assert store.read_stats()["copied"] == 4 and store.read_stats()["computed"] == 4  # every miss accounted for
    events: list[ProgressEvent] = []
    third = load_item_features(items, features.model_copy(update={
        "text_backbone": "roberta", "text_weights": str(tiny_hf_text_dirs["roberta"])}), CacheSettings(),
        tmp_path / "cache", progress=events.append)
    assert third.combo == "efficientnet-lite_roberta" and third.computed == 4  # the text alone
    assert torch.equal(third.vision, first.vision) and torch.equal(third.vision_mask, first.vision_mask)
    assert any("4 vision feature(s) copied from" in e.message for e in events)
    with FeatureStore(tmp_path / "cache", third.combo, CacheSettings()) as store:
        assert store.read_stats()["copied"] == 4


def test_stored_vectors_stand_in_for_missing_weights_only_when_they_are_the_default_ones(tmp_path, features, build,
                                                                                         monkeypatch):
    """Where a backbone's weights are not on this machine, vectors it made elsewhere with its default weights (and
    this token limit) are served; vectors of weights someone named (a local folder) are not what the default
    weights make, so they never stand in for them."""
    import json

    from mmrec.errors import WeightsNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-hf-cache"))  # bert's default weights are not on this machine
    items = build.items(tmp_path / "img", n=3)
    named = features.model_copy(update={"text_backbone": "bert"})
    made = load_item_features(items, named, CacheSettings(), tmp_path / "cache")
    meta_path = tmp_path / "cache" / made.combo / "meta.json"
    assert json.loads(meta_path.read_text())["text"]["default_weights"] is False
    default = named.model_copy(update={"text_weights": None})
    with pytest.raises(WeightsNotFoundError):  # bert-base is not here; the tiny folder's vectors must not serve
        load_item_features(items, default, CacheSettings(), tmp_path / "cache")
    meta = json.loads(meta_path.read_text())
    meta["text"]["default_weights"] = True  # as if made from bert's default weights on another machine
    meta_path.write_text(json.dumps(meta))
    served = load_item_features(items, default, CacheSettings(), tmp_path / "cache")
    assert served.computed == 0 and torch.equal(served.text, made.text)
    with pytest.raises(WeightsNotFoundError):  # another token limit: other vectors, which cannot be made here
        load_item_features(items, default.model_copy(update={"max_text_tokens": 16}), CacheSettings(),
                           tmp_path / "cache")
