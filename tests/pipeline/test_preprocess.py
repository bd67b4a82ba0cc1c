import io
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mmrec.data.synth import generate_synthetic
from mmrec.data.tables import ITEM_COLUMNS, load_interactions, load_items
from mmrec.errors import ConfigError, DataError
from mmrec.pipeline.preprocess import run_preprocess
from mmrec.progress import ProgressEvent
from mmrec.settings import DataSettings
from mmrec.settings import load_settings


def _settings(tmp_path, **overrides):
    values = {
        "paths.data_dir": tmp_path / "raw",
        "paths.processed_dir": tmp_path / "processed",
        "preprocess.num_workers": 1,
        **overrides,
    }
    return load_settings(None, values).settings


@pytest.fixture
def dirty_raw(tmp_path):
    """A tiny synthetic dataset with one of each defect preprocess must report."""
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=16, seed=1)
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    items.loc[0, "title"] = "<b>Bold</b> &amp; title"
    items.loc[1, "view_number"] = "lots"
    items = pd.concat(
        [
            items,
            pd.DataFrame(
                [
                    {
                        "item_id": "../escape",
                        "title": "x",
                        "description": "y",
                        "view_number": "1",
                        "comment_number": "1",
                        "thumbup_number": "1",
                    }
                ]
            ),
        ]
    )
    items.to_csv(raw / "item_info.csv", index=False)
    (raw / "images" / "i00002.jpg").write_bytes(b"")
    (raw / "images" / "i00003.jpg").write_bytes(b"<html>not an image</html>")
    (raw / "images" / "i00004.jpg").unlink()
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(buffer, format="JPEG")
    (raw / "images" / "i00005.jpg").write_bytes(buffer.getvalue()[:500])
    inter = pd.read_csv(raw / "interactions.csv", dtype=str)
    extra = pd.DataFrame(
        [
            {"user_id": "u0000", "item_id": "ghost", "timestamp": "1", "rating": "5"},
            {"user_id": "u0000", "item_id": "../escape", "timestamp": "1", "rating": "5"},
        ]
    )
    pd.concat([inter, extra]).to_csv(raw / "interactions.csv", index=False)
    return raw


def test_report_counts_every_defect_and_tables_follow_the_contract(tmp_path, dirty_raw):
    result = run_preprocess(_settings(tmp_path))
    report = result.report
    assert not result.skipped
    # '../escape' cannot name a file, but it is an id: the item and its interaction are kept, without an image.
    assert report["items"]["dropped"] == {} and report["items"]["kept"] == 17
    assert {k: report["images"][k] for k in ("ok", "zero_byte", "not_image", "missing", "truncated")} == {
        "ok": 12,
        "zero_byte": 1,
        "not_image": 1,
        "missing": 2,
        "truncated": 1,
    }
    assert report["items"]["numeric"]["view_number"]["non_numeric"] == 1
    assert "../escape: its id cannot be a file name" in " ".join(map(str, report["images"]["examples"]["missing"]))
    assert report["items"]["text"]["titles_changed"] == 1
    assert report["interactions"]["dropped"] == {"unknown_item": 1}
    items = load_items(tmp_path / "processed")
    assert list(items.columns[: len(ITEM_COLUMNS)]) == list(ITEM_COLUMNS)
    assert list(items.columns[len(ITEM_COLUMNS) :]) == ["view_number", "comment_number", "thumbup_number"]
    row = items.set_index("item_id")
    assert row.loc["i00000", "title"] == "Bold & title"
    assert not row.loc["i00002", "has_image"] and row.loc["i00002", "image_path"] is None
    assert row.loc["i00006", "has_image"] and row.loc["i00006", "image_path"].startswith(
        str(tmp_path.resolve())
    )
    interactions = load_interactions(tmp_path / "processed")
    assert set(interactions["item_id"]) <= set(items["item_id"])
    assert (tmp_path / "processed" / "preprocess_report.json").is_file()


def test_rerun_is_a_noop_until_inputs_or_settings_change(tmp_path, dirty_raw):
    settings = _settings(tmp_path)
    run_preprocess(settings)
    assert run_preprocess(settings).skipped
    assert run_preprocess(_settings(tmp_path, **{"preprocess.num_workers": 2})).skipped  # speed only
    assert not run_preprocess(settings, force=True).skipped
    said: list[ProgressEvent] = []
    assert not run_preprocess(_settings(tmp_path, **{"preprocess.max_text_length": 50}), progress=said.append).skipped
    assert "Changed since the last run: settings preprocess.max_text_length. Preprocessing again." in [
        e.message for e in said]
    inter = dirty_raw / "interactions.csv"
    inter.write_text(inter.read_text() + "u0001,i00001,5,5\n")
    said.clear()
    assert not run_preprocess(_settings(tmp_path, **{"preprocess.max_text_length": 50}), progress=said.append).skipped
    assert "Changed since the last run: interactions.csv. Preprocessing again." in [e.message for e in said]


def test_an_upgrade_names_the_new_preprocessing_not_settings_it_added(tmp_path, dirty_raw):
    """A folder an earlier mmrec processed: every command said "settings data.encoding changed since" (a setting that
    mmrec had added, at its default), and preprocess gave that as its reason to redo the work."""
    from mmrec.pipeline.preprocess import stale_processed_note

    settings = _settings(tmp_path)
    run_preprocess(settings)
    report_path = tmp_path / "processed" / "preprocess_report.json"
    report = json.loads(report_path.read_text())
    parts = report["input_parts"]
    old = {"data": {**settings.data.model_dump(mode="json")}, "preprocess": settings.preprocess.model_dump(
        mode="json", exclude={"num_workers"})}  # recorded as earlier versions did: every value, without version
    del old["data"]["encoding"], parts["preprocess_version"]
    report["input_parts"] = {**parts, "settings": old}
    report_path.write_text(json.dumps(report))
    note = stale_processed_note(settings)
    assert "mmrec's preprocessing (version 1 -> 2: an upgraded mmrec reads some data differently) changed" in note
    assert "settings" not in note
    said: list[ProgressEvent] = []
    assert not run_preprocess(settings, progress=said.append).skipped
    assert [e.message for e in said if e.message and e.message.startswith("Changed")] == [
        "Changed since the last run: mmrec's preprocessing (version 1 -> 2: an upgraded mmrec reads some data "
        "differently). Preprocessing again."]
    assert stale_processed_note(settings) is None and run_preprocess(settings).skipped
    # Only the values set otherwise than by default are recorded: a setting added later changes no fingerprint.
    assert json.loads(report_path.read_text())["input_parts"]["settings"]["data"] == {
        key: value for key, value in settings.data.model_dump(mode="json").items()
        if DataSettings().model_dump(mode="json")[key] != value}


def test_rating_threshold_keeps_positives_only(tmp_path, dirty_raw):
    report = run_preprocess(_settings(tmp_path, **{"data.positive_rating_threshold": 4.0})).report
    interactions = load_interactions(tmp_path / "processed")
    assert interactions["rating"].min() >= 4.0
    assert report["interactions"]["dropped"]["below_threshold"] > 0
    from mmrec.data.tables import load_rated_below

    below = load_rated_below(tmp_path / "processed")  # seen, not liked: recommend does not suggest them back
    assert len(below) == report["interactions"]["dropped"]["below_threshold"] and list(below) == ["user_id", "item_id"]
    assert "rated_below" not in report["interactions"]


def test_category_columns_are_kept_cleaned_and_reported(tmp_path, dirty_raw):
    raw = pd.read_csv(dirty_raw / "item_info.csv", dtype=str)
    raw["channel"] = [f"Channel {k % 3}|Extra" if k % 2 else f"channel {k % 3}" for k in range(len(raw))]
    raw.to_csv(dirty_raw / "item_info.csv", index=False)
    report = run_preprocess(_settings(tmp_path, **{"data.category_columns": ["channel"]})).report
    items = load_items(tmp_path / "processed").set_index("item_id")
    assert items.loc["i00001", "category:channel"] == "channel 1\x1fextra"
    assert items.loc["i00002", "category:channel"] == "channel 2"
    assert report["columns"]["categories"] == ["channel"]
    assert report["items"]["categories"]["channel"]["distinct_values"] == 4  # channel 0-2 and extra
    with pytest.raises(DataError, match=r"lacks category column\(s\) 'brand'"):
        run_preprocess(_settings(tmp_path, **{"data.category_columns": ["brand"]}))


