import pandas as pd
import pytest

from mmrec.data.interactions import clean_interactions, k_core
from mmrec.errors import DataError
from mmrec.settings import DataSettings, PreprocessSettings


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
    assert report.examples["missing_id"] == ["(<missing>, a)", "(u2, <missing>)"]
    assert report.examples["duplicate"] == ["(u2, a)"]
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


def test_iso_8601_timestamps_become_unix_seconds():
    raw = _raw(
        [
            ["u1", "a", "2024-03-01T12:00:00Z"],
            ["u1", "b", "2024-03-01T13:00:00+01:00"],  # the same instant as the row above
            ["u2", "a", "2024-03-01"],  # no zone means UTC
            ["u2", "b", "2024-03-01 12:00:00.75"],
            ["u3", "a", "1709294400"],  # unix seconds still work, also mixed with ISO-8601
            ["u3", "b", "yesterday"],
        ],
        ("user_id", "item_id", "timestamp"),
    )
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings())
    noon = 1709294400  # 2024-03-01T12:00:00Z
    assert out["timestamp"].tolist() == [noon, noon, noon - 12 * 3600, noon, noon]
    assert out["timestamp"].dtype == "int64" and report.dropped == {"bad_timestamp": 1}


def test_an_empty_timestamp_is_its_own_drop_reason_with_its_own_advice():
    # A blank time cell is no date-format problem: "set data.timestamp_format" would send the user astray.
    raw = _raw([["u1", "a", "1709294400"], ["u1", "b", ""], ["u2", "a", None], ["u2", "b", "soon"],
                ["u3", "a", "  "], ["u3", "b", "1709294401"], ["u4", "a", "1709294402"], ["u4", "b", "1709294403"],
               ["u5", "a", "1709294404"]], ("user_id", "item_id", "timestamp"))
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings())
    assert report.dropped == {"missing_timestamp": 3, "bad_timestamp": 1} and len(out) == 5
    # What SQL, pandas and R exports write for no value is a missing time too, not a date format to set.
    markers = _raw([["u1", "a", "NULL"], ["u1", "b", "NaN"], ["u2", "a", "NA"], ["u2", "b", "1709294400"],
                    ["u3", "a", "1709294401"], ["u3", "b", "1709294402"], ["u4", "a", "1709294403"]],
                   ("user_id", "item_id", "timestamp"))
    assert clean_interactions(markers, {"a", "b"}, PreprocessSettings())[1].dropped == {"missing_timestamp": 3}
    missing, unreadable = report.notes
    assert missing.startswith("3 of the 9 rows (33%) have no timestamp (an empty cell, NULL/NaN/NA, or a line cut "
                              "short")
    assert "leave the timestamp column out" in missing and "timestamp_format" not in missing
    assert unreadable.startswith("1 of the 9 rows (11%) have a timestamp that cannot be read") and "'soon'" in unreadable
    # Mostly empty: the remnant is refused, and the error says the column is empty, not that its dates are unread.
    with pytest.raises(DataError) as caught:
        clean_interactions(raw.iloc[:5], {"a", "b"}, PreprocessSettings())
    assert "4 of the 5 interaction rows (80%) have no timestamp (3) or one that cannot be read" in f"{caught.value}"
    assert "the column is mostly empty" in f"{caught.value}"


def test_ids_in_another_unicode_form_are_one_id_and_said_so():
    # macOS and zip tools write 'é' decomposed (e + U+0301): the same text, compared unequal byte for byte.
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    raw = _raw([["Ana Mar\u00eda", decomposed], ["Ana Mari\u0301a", "b"], ["Ana Mar\u00eda", "b"], ["u2", "b"]],
               ("user_id", "item_id"))
    out, report = clean_interactions(raw, {composed, "b"}, PreprocessSettings(drop_duplicates=False))
    assert report.dropped == {} and out["item_id"].tolist() == [composed, "b", "b", "b"]  # item_info's form
    assert out["user_id"].tolist() == ["Ana Mar\u00eda"] * 3 + ["u2"]  # the form most rows use
    users, items = report.notes
    assert users.startswith("1 user id(s) (1 row(s)) are other users' ids written in another Unicode form")
    assert items.startswith("1 id(s) of the interactions' items (1 row(s)) are item_info's ids written in another")
    assert "'cafe\\u0301' is 'caf\\xe9'" in items


