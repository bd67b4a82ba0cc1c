import pytest

from mmrec.combo import check_combo_name
from mmrec.errors import CheckpointError, ConfigError, FeatureError


@pytest.mark.parametrize("good", ["efficientnet-lite_sentence-bert", "v_t", "clip_clip", "vit-b.16_mpnet"])
def test_valid_combo_names(good):
    assert check_combo_name(good) == good


@pytest.mark.parametrize("bad", ["../x", "a/b_c", "..", "", "a\x00b_c", "nounderscore", "_x", "a_b_c", "a.._b",
                                 "a_" + "b" * 200, "a\\b_c"])
def test_invalid_combo_names_are_refused(bad):
    with pytest.raises(ConfigError, match="not a valid feature combo name"):
        check_combo_name(bad)


def test_the_caller_chooses_the_error_class():
    # The same rule for the feature store and the checkpoints, each with its own error.
    from mmrec.checkpoints.store import validate_combo
    from mmrec.features.feature_store import combo_folder

    with pytest.raises(CheckpointError):
        validate_combo("a/b_c")
    with pytest.raises(FeatureError):
        combo_folder("cache", "a/b_c")
