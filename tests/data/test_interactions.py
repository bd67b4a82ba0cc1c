import pandas as pd
import pytest

from mmrec.data.interactions import clean_interactions, k_core
from mmrec.errors import DataError
from mmrec.settings import PreprocessSettings


def _raw(rows, columns=("user_id", "item_id", "timestamp", "rating")):
    return pd.DataFrame(rows, columns=list(columns), dtype="string")


def test_bad_rows_are_counted_by_reason():
    raw = _raw(
        [
            ["u1", "a", "1", "5"],
            ["", "a", "2", "5"],
            ["u2", None, "3", "5"],
            ["u1", "zz", "4", "5"],
            ["u1", "b", "x", "5"],
            ["u2", "a", "5", "oops"],
            ["u2", "b", "6", "1"],
            ["u2", "a", "7", "4"],
            ["u2", "a", "9", "2"],  # duplicate pair: the later (rating 2) is kept
            ["u3", "../x", "8", "5"],
        ]
    )
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 4.0, rejected_items={"../x"})
    assert report.dropped == {
        "missing_id": 2,
        "bad_timestamp": 1,
        "bad_rating": 1,
        "unsafe_item_id": 1,
        "unknown_item": 1,
        "duplicate": 1,
        "below_threshold": 2,
    }
    assert out[["user_id", "item_id"]].values.tolist() == [["u1", "a"]]
    assert report.input_rows == 10 and report.kept == 1
    assert report.examples["missing_id"] == ["<missing>/a", "u2/<missing>"]
    assert report.examples["duplicate"] == ["u2/a"]
    assert out["timestamp"].dtype == "int64" and out["rating"].dtype == "float64"


def test_ids_stay_strings_with_leading_zeros():
    out, _ = clean_interactions(
        _raw([["007", "0042"]], ("user_id", "item_id")), {"0042"}, PreprocessSettings()
    )
    assert out.values.tolist() == [["007", "0042"]] and list(out.columns) == ["user_id", "item_id"]


def test_unknown_items_can_be_an_error():
    with pytest.raises(DataError, match="absent from item_info"):
        clean_interactions(
            _raw([["u", "x"]], ("user_id", "item_id")), {"a"}, PreprocessSettings(unknown_items="error")
        )


def test_missing_required_column_is_named():
    with pytest.raises(DataError, match="user_id"):
        clean_interactions(pd.DataFrame({"item_id": ["a"]}), {"a"}, PreprocessSettings())


def test_k_core_iterates_until_stable():
    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3"], "item_id": ["a", "b", "a", "c", "a"]})
    # min 2 per item: b, c go; then u1, u2 have 1 each and go (min 2 per user); then a goes.
    kept, rounds, removed = k_core(frame, 2, 2)
    assert kept.empty and rounds >= 2 and len(removed) == 5
    kept, rounds, _ = k_core(frame, 1, 1)
    assert len(kept) == 5 and rounds == 0
