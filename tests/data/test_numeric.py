import json

import numpy as np
import pandas as pd
import pytest

from mmrec.data.numeric import NumericScaler, interaction_counts, validate_numeric_columns
from mmrec.errors import DataError


def test_missing_column_names_it_and_lists_present_columns():
    items = pd.DataFrame({"item_id": ["a"], "views": ["1"]})
    with pytest.raises(DataError) as info:
        validate_numeric_columns(items, ["likes"], "median")
    assert "'likes'" in info.value.message and "item_id, views" in info.value.message


def test_invalid_values_are_counted_and_imputed():
    items = pd.DataFrame({"item_id": list("abcdefg"), "n": ["1", "3", "lots", None, "inf", "-2", "5"]})
    values, reports = validate_numeric_columns(items, ["n"], "median")
    report = reports["n"]
    assert (report.non_numeric, report.missing, report.infinite, report.negative) == (1, 1, 1, 1)
    assert report.imputed == 4 and report.fill_value == 3.0
    assert values["n"].tolist() == [1.0, 3.0, 3.0, 3.0, 3.0, 3.0, 5.0]
    assert set(report.examples) == {"c", "d", "e", "f"}


def test_counts_written_with_magnitude_suffixes_or_separators_are_parsed_and_counted():
    items = pd.DataFrame({"item_id": list("abcdefgh"),
                          "n": ["20.1K", "154.3k", "1.5M", "2B", "1,234", "1,234.5", "7", "1,23"]})
    values, reports = validate_numeric_columns(items, ["n"], "median")
    assert values["n"].tolist()[:7] == [20_100.0, 154_300.0, 1_500_000.0, 2e9, 1234.0, 1234.5, 7.0]
    report = reports["n"]
    assert report.formatted == 6 and report.formatted_examples == ["20.1K=20,100", "154.3k=154,300", "1.5M=1,500,000"]
    assert report.non_numeric == 1 and report.imputed == 1 and report.examples == ["h"]  # "1,23" is no number
    shares = pd.DataFrame({"item_id": list("abcd"), "discount": ["25%", "12.5 %", "0%", "%"]})
    values, reports = validate_numeric_columns(shares, ["discount"], "median")
    assert values["discount"].tolist()[:3] == [25.0, 12.5, 0.0]  # the column's own percentage points
    assert reports["discount"].formatted == 3 and reports["discount"].non_numeric == 1
    durations = pd.DataFrame({"item_id": list("abcd"), "length": ["3:35", "0:59", "1:02:03", "3:75"]})
    values, reports = validate_numeric_columns(durations, ["length"], "median")
    assert values["length"].tolist()[:3] == [215.0, 59.0, 3723.0]  # m:ss and h:mm:ss as seconds
    assert reports["length"].formatted == 3 and reports["length"].non_numeric == 1  # 75 is no seconds
    wide = pd.DataFrame({"item_id": list("abcd"), "views": ["１２３", "２０Ｋ", "１，２３４", "百"]})
    values, reports = validate_numeric_columns(wide, ["views"], "median")
    assert values["views"].tolist()[:3] == [123.0, 20_000.0, 1234.0]  # full-width digits as typed in Japan
    assert reports["views"].formatted == 3 and reports["views"].non_numeric == 1  # a numeral word is no digits
    # Prices as shops export them (Amazon meta: "$12.99"; a range is no number).
    prices = pd.DataFrame({"item_id": list("abcdef"), "price": ["$12.99", "$1,234.50", "5 EUR", "£3.5K",
                                                                "$5.99 - $12.99", "12.99"]})
    values, reports = validate_numeric_columns(prices, ["price"], "median")
    assert values["price"].tolist() == [12.99, 1234.5, 5.0, 3500.0, 12.99, 12.99]  # the range imputed (median)
    assert reports["price"].formatted == 4 and reports["price"].non_numeric == 1


def test_a_column_without_any_valid_value_is_left_all_nan_not_imputed():
    items = pd.DataFrame({"item_id": list("abc"), "shares": [None, "", "n/a"], "views": ["1", None, "3"]})
    values, reports = validate_numeric_columns(items, ["shares", "views"], "median")
    assert values["shares"].isna().all() and reports["shares"].no_information
    assert (reports["shares"].missing, reports["shares"].non_numeric, reports["shares"].imputed) == (2, 1, 0)
    assert values["views"].tolist() == [1.0, 2.0, 3.0] and not reports["views"].no_information


@pytest.mark.parametrize("policy, fill", [("mean", 2.0), ("zero", 0.0)])
def test_impute_policies(policy, fill):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "n": ["1", "3", "x"]})
    values, reports = validate_numeric_columns(items, ["n"], policy)
    assert values["n"].iloc[2] == fill and reports["n"].fill_value == fill


def test_scaler_standardises_log_values_and_round_trips_through_json():
    train = np.array([[0.0, 10.0], [10.0, 10.0], [100.0, 10.0], [1000.0, 10.0]])
    scaler = NumericScaler().fit(train)
    scaled = scaler.transform(train)
    assert scaled.dtype == np.float32 and scaled.shape == (4, 2)
    assert abs(scaled[:, 0].mean()) < 1e-6 and abs(scaled[:, 0].std() - 1) < 1e-5
    assert np.all(scaled[:, 1] == 0)  # constant column -> 0, not NaN
    restored = NumericScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_allclose(restored.transform([[5.0, -3.0]]), scaler.transform([[5.0, -3.0]]))


def test_scaler_rejects_wrong_width():
    scaler = NumericScaler().fit(np.ones((3, 2)))
    with pytest.raises(DataError):
        scaler.transform(np.ones((3, 3)))


def test_interaction_counts_uses_only_the_given_frame():
    train = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "item_id": ["a", "a", "b"]})
    counts = interaction_counts(train, ["b", "a", "cold"])
    assert counts.dtype == np.float32 and counts.tolist() == [1.0, 2.0, 0.0]


def test_parsed_examples_name_distinct_texts():
    items = pd.DataFrame({"item_id": list("abcde"), "n": ["1.2K", "1.2K", "1.2K", "1,299.00", "3M"]})
    _, reports = validate_numeric_columns(items, ["n"], "median")
    assert reports["n"].formatted == 5
    assert reports["n"].formatted_examples == ["1.2K=1,200", "1,299.00=1,299", "3M=3,000,000"]