def test_missing_inputs_are_data_errors(tmp_path, dirty_raw):
    with pytest.raises(DataError, match=r"lacks numeric column\(s\) 'likes'"):
        run_preprocess(_settings(tmp_path, **{"data.numerical_features_cols": ["likes"]}))
    (dirty_raw / "interactions.csv").unlink()
    with pytest.raises(DataError, match="interactions file not found"):
        run_preprocess(_settings(tmp_path))
    (dirty_raw / "interactions.csv").mkdir()
    with pytest.raises(DataError, match="interactions file .*interactions.csv is a folder, not a file"):
        run_preprocess(_settings(tmp_path))
    (dirty_raw / "interactions.csv").rmdir()
    with pytest.raises(ConfigError, match=r"paths.data_dir \(.*\) is paths.processed_dir"):  # the settings refuse it
        run_preprocess(_settings(tmp_path, **{"paths.processed_dir": dirty_raw}))
    with pytest.raises(ConfigError, match="over the input images"):  # an images folder that reaches into it
        run_preprocess(_settings(tmp_path, **{"data.images_subdir": "../processed/images"}))
    with pytest.raises(DataError, match="Data folder"):
        run_preprocess(_settings(tmp_path, **{"paths.data_dir": tmp_path / "nowhere"}))
    with pytest.raises(DataError, match="relative to the current folder: "):  # where it looked
        run_preprocess(_settings(tmp_path, **{"paths.data_dir": Path("nowhere") / "raw"}))


def test_images_linked_from_outside_the_folder_are_skipped_and_counted(tmp_path):
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=6, items=4, seed=0)
    secret = tmp_path / "secret.jpg"
    (raw / "images" / "i00000.jpg").rename(secret)
    (raw / "images" / "i00000.jpg").symlink_to(secret)
    (raw / "images" / "i00001.jpg").unlink()
    (raw / "images" / "i00001.jpg").symlink_to(tmp_path / "nowhere.jpg")  # dangling
    report = run_preprocess(_settings(tmp_path)).report
    assert report["images"]["outside_folder"] == 2 and report["images"]["ok"] == 2
    written = sorted(p.name for p in (tmp_path / "processed" / "images").iterdir())
    assert written == ["i00002.jpg", "i00003.jpg", "sources.json"]


def test_images_are_found_whatever_the_case_of_the_extension_and_the_unicode_form(tmp_path):
    import unicodedata

    raw = tmp_path / "raw"
    generate_synthetic(raw, users=6, items=4, seed=0)
    images = raw / "images"
    (images / "i00000.jpg").rename(images / "i00000.JPG")  # a camera's name
    (images / "i00001.jpg").rename(images / "i00001.png")  # a good PNG beside ...
    (images / "i00001.jpg").write_text("not an image")  # ... a text file named .jpg: the PNG is kept
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    items.loc[2, "item_id"] = "épisode-ß"  # composed (NFC) in the CSV, decomposed (NFD) on disk
    items.to_csv(raw / "item_info.csv", index=False)
    inter = pd.read_csv(raw / "interactions.csv", dtype=str)
    inter.loc[inter["item_id"] == "i00002", "item_id"] = "épisode-ß"
    inter.to_csv(raw / "interactions.csv", index=False)
    (images / "i00002.jpg").rename(images / (unicodedata.normalize("NFD", "épisode-ß") + ".jpg"))
    report = run_preprocess(_settings(tmp_path)).report
    assert report["images"]["ok"] == 4 and report["images"]["missing"] == 0
    assert load_items(tmp_path / "processed")["has_image"].all()


def test_a_line_with_an_extra_field_is_skipped_and_counted_or_refused_on_request(tmp_path):
    # One unquoted comma in a nightly export stopped the whole run; the line is now skipped, counted and named.
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=6, items=4, seed=0)
    interactions, item_info = raw / "interactions.csv", raw / "item_info.csv"
    lines = interactions.read_text().splitlines()
    interactions.write_text("\n".join([*lines[:2], lines[2] + ",extra", *lines[3:]]) + "\n")
    items = item_info.read_text().splitlines()
    item_info.write_text("\n".join([*items[:-1], items[-1] + ",x,y"]) + "\n")
    report = run_preprocess(_settings(tmp_path)).report
    inter, item = report["interactions"], report["items"]
    assert inter["dropped"]["malformed_line"] == 1 and inter["examples"]["malformed_line"] == ["line 3"]
    assert inter["input_rows"] == len(lines) - 1 and item["input_rows"] == len(items) - 1
    assert item["dropped"]["malformed_line"] == 1 and item["kept"] == len(items) - 2
    assert any(note.startswith("1 line(s) of interactions.csv hold more fields than its header's 4 (line 3: 5)")
               for note in inter["notes"])
    assert len(load_items(tmp_path / "processed")) == len(items) - 2
    with pytest.raises(DataError, match=rf"item_info.csv .*: line {len(items)} holds 8 fields, the header 6") as info:
        run_preprocess(_settings(tmp_path, **{"preprocess.malformed_lines": "error"}), force=True)
    assert "unquoted ','" in info.value.hint and "malformed_lines: skip" in info.value.hint
    # Most lines malformed: the file's layout is off, not a stray line; refused whatever the setting.
    interactions.write_text("\n".join([lines[0], *(line + ",extra" for line in lines[1:-1]), lines[-1]]) + "\n")
    with pytest.raises(DataError, match=rf"{len(lines) - 2} of {len(lines) - 1} lines hold more fields"):
        run_preprocess(_settings(tmp_path), force=True)
    interactions.write_text("\n \n")  # whitespace only: no header
    with pytest.raises(DataError) as info:
        run_preprocess(_settings(tmp_path), force=True)
    assert info.value.hint == "It needs a header row and at least one row."


def test_stopping_for_lack_of_rows_says_why(tmp_path):
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=6, items=4, seed=0)
    interactions = raw / "interactions.csv"
    full = interactions.read_text()
    interactions.write_text(full.splitlines()[0] + "\n")  # header only
    with pytest.raises(DataError, match="interactions file .* has a header but no rows"):
        run_preprocess(_settings(tmp_path))
    frame = pd.read_csv(io.StringIO(full), dtype=str)
    frame["timestamp"] = "not a time"
    frame.to_csv(interactions, index=False)
    with pytest.raises(DataError, match=rf"bad_timestamp: {len(frame)}"):
        run_preprocess(_settings(tmp_path))
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    items["item_id"] = "\x07" + items["item_id"]  # a control character: no id at all
    items.to_csv(raw / "item_info.csv", index=False)
    with pytest.raises(DataError, match=rf"unsafe_id: {len(items)}"):
        run_preprocess(_settings(tmp_path))


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def two_inputs(tmp_path):
    """Inputs A (preprocessed into tmp_path/processed) and the CSVs of a different input B."""
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=10, items=12, seed=3)
    run_preprocess(_settings(tmp_path))
    a = {name: (raw / name).read_bytes() for name in ("item_info.csv", "interactions.csv")}
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    items = items[items["item_id"] >= "i00006"].assign(title="renamed")
    b_items = items.to_csv(index=False).encode()
    inter = pd.read_csv(raw / "interactions.csv", dtype=str)
    b_inter = inter[inter["item_id"] >= "i00006"].to_csv(index=False).encode()
    return a, {"item_info.csv": b_items, "interactions.csv": b_inter}


def _write(raw, files):
    for name, data in files.items():
        (raw / name).write_bytes(data)


def test_a_failed_run_leaves_the_previous_output_untouched(tmp_path, two_inputs):
    before = _snapshot(tmp_path / "processed")
    _, b = two_inputs
    inter = pd.read_csv(io.BytesIO(b["interactions.csv"]), dtype=str).assign(item_id="ghost")
    _write(tmp_path / "raw", {**b, "interactions.csv": inter.to_csv(index=False).encode()})
    with pytest.raises(DataError, match="No interactions are left"):
        run_preprocess(_settings(tmp_path))
    assert _snapshot(tmp_path / "processed") == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".processed")]  # staging removed


def test_a_killed_runs_staging_folder_is_removed_by_a_run_that_redoes_nothing(tmp_path, two_inputs):
    dead = tmp_path / ".processed.staging-999999999-abcd1234"  # no process has that pid
    (dead / "images").mkdir(parents=True)
    (dead / "images" / "i1.jpg").write_bytes(b"half written")
    result = run_preprocess(_settings(tmp_path))
    assert result.skipped and not dead.exists()


def test_a_run_killed_while_writing_leaves_the_previous_output_untouched(tmp_path, two_inputs, monkeypatch):
    a, b = two_inputs
    before = _snapshot(tmp_path / "processed")
    _write(tmp_path / "raw", b)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands for a kill between the two table writes

    monkeypatch.setattr("mmrec.pipeline.preprocess.save_interactions", killed)
    with pytest.raises(KeyboardInterrupt):
        run_preprocess(_settings(tmp_path))
    monkeypatch.undo()
    assert _snapshot(tmp_path / "processed") == before
    _write(tmp_path / "raw", a)  # back to the inputs of the output on disk: a no-op is right now
    assert run_preprocess(_settings(tmp_path)).skipped
    items = load_items(tmp_path / "processed")
    assert set(load_interactions(tmp_path / "processed")["item_id"]) <= set(items["item_id"])
    assert "renamed" not in set(items["title"])


