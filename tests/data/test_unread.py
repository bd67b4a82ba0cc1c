"""item_info columns no setting names: preprocess says which, and what would read each (mmrec.data.unread)."""

import pandas as pd

from mmrec.data.items import clean_items
from mmrec.data.unread import SAMPLE_ROWS, column_kind, unread_columns, unread_note
from mmrec.settings import DataSettings, PreprocessSettings


def test_each_column_is_told_apart_by_what_it_holds():
    n = 200
    assert column_kind(pd.Series([str(i * 37 % 1000) for i in range(n)]), "|") == "numbers"  # a duration
    assert column_kind(pd.Series(["1,234", "20.1K", "3", ""] * 50), "|") == "numbers"  # as preprocess parses counts
    assert column_kind(pd.Series([str(i) for i in range(n)]), "|") == "other"  # 0..n-1: a spreadsheet's row numbers
    assert column_kind(pd.Series([f"Channel {i % 20}" for i in range(n)]), "|") == "category"
    assert column_kind(pd.Series(["Action|Comedy", "Drama", "Comedy|Drama"] * 60), "|") == "category"
    # One value per item (an id, a URL) or long free text: no category.
    assert column_kind(pd.Series([f"sku-{i}" for i in range(n)]), "|") == "other"
    assert column_kind(pd.Series(["a long sentence that describes the item in words"] * n), "|") == "other"
    # Shared values on too few items: most cells empty.
    assert column_kind(pd.Series(["red", "blue"] * 10 + [""] * 180), "|") == "other"
    assert column_kind(pd.Series([""] * n), "|") == "other"


def test_the_columns_a_setting_names_are_read_and_the_others_are_named_by_kind():
    n = 50
    raw = pd.DataFrame({"item_id": [f"v{i}" for i in range(n)], "name": [f"Video {i}" for i in range(n)],
                        "about": ["words"] * n, "extra": ["more words"] * n, "views": [str(i * 13) for i in range(n)],
                        "duration": [str(i * 7 % 90) for i in range(n)], "channel": [f"c{i % 5}" for i in range(n)],
                        "brand": [f"b{i % 4}" for i in range(n)], "thumb": [f"t/{i}.jpg" for i in range(n)]},
                       dtype="string")
    data = DataSettings(title_column="name", description_column=["about", "extra"], image_column="thumb",
                        numerical_features_cols=["views"], category_columns=["brand"])
    assert unread_columns(raw, data) == {"duration": "numbers", "channel": "category"}
    items, report, _ = clean_items(raw, data, PreprocessSettings())
    assert report.unread == {"duration": "numbers", "channel": "category"}
    assert [note for note in report.notes if "named by no setting" in note] == [
        "2 item_info column(s) are named by no setting, so mmrec does not read them: 'channel' holds values several "
        "items share (data.category_columns reads such a column as categories); 'duration' holds numbers "
        "(data.numerical_features_cols reads them as item metadata). Name the ones you want read (docs/data.md "
        "\"Input format\")."]
    assert "channel" not in items.columns and "duration" not in items.columns
    # Every column read: no note.
    read_all = data.model_copy(update={"numerical_features_cols": ["views", "duration"],
                                       "category_columns": ["brand", "channel"]})
    _, report, _ = clean_items(raw, read_all, PreprocessSettings())
    assert report.unread == {} and not [note for note in report.notes if "named by no setting" in note]


def test_the_note_counts_what_it_does_not_name_and_says_when_it_looked_at_a_sample():
    unread = {f"col{i}": "other" for i in range(10)} | {"views": "numbers"}
    note = unread_note(unread, SAMPLE_ROWS + 1)
    assert note.startswith("11 item_info column(s) are named by no setting, so mmrec does not read them: 'views' "
                           "holds numbers")
    assert "'col7' and 2 more hold text or codes" in note and "'col8'" not in note
    assert f"(judged on the first {SAMPLE_ROWS:,} rows)" in note
    assert unread_note({}, 10) is None