def test_users_who_liked_nothing_are_counted_in_a_note():
    raw = _raw([["u1", "a", "1", "5"], ["u1", "b", "2", "2"], ["u2", "a", "3", "1"], ["u2", "b", "4", "3"]])
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 4.0)
    assert out["user_id"].tolist() == ["u1"] and report.dropped == {"below_threshold": 3}
    assert any(note.startswith("1 user(s) (e.g. 'u2') rated nothing at or above data.positive_rating_threshold (4)")
               for note in report.notes)


def test_no_rows_left_names_every_drop_count():
    raw = _raw([["u1", "a", "soon"], ["u2", "zz", "1"]], ("user_id", "item_id", "timestamp"))
    with pytest.raises(DataError) as caught:
        clean_interactions(raw, {"a"}, PreprocessSettings())
    message = f"{caught.value}"
    assert "No interactions are left" in message and "2 rows" in message
    assert "bad_timestamp: 1" in message and "unknown_item: 1" in message
    assert "ISO-8601" in message and "k-core" not in message


def test_no_rows_after_k_core_points_at_the_thresholds():
    raw = _raw([["u1", "a"], ["u2", "a"]], ("user_id", "item_id"))
    with pytest.raises(DataError, match="k_core: 2") as caught:
        clean_interactions(raw, {"a"}, PreprocessSettings(min_user_interactions=2))
    assert "min_user_interactions" in f"{caught.value}"


def test_no_rows_hint_starts_with_the_reason_that_dropped_most():
    raw = _raw([["u1", "zz"], ["u1", "a"], ["u2", "a"], ["u3", "a"]], ("user_id", "item_id"))
    with pytest.raises(DataError) as caught:
        clean_interactions(raw, {"a"}, PreprocessSettings(min_user_interactions=2))
    hint = caught.value.hint or ""
    assert hint.index("min_user_interactions") < hint.index("item_id values must match")  # k_core 3 > unknown 1


def test_user_ids_with_control_characters_are_rejected_and_shown_escaped():
    raw = _raw([["u1", "a"], ["ctl\x07user", "a"], ["\x1b[41mX", "a"], ["u 2", "a"]], ("user_id", "item_id"))
    out, report = clean_interactions(raw, {"a"}, PreprocessSettings())
    assert sorted(out["user_id"]) == ["u 2", "u1"] and report.dropped == {"unsafe_user_id": 2}
    assert report.examples["unsafe_user_id"] == ["('ctl\\x07user', a)", "('\\x1b[41mX', a)"]


def test_unix_times_in_finer_units_are_read_by_their_size_and_the_rest_out_of_range_dropped():
    # A JavaScript log writes milliseconds (a 2023 time: 1.7e12); those rows were dropped, a whole file of them
    # stopped preprocess. Now a number's size says its unit; what names no date in years 1-9999 is still dropped.
    raw = _raw([["u1", "a", "1700000000"], ["u1", "b", "1700000000123"], ["u2", "a", "-99999999999999"],
                ["u2", "b", "1700000000000000"], ["u3", "a", "1700000000000000000"]],
               ("user_id", "item_id", "timestamp"))
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings())
    assert out["timestamp"].tolist() == [1700000000] * 4
    assert report.dropped == {"timestamp_out_of_range": 1}
    assert report.examples["timestamp_out_of_range"] == ["(u2, a)"]
    assert report.notes == ["1 row(s) hold unix times in milliseconds (e.g. '1700000000123'): read as such.",
                            "1 row(s) hold unix times in microseconds (e.g. '1700000000000000'): read as such.",
                            "1 row(s) hold unix times in nanoseconds (e.g. '1700000000000000000'): read as such."]
    with pytest.raises(DataError, match="within years 1-9999"):
        clean_interactions(raw.iloc[[2]], {"a", "b"}, PreprocessSettings())


