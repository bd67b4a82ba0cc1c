import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mmrec.data.items import clean_items, sha256_text
from mmrec.errors import DataError
from mmrec.settings import DataSettings, PreprocessSettings


def _notes(report):
    """The report's notes but the one on an empty description column (these tests leave descriptions empty)."""
    return [note for note in report.notes if not note.startswith("The description column(s)")]


def test_a_description_column_empty_everywhere_and_titles_that_are_codes_are_named():
    # A fashion shop: descriptions all empty, 467 of 639 titles SKU codes; the text model read them as words, and
    # nothing said so (its neural model alone scored 2.5x better with the text off).
    titles = ["SS24-0917-BLK", "AW23-1102-RED", "SS24-0001-WHT", "B00012345", "X7-100", "Linen summer dress", "",
              "Wool coat", "iPhone 15 case", "SS24-0917-BLK"]
    raw = pd.DataFrame({"item_id": [str(i) for i in range(10)], "title": titles, "description": [""] * 10},
                       dtype="string")
    _, report, _ = clean_items(raw, DataSettings(numerical_features_cols=[]), PreprocessSettings())
    empty, codes = report.notes
    assert empty.startswith("The description column(s) 'description' (data.description_column) are empty for every "
                            "item: the text features read the titles alone.")
    assert codes.startswith("5 of 9 titles look like codes, not words (e.g. 'SS24-0917-BLK', 'AW23-1102-RED', "
                            "'SS24-0001-WHT'): a text model reads them as noise.")
    models = ["F-150", "CX-5", "RAV4", "GLC300", "ES350", "XC90", "M340i", "RX350", "Q50", "IS500", "Civic"] * 2
    cars = pd.DataFrame({"item_id": [str(i) for i in range(22)], "title": models, "description": ["x"] * 22},
                        dtype="string")  # a re-check: real model names were taken for codes
    assert clean_items(cars, DataSettings(numerical_features_cols=[]), PreprocessSettings())[1].notes == []
    # A SQL export's NULL, N/A, nan, '-' for no text: read as empty (a re-check: 'Red shoe. N/A' went to the model).
    raw["description"] = pd.array(["NULL", "N/A", " nan ", "-", "null"] + [""] * 5, dtype="string")
    named = raw.assign(title=["None", "Nan", "NA"] + titles[3:])  # titles and words too: kept (a re-check)
    assert clean_items(named, DataSettings(numerical_features_cols=[]), PreprocessSettings())[0]["title"].tolist()[
        :3] == ["None", "Nan", "NA"]
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=[]), PreprocessSettings())
    assert items["description"].tolist() == [""] * 10 and items.loc[0, "text"] == "SS24-0917-BLK"
    assert report.notes[0] == ("5 title or description cell(s) hold a placeholder for no text (e.g. 'NULL', 'N/A', "
                               "'nan'): read as empty, not as words.")
    assert report.notes[1].startswith("The description column(s) 'description' (data.description_column) are empty")
    raw["description"] = pd.array(["Soft."] + [""] * 9, dtype="string")
    raw["title"] = pd.array(["Linen dress", "Wool coat", "X7-100"] + ["Plain shirt"] * 7, dtype="string")
    assert clean_items(raw, DataSettings(numerical_features_cols=[]), PreprocessSettings())[1].notes == []


def test_items_are_cleaned_and_bad_ids_reported():
    raw = pd.DataFrame(
        {
            "item_id": ["1", "2", "bad\x07id", "", "1", "3"],
            "title": ["<b>A</b>", "B", "C", "D", "A again", "E"],
            "description": ["x &amp; y", None, "z", "w", "new", "e"],
            "views": ["10", "n/a", "3", "4", "12", "7"],
        },
        dtype="string",
    )
    data = DataSettings(numerical_features_cols=["views"])
    items, report, rejected = clean_items(raw, data, PreprocessSettings())
    assert items["item_id"].tolist() == ["2", "1", "3"]  # duplicate "1": the last row wins
    assert rejected == ["bad\x07id"]  # a control character; '../evil' would be kept (test_ids)
    assert report.dropped == {"missing_id": 1, "unsafe_id": 1, "duplicate_id": 1}
    one = items.set_index("item_id").loc["1"]
    assert one["text"] == "A again. new" and one["text_fingerprint"] == sha256_text("A again. new")
    assert items.set_index("item_id").loc["2", "text"] == "B"
    assert items["views"].dtype == "float64" and report.numeric["views"]["imputed"] == 1
    assert [n for n in report.notes if "several item_info rows" in n] == [
        "1 item id(s) appear on several item_info rows that differ (e.g. '1'): the last row of each is kept. Remove "
        "the rows that are out of date (a copied row, an earlier export) if the last one is not the item as it is."]
    same = pd.concat([raw.iloc[[5]], raw.iloc[[5]]])  # an exact copy: nothing to say beyond the count
    assert not any("several" in n for n in clean_items(same, data, PreprocessSettings())[1].notes)