def test_readers_refuse_tables_from_different_runs(tmp_path, two_inputs):
    from mmrec.pipeline.split import run_split

    _, b = two_inputs
    processed = tmp_path / "processed"
    old_items = (processed / "items.parquet").read_bytes()
    _write(tmp_path / "raw", b)
    run_preprocess(_settings(tmp_path))
    (processed / "items.parquet").write_bytes(old_items)  # what a kill between two writes used to leave
    with pytest.raises(DataError, match="items.parquet does not match"):
        load_items(processed)
    assert load_interactions(processed) is not None  # that table itself is still the recorded one
    (processed / "manifest.json").unlink()  # a folder written by an older, non-atomic mmrec
    with pytest.raises(DataError, match="no manifest"):
        run_split(_settings(tmp_path, **{"paths.splits_dir": tmp_path / "splits"}))
    assert not (tmp_path / "splits").exists()
    assert not run_preprocess(_settings(tmp_path)).skipped  # such a folder is never "unchanged"
    load_items(processed)


def test_processed_dir_with_foreign_entries_is_refused(tmp_path, dirty_raw):
    processed = tmp_path / "processed"
    (processed / "notes").mkdir(parents=True)
    (processed / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="did not write: notes"):
        run_preprocess(_settings(tmp_path))
    assert (processed / "notes" / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match=r"paths.data_dir \(.*raw\) lies inside paths.processed_dir"):
        run_preprocess(_settings(tmp_path, **{"paths.processed_dir": tmp_path}))


def test_columns_under_other_names_are_mapped_by_the_data_settings(tmp_path):
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=16, seed=1)
    baseline = run_preprocess(_settings(tmp_path)).report
    expected = load_interactions(tmp_path / "processed")
    items = pd.read_csv(raw / "item_info.csv", dtype=str).rename(columns={"item_id": "sku"})
    items.to_csv(raw / "item_info.csv", index=False)
    names = {"user_id": "customer", "item_id": "sku", "timestamp": "when", "rating": "stars"}
    pd.read_csv(raw / "interactions.csv", dtype=str).rename(columns=names).to_csv(raw / "interactions.csv", index=False)
    mapped = {f"data.{canonical}_column": source for canonical, source in names.items()}
    with pytest.raises(DataError, match=r"item_info file item_info.csv has no 'item_id' column "
                                        r"\(data.item_id_column\); columns present: sku") as info:  # defaults: no fit
        run_preprocess(_settings(tmp_path))
    # Every column both files miss, in one error (a user mapping an export met them one run at a time).
    assert info.value.message.splitlines()[1:] == [
        "interactions file interactions.csv:", "- has no 'user_id' column (data.user_id_column);",
        "- has no 'item_id' column (data.item_id_column (or data.interactions_item_id_column, when the interactions "
        "name it otherwise than item_info));", "columns present: customer, sku, when, stars."]
    assert info.value.hint.count("Set data.item_id_column") == 2 and "Set data.user_id_column" in info.value.hint
    items.rename(columns={"sku": "item_id"}).to_csv(raw / "item_info.csv", index=False)
    with pytest.raises(DataError, match=r"interactions file interactions.csv has no 'item_id' column.*present: "
                                        "customer, sku"):  # the file's own names, not the renamed ones
        run_preprocess(_settings(tmp_path, **{"data.user_id_column": "customer"}))
    items.to_csv(raw / "item_info.csv", index=False)
    report = run_preprocess(_settings(tmp_path, **mapped), force=True).report
    assert report["interactions"]["kept"] == baseline["interactions"]["kept"]
    pd.testing.assert_frame_equal(load_interactions(tmp_path / "processed"), expected)
    with pytest.raises(DataError, match=r"lacks column 'shopper' \(data.user_id_column\)") as info:
        run_preprocess(_settings(tmp_path, **{**mapped, "data.user_id_column": "shopper"}))
    assert "matched exactly" not in info.value.hint
    with pytest.raises(DataError, match=r"lacks column 'Customer' \(data.user_id_column\)") as info:  # case differs
        run_preprocess(_settings(tmp_path, **{**mapped, "data.user_id_column": "Customer"}))
    assert info.value.hint.endswith("(data.user_id_column: 'customer'? Column names are matched exactly).")
    pd.read_csv(raw / "interactions.csv", dtype=str).assign(user_id="x").to_csv(raw / "interactions.csv", index=False)
    with pytest.raises(DataError, match="column 'user_id' besides 'customer'"):
        run_preprocess(_settings(tmp_path, **mapped))
    with pytest.raises(DataError) as info:  # no 'uid': the file's own 'user_id' is no second column beside it
        run_preprocess(_settings(tmp_path, **{**mapped, "data.user_id_column": "uid"}))
    assert "lacks column 'uid'" in info.value.message and "besides" not in info.value.message


def test_the_interactions_may_name_the_item_id_column_otherwise_than_item_info(tmp_path):
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=16, seed=1)
    expected = load_interactions(run_preprocess(_settings(tmp_path)).processed_dir)
    pd.read_csv(raw / "item_info.csv", dtype=str).rename(columns={"item_id": "video_id"}).to_csv(
        raw / "item_info.csv", index=False)
    pd.read_csv(raw / "interactions.csv", dtype=str).rename(columns={"item_id": "video"}).to_csv(
        raw / "interactions.csv", index=False)
    with pytest.raises(DataError) as info:  # one name for both files: the hint names the other setting
        run_preprocess(_settings(tmp_path, **{"data.item_id_column": "video_id"}))
    assert "lacks column 'video_id'" in info.value.message and "data.interactions_item_id_column" in info.value.hint
    both = {"data.item_id_column": "video_id", "data.interactions_item_id_column": "video"}
    run_preprocess(_settings(tmp_path, **both), force=True)
    pd.testing.assert_frame_equal(load_interactions(tmp_path / "processed"), expected)


def test_an_id_that_cannot_name_a_file_keeps_its_item_and_image(tmp_path):
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=8, items=4, seed=2)
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    inter = pd.read_csv(raw / "interactions.csv", dtype=str)
    url = "https://news.example/2024/a..b?id=1"  # the kind of id a news site has
    inter.loc[inter["item_id"] == items.loc[0, "item_id"], "item_id"] = url
    items["picture"] = items["item_id"] + ".jpg"
    items.loc[0, "item_id"] = url
    items.to_csv(raw / "item_info.csv", index=False)
    inter.to_csv(raw / "interactions.csv", index=False)
    report = run_preprocess(_settings(tmp_path, **{"data.image_column": "picture"})).report
    assert report["items"]["dropped"] == {} and report["images"]["ok"] == 4
    assert report["interactions"]["dropped"] == {}
    row = load_items(tmp_path / "processed").set_index("item_id").loc[url]
    stored = Path(row["image_path"])
    assert row["has_image"] and stored.parent == (tmp_path / "processed" / "images").resolve()
    assert stored.name.startswith("id-sha256-") and stored.is_file()
    assert url in set(load_interactions(tmp_path / "processed")["item_id"])