def test_a_rating_threshold_without_ratings_filters_nothing_and_says_so():
    raw = _raw([["u1", "a", "1"], ["u1", "b", "2"]], columns=("user_id", "item_id", "timestamp"))
    settings = PreprocessSettings(min_user_interactions=1, min_item_interactions=1)
    out, report = clean_interactions(raw, {"a", "b"}, settings, 4.0)
    assert len(out) == 2 and "below_threshold" not in report.dropped
    assert len(report.notes) == 1 and "data.positive_rating_threshold is 4, but the interactions have no rating" \
        in report.notes[0]
    assert clean_interactions(raw, {"a", "b"}, settings, None)[1].notes == []
    rated = _raw([["u1", "a", "1"], ["u1", "b", "5"]], columns=("user_id", "item_id", "rating"))
    notes = clean_interactions(rated, {"a", "b"}, settings, None)[1].notes
    assert len(notes) == 1 and "every rated row counts as a positive (a 1 as much as the best)" in notes[0]
    assert clean_interactions(rated, {"a", "b"}, settings, 4.0)[1].rated_below.values.tolist() == [["u1", "a"]]


def test_unknown_items_that_lost_their_leading_zeros_are_pointed_out():
    raw = _raw([["u1", "0001234", "1"], ["u1", "1234", "2"], ["u2", "0001234", "3"], ["u2", "42.0", "4"],
                ["u3", "SKU-7", "5"], ["u3", "9.78316E+12", "6"], ["u3", "never-seen", "7"],
                ["u4", "0-345-45104-x", "8"]],  # an ISBN with hyphens (Book-Crossing's ratings file)
               columns=("user_id", "item_id", "timestamp"))
    settings = PreprocessSettings(min_user_interactions=1, min_item_interactions=1)
    out, report = clean_interactions(raw, {"0001234", "42", "sku-7", "9783161484100", "034545104X"}, settings)
    assert len(out) == 2 and report.dropped == {"unknown_item": 6}
    numbers, case, groups, scientific = report.notes
    assert groups.startswith("1 unknown id(s) of the interactions match catalogue ids once separators are taken out "
                             "(e.g. '0-345-45104-x' vs '034545104X')")
    assert numbers.startswith("2 unknown id(s) of the interactions match catalogue ids once read as text again (e.g. "
                              "'1234' -> '0001234': leading zeros put back or taken off, a '.0' taken off): the ids "
                              "were read as numbers somewhere, or written with zeros the ids do not have.")
    assert case.startswith("1 unknown id(s) of the interactions match catalogue ids but for letter case (e.g. 'SKU-7' "
                           "vs 'sku-7')")
    assert scientific.startswith("1 unknown id(s) of the interactions are numbers in scientific notation (e.g. "
                                 "'9.78316E+12')")


