import pytest

from mmrec.data.ids import is_safe_id, safe_filename, unsafe_reason
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
