"""item_info columns no setting names: preprocess says which, and what would read each (mmrec.data.unread)."""

import numpy as np
import pandas as pd

from mmrec.data.items import clean_items
from mmrec.data.unread import SAMPLE_ROWS, column_kind, unread_columns, unread_note
from mmrec.settings import DataSettings, PreprocessSettings


def test_each_column_is_told_apart_by_what_it_holds():
    n = 200
    kind = lambda values, name="x", separator="|": column_kind(name, pd.Series(values), separator)  # noqa: E731
    assert kind([str(i * 37 % 1000) for i in range(n)]) == "numbers"  # a duration
    assert kind(["1,234", "20.1K", "3", ""] * 50) == "numbers"  # as preprocess parses counts
    assert kind([str(i) for i in range(0, 2 * n, 2)]) == "numbers"  # unique, with gaps: no row index by itself
    # Row numbers: consecutive, or under a name an export gives its index (gaps where rows were filtered out).
    assert kind([str(i) for i in range(n)]) == "index"
    assert kind([str(i) for i in range(n) if i != 10], name="Unnamed: 0") == "index"
    assert kind([f"Channel {i % 20}" for i in range(n)]) == "category"
    assert kind(["Action|Comedy", "Drama", "Comedy|Drama"] * 60) == "category"
    assert kind(["news\x1fcars", "cars", "news"] * 60) == "category"  # a JSON list: several values
    # Cells another separator splits into values that recur in other combinations; not a name with a comma.
    rng = np.random.default_rng(0)
    tags = [",".join(rng.choice(list("abcdefghij"), 3, replace=False)) for _ in range(300)]
    assert kind(tags) == "category:," and kind([t.replace(",", ";") for t in tags]) == "category:;"
    assert kind(["Acme, Inc.", "Foo, Ltd", "Acme, Inc.", "Bar Co"] * 50) == "category"
    assert kind([f"2024-03-{i % 28 + 1:02d}" for i in range(n)]) == "dates"
    assert kind(["March", "May", "June"] * 60) == "category"  # words, not dates
    assert kind([f"thumbs/{i}.jpg" for i in range(n)]) == "paths" and kind([f"{i}.png" for i in range(n)]) == "paths"
    assert kind([f"https://example.com/v/{i}" for i in range(n)]) == "links"
    # One value per item (an id) or long free text: text. Shared values on too few items: text too.
    assert kind([f"sku-{i}" for i in range(n)]) == "other"
    assert kind(["a long sentence that describes the item in words, " * 5] * n) == "other"
    assert kind(["red", "blue"] * 10 + [""] * 180) == "other"
    assert kind([""] * n) == "empty"


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
        "(data.numerical_features_cols reads them as item metadata, when they describe the item and not its "
        "interactions: a count exported today holds the test period). Name the ones you want read (docs/data.md "
        "\"Input format\")."]
    assert "channel" not in items.columns and "duration" not in items.columns
    # Every column read: no note.
    read_all = data.model_copy(update={"numerical_features_cols": ["views", "duration"],
                                       "category_columns": ["brand", "channel"]})
    _, report, _ = clean_items(raw, read_all, PreprocessSettings())
    assert report.unread == {} and not [note for note in report.notes if "named by no setting" in note]
    # Two columns whose names strip to one ('tag', 'tag '): each read by position, no crash.
    twice = pd.DataFrame([["i1", "a", "1"], ["i2", "a", "2"]], columns=["item_id", "tag", "tag"])
    assert unread_columns(twice, DataSettings(numerical_features_cols=[])) == {"tag": "index"}


def test_the_note_counts_what_it_does_not_name_and_says_when_it_looked_at_a_sample():
    unread = {f"col{i}": "other" for i in range(10)} | {"views": "numbers"}
    note = unread_note(unread, SAMPLE_ROWS + 1)
    assert note.startswith("11 item_info column(s) are named by no setting, so mmrec does not read them: 'views' "
                           "holds numbers")
    assert "'col7' and 2 more hold text (" in note and "'col8'" not in note
    assert f"(judged on the first {SAMPLE_ROWS:,} rows)" in note
    assert unread_note({}, 10) is None