def test_unreadable_rating_is_kept_without_a_threshold():
    raw = _raw([["u1", "a", "1", "5"], ["u1", "b", "2", "oops"], ["u2", "a", "3", None]])
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings())
    assert report.dropped == {} and len(out) == 3
    assert out["rating"].isna().sum() == 2
    assert any("2 row(s) have no rating or one that is not a number (e.g. 'oops', '')" in note
               and "data.positive_rating_threshold is not set" in note for note in report.notes)
    _, with_threshold = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 4.0)
    assert with_threshold.dropped["bad_rating"] == 2 and "data.unrated: positive" in with_threshold.notes[0]
    # data.unrated: positive (orders never reviewed): kept as positives while a low rating still is not one.
    rated_low = pd.concat([raw, _raw([["u2", "b", "4", "2"]])], ignore_index=True)
    out, report = clean_interactions(rated_low, {"a", "b"}, PreprocessSettings(), 4.0, unrated="positive")
    assert out[["user_id", "item_id"]].values.tolist() == [["u1", "a"], ["u1", "b"], ["u2", "a"]]
    assert report.dropped == {"below_threshold": 1} and "data.unrated is 'positive'" in report.notes[0]
    # The note counts the rows it speaks of that are kept (a Book-Crossing walkthrough: 22,922 said kept, 19,489 were).
    unknown = pd.concat([rated_low, _raw([["u2", "zz", "5", ""]])], ignore_index=True)
    _, report = clean_interactions(unknown, {"a", "b"}, PreprocessSettings(), 4.0, unrated="positive")
    assert report.dropped == {"below_threshold": 1, "unknown_item": 1}
    assert report.notes[0].startswith("3 row(s) have no rating or one that is not a number (e.g. 'oops', '', '') "
                                      "(2 of them kept: the others were dropped for the reasons counted); they count")


def test_a_purchase_followed_by_a_view_is_noted_and_highest_keeps_it():
    # rating = the event's strength: 1 view, 2 purchase; threshold 2
    raw = _raw([["u1", "a", "1", "2"], ["u1", "a", "5", "1"], ["u1", "b", "2", "1"], ["u1", "b", "3", "2"],
                ["u2", "a", "4", "2"]])
    latest, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 2.0)
    assert sorted(map(tuple, latest[["user_id", "item_id"]].values)) == [("u1", "b"), ("u2", "a")]
    assert any("1 user-item pair(s) were rated at or above data.positive_rating_threshold (2) in one row but "
               "below it in their latest" in note and "duplicate_rating: highest" in note for note in report.notes)
    highest, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(duplicate_rating="highest"), 2.0)
    assert sorted(map(tuple, highest[["user_id", "item_id"]].values)) == [("u1", "a"), ("u1", "b"), ("u2", "a")]
    assert highest.set_index("item_id").loc["a"].iloc[0]["timestamp"] == 1  # the purchase row, not the view
    assert report.dropped == {"duplicate": 2} and not any("latest" in note for note in report.notes)


def raw_dtype(frame):
    return frame["timestamp"].dtype


def test_a_pair_with_several_rows_is_dated_by_its_first_and_examples_name_each_pair_once():
    # A favourite played in March and in December went to a time split's test whole (dated by its latest play), an
    # item recommend never shows back, credited as a future find: half the test pairs of a listening log.
    raw = _raw([["u1", "a", "100", "40"], ["u1", "a", "900", "35"], ["u1", "a", "500", "60"], ["u1", "b", "300", "50"],
                ["u2", "a", "700", "10"], ["u2", "a", "200", "45"]])
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 30.0)
    assert out.sort_values(["user_id", "item_id"])[["timestamp", "rating"]].values.tolist() == [[100, 35], [300, 50]]
    assert report.dropped == {"duplicate": 3, "below_threshold": 1} and report.examples["duplicate"] == [
        "(u1, a)", "(u2, a)"]
    assert any(note.startswith("1 user-item pair(s) with several rows are dated by their first row") for note in
               report.notes)  # u2's pair is dated too, but its kept row (a skip) is no positive
    highest, _ = clean_interactions(raw, {"a", "b"}, PreprocessSettings(duplicate_rating="highest"), 30.0)
    assert highest.sort_values("item_id")[["timestamp", "rating"]].values.tolist() == [[100, 60], [200, 45], [300, 50]]
    # Dated by the first row that is a positive: an event log's view before its purchase is no having the item
    # (dated by the view, a test-period purchase went to training).
    events = _raw([["u1", "a", "100", "view"], ["u1", "a", "500", "purchase"], ["u1", "a", "900", "view"],
                   ["u1", "b", "300", "purchase"]])
    bought, _ = clean_interactions(events, {"a", "b"}, PreprocessSettings(duplicate_rating="highest"), 2.0,
                                   rating_words={"view": 1, "purchase": 4})
    assert bought.sort_values("item_id")[["timestamp", "rating"]].values.tolist() == [[500, 4], [300, 4]]
    assert bought["timestamp"].dtype == highest["timestamp"].dtype == raw_dtype(clean_interactions(
        raw.iloc[[3]], {"b"}, PreprocessSettings())[0])
    # Without a time column the last row in file order is kept, and the note says so rather than "latest".
    _, report = clean_interactions(raw.iloc[[0, 2, 1, 3]].drop(columns="timestamp"), {"a", "b"}, PreprocessSettings(),
                                   38.0)  # u1's a: 40, 60, then 35
    assert any("below it in their last (in file order: the interactions have no time column)" in n
               for n in report.notes)