def test_missing_title_column_is_a_data_error():
    raw = pd.DataFrame({"item_id": ["1"], "description": ["d"]})
    with pytest.raises(DataError, match="'title'"):
        clean_items(raw, DataSettings(numerical_features_cols=[]), PreprocessSettings())


def test_text_augmentation_setting_is_gone():
    # It wrote a `text_augmented` column nothing read; the setting is now an unknown key.
    with pytest.raises(ValidationError, match="text_augmentation"):
        PreprocessSettings(text_augmentation=True)
    raw = pd.DataFrame({"item_id": ["1"], "title": ["a b c d e f"], "description": ["g h i j"]})
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=[]), PreprocessSettings())
    assert "text_augmented" not in items and "augmented" not in report.text


def test_a_numeric_column_without_information_is_kept_all_nan_with_a_note():
    raw = pd.DataFrame({"item_id": ["1", "2"], "title": ["a", "b"], "description": ["", ""],
                        "views": ["1.5K", "3"], "shares": [None, None]}, dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["views", "shares"]), PreprocessSettings())
    assert items["views"].tolist() == [1500.0, 3.0] and items["shares"].isna().all()
    assert report.numeric["views"]["formatted"] == 1 and report.numeric["shares"]["no_information"]
    assert len(_notes(report)) == 1 and "'shares' carries no information" in _notes(report)[0]
    assert "missing=2" in _notes(report)[0] and "left out of the item features" in _notes(report)[0]


def test_a_constant_numeric_column_is_left_out_with_a_note():
    raw = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["a", "b", "c"], "description": ["", "", ""],
                        "language": ["1", "1", None], "views": ["5", "5", "7"]}, dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["language", "views"]),
                                   PreprocessSettings())
    assert items["language"].isna().all() and items["views"].tolist() == [5.0, 5.0, 7.0]
    assert report.numeric["language"]["constant"] == 1.0 and report.numeric["language"]["no_information"]
    assert report.numeric["views"]["constant"] is None and not report.numeric["views"]["no_information"]
    assert len(_notes(report)) == 1
    assert "'language' carries no information: every valid one of its 3 values is 1 (missing=1)" in _notes(report)[0]


def test_a_numeric_column_imputed_for_many_items_gets_a_note():
    raw = pd.DataFrame({"item_id": list("abcdefgh"), "title": list("abcdefgh"), "description": [""] * 8,
                        "views": ["10", "20", "30", "40", "50", "60", None, "?"],
                        "likes": ["1", "2", None, None, "x", "6", "7", "8"]}, dtype="string")
    _, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["views", "likes"]), PreprocessSettings())
    assert report.numeric["views"]["imputed"] == 2 and report.numeric["likes"]["imputed"] == 3
    assert len(_notes(report)) == 2  # 2 of 8 (25%) and 3 of 8
    assert "'likes' has no valid value for 3 of 8 items (38%)" in _notes(report)[1]
    assert "median fill value 6" in _notes(report)[1]


def test_a_numeric_column_of_dates_or_categories_says_so():
    raw = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["a", "b", "c"], "description": ["", "", ""],
                        "published": ["2024-01-03", "2023-12-01T10:00:00Z", None], "channel": ["c1", "c2", "c1"],
                        "shares": ["N/A", None, "n/a"]}, dtype="string")
    _, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["published", "channel", "shares"]),
                               PreprocessSettings())
    dates, text, empty = _notes(report)
    assert "'published' carries no information" in dates and "It holds dates (e.g. '2024-01-03')" in dates
    assert "It holds text (e.g. 'c1', 2 distinct values)" in text
    assert "Fill it, or remove it" in empty