def test_a_json_list_in_a_column_no_setting_names_reads_as_several_values(tmp_path):
    # JSON Lines lists were joined by spaces outside data.category_columns: 'indie noir docu' read as one value,
    # so a tags column was called text, while named as categories it read as 10 shared values.
    import json

    from mmrec.pipeline.preprocess import run_preprocess
    from mmrec.settings import load_settings

    genres = ["indie", "noir", "docu", "drama", "comedy", "horror", "scifi", "war", "music", "sport"]
    rng = np.random.default_rng(1)
    data = tmp_path / "raw"
    data.mkdir()
    with open(data / "item_info.jsonl", "w", encoding="utf-8") as out:
        for i in range(40):
            out.write(json.dumps({"item_id": f"i{i}", "title": f"Film {i}", "description": ["part one", "two"],
                                  "tags": [str(t) for t in rng.choice(genres, 3, replace=False)]}) + "\n")
    pd.DataFrame({"user_id": [f"u{i % 7}" for i in range(120)], "item_id": [f"i{i % 40}" for i in range(120)],
                  "watch_ratio": [f"{(i % 10) / 10}" for i in range(120)]}
                 ).to_csv(data / "interactions.csv", index=False)
    settings = load_settings(None, {"paths.data_dir": data, "paths.processed_dir": tmp_path / "processed",
                                    "data.item_info_file": "item_info.jsonl", "data.numerical_features_cols": [],
                                    "preprocess.min_user_interactions": 1,
                                    "preprocess.min_item_interactions": 1}).settings
    report = run_preprocess(settings, progress=lambda event: None).report
    assert report["items"]["unread"] == {"tags": "category"}
    # The interactions' own: a column of numbers can be the rating (walkthrough H: a watch ratio went unmentioned).
    assert report["interactions"]["unread"] == {"watch_ratio": "numbers"}
    assert ("1 interactions column(s) are named by no setting, so mmrec does not read them: 'watch_ratio'. "
            "'watch_ratio' holds numbers: data.rating_column reads one as each row's rating") in " ".join(
                report["interactions"]["notes"])
    items = pd.read_parquet(tmp_path / "processed" / "items.parquet")
    assert items.loc[0, "description"] == "part one two"  # a text column's list is still one text


def test_an_interactions_column_of_ids_or_times_is_not_offered_as_the_rating():
    # rev2: an Amazon dump's unixReviewTime got both "set data.timestamp_column" and "data.rating_column reads one".
    from mmrec.data.unread import unread_interaction_columns, unread_interactions_note

    n = 300
    frame = pd.DataFrame({"user_id": ["u"] * n, "item_id": ["i"] * n,
                          "unixReviewTime": [str(1_600_000_000 + 977 * i) for i in range(n)],
                          "overall": [str(i % 5 + 1) for i in range(n)], "session": [str(31 * i) for i in range(n)],
                          "dwell_seconds": [str(i % 120) for i in range(n)],
                          "watch_ratio": [str((i % 97) / 97) for i in range(n)]})
    kinds = unread_interaction_columns(frame)
    assert kinds == {"unixReviewTime": "codes", "overall": "numbers", "session": "codes", "dwell_seconds": "numbers",
                     "watch_ratio": "numbers"}
    assert "'overall', 'dwell_seconds', 'watch_ratio' hold numbers: data.rating_column" in unread_interactions_note(
        kinds, n)
    # A column of links and file paths mixed: what most are (rev2: neither reached the bar alone, so 'text').
    mixed = pd.Series([f"https://x.com/watch?v={i}" if i % 3 else f"img/{i}.jpg" for i in range(200)])
    assert column_kind("c", mixed, None) == "links"