def test_spreadsheet_dates_read_with_data_timestamp_format_and_unreadable_ones_are_a_note():
    rows = [["u1", "a", "03/12/2026", "4,5"], ["u1", "b", "45850", "5"], ["u2", "a", "45850.5", "N/A"],
            ["u2", "b", "2026-02-01", "4"]]
    raw = _raw(rows)
    # Default: ISO and unix seconds only. The local date is dropped with a note naming it and the setting; the
    # serial days are read as seconds of 1 January 1970, which a note says; the unreadable ratings say why.
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 4.0)
    assert report.dropped == {"bad_timestamp": 1, "bad_rating": 1}
    assert out["timestamp"].tolist() == [45850, 1769904000]
    serial, comma, dates, ratings = report.notes
    assert comma.startswith("The ratings are written with a decimal comma (e.g. '4,5') and seldom if ever with a point")
    _, told = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 4.0, decimal=".")  # English: no comma
    assert "4.5" not in told.ratings and not any("decimal comma (e.g." in note for note in told.notes)
    assert serial.startswith("2 row(s) have a time between 20,000 and 80,000 (e.g. '45850', '45850.5')")
    assert "data.timestamp_format: excel" in serial
    assert dates.startswith("1 of the 4 rows (25%) have a timestamp that cannot be read as unix seconds or ISO-8601 "
                            "(e.g. '03/12/2026'): dropped.") and "'%d/%m/%Y'" in dates
    assert ratings.startswith("1 of the 4 rows (25%) have no rating or one that is not a number (e.g. 'N/A')")
    assert report.ratings == {"4": 1, "4.5": 1, "5": 1}  # every number read, including the row a bad date drops
    # 'excel': serial days (the fraction is the time of day), ISO text as before.
    out, report = clean_interactions(raw.iloc[1:], {"a", "b"}, PreprocessSettings(), None, timestamp_format="excel")
    assert out["timestamp"].tolist() == [1752278400, 1752278400 + 43200, 1769904000] and report.dropped == {}
    # Unix seconds under 'excel' read as days beyond year 9999: dropped, and the note says what they look like.
    seconds = _raw([["u1", "a", "45850", "4"], ["u2", "a", "45851", "4"], ["u3", "b", "1709294400", "5"]])
    out, report = clean_interactions(seconds, {"a", "b"}, PreprocessSettings(), None, timestamp_format="excel")
    assert report.dropped == {"timestamp_out_of_range": 1} and len(report.notes) == 1
    assert "values like 1.71e+09, far beyond spreadsheet serial days" in report.notes[0]
    assert "look like unix seconds" in report.notes[0] and "milliseconds" not in report.notes[0]
    # A strftime format reads every value with it: here the day first; a half of the rows or less unread is a note.
    mostly_days = _raw([["u1", "a", "03/12/2026", "4"], ["u2", "a", "03/12/2026", "4"], ["u1", "b", "45850", "5"]])
    out, report = clean_interactions(mostly_days, {"a", "b"}, PreprocessSettings(), None, timestamp_format="%d/%m/%Y")
    assert out["timestamp"].tolist() == [1796256000] * 2 and report.dropped == {"bad_timestamp": 1}  # 2026-12-03
    assert "cannot be read with data.timestamp_format '%d/%m/%Y' (e.g. '45850')" in report.notes[0]
    # More than half of the rows unread: the dates are in another form than set, an error (with the same note).
    with pytest.raises(DataError) as caught:
        clean_interactions(raw, {"a", "b"}, PreprocessSettings(), None, timestamp_format="%d/%m/%Y")
    message = f"{caught.value}"
    assert message.startswith("3 of the 4 interaction rows (75%) have a timestamp that cannot be read: more than half")
    assert "cannot be read with data.timestamp_format '%d/%m/%Y' (e.g. '45850', '45850.5', '2026-02-01')" in message
    decimal = clean_interactions(_raw([["u1", "a", "1", "4,5"], ["u1", "b", "2", "4"]]), {"a", "b"},
                                 PreprocessSettings(), 4.0)[1]
    assert "decimal comma" in decimal.notes[0]


