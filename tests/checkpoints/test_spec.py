import pytest

from mmrec.checkpoints.spec import CheckpointSpec
from mmrec.data.encoders import IdEncoder
from mmrec.errors import CheckpointError


def spec_dict(**overrides):
    users, items = IdEncoder.fit(["a", "b"]), IdEncoder.fit(["x"])
    spec = {
        "kind": "best", "combo": "v_t", "model_args": {"n_user_ids": 3, "n_item_ids": 2, "vision_dim": 0,
                                                        "text_dim": 0, "numeric_dim": 1},
        "settings": {"model": {"embedding_dim": 8, "num_heads": 2}, "features": {}},
        "encoders": {"user": users.fingerprint, "item": items.fingerprint}, "n_users": 2, "n_items": 1,
        "numeric": {"columns": [], "count_feature": "train_interactions", "scaler": {"mean": [0.0], "std": [1.0]}},
        "backbones": {}, "monitor": "ndcg@10", "epoch": 1, "monitored_value": 0.5, "metrics": {"ndcg@10": 0.5},
        "loss": 1.0, "best_epoch": 1, "best_value": 0.5, "versions": {"torch": "x"},
    }
    return {**spec, **overrides}, users, items


def test_spec_round_trips_and_rebuilds_settings():
    meta, users, items = spec_dict()
    spec = CheckpointSpec.from_meta(meta, "p.pth")
    assert CheckpointSpec.from_meta(spec.to_meta(), "p.pth") == spec
    assert spec.to_meta()["versions"] == {"torch": "x"}  # provenance keys are kept
    assert spec.model_settings().embedding_dim == 8 and spec.features_settings().combo == "efficientnet-lite_sentence-bert"
    assert spec.numeric.build_scaler().transform([[0.0]]).tolist() == [[0.0]]
    spec.check_encoders(users, items, "p.pth")
    with pytest.raises(CheckpointError, match="item id encoder"):
        spec.check_encoders(users, IdEncoder.fit(["y"]), "p.pth")


def test_incomplete_metadata_is_a_checkpoint_error():
    meta, _, _ = spec_dict()
    del meta["numeric"]
    with pytest.raises(CheckpointError, match="lacks the model description \\(numeric"):
        CheckpointSpec.from_meta(meta, "p.pth")
    with pytest.raises(CheckpointError):
        CheckpointSpec.from_meta({**spec_dict()[0], "settings": {"model": {"bogus": 1}}}, "p.pth").model_settings()


def test_a_config_asking_for_other_model_inputs_than_the_checkpoint_gets_a_note():
    """A model trained without images was served under a config that asks for them (and the reverse) with no word:
    comparing ablations, a user could not tell which model answered."""
    from mmrec.settings import FeaturesSettings, ModelSettings

    meta, _, _ = spec_dict(settings={"model": {"embedding_dim": 8, "num_heads": 2, "use_vision": False},
                                     "features": {}})
    spec = CheckpointSpec.from_meta(meta, "p.pth")
    assert spec.features_note(FeaturesSettings(), ModelSettings(use_vision=False)) is None
    note = spec.features_note(FeaturesSettings(), ModelSettings())
    assert note.startswith("The model served was trained with model.use_vision false (this config: true): it reads "
                           "the item inputs it was trained on")


def test_the_item_item_model_is_named_by_the_inputs_it_had():
    from mmrec.checkpoints.store import item_item_kind

    assert item_item_kind(True, True) == "EASE with the image and text features as side information"
    assert item_item_kind(False, True) == "EASE with the text features as side information"
    assert item_item_kind(False, False) == "EASE alone (no image or text feature)"  # said "image/text" for any model