def test_numbers_of_a_decimal_comma_locale_are_read_as_it_writes_them():
    """A `;` export from a decimal-comma locale: '487,0' left a column out with "It holds dates (e.g. '38,1')", and
    '2.852' (2,852) was read as 2.852 with no word (the messy-data walkthrough). Then a decimal comma was named but
    not read: a European spreadsheet's prices were all imputed, and its ratings ('4,5') all dropped."""
    raw = pd.DataFrame({"item_id": [str(i) for i in range(10)], "title": list("abcdefghij"), "description": [""] * 10,
                        "likes": ["38,1", "487,0", "2,5"] * 3 + ["1,0"],
                        "views": ["2.852", "12.004.511", "512", "7", "1.250", "88", "9", "3", "4", "5"]},
                       dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["likes", "views"]),
                                   PreprocessSettings())
    likes, views = _notes(report)
    assert likes.startswith("Numeric column 'likes' is written as a decimal-comma locale's spreadsheet exports numbers "
                            "(e.g. '38,1', '487,0', '2,5'; decimal commas here or in another numeric column")
    assert "its 10 values with a comma, a dot or a space are read so" in likes and "its 3 values" in views  # grouped counts
    assert items["likes"].tolist()[:3] == [38.1, 487.0, 2.5] and items["views"].tolist()[:3] == [2852, 12004511, 512]
    assert report.numeric["likes"]["imputed"] == 0 and report.numeric["views"]["dotted"] == 0
    # A column that also writes a decimal point is no locale's: its decimal commas are imputed, and said so (with
    # the ambiguous '2,500' read as thousands); and its neighbour's '2.852' is a decimal again, with a note.
    raw["likes"] = pd.array(["1,5", "2,50", "7.25", "2,500", "3", "4", "5", "6", "8", "9"], dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["likes", "views"]), PreprocessSettings())
    (note,) = [note for note in _notes(report) if "decimal comma" in note]
    assert note.startswith("2 values of numeric column 'likes' are written with a decimal comma (e.g. '1,5', '2,50')")
    assert "values like '2,500' were read as thousands (2500)" in note and items.loc[3, "likes"] == 2500
    assert "set data.decimal_separator: ','" in note
    assert items.loc[0, "views"] == 2.852 and any("'2.852', '1.250'" in note for note in _notes(report))
    # Without a thousands comma in the column, a decimal comma beyond doubt means one number only, even among decimal
    # points (a bookshop's '8,50 €' prices among '40.95' ones: a third of its prices had been imputed).
    raw["likes"] = pd.array(["€49,95", "12.50", "8,50 €", "1.234,5", "0,5 %", "40.95", "6.25", "8", "9", "2,5"],
                            dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["likes"]), PreprocessSettings())
    assert items["likes"].tolist()[:6] == [49.95, 12.5, 8.5, 1234.5, 0.5, 40.95] and items.loc[9, "likes"] == 2.5
    assert report.numeric["likes"]["imputed"] == 0 and report.numeric["likes"]["stray_comma_decimals"] == 5
    (note,) = [note for note in _notes(report) if "decimal comma beyond doubt" in note]
    assert note.startswith("5 values of numeric column 'likes' are written with a decimal comma beyond doubt (e.g. "
                           "'€49,95', '8,50 €', '1.234,5') while the others write decimal points")
    _, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["likes"], decimal_separator="."),
                               PreprocessSettings())
    assert report.numeric["likes"]["imputed"] == 5  # the file says it writes points: its commas are not read
    # Forced to the comma's reading, the values with a decimal point beyond doubt are counted as read so.
    _, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["likes"], decimal_separator=","),
                               PreprocessSettings())
    assert any("and its 3 values with a decimal point beyond doubt ('40.95') as decimals" in note
               for note in _notes(report))
    raw["likes"] = pd.array(["€49,95", "€1.234,50", "EUR 5,00", "7", "3", "4", "5", "6", "8", "9"], dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["likes"]), PreprocessSettings())
    assert items["likes"].tolist()[:4] == [49.95, 1234.5, 5.0, 7.0]  # a German shop's prices, currency and all
    # German Excel's currency format ('12,50 €') shows the locale to the other columns too; so does '0,5 %'; two
    # stray points among comma prices are read as the points they are (they had made every comma price imputed).
    raw["likes"] = pd.array(["12,50 €", "1.234,50 €", "3.99", "0,99 €", "2,00 €", "4,10 €", "5,20 €", "6,30 €",
                             "7,40 €", "14.95"], dtype="string")
    raw["share"] = pd.array(["0,5 %", "12,5 %", "3 %", "1,5 %", "2 %", "4,5 %", "6 %", "7,5 %", "8 %", "9,5 %"],
                            dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["likes", "views", "share"]),
                                   PreprocessSettings())
    assert items["likes"].tolist()[:3] == [12.5, 1234.5, 3.99] and items.loc[0, "views"] == 2852
    assert items["share"].tolist()[:2] == [0.5, 12.5] and report.numeric["likes"]["imputed"] == 0
    raw["share"] = pd.array(["1,2K", "3,5M", "12", "0,8K", "7", "2,1K", "4", "5", "6", "8"], dtype="string")
    items, _, _ = clean_items(raw, DataSettings(numerical_features_cols=["share"]), PreprocessSettings())
    assert items["share"].tolist()[:4] == [1200, 3_500_000, 12, 800]  # a magnitude suffix after a decimal comma
    # French exports group thousands with a (no-break) space: '1 299,00 €', '12 004' views (a re-check: imputed).
    french = raw.assign(likes=["12,50 €", "1 299,00 €", "5,00 €", "2\u00a0249,00 €", "7,95 €", "19,99 €", "3,10 €",
                               "4,50 €", "8,80 €", "6,00 €"],
                        views=["1 603", "12\u202f004", "88", "532", "2 269", "1 000", "7", "9", "11", "13"])
    items, _, _ = clean_items(french, DataSettings(numerical_features_cols=["likes", "views"]), PreprocessSettings())
    assert items["likes"].tolist()[:4] == [12.5, 1299.0, 5.0, 2249.0]
    assert items["views"].tolist()[:3] == [1603, 12004, 88]