def test_dates_written_as_digits_are_read_as_seconds_with_a_note_naming_the_format():
    raw = _raw([["u1", "a", "20240301"], ["u2", "a", "20240302"], ["u3", "b", "1709294400"]],
               ("user_id", "item_id", "timestamp"))
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), None)
    assert report.dropped == {} and out["timestamp"].tolist()[:2] == [20240301, 20240302]
    (note,) = report.notes
    assert note.startswith("2 row(s) have a time that is a date written as digits (e.g. '20240301', '20240302')")
    assert "data.timestamp_format: '%Y%m%d'" in note
    out, report = clean_interactions(raw.iloc[:2], {"a", "b"}, PreprocessSettings(), None, timestamp_format="%Y%m%d")
    assert out["timestamp"].tolist() == [1709251200, 1709337600] and not report.notes  # 2024-03-01, -02


def test_user_ids_differing_only_by_letter_case_stay_apart_with_a_note():
    raw = _raw([["anna@x.com", "a"], ["ANNA@X.COM", "b"], ["bo", "a"], ["Anna@x.com", "a"]], ("user_id", "item_id"))
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings())
    assert report.users == 4 and len(out) == 4
    assert report.notes == ["1 user id(s) are written in more than one letter case (e.g. 'anna@x.com' and "
                            "'ANNA@X.COM'): ids are compared exactly, so each spelling is a user of its own. If they "
                            "are one user (e-mail addresses), write the column in one case."]


def test_user_ids_also_written_with_a_point_zero_stay_apart_with_a_note():
    raw = _raw([["256", "a"], ["256.0", "b"], ["7", "a"], ["8.0", "a"]], ("user_id", "item_id"))
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings())
    assert report.users == 4 and len(out) == 4  # kept as written ('8.0' alone is no second spelling)
    assert report.notes == ["1 user id(s) also appear with a '.0' (e.g. '256' and '256.0'): the column was read as "
                            "numbers in some rows, and each spelling is a user of its own. Write the ids as text (one "
                            "spelling per user)."]


def test_rated_below_holds_each_pair_once_and_not_pairs_liked_in_another_row():
    raw = _raw([["u1", "a", "1", "2"], ["u1", "a", "2", "1"], ["u1", "b", "3", "1"], ["u1", "b", "4", "5"],
                ["u2", "a", "5", "5"]])
    settings = PreprocessSettings(drop_duplicates=False)
    out, report = clean_interactions(raw, {"a", "b"}, settings, 4.0)
    assert report.rated_below.values.tolist() == [["u1", "a"]]  # (u1, b) is also a positive row
    assert out[["user_id", "item_id"]].values.tolist() == [["u1", "b"], ["u2", "a"]]