def test_images_named_in_an_item_info_column_and_a_note_when_no_file_is_named_after_an_id(tmp_path):
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=6, seed=1)
    (raw / "images" / "thumbs").mkdir()
    for index, path in enumerate(sorted((raw / "images").glob("*.jpg"))):
        path.rename(raw / "images" / "thumbs" / f"thumb_{index}.jpg")
    (tmp_path / "secret.jpg").write_bytes((raw / "images" / "thumbs" / "thumb_0.jpg").read_bytes())
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    items["thumbnail"] = [f"thumbs/thumb_{i}.jpg" for i in range(len(items))]
    items.loc[4, "thumbnail"], items.loc[5, "thumbnail"] = "https://cdn.example.com/4.jpg", "../../secret.jpg"
    items.loc[2, "thumbnail"], items.loc[3, "thumbnail"] = "thumbs/gone.jpg", ""  # a file that is not there; none
    items.to_csv(raw / "item_info.csv", index=False)
    by_id = run_preprocess(_settings(tmp_path)).report  # looked up by id: nothing found, and said so
    assert by_id["images"]["missing"] == 6
    assert any("None of the 6 image files in" in note and "set data.image_column" in note
               for note in by_id["items"]["notes"])
    named = run_preprocess(_settings(tmp_path, **{"data.image_column": "thumbnail"}), force=True).report
    assert (named["images"]["ok"], named["images"]["missing"], named["images"]["outside_folder"]) == (2, 3, 1)
    gone, blank, url = sorted(named["images"]["examples"]["missing"])  # each says why it has no image
    assert "https://cdn.example.com/4.jpg is a URL: images are read from files under" in url  # nothing downloaded
    assert gone.endswith(": gone.jpg: file not found") and blank.endswith(": no image (blank in data.image_column)")
    assert named["images"]["missing_kinds"] == {"not_found": 1, "blank": 1, "url": 1}
    items.loc[2, "thumbnail"] = "thumbs/go\x00ne.jpg"  # a NUL: os.path raised ValueError (a traceback, exit 1)
    items.to_csv(raw / "item_info.csv", index=False)
    named = run_preprocess(_settings(tmp_path, **{"data.image_column": "thumbnail"}), force=True).report
    assert named["images"]["missing_kinds"] == {"not_found": 1, "blank": 1, "url": 1}
    assert any("'thumbs/go\\x00ne.jpg' holds a NUL character" in example
               for example in named["images"]["examples"]["missing"])
    assert not any("image files in" in note for note in named["items"]["notes"])
    (url_note,) = [note for note in named["items"]["notes"] if "by a URL" in note]  # told, not only an example
    assert url_note.startswith("1 item(s) name their image by a URL in thumbnail (e.g. ") and \
        "https://cdn.example.com/4.jpg): nothing is downloaded" in url_note and "Download them there" in url_note
    # The files are there, named by id (Amazon dumps: imageURL lists beside images/<asin>.jpg): say so instead.
    url_id = load_items(tmp_path / "processed")["item_id"].iloc[4]  # thumbnail: https://cdn.example.com/4.jpg
    (raw / "images" / f"{url_id}.jpg").write_bytes((raw / "images" / "thumbs" / "thumb_0.jpg").read_bytes())
    notes = run_preprocess(_settings(tmp_path, **{"data.image_column": "thumbnail"})).report["items"]["notes"]
    assert any("1 of them have a file there named after their item id, which data.image_column set to a column of "
               "URLs leaves unread: remove that setting" in note for note in notes)
    (raw / "images" / f"{url_id}.jpg").unlink()
    processed = load_items(tmp_path / "processed").set_index("item_id")
    assert processed["has_image"].tolist() == [True] * 2 + [False] * 4
    with pytest.raises(DataError, match=r"lacks column 'thumb' \(data.image_column\)"):
        run_preprocess(_settings(tmp_path, **{"data.image_column": "thumb"}), force=True)


def test_header_lines_repeated_inside_the_files_are_dropped_and_counted(tmp_path):
    # `cat week2.csv >> item_info.csv` repeats the header: as data it became an item 'item_id' titled 'title',
    # served to most users as a new item.
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=6, seed=1)
    for name in ("item_info.csv", "interactions.csv"):
        lines = (raw / name).read_text().splitlines()
        header = lines[0].upper() if name == "item_info.csv" else "\ufeff" + lines[0]  # an Excel CSV's BOM, pasted
        (raw / name).write_text("\n".join([*lines[:3], header, *lines[3:]]) + "\n")
    report = run_preprocess(_settings(tmp_path)).report
    items, inter = report["items"], report["interactions"]
    assert items["dropped"] == {"header_row": 1} and items["input_rows"] == 7 and items["kept"] == 6
    assert inter["dropped"].get("header_row") == 1 and "unknown_item" not in inter["dropped"]
    assert any("1 row(s) of item_info.csv repeat its header line" in note for note in items["notes"])
    assert "item_id" not in set(load_items(tmp_path / "processed")["item_id"].str.lower())



def test_an_image_named_after_an_item_but_for_letter_case_is_named_not_used(tmp_path):
    """Item 'abc' and images/ABC.JPG: the file was counted as named after no item and the item as without image,
    with nothing linking the two (a creator platform's walkthrough). Ids differing in case are distinct items, so
    the file is not used, but the note says what to rename."""
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=6, seed=1)
    first = sorted((raw / "images").glob("*.jpg"))[0]
    shouting = first.with_name(first.stem.upper() + ".JPG")
    first.rename(shouting)
    whole = run_preprocess(_settings(tmp_path)).report
    assert whole["images"]["ok"] == 5 and whole["images"]["missing"] == 1
    (note,) = [note for note in whole["items"]["notes"] if "named after no catalogue item" in note]
    assert (f"1 of them match an item without an image but for letter case (e.g. {shouting.name} and item "
            f"{first.stem!r}): file names must match item ids exactly") in note
    # Every file in capitals (none matches, so another note leads): the hint is there too.
    for path in (raw / "images").glob("*.jpg"):
        path.rename(path.with_name(path.stem.upper() + ".JPG"))
    notes = run_preprocess(_settings(tmp_path), force=True).report["items"]["notes"]
    (note,) = [note for note in notes if "None of the 6 image files" in note]
    assert "6 of them match an item without an image but for letter case" in note
    # Named exactly after the items but none readable (empty files): neither note (the image report counts why).
    for path in (raw / "images").glob("*.JPG"):
        path.with_name(path.stem.lower() + ".jpg").write_bytes(b"")
        path.unlink()
    whole = run_preprocess(_settings(tmp_path), force=True).report
    assert whole["images"]["ok"] == 0 and not [n for n in whole["items"]["notes"] if "image files" in n]