def test_data_decimal_separator_says_how_the_file_writes_numbers():
    # A semicolon export of counts only ('1.603' views): nothing in the column tells, and no setting could say so.
    raw = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["t"] * 3, "description": ["d"] * 3,
                        "views": ["1.603", "812", "2.000"], "price": ["3,50", "12", "1.234,5"]}, dtype="string")
    columns = ["views", "price"]
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=columns, decimal_separator=","),
                                   PreprocessSettings())
    assert items["views"].tolist() == [1603, 812, 2000] and items["price"].tolist() == [3.5, 12, 1234.5]
    assert any("data.decimal_separator: ','" in note for note in _notes(report))
    english, _, _ = clean_items(raw.assign(price=["3.50", "12", "1,234.5"]), DataSettings(
        numerical_features_cols=columns, decimal_separator="."), PreprocessSettings())
    assert english["views"].tolist() == [1.603, 812, 2.0] and english["price"].tolist() == [3.5, 12, 1234.5]
    auto, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["views"]), PreprocessSettings())
    assert auto.loc[0, "views"] == 1.603 and any("set data.decimal_separator: ','" in n for n in _notes(report))
    # A column that writes '2.5' as well writes decimal points: its '1.947' is no thousands doubt (a re-check: the
    # note advised ',', which made '0.350' kg 350).
    _, report, _ = clean_items(raw.assign(views=["1.947", "2.5", "0.350"]), DataSettings(numerical_features_cols=[
        "views"]), PreprocessSettings())
    assert report.numeric["views"]["dotted"] == 0 and not any("decimal_separator" in n for n in _notes(report))