def test_rated_below_leaves_out_users_the_k_core_filter_removed_but_keeps_those_with_no_positive():
    """An Amazon 5-core walkthrough: 1,124 users the filter removed stayed in rated_below, so recommend --all-users
    served them the fallback 'because they only rated below the threshold' (3 did), and not the other removed users."""
    rows = [["u1", item, str(t), "5"] for t, item in enumerate("abc")] + [["u2", item, str(t), "5"]
                                                                          for t, item in enumerate("abc")]
    rows += [["u3", "a", "10", "5"], ["u3", "b", "11", "2"],  # one positive: removed by min_user_interactions 2
             ["u4", "c", "12", "1"]]  # no positive at all: served the fallback without c
    settings = PreprocessSettings(min_user_interactions=2, min_item_interactions=1)
    out, report = clean_interactions(_raw(rows), set("abc"), settings, 4.0)
    assert set(out["user_id"]) == {"u1", "u2"} and report.dropped["k_core"] == 1
    assert report.rated_below.values.tolist() == [["u4", "c"]]


def test_when_no_row_is_left_the_error_carries_the_notes_that_say_why():
    """Every id written as a float (a pandas column with one NaN): nothing is left, and the error says the ids
    were read as numbers, the note a run with some rows left prints."""
    raw = _raw([["u1", "494.0", "1"], ["u2", "495.0", "2"]], columns=("user_id", "item_id", "timestamp"))
    with pytest.raises(DataError) as caught:
        clean_interactions(raw, {"494", "495"}, PreprocessSettings())
    message = f"{caught.value}"
    assert "unknown_item: 2" in message and "match catalogue ids once read as text again (e.g. '494.0' -> '494'" \
        in message


def test_a_rating_column_of_words_is_shown_with_its_values_and_how_to_map_them():
    raw = _raw([["u1", "a", "view"], ["u2", "b", "purchase"]], columns=("user_id", "item_id", "rating"))
    with pytest.raises(DataError) as caught:
        clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 2.0)
    message = f"{caught.value}"
    assert "bad_rating: 2" in message and "(e.g. 'view', 'purchase')" in message
    assert "if they are event types, map them to numbers with data.rating_values (e.g. {view: 1, purchase: 4})" in \
        message
    # data.rating_values reads an event log's types as numbers (its file edited by hand before), case aside.
    raw = _raw([["u1", "a", "view"], ["u1", "b", " Purchase "], ["u2", "a", "4"], ["u2", "b", "wishlist"],
                ["u3", "a", None]], columns=("user_id", "item_id", "rating"))
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(duplicate_rating="highest"), 2.0,
                                     rating_words={"View": 1, "purchase": 4})
    assert out[["user_id", "item_id", "rating"]].values.tolist() == [["u1", "b", 4.0], ["u2", "a", 4.0]]
    assert report.dropped == {"bad_rating": 2, "below_threshold": 1}  # 'wishlist' is no word it maps, nor is blank
    assert "Ratings read by data.rating_values: 'view' = 1 (1 rows), 'purchase' = 4 (1 rows)." in report.notes
    with pytest.raises(ValueError, match="named twice"):
        DataSettings(rating_values={"view": 1, " VIEW": 2})
    with pytest.raises(ValueError, match="'view' maps to true/false"):  # a YAML typo, read as 1 before
        DataSettings(rating_values={"view": True})
    # A word it does not name is said to be missing from it (the hint suggested the setting already set).
    raw = _raw([["u1", "a", "view"], ["u1", "b", "removefromcart"], ["u2", "a", "purchase"]],
               columns=("user_id", "item_id", "rating"))
    _, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), 2.0, rating_words={"view": 1, "purchase": 4})
    (note,) = [note for note in report.notes if "removefromcart" in note]
    assert "words data.rating_values does not name ('removefromcart'): add them to it" in note
    assert "map them to numbers with" not in note