def test_a_tiff_is_read_and_a_file_type_not_read_is_named_not_called_absent(tmp_path):
    from PIL import Image

    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=6, seed=1)
    first, second, *_ = sorted((raw / "images").glob("*.jpg"))
    Image.open(first).save(first.with_suffix(".tiff"))
    first.unlink()
    second.rename(second.with_suffix(".heic"))  # an iPhone photo: no reader here
    (raw / "images" / "no_such_item.jpg").write_bytes(first.with_suffix(".tiff").read_bytes())
    whole = run_preprocess(_settings(tmp_path)).report
    report = whole["images"]
    assert report["ok"] == 5 and report["missing"] == 1 and report["missing_kinds"] == {"unsupported_type": 1}
    assert any("1 file(s) in" in note and "are named after no catalogue item (e.g. no_such_item.jpg): not used"
               in note for note in whole["items"]["notes"])
    assert f"{second.stem}.heic: not a file type read here" in report["examples"]["missing"][0]
    # The same when item_info names each image (data.image_column); a JPEG without its extension is still read.
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    second.with_suffix(".heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))  # real
    third = sorted((raw / "images").glob("*.jpg"))[0]
    third.rename(raw / "images" / third.stem)
    items["picture"] = [f"{item}{'.heic' if item == second.stem else '' if item == third.stem else '.jpg'}"
                        if item != first.stem else f"{item}.tiff" for item in items["item_id"]]
    items.to_csv(raw / "item_info.csv", index=False)
    named = run_preprocess(_settings(tmp_path, **{"data.image_column": "picture"}), force=True).report["images"]
    assert named["ok"] == 5 and named["missing_kinds"] == {"unsupported_type": 1}
    assert f"{second.stem}.heic: not a file type read here" in named["examples"]["missing"][0]


def test_tab_or_semicolon_separated_files_and_parquet_read_as_the_csv(tmp_path, dirty_raw):
    expected = run_preprocess(_settings(tmp_path)).report
    tables = {name: load(tmp_path / "processed") for name, load in (("items", load_items),
                                                                     ("interactions", load_interactions))}
    items = pd.read_csv(dirty_raw / "item_info.csv", dtype=str, keep_default_na=False, na_values=[""])
    inter = pd.read_csv(dirty_raw / "interactions.csv", dtype=str, keep_default_na=False, na_values=[""])
    items.to_csv(dirty_raw / "item_info.csv", index=False, sep="\t")
    inter.to_csv(dirty_raw / "interactions.csv", index=False, sep=";")
    # Parquet with typed columns: whole numbers (timestamps, a count with a gap: float) read back as the CSV's text.
    typed = inter.assign(timestamp=pd.to_numeric(inter["timestamp"], errors="coerce"))
    typed.to_parquet(dirty_raw / "interactions.parquet", index=False)
    for settings in (_settings(tmp_path), _settings(tmp_path, **{"data.interactions_file": "interactions.parquet"})):
        report = run_preprocess(settings, force=True).report
        assert report["items"]["kept"] == expected["items"]["kept"]
        assert report["interactions"]["kept"] == expected["interactions"]["kept"]
        assert report["interactions"]["dropped"] == expected["interactions"]["dropped"]
        pd.testing.assert_frame_equal(load_items(tmp_path / "processed"), tables["items"])
        pd.testing.assert_frame_equal(load_interactions(tmp_path / "processed"), tables["interactions"])
    (dirty_raw / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read as parquet"):
        run_preprocess(_settings(tmp_path, **{"data.interactions_file": "broken.parquet"}), force=True)


@pytest.mark.parametrize("text, sep", [
    ("item_id;title;rating\r\n001;A, b;3\r\n002;B;4,5\r\n", ";"),  # rows with commas: the header decides
    ("\ufeffitem_id\ttitle\n001\tA; b, c\n002\tB\n", "\t"),
    ('"item_id","title; part"\n001,"x; y"\n002,z\n', ","),  # a separator inside quotes does not count
    ("item_id\n001\n", ","),
    ("\ufeff\n\nitem_id\ttitle\n001\tA, b\n", "\t"),  # blank lines before the header: pandas skips them
])
def test_the_separator_is_the_one_the_header_line_uses(tmp_path, text, sep):
    from mmrec.fileio import csv_separator
    from mmrec.data.raw_tables import read_table

    path = tmp_path / "items.csv"
    path.write_bytes(text.encode("utf-8"))
    assert csv_separator(path) == sep
    table = read_table(path, "item_info")
    frame, malformed = table.frame, table.malformed
    assert not malformed and frame.columns[0] == "item_id"
    assert frame["item_id"].tolist()[:2] == ["001", "002"][:len(frame)]


@pytest.mark.parametrize("opener, name", [("gzip", "interactions.tsv.gz"), ("bz2", "interactions.tsv.bz2"),
                                          ("lzma", "interactions.csv")])  # a .csv that is xz-compressed
def test_a_compressed_table_is_read_decompressed_whatever_its_name(tmp_path, opener, name):
    import importlib

    raw = tmp_path / "raw"
    generate_synthetic(raw, users=8, items=5, seed=2)
    plain = pd.read_csv(raw / "interactions.csv", dtype=str)
    (raw / "interactions.csv").unlink()
    text = plain.to_csv(sep="\t", index=False)
    lines = text.splitlines()
    text = "\n".join([*lines[:3], lines[3] + "\tstray", *lines[4:]]) + "\n"  # the tab separator, from the header
    (raw / name).write_bytes(importlib.import_module(opener).compress(text.encode()))
    report = run_preprocess(_settings(tmp_path, **{"data.interactions_file": name})).report
    assert report["interactions"]["input_rows"] == len(plain)
    assert report["interactions"]["dropped"]["malformed_line"] == 1
    kept = load_interactions(tmp_path / "processed")
    assert len(kept) == len(plain) - 1 and set(kept["user_id"]) <= set(plain["user_id"])
    (raw / name).write_bytes((raw / name).read_bytes()[:40])  # cut short
    with pytest.raises(DataError, match="-compressed but cannot be read as such"):
        run_preprocess(_settings(tmp_path, **{"data.interactions_file": name}), force=True)


def test_json_lines_tables_are_read_as_csv_would_hold_them(tmp_path):
    # Review dumps (Amazon's: reviewerID, asin, overall, unixReviewTime; descriptions as lists) come as JSON Lines.
    import gzip
    import json

    raw = tmp_path / "raw"
    generate_synthetic(raw, users=8, items=5, seed=3)
    items = pd.read_csv(raw / "item_info.csv", dtype=str)
    inter = pd.read_csv(raw / "interactions.csv", dtype=str)
    lines = [json.dumps({"asin": row.item_id, "title": row.title, "description": [row.description, "more"],
                         "view_number": int(row.view_number), "comment_number": float(row.comment_number),
                         "categories": [["Baby", "Bath"], ["Gifts"]], "price": None, "rank": {"Baby": 3}})
             for row in items.itertuples()]
    (raw / "meta.json").write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n")
    reviews = [json.dumps({"reviewerID": row.user_id, "asin": row.item_id, "unixReviewTime": int(row.timestamp)})
               for row in inter.itertuples()]
    (raw / "reviews.json.gz").write_bytes(gzip.compress("\n".join(reviews).encode()))
    settings = _settings(tmp_path, **{
        "data.item_info_file": "meta.json", "data.interactions_file": "reviews.json.gz", "data.item_id_column": "asin",
        "data.user_id_column": "reviewerID", "data.timestamp_column": "unixReviewTime",
        "data.numerical_features_cols": ["view_number", "comment_number"]})
    report = run_preprocess(settings).report
    assert report["items"]["kept"] == len(items) and report["interactions"]["kept"] == len(inter)
    processed = load_items(tmp_path / "processed").set_index("item_id")
    first = items.iloc[0]
    assert processed.loc[first["item_id"], "description"] == f"{first['description']} more"
    assert report["items"]["numeric"]["comment_number"]["imputed"] == 0
    from mmrec.data.raw_tables import read_table

    table = read_table(raw / "meta.json", "item_info").frame
    # The 2014 dumps' category paths are text (they were the JSON text '[["Baby", "Bath"], ["Gifts"]]'); a dict is JSON.
    assert table.loc[0, "categories"] == "Baby Bath, Gifts" and table.loc[0, "rank"] == '{"Baby": 3}'
    assert pd.isna(table.loc[0, "price"])
    assert table.loc[0, "comment_number"] == str(int(float(first["comment_number"])))  # 3.0 reads 3, as in a CSV
    # A line cut short (as a download that stopped early leaves it): skipped and counted, as a CSV's stray line is,
    # or refused under preprocess.malformed_lines: error.
    (raw / "meta.json").write_text("\n".join(lines) + "\n" + lines[1][:-3] + "\n")
    report = run_preprocess(settings, force=True).report
    assert report["items"]["dropped"]["malformed_line"] == 1 and report["items"]["kept"] == len(items)
    assert any(f"line(s) of meta.json are no JSON object (line {len(lines) + 1}: " in note
               for note in report["items"]["notes"])
    strict = settings.model_copy(update={"preprocess": settings.preprocess.model_copy(
        update={"malformed_lines": "error"})})
    with pytest.raises(DataError, match="reads as JSON .* but at line 6: .*the line ends before its object does"):
        run_preprocess(strict, force=True)
    (raw / "meta.json").write_text(json.dumps([json.loads(line) for line in lines]))  # one JSON array
    assert len(read_table(raw / "meta.json", "item_info").frame) == len(items)
    (raw / "meta.json").write_text(json.dumps([json.loads(lines[0]), ["not", "an", "object"]], indent=1))
    with pytest.raises(DataError, match="but at element 2 of the array: a JSON list, not an object"):
        read_table(raw / "meta.json", "item_info")
    (raw / "meta.json").write_text("[]")
    with pytest.raises(DataError, match="is an empty JSON array"):
        read_table(raw / "meta.json", "item_info")
    for deep in ("[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000 + "\n"):  # array, line
        (raw / "meta.json").write_text(deep)
        with pytest.raises(DataError, match="nests lists or objects thousands deep"):  # was a RecursionError
            read_table(raw / "meta.json", "item_info")
    # The 2014 Amazon meta dumps hold Python dict literals, not JSON: read as such (never evaluated), and said.
    literal = [repr({"asin": row.item_id, "title": f"{row.title}'s", "description": [row.description],
                     "price": 12.99, "salesRank": {"Baby": 7}, "sold": True}) for row in items.itertuples()]
    (raw / "meta.json").write_text("\n".join(literal) + "\n")
    table = read_table(raw / "meta.json", "item_info")
    assert table.frame.loc[0, "title"] == f"{first['title']}'s" and table.frame.loc[0, "price"] == "12.99"
    assert table.notes == [f"{len(items)} line(s) of meta.json are Python dict literals ({{'key': 'value'}}, as the "
                           "2014 Amazon review dumps write them), not JSON (e.g. line 1): read as such."]
    (raw / "meta.json").write_text("{'asin': 'a1', 'tags': {'x', 'y'}, 'raw': b'12', 'z': (1, 2j)}\n")
    assert read_table(raw / "meta.json", "item_info").frame.values.tolist() == [["a1", "x y", "12", '[1, "2j"]']]
    (raw / "meta.json").write_text("{'asin': __import__('os').system('echo no')}\n")
    with pytest.raises(DataError, match="reads as JSON .* but at line 1") as info:
        read_table(raw / "meta.json", "item_info")
    assert '{"item_id": "i1", "title": "Red mug"}' in info.value.hint  # an item_info example for an item_info file


def test_an_image_column_of_lists_reads_the_first_image_of_each_item(tmp_path):
    """Amazon dumps list an item's images (2023: objects {thumb, large, variant, hi_res}; 2018: URL strings): the
    list was read as one path ('a.jpg b.jpg', or its JSON text) and every existing file reported "not found"."""
    import json

    from mmrec.data.raw_tables import read_table

    folder = tmp_path / "raw"
    folder.mkdir()
    rows = [{"asin": "a1", "images": [{"thumb": "t.jpg", "large": "imgs/a1.jpg", "variant": "MAIN", "hi_res": None}]},
            {"asin": "a2", "images": ["imgs/a2.jpg", "imgs/a2b.jpg"]},
            {"asin": "a3", "images": []},
            {"asin": "a4", "images": "imgs/a4.jpg"},
            {"asin": "a5", "images": [{"variant": "MAIN", "hi_res": "https://example.com/a5.jpg"}]}]
    (folder / "meta.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    table = read_table(folder / "meta.jsonl", "item_info", first_entry=("images",))
    assert table.frame["images"].tolist()[:2] == ["imgs/a1.jpg", "imgs/a2.jpg"] and pd.isna(table.frame.loc[2, "images"])
    assert table.frame["images"].tolist()[3:] == ["imgs/a4.jpg", "https://example.com/a5.jpg"]
    assert table.notes == ["4 row(s) of meta.jsonl hold a list under 'images' (as Amazon dumps list an item's images): "
                           "the first entry of each is used (of an image object: its large, hi_res, path or url)."]
    assert read_table(folder / "meta.jsonl", "item_info").frame.loc[1, "images"] == "imgs/a2.jpg imgs/a2b.jpg"
    # The same table as parquet (list columns came out as numpy's text, "['imgs/a2.jpg' 'imgs/a2b.jpg']").
    frame = pd.DataFrame({"asin": ["a1", "a2", "a3"], "description": [["in", "parts"], [], None],
                          "images": [[{"large": "imgs/a1.jpg", "thumb": "t.jpg"}], [{"hi_res": "imgs/a2.jpg"}], []]})
    frame.to_parquet(folder / "meta.parquet")
    read = read_table(folder / "meta.parquet", "item_info", first_entry=("images",))
    table = read.frame
    assert table["images"].tolist()[:2] == ["imgs/a1.jpg", "imgs/a2.jpg"] and pd.isna(table.loc[2, "images"])
    assert read.notes == [read.notes[0]] and read.notes[0].startswith("3 row(s) of meta.parquet hold a list under")
    assert table["description"].tolist()[:2] == ["in parts", ""] and pd.isna(table.loc[2, "description"])


@pytest.mark.parametrize("text, rows, skipped", [
    # The first data line longer than the header: pandas took its first field as the index, shifting every column
    # (user ids read as item ids), or read the first line's width as the expected one.
    ("u,i,t\nu1,a,1,x\nu2,b,2\n", [["u2", "b", "2"]], [2]),
    ("u,i,t\nu1,a,1,\nu2,b,2,x\nu3,c,3\n", [["u1", "a", "1"], ["u3", "c", "3"]], [3]),
    ("u,i,t\nu1,a,1,\nu2,b,2,\n", [["u1", "a", "1"], ["u2", "b", "2"]], []),  # an exporter's trailing separator
    ("u,i,t\nu1,a\nu2,b,2,x, \n", [["u1", "a", None]], [3]),  # a short line keeps its missing cell missing
    ('u,i,t\n"u1",a,"x\ny"\nu2,b,2,"q"\nu3,"c,d",3\n', [["u1", "a", "x\ny"], ["u3", "c,d", "3"]], [4]),
    ("\nu,i,t\nu1,a,1,x\nu2,b,2\n", [["u2", "b", "2"]], [3]),  # a blank line before the header
])
def test_lines_longer_than_the_header_never_shift_columns(tmp_path, text, rows, skipped):
    from mmrec.data.raw_tables import read_table

    path = tmp_path / "interactions.csv"
    path.write_text(text, encoding="utf-8")
    table = read_table(path, "interactions", skip_malformed=True)
    frame, malformed = table.frame, table.malformed
    assert list(frame.columns) == ["u", "i", "t"] and frame.index.tolist() == list(range(len(rows)))
    assert frame.astype(object).where(frame.notna(), None).values.tolist() == rows
    assert [m.line for m in malformed] == skipped and all(m.expected == 3 for m in malformed)
    if skipped:
        with pytest.raises(DataError, match=f"line {skipped[0]} holds"):
            read_table(path, "interactions")


def test_row_names_without_a_header_cell_are_left_out_with_a_note(tmp_path):
    # R's write.table writes row names as a first field with no header cell: every line one field longer.
    from mmrec.data.raw_tables import read_table

    path = tmp_path / "interactions.csv"
    path.write_text('"u","i","t"\n"1","u1","a",1\n"2","u2","b",2\n\n"3","u3","c",3\n', encoding="utf-8")
    table = read_table(path, "interactions")
    assert table.frame.values.tolist() == [["u1", "a", "1"], ["u2", "b", "2"], ["u3", "c", "3"]]
    assert not table.malformed and table.notes[0].startswith("Every line of interactions.csv holds one field more")
    path.write_text('u,i,t\n1,u1,a,1\n2,u2,b,2,x\n3,u3,c,3\n', encoding="utf-8")  # one line longer still
    with pytest.raises(DataError, match=r"3 of 3 lines hold more fields than the header \(e.g. line 2: 4 fields"):
        read_table(path, "interactions", skip_malformed=True)  # no reading of it is safe


def test_a_quote_left_open_is_refused_not_read_as_the_rest_of_the_file(tmp_path):
    from mmrec.data.raw_tables import read_table

    path = tmp_path / "interactions.csv"
    for text, line in (('u,i,t\nu1,"a,1\nu2,b,2\n', 2), ('u,i,t\nu1,a,1,x\nu2,"b,2\nu3,c,3\n', 3),
                       ('u,i,t\nu1,a,1\nu2,b,2,x\nu3,"c,3\nu4,d,4\n', 4)):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=f": line {line}: unexpected end of data") as info:  # the file's line
            read_table(path, "interactions", skip_malformed=True)
        assert "never closes" in info.value.hint


def test_quoting_pandas_reads_leniently_is_read_so_when_a_line_is_skipped():
    # One malformed line sent the file to the strict re-read, which refused a title pandas reads: "Weird Al" Yankovic.
    import tempfile

    from mmrec.data.raw_tables import read_table

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "item_info.csv"
        path.write_text('item_id,title,description\ni1,"Weird Al" Yankovic Live,d\ni2,Up, Up and Away,desc\n'
                        'i3,Plain,d\n', encoding="utf-8")
        table = read_table(path, "item_info", skip_malformed=True)
        assert table.frame["title"].tolist() == ["Weird Al Yankovic Live", "Plain"]
        assert [m.line for m in table.malformed] == [3]


def test_row_names_are_found_when_some_last_cells_are_empty_and_a_trailing_separator_is_not_row_names(tmp_path):
    from mmrec.data.raw_tables import read_table

    path = tmp_path / "interactions.csv"
    path.write_text('user_id,item_id,rating\n"1","u1","i1",4\n"2","u1","i2",\n"3","u2","i1",5\n', encoding="utf-8")
    table = read_table(path, "interactions")
    assert table.frame.astype(object).where(table.frame.notna(), None).values.tolist() == [
        ["u1", "i1", "4"], ["u1", "i2", None], ["u2", "i1", "5"]] and table.notes
    path.write_text("user_id,item_id,rating\nu1,i1,4,\nu1,i2,,\n", encoding="utf-8")  # a separator ends each line
    table = read_table(path, "interactions")
    assert table.frame.values.tolist()[0] == ["u1", "i1", "4"] and not table.notes


@pytest.mark.parametrize("magic, kind", [(b"PK\x03\x04\x14\x00\x06\x00", "zip archive"),
                                         (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", ".xls")])
def test_a_spreadsheet_workbook_is_told_apart_from_text_in_another_encoding(tmp_path, dirty_raw, magic, kind):
    (dirty_raw / "item_info.csv").write_bytes(magic + bytes(range(256)) * 4)
    with pytest.raises(DataError) as info:
        run_preprocess(_settings(tmp_path))
    assert "is not text" in info.value.message and kind in info.value.message
    assert "CSV UTF-8" in info.value.hint and "iconv" not in info.value.hint


def test_a_wrong_title_column_names_the_file_its_own_columns_and_the_setting(tmp_path):
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=6, items=4, seed=0)
    items = pd.read_csv(raw / "item_info.csv", dtype=str).rename(columns={"item_id": "video_id"})
    items.to_csv(raw / "videos.csv", index=False)
    settings = _settings(tmp_path, **{"data.item_info_file": "videos.csv", "data.item_id_column": "video_id",
                                      "data.title_column": "videotitle"})
    with pytest.raises(DataError) as info:
        run_preprocess(settings)
    assert info.value.message.startswith("item_info file videos.csv lacks column 'videotitle' (data.title_column); "
                                         "columns present: video_id, title,")
    assert "data.title_column" in info.value.hint
    settings = _settings(tmp_path, **{"data.item_info_file": "videos.csv", "data.item_id_column": "video_id",
                                      "data.numerical_features_cols": ["view_number", "likes"]})
    with pytest.raises(DataError) as info:
        run_preprocess(settings)
    assert info.value.message.startswith("item_info file videos.csv lacks numeric column(s) 'likes' "
                                         "(data.numerical_features_cols); columns present: video_id, title,")
    # Which of them hold numbers (walkthrough H: the list named every column, the numeric ones unmarked).
    assert "(of which 'view_number', 'comment_number', 'thumbup_number' hold numbers)." in info.value.message


@pytest.mark.parametrize("encoding, expected", [
    ("latin-1", "Line 3 holds byte 0xe9, which is not UTF-8"),
    ("utf-16", "It starts with a UTF-16 byte order mark"),
])
def test_a_csv_that_is_not_utf8_says_where_and_how_to_resave_it(tmp_path, dirty_raw, encoding, expected):
    path = dirty_raw / "item_info.csv"
    items = pd.read_csv(path, dtype=str)
    items.loc[1, "title"] = "Café"
    items.to_csv(path, index=False, encoding=encoding)
    with pytest.raises(DataError) as info:
        run_preprocess(_settings(tmp_path))
    assert "is not UTF-8 text" in info.value.message and expected in info.value.message
    assert "position" not in info.value.message and "UTF-8" in info.value.hint and "iconv" in info.value.hint
    assert ("data: {encoding: cp1252}" in info.value.hint) == (encoding == "latin-1")  # UTF-16: re-save it
    if encoding == "utf-16":  # JSON Lines in UTF-16: its braces are found in the text, not the bytes
        from mmrec.data.raw_tables import read_table

        (dirty_raw / "meta.jsonl").write_text('{"item_id": "i1", "title": "Café"}\n', encoding="utf-16")
        assert read_table(dirty_raw / "meta.jsonl", "item_info", encoding="utf-16").frame["title"].tolist() == ["Café"]
        # ... also with its mark read as text (utf-16-le), and a file without a mark is named as UTF-16.
        assert read_table(dirty_raw / "meta.jsonl", "item_info", encoding="utf-16-le").frame["title"].tolist() \
            == ["Café"]
        (dirty_raw / "meta.jsonl").write_bytes('{"item_id": "i1", "title": "Café"}\n'.encode("utf-16-le"))
        with pytest.raises(DataError, match="is UTF-16 text without a byte-order mark") as info:
            read_table(dirty_raw / "meta.jsonl", "item_info")
        assert "data.encoding: utf-16-le" in info.value.hint
        (dirty_raw / "meta.jsonl").unlink()
    # ... or data.encoding reads it as it was saved (a Windows export; Book-Crossing's files are latin-1).
    settings = _settings(tmp_path, **{"data.encoding": encoding})
    interactions = (dirty_raw / "interactions.csv").read_bytes()
    (dirty_raw / "interactions.csv").write_bytes(interactions.decode().encode(encoding))  # both files: one setting
    run_preprocess(settings)
    (dirty_raw / "interactions.csv").write_bytes(interactions)
    assert "Café" in load_items(tmp_path / "processed")["title"].tolist()
    items.to_csv(path, index=False, encoding="utf-8")
    (dirty_raw / "interactions.csv").write_bytes(b"\x81" + (dirty_raw / "interactions.csv").read_bytes())
    if encoding == "latin-1":  # latin-1 decodes every byte; cp1252 leaves 0x81 undefined
        with pytest.raises(DataError, match="cannot be read as cp1252 text") as info:
            run_preprocess(_settings(tmp_path, **{"data.encoding": "cp1252"}))
        assert "Set data.encoding to the encoding the file was saved in" in info.value.hint


def test_abbreviated_counts_are_parsed_and_an_empty_column_is_left_out_with_a_note(tmp_path, dirty_raw):
    path = dirty_raw / "item_info.csv"
    items = pd.read_csv(path, dtype=str)
    items.loc[0, "view_number"], items.loc[2, "view_number"] = "20.1K", "1.5M"
    items["thumbup_number"] = ""
    items.to_csv(path, index=False)
    report = run_preprocess(_settings(tmp_path)).report
    numeric = report["items"]["numeric"]
    assert numeric["view_number"]["formatted"] == 2 and numeric["view_number"]["non_numeric"] == 1  # "lots"
    assert numeric["thumbup_number"]["no_information"] and numeric["thumbup_number"]["imputed"] == 0
    assert report["columns"]["numeric"] == ["view_number", "comment_number"]
    assert report["columns"]["numeric_left_out"] == ["thumbup_number"]
    assert [n for n in report["items"]["notes"] if "'thumbup_number' carries no information" in n]
    row = load_items(tmp_path / "processed").set_index("item_id")
    assert row.loc["i00000", "view_number"] == 20_100.0 and row.loc["i00002", "view_number"] == 1_500_000.0
    assert row["thumbup_number"].isna().all()


def test_a_rerun_keeps_the_images_of_unchanged_files_and_reads_only_the_rest(tmp_path, monkeypatch):
    """Nightly: new interactions re-verified every image (3,000 items: 6 s a night, growing with the catalogue)."""
    import os

    from mmrec.data import images as images_module

    raw = tmp_path / "raw"
    generate_synthetic(raw, users=6, items=6, seed=0)
    first = run_preprocess(_settings(tmp_path)).report["images"]
    assert first["ok"] == 6 and first["reused"] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "processed" / "images").glob("*.jpg")}
    opened = []
    real = images_module.load_rgb
    monkeypatch.setattr(images_module, "load_rgb", lambda path, *a: opened.append(Path(path).name) or real(path, *a))
    with open(raw / "interactions.csv", "a") as handle:  # tonight's new interaction; no image changed ...
        handle.write("u_new,i00001,1700000000\n")
    changed = raw / "images" / "i00002.jpg"  # ... but one, replaced by a new picture
    Image.new("RGB", (20, 30), (200, 10, 10)).save(changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    second = run_preprocess(_settings(tmp_path)).report["images"]
    assert opened == ["i00002.jpg"] and second["ok"] == 6 and second["reused"] == 5
    after = {p.name: p.read_bytes() for p in (tmp_path / "processed" / "images").glob("*.jpg")}
    assert {n for n in before if before[n] != after[n]} == {"i00002.jpg"}  # the others are the same images
    items = load_items(tmp_path / "processed").set_index("item_id")
    assert items.loc["i00002", "image_fingerprint"] != items.loc["i00003", "image_fingerprint"]
    opened.clear()
    run_preprocess(_settings(tmp_path, **{"preprocess.max_image_side": 64}), force=False)  # other settings: anew
    assert len(opened) == 6
    opened.clear()
    run_preprocess(_settings(tmp_path, **{"preprocess.max_image_side": 64}), force=True)  # forced: anew
    assert len(opened) == 6


def test_new_data_is_not_preprocessed_under_a_running_train(tmp_path):
    import os

    from mmrec.errors import BusyError

    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=6, seed=1)
    settings = _settings(tmp_path)
    run_preprocess(settings)
    (tmp_path / "processed" / f".in-use.{os.getppid()}").write_text("A `mmrec train` into checkpoints/x")
    assert run_preprocess(settings).skipped  # nothing to write: no reason to refuse
    with (raw / "interactions.csv").open("a") as handle:
        handle.write(pd.read_csv(raw / "interactions.csv").iloc[[0]].to_csv(header=False, index=False))
    with pytest.raises(BusyError, match="preprocessing again now would replace the data under it"):
        run_preprocess(settings)
    (tmp_path / "processed" / f".in-use.{os.getppid()}").rename(tmp_path / "processed" / ".in-use.999999999")
    assert not run_preprocess(settings).skipped  # a killed run's marker: removed, not an obstacle
    assert not list((tmp_path / "processed").glob(".in-use.*"))
    # A train that starts while preprocess works: checked again before the swap, which would have ended its marker
    # (a re-check walkthrough: the second preprocess of the night then passed too).
    from mmrec.pipeline import preprocess as module

    real, before = module.save_items, load_items(tmp_path / "processed")

    def train_starts(*args, **kwargs):
        (tmp_path / "processed" / f".in-use.{os.getppid()}").write_text("A `mmrec train` into checkpoints/x")
        return real(*args, **kwargs)

    module.save_items = train_starts
    try:
        with pytest.raises(BusyError):
            run_preprocess(settings, force=True)
    finally:
        module.save_items = real
    assert (tmp_path / "processed" / f".in-use.{os.getppid()}").is_file()  # the old folder, marker and all, stays
    pd.testing.assert_frame_equal(load_items(tmp_path / "processed"), before)


def test_quotes_escaped_with_a_backslash_are_read_as_quotes_and_counted(tmp_path):
    """Book-Crossing's BX-Books.csv escapes quotes as \\" and ends some titles with a backslash: the titles were
    mangled ('The \\\\Cat Who\\\\" Mysteries"') with no word, and the mangled text went into the text features."""
    from mmrec.data.raw_tables import read_table

    path = tmp_path / "BX-Books.csv"
    lines = ['"ISBN";"Book-Title";"Book-Author"', '"0001";"The \\"Cat Who\\" Mysteries";"Lilian Jackson Braun"',
             '"0002";"DK Readers (Level 4: Proficient Readers)\\";"James Buckley"', '"0003";"Plain";"A \\"B\\""',
             '"0004";"One, \\"two\\", three";"C"']
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    table = read_table(path, "item_info", encoding="latin-1")
    assert table.frame.values.tolist() == [["0001", 'The "Cat Who" Mysteries', "Lilian Jackson Braun"],
                                           ["0002", "DK Readers (Level 4: Proficient Readers)\\", "James Buckley"],
                                           ["0003", "Plain", 'A "B"'], ["0004", 'One, "two", three', "C"]]
    (note,) = table.notes
    assert note.startswith('6 quote(s) in BX-Books.csv are escaped with a backslash (\\" inside a quoted value')
    path.write_text("\n".join(lines[:1] + lines[3:4]).replace("\\", "") + "\n", encoding="utf-8")
    assert read_table(path, "item_info").notes == []  # nothing escaped: nothing said
    # Outside quotes a backslash and a quote are text, as written (a re-check: '12\\" screen' became '12"" screen').
    path.write_text('item_id,title,description\ni0,12\\" screen TV,d\ni1,\\"Best\\" mug,d\n', encoding="utf-8")
    table = read_table(path, "item_info")
    assert table.frame["title"].tolist() == ['12\\" screen TV', '\\"Best\\" mug'] and table.notes == []
    # A quoted value spanning lines keeps its quote state across them (a re-check: a fake item 'second line"').
    path.write_text('item_id,title,description\ni0,"A 12\\" TV\nsecond line",d\ni1,"A TV\nwith 12\\" screen",d\n'
                    'i2,"Nice\u2028 12\\" TV",d\n', encoding="utf-8")
    assert read_table(path, "item_info").frame["title"].tolist() == ['A 12" TV\nsecond line', 'A TV\nwith 12" screen',
                                                                     'Nice\u2028 12" TV']
    # A \" before a comma inside the value (MySQL's exports): read as a quote where that reading fits the header
    # (a re-check: 'said \\"hi\\' ended the value, and the line had a field too many).
    path.write_text('item_id,title,description\ni0,"He said \\"hi\\", then left",d\ni1,"C:\\dir\\",d\n'
                    'i2,"a \\"b\\",\\"c\\"",d\ni3,"First line.\r\nHe said \\"hi\\", then left",d\n'
                    'i4,"He said \\"hi\\", then left\nand came back",d\n', encoding="utf-8")
    table = read_table(path, "item_info")
    assert table.frame.values.tolist() == [["i0", 'He said "hi", then left', "d"], ["i1", "C:\\dir\\", "d"],
                                           ["i2", 'a "b","c"', "d"],
                                           ["i3", 'First line.\r\nHe said "hi", then left', "d"],
                                           ["i4", 'He said "hi", then left\nand came back', "d"]]
    assert not table.malformed  # i4: the \" on the value's first line (a re-check: a junk item 'and came back"')
    assert table.notes[0].startswith("10 quote(s) in BX-Books.csv are escaped")  # a re-check: a value on two lines
    # A value closed by a backslash and its quote, before a record whose quoted value opens and spans lines, stays as
    # it was read (a re-check: the look-ahead made it 'Paths in C:";Windows').
    path.write_text('"item_id";"title";"description"\n"i0";"Paths in C:\\";"Windows; a guide"\n"i1";"Second";'
                    '"Over\ntwo lines"\n"i2";"Third";"Plain"\n', encoding="utf-8")
    assert read_table(path, "item_info").frame.values.tolist() == [
        ["i0", "Paths in C:\\", "Windows; a guide"], ["i1", "Second", "Over\ntwo lines"], ["i2", "Third", "Plain"]]


def test_a_missing_column_of_several_description_columns_is_named_with_its_setting(tmp_path):
    generate_synthetic(tmp_path / "raw", users=12, items=6, seed=1)
    settings = _settings(tmp_path, **{"data.description_column": ["description", "Brand"]})
    with pytest.raises(DataError, match="lacks column 'Brand' \\(data.description_column\\)"):
        run_preprocess(settings)
    items = pd.read_csv(tmp_path / "raw" / "item_info.csv", dtype=str).assign(Brand="Acme")
    items.to_csv(tmp_path / "raw" / "item_info.csv", index=False)
    run_preprocess(settings)
    assert (load_items(tmp_path / "processed")["description"].str.endswith(". Acme")).all()


def test_time_and_rating_columns_under_other_names_are_pointed_out(tmp_path):
    """An Amazon dump with only its ids mapped: 'overall' and 'unixReviewTime' were ignored without a word, so 1-star
    reviews were positives and the later time split's error pointed away from the setting."""
    raw = tmp_path / "raw"
    generate_synthetic(raw, users=12, items=6, seed=1)
    inter = pd.read_csv(raw / "interactions.csv", dtype=str)
    inter = inter.drop(columns=[c for c in inter.columns if c == "rating"])
    inter.rename(columns={"timestamp": "unixReviewTime"}).assign(overall="5.0").to_csv(raw / "interactions.csv",
                                                                                       index=False)
    notes = run_preprocess(_settings(tmp_path)).report["interactions"]["notes"]
    (note,) = [note for note in notes if "may hold" in note]
    assert note == ("The interactions have no column 'timestamp' (data.timestamp_column), so they are not ordered by "
                    "time (time-based splits, recency); 'unixReviewTime' may hold times: set data.timestamp_column to "
                    "it; and no column 'rating' (data.rating_column), so every row counts as a positive; 'overall' may "
                    "hold ratings: set data.rating_column to it.")
    mapped = _settings(tmp_path, **{"data.timestamp_column": "unixReviewTime", "data.rating_column": "overall"})
    assert not [note for note in run_preprocess(mapped).report["interactions"]["notes"] if "may hold" in note]


def test_the_raw_amazon_dump_settings_of_docs_data_md_read_such_dumps(tmp_path):
    """docs/data.md's YAML for the Amazon review dumps, as written, on 2018-style files (JSON Lines, gzip)."""
    import gzip
    import json
    import re

    import yaml

    docs = (Path(__file__).parents[2] / "docs" / "data.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(paths: \{data_dir: path/to/amazon\}.*?)```", docs, flags=re.S)
    config = yaml.safe_load(block)
    raw = tmp_path / "amazon"
    raw.mkdir()
    meta = [{"asin": f"B{i:03d}", "title": f"Bottle {i}", "description": ["Great bottle.", "Safe"],
             "category": ["Baby", "Feeding"], "brand": "Acme", "price": [f"${10 + i}.99", "$5.49 - $9.99", ""][i % 3],
             "imageURL": [f"https://example.com/B{i:03d}.jpg"]} for i in range(12)]
    reviews = [{"reviewerID": f"A{u}", "asin": f"B{(u + j) % 12:03d}", "overall": float(3 + (u + j) % 3),
                "unixReviewTime": 1_400_000_000 + 1000 * (u * 7 + j)} for u in range(10) for j in range(6)]
    for name, rows in (("meta_Baby.json.gz", meta), ("reviews_Baby_5.json.gz", reviews)):
        (raw / name).write_bytes(gzip.compress("\n".join(map(json.dumps, rows)).encode()))
    values = {f"data.{key}": value for key, value in config["data"].items()}
    report = run_preprocess(_settings(tmp_path, **{"paths.data_dir": raw, **values})).report
    assert report["items"]["kept"] == 12 and report["interactions"]["kept"] == sum(r["overall"] >= 4 for r in reviews)
    items = load_items(tmp_path / "processed").set_index("item_id")
    assert items.loc["B000", "text"] == "Bottle 0. Great bottle. Safe. Baby Feeding. Acme"
    assert items.loc["B003", "price"] == 13.99 and report["items"]["numeric"]["price"]["imputed"] == 8


def test_a_utf8_file_read_with_another_encoding_is_named(tmp_path):
    """A German shop set data.encoding: cp1252 for a file saved as UTF-8: 'Größe' became 'GrÃ¶ÃŸe' in the text
    features without a word; with a byte-order mark the error pointed at the column names ('ï»¿Artikel-Nr')."""
    from mmrec.data.raw_tables import read_table

    path = tmp_path / "items.csv"
    path.write_text("item_id;title;description\ni1;Größe M;d\n", encoding="utf-8")
    table = read_table(path, "item_info", encoding="cp1252")
    assert table.notes == ["items.csv is valid UTF-8 with non-ASCII text (e.g. 'Größe'), but data.encoding reads it as "
                           "cp1252 ('GrÃ¶ÃŸe'): if its text reads garbled, remove data.encoding."]
    path.write_text("item_id;title;description\ni1;Größe M;d\n", encoding="utf-8-sig")
    with pytest.raises(DataError, match="starts with UTF-8's byte-order mark: it is UTF-8 text, but data.encoding "
                                        "reads it as cp1252"):
        read_table(path, "item_info", encoding="cp1252")
    path.write_text("item_id;title;description\ni1;Größe M;d\n", encoding="cp1252")
    assert read_table(path, "item_info", encoding="cp1252").notes == []  # really cp1252: nothing to say