def test_one_stray_decimal_comma_does_not_make_an_english_file_a_decimal_comma_one():
    # A re-check: one typo '2,5' among counts made '2,269' views 2.269 and '1.947' kg 1947 in the other columns.
    n = 12
    raw = pd.DataFrame({"item_id": [str(i) for i in range(n)], "title": ["t"] * n, "description": ["d"] * n,
                        "views": [f"{2 + i},{269 + i}" for i in range(n)], "weight": [f"1.{947 + i}" for i in range(n)],
                        "comments": ["2,5"] + [str(i) for i in range(1, n)],
                        "mixed": ["1,5"] + [f"{i},{100 + i}" for i in range(1, n)]}, dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["views", "weight", "comments", "mixed"]),
                                   PreprocessSettings())
    assert items.loc[0, "views"] == 2269 and items.loc[0, "weight"] == 1.947 and items.loc[1, "mixed"] == 1101
    assert items.loc[0, "comments"] == 2.5  # its own column writes no point and no thousands: read as written
    raw["comments"] = pd.array(["2,5", "2,740"] + [str(i) for i in range(2, n)], dtype="string")  # one each: English
    items, _, _ = clean_items(raw, DataSettings(numerical_features_cols=["comments"]), PreprocessSettings())
    assert items.loc[1, "comments"] == 2740
    assert report.numeric["mixed"]["comma_decimals"] == 1  # '1,5' among thousands commas: imputed, and said
    assert not any("locale's spreadsheet" in note and ("'views'" in note or "'weight'" in note)
                   for note in report.notes)


def test_a_few_values_a_million_times_every_other_are_capped_with_a_note():
    """A creator platform's export had 1e30 in 13 of 800 view counts (real ones 3 to 2e9): accepted silently, they
    stretched the column's log-std from 3.9 to 6.0 and squeezed every real video into a third of the scale."""
    views = [str(v) for v in np.geomspace(3, 2e9, 60).round()] + ["1e30", "1e30", "7e25"]
    raw = pd.DataFrame({"item_id": [str(i) for i in range(63)], "title": ["t"] * 63, "description": [""] * 63,
                        "views": views, "likes": ["0"] * 57 + ["2000000", "3000000"] + ["5"] * 4},
                       dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["views", "likes"]),
                                   PreprocessSettings())
    (note,) = _notes(report)
    assert note.startswith("3 value(s) of numeric column 'views' are more than 1,000,000 times every other value "
                           "(e.g. 1e+30, 7e+25): taken for errors and capped at 2e+09, the largest other value.")
    assert items["views"].max() == 2e9 and items["views"].iloc[-3:].tolist() == [2e9] * 3
    assert report.numeric["views"]["far_above"] == 3 and report.numeric["likes"]["far_above"] == 0
    # Mostly zeros and a few millions (no value between to be a million times over): real data, kept.
    assert items["likes"].max() == 3000000
    # A million times every other value, but those others are all one value: the few are the column's information.
    ones = pd.DataFrame({"item_id": [str(i) for i in range(40)], "title": ["t"] * 40, "description": [""] * 40,
                         "likes": ["1"] * 38 + ["2000000", "3000000"]}, dtype="string")
    items, report, _ = clean_items(ones, DataSettings(numerical_features_cols=["likes"]), PreprocessSettings())
    assert report.numeric["likes"]["far_above"] == 0 and not report.numeric["likes"]["no_information"]
    assert items["likes"].max() == 3000000 and not _notes(report)
    # Heavy-tailed but continuous (a Zipf catalogue's counts): nothing capped.
    zipf = pd.DataFrame({"item_id": [str(i) for i in range(1000)], "title": ["t"] * 1000, "description": [""] * 1000,
                         "views": [str(int(1e9 / (r + 1))) for r in range(1000)]}, dtype="string")
    _, report, _ = clean_items(zipf, DataSettings(numerical_features_cols=["views"]), PreprocessSettings())
    assert report.numeric["views"]["far_above"] == 0 and not _notes(report)