def test_a_filter_that_removes_most_interactions_says_so():
    rows = [["u1", "a", "1"], ["u1", "b", "2"], ["u2", "a", "3"], ["u2", "b", "4"], ["u3", "c", "5"], ["u4", "d", "6"],
            ["u5", "e", "7"]]
    raw = _raw(rows, columns=("user_id", "item_id", "timestamp"))
    out, report = clean_interactions(raw, set("abcde"), PreprocessSettings(min_user_interactions=2,
                                                                         min_item_interactions=2))
    assert len(out) == 4 and report.dropped["k_core"] == 3
    assert not any("removed" in note for note in report.notes)  # 3 of 7: a minority
    out, report = clean_interactions(raw.iloc[[0, 2, 4, 5, 6]], set("abcde"),
                                     PreprocessSettings(min_user_interactions=1, min_item_interactions=2))
    assert len(out) == 2 and report.dropped["k_core"] == 3
    assert [note for note in report.notes if "removed 3 of 5 interactions (60%, 1 round(s))" in note
            and "stay in the catalogue as cold items" in note]


def test_unix_seconds_divided_by_1000_once_too_often_are_pointed_out():
    # Milliseconds divided by 1e6: 90 days of events became 2 hours of 20 January 1970, and nothing said so.
    ms = [1_700_000_000_000 + day * 86_400_000 for day in (0, 30, 90)]
    raw = _raw([["u1", "a", str(ms[0] / 1e6)], ["u1", "b", str(ms[1] / 1e6)], ["u2", "a", str(ms[2] / 1e6)]],
               ("user_id", "item_id", "timestamp"))
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), None)
    (note,) = report.notes
    assert len(out) == 3 and note.startswith("Every timestamp written as a number lies between 100,000 and "
                                             "100,000,000 (1.7e+06 to 1.708e+06), read as unix seconds: moments of "
                                             "1970-1973 spanning 2.16 hours")
    # Real seconds, numbers that only order the events (1, 2, 3) and yyyymmdd dates get no such note.
    for times in (["1700000000", "1702592000", "1707776000"], ["1", "2", "3"]):
        ok = raw.assign(timestamp=pd.array(times, dtype="string"))
        assert clean_interactions(ok, {"a", "b"}, PreprocessSettings(), None)[1].notes == []
    dates = raw.assign(timestamp=pd.array(["20240301", "20240302", "20240303"], dtype="string"))
    assert [n[:40] for n in clean_interactions(dates, {"a", "b"}, PreprocessSettings(), None)[1].notes] == [
        "3 row(s) have a time that is a date writ"]


def test_event_words_as_ratings_say_how_to_map_them_and_that_highest_compares_nothing():
    raw = _raw([["u1", "a", "1700000000", "view"], ["u1", "a", "1700000100", "like"],
                ["u2", "b", "1700000200", "share"]])
    out, report = clean_interactions(raw, {"a", "b"}, PreprocessSettings(duplicate_rating="highest"), None)
    assert len(out) == 2 and out["rating"].isna().all()
    (note,) = [n for n in report.notes if "not a number" in n]
    assert "they count as positives, since data.positive_rating_threshold is not set." in note
    assert note.startswith("3 row(s) have no rating or one that is not a number (e.g. 'view', 'like', 'share') (2 of "
                           "them kept: the others were dropped for the reasons counted)")  # the duplicate (u1, a)
    assert "duplicate_rating: highest cannot compare them" in note and "The column holds words" in note
    assert "(or preprocess.duplicate_rating: highest" not in note  # already set: not suggested again
    plain = clean_interactions(raw, {"a", "b"}, PreprocessSettings(), None)[1].notes
    assert not any("cannot compare" in n for n in plain) and any("The column holds words" in n for n in plain)


def test_a_rating_written_nan_or_null_gets_no_event_words_hint():
    """A JSON NaN rating was said to be a word ("The column holds words: if they are event types, map them ...")."""
    from mmrec.data.interactions import _event_words_hint

    assert _event_words_hint(["nan", "NaN"]) == "" and _event_words_hint(["null"]) == ""
    assert "The column holds words" in _event_words_hint(["view", "purchase"])
