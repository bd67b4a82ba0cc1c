import pytest

from mmrec.data.ids import catalogue_reason, image_file_name, is_safe_id, safe_filename, unsafe_reason
from mmrec.errors import DataError


@pytest.mark.parametrize("item_id", ["42", "i00001", "movie-7_b", "été", "a.b"])
def test_ordinary_ids_are_safe(item_id):
    assert safe_filename(item_id) == f"{item_id}.jpg"
    assert is_safe_id(item_id)


@pytest.mark.parametrize(
    "item_id",
    ["", "../etc/passwd", "a/b", "a\\b", "..", "x..y", "nul\x00byte", "bell\x07", " padded", "a\nb"],
)
def test_unsafe_ids_are_rejected(item_id):
    assert unsafe_reason(item_id) is not None
    with pytest.raises(DataError, match="cannot be used as a file name"):
        safe_filename(item_id)


@pytest.mark.parametrize("item_id", ["../etc/passwd", "a/b", "a\\b", "..", "x..y", "https://x.org/a?b=1", "é" * 150])
def test_an_id_that_cannot_name_a_file_is_still_an_id_whose_image_gets_a_hashed_name(item_id):
    assert catalogue_reason(item_id) is None
    name = image_file_name(item_id)
    assert name.startswith("id-sha256-") and name.endswith(".jpg") and is_safe_id(name)
    assert image_file_name(item_id + "x") != name and image_file_name("i00001") == "i00001.jpg"


@pytest.mark.parametrize("item_id", ["", "nul\x00byte", "bell\x07", "a\nb"])
def test_only_empty_ids_and_control_characters_are_no_ids(item_id):
    assert catalogue_reason(item_id) is not None


def test_positions_match_a_dict_lookup_for_every_input_kind():
    import numpy as np
    import pandas as pd

    from mmrec.data.ids import positions, string_array

    vocabulary = ["b", "a", "10", "é", "1.5"]
    lookup = {value: k for k, value in enumerate(vocabulary)}
    values = ["a", "zz", "10", "é", "b", "", "a"]
    expected = np.array([lookup.get(v, -1) for v in values])
    for given in (values, pd.Series(values), pd.Series(values, dtype="string"), pd.Index(values),
                  np.array(values, dtype=object)):
        assert positions(given, vocabulary).tolist() == expected.tolist()
    # Non-string values compare as their str(), as the encoders always did; prepared vocabularies work too.
    assert positions([10, 1.5, None], string_array(vocabulary)).tolist() == [2, 4, -1]
    assert positions(pd.Series([10, 3]), pd.Index(vocabulary)).tolist() == [2, -1]
    assert positions([], vocabulary).dtype == np.int64