def test_zeros_among_years_are_placeholders_imputed_with_a_note():
    """Book-Crossing's Year-Of-Publication holds 0 for unknown: taken as a year, 51 zeros of 2,000 stretched the
    column's log-std from ~0.01 to 1.2, so that every real year (1950-2004) fell within 0.023 standard deviations."""
    years = [str(1950 + i % 55) for i in range(60)] + ["0", "0"]
    raw = pd.DataFrame({"item_id": [str(i) for i in range(62)], "title": ["t"] * 62, "description": [""] * 62,
                        "year": years, "views": ["0"] * 2 + [str(3 * 2 ** (i % 20)) for i in range(60)]},
                       dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["year", "views"]), PreprocessSettings())
    (note,) = _notes(report)
    assert note == ("2 value(s) of numeric column 'year' are 0 while every other lies between 1,950 and 2,004: taken "
                    "for placeholders of an unknown value (as a year of 0 is) and imputed with the median (1,974.5), "
                    "as blanks are.")
    assert items["year"].min() == 1950 and report.numeric["year"]["imputed"] == 2
    assert report.numeric["views"]["placeholder_zeros"] == 0 and items["views"].min() == 0  # counts: 0 is a count

def test_a_catalogue_without_descriptions_sets_the_column_to_null():
    raw = pd.DataFrame({"item_id": ["1", "2"], "name": ["Red mug", "Blue cup"]}, dtype="string")
    items, _, _ = clean_items(raw, DataSettings(title_column="name", description_column=None,
                                                numerical_features_cols=[]), PreprocessSettings())
    assert items["text"].tolist() == ["Red mug", "Blue cup"] and items["description"].tolist() == ["", ""]
    with pytest.raises(DataError, match="lacks column 'description'"):
        clean_items(raw, DataSettings(title_column="name", numerical_features_cols=[]), PreprocessSettings())


def test_several_description_columns_are_read_as_one_text_in_their_order():
    # A shop's brand and category, a track's artist and genre: one description column made them merge by hand.
    raw = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["Mug", "Cup", "Jug"],
                        "description": ["A red mug.", None, " <b>Big</b> "], "brand": ["Acme", "Bolt", None],
                        "category": ["Kitchen", "Kitchen", "Garden"]}, dtype="string")
    data = DataSettings(description_column=["description", "brand", "category"], numerical_features_cols=[])
    items, report, _ = clean_items(raw, data, PreprocessSettings())
    assert items["description"].tolist() == ["A red mug. Acme. Kitchen", "Bolt. Kitchen", "Big. Garden"]
    assert items["text"].tolist() == ["Mug. A red mug. Acme. Kitchen", "Cup. Bolt. Kitchen", "Jug. Big. Garden"]
    assert report.text["descriptions_changed"] == 1  # the markup: joining alone changes nothing
    assert data.description_columns == ["description", "brand", "category"]
    with pytest.raises(DataError, match="lacks column 'tags'"):
        clean_items(raw, DataSettings(description_column=["brand", "tags"], numerical_features_cols=[]),
                    PreprocessSettings())
    for bad, said in (([], "an empty list"), (["brand", "brand"], "named twice"), (["brand", ""], "empty")):
        with pytest.raises(ValueError, match=said):
            DataSettings(description_column=bad)


def test_one_item_id_written_in_two_unicode_forms_is_one_item():
    # 'ñame' decomposed on one row and composed on another made two items, the interactions split between them.
    raw = pd.DataFrame({"item_id": ["n\u0303ame", "\u00f1ame", "b"], "title": ["old", "new", "b"],
                        "description": ["", "", ""]}, dtype="string")
    items, report, _ = clean_items(raw, DataSettings(numerical_features_cols=[]), PreprocessSettings())
    assert items["item_id"].tolist() == ["\u00f1ame", "b"] and items["title"].tolist() == ["new", "b"]
    assert report.dropped == {"duplicate_id": 1}
    assert any("write an id another row writes in another Unicode form" in note for note in report.notes)


def test_a_constant_column_read_from_prices_is_not_said_to_hold_text():
    """'$12.99' was read (12.99) and the column dropped as constant, with a note calling '$12.99' text."""
    raw = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["t"] * 3, "description": ["d"] * 3,
                        "price": ["$12.99", "$5.99 - $12.99", "$12.99"]}, dtype="string")
    _, report, _ = clean_items(raw, DataSettings(numerical_features_cols=["price"]), PreprocessSettings())
    (note,) = [note for note in _notes(report) if "carries no information" in note]
    assert "every valid one of its 3 values is 12.99" in note and "It holds text" not in note
