import sys
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmrec.cli.app import app
from mmrec.data.synth import generate_synthetic

runner = CliRunner()


@pytest.fixture
def config(tmp_path):
    generate_synthetic(tmp_path / "raw", users=8, items=10, seed=0)
    path = tmp_path / "c.yaml"
    path.write_text(f"paths:\n  data_dir: {tmp_path / 'raw'}\n  processed_dir: {tmp_path / 'processed'}\n")
    return path


def test_preprocess_prints_report_then_noop(config):
    first = runner.invoke(app, ["preprocess", "--config", str(config), "--skip-caching", "--workers", "1"])
    assert first.exit_code == 0, first.output
    assert "Preprocess report" in first.output and "Feature caching skipped" in first.output
    second = runner.invoke(app, ["preprocess", "-c", str(config), "--skip_caching"])
    assert second.exit_code == 0 and "nothing redone" in second.output
    forced = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching", "--force-reprocess"])
    assert forced.exit_code == 0 and "nothing redone" not in forced.output
    assert "no images folder" not in forced.output


def test_the_report_counts_category_columns_and_a_missing_one_exits_2(config, tmp_path):
    items = pd.read_csv(tmp_path / "raw" / "item_info.csv", dtype=str)
    items["channel"] = [f"c{k % 3}|all" for k in range(len(items))]
    items.to_csv(tmp_path / "raw" / "item_info.csv", index=False)
    config.write_text(config.read_text() + "data:\n  category_columns: [channel]\n")
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching"], terminal_width=200)
    assert result.exit_code == 0, result.output
    # The row's cells, each joined over the lines it wraps onto (widths follow the other rows, e.g. image speed).
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "│ categories" in line)
    wrapped = [lines[start]]
    for line in lines[start + 1:]:
        if line.count("│") < 5 or line.split("│")[1].strip():  # the next row, or the table's end
            break
        wrapped.append(line)
    cells = [" ".join(part.split("│")[k].strip() for part in wrapped).strip() for k in range(2, 5)]
    assert cells == ["channel: items with a value", "10", "4 distinct values, 4 held by 2+ items"]
    config.write_text(config.read_text().replace("[channel]", "[brand]"))
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching"], terminal_width=200)
    assert result.exit_code == 2 and "lacks category column(s) 'brand'" in " ".join(result.output.split())


def test_a_missing_images_folder_is_named(config, tmp_path):
    (tmp_path / "raw" / "images").rename(tmp_path / "raw" / "pictures")
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "There is no images folder at" in result.output and "data.images_subdir" in result.output
    # One note, no advice per item id, and no image speed for the images that were never read.
    assert "items cleaned; no images folder" in result.output and "no images folder (note" in result.output
    assert "file not found" not in result.output and "speed (" not in result.output


def test_corrupt_image_and_nan_are_reported_not_fatal(config, tmp_path):
    (tmp_path / "raw" / "images" / "i00001.jpg").write_bytes(b"\xff\xd8garbage")
    items = pd.read_csv(tmp_path / "raw" / "item_info.csv", dtype=str)
    items.loc[2, "comment_number"] = "NaN"
    items.to_csv(tmp_path / "raw" / "item_info.csv", index=False)
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching"])
    assert result.exit_code == 0, result.output
    assert "corrupt" in result.output or "not_image" in result.output
    assert "missing=1" in result.output


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_column", "lacks numeric column(s) 'view_number'"),
        ("no_data", "not found"),
        ("bad_workers", "Invalid value"),
    ],
)
def test_bad_inputs_exit_2(config, tmp_path, case, message):
    args = ["preprocess", "-c", str(config), "--skip-caching"]
    if case == "missing_column":
        pd.read_csv(tmp_path / "raw" / "item_info.csv").drop(columns="view_number").to_csv(
            tmp_path / "raw" / "item_info.csv", index=False
        )
    elif case == "no_data":
        (tmp_path / "raw" / "item_info.csv").unlink()
    else:
        args += ["--workers", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output


def test_caching_step_runs_after_preprocess_unless_skipped(config, monkeypatch):
    # A stand-in for mmrec.pipeline.cache (the features layer), so this test checks only the wiring
    # and does not load backbones. It returns the fields the preprocess command prints.
    calls = []

    def fake_precompute(settings, progress=None):
        calls.append(settings.paths.processed_dir)
        report = SimpleNamespace(
            combo="efficientnet-lite_sentence-bert",
            seconds=0.5,
            with_content={"vision": 10, "text": 10},
            computed={"vision": 10, "text": 10},
            already_cached={"vision": 0, "text": 0},
            failed={"vision": 0, "text": 0},
            imported={"text": None},  # text comes from `mmrec cache import`, nothing imported yet
            not_imported={"vision": 0, "text": 10},
        )
        return SimpleNamespace(report=report, cache_folder=settings.paths.cache_dir)

    monkeypatch.setitem(
        sys.modules, "mmrec.pipeline.cache", SimpleNamespace(run_cache_precompute=fake_precompute)
    )
    result = runner.invoke(app, ["preprocess", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and "vision: 10 computed" in result.output
    flat = " ".join(result.output.split())
    assert "text comes from `mmrec cache import` (nothing computed): no text vectors imported yet" in flat


def test_parsed_counts_and_a_column_left_out_are_shown(config, tmp_path):
    items = pd.read_csv(tmp_path / "raw" / "item_info.csv", dtype=str)
    items.loc[0, "view_number"] = "154.3K"
    items["thumbup_number"] = ""
    items.to_csv(tmp_path / "raw" / "item_info.csv", index=False)
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching"], terminal_width=250)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "numeric" in line]
    assert any("view_number: read as" in row and "154.3K=154,300" in row for row in rows)
    assert any("thumbup_number: left" in row and "10" in row for row in rows)  # "left out", wrapped at 80
    assert "Numeric column 'thumbup_number' carries no information" in " ".join(result.output.split())
    # A column with nothing to impute counts the items whose values are all valid (was "all valid | 0").
    cells = [[cell.strip() for cell in row.split("│")[2:4]] for row in rows]
    assert any(len(c) == 2 and c[0].startswith("comment_number: all") and c[1] == "10" for c in cells), rows
    # Zeros taken for placeholders are imputed, and a value far above every other capped: the table says so (it said
    # "all valid" where the report counted them).
    items["thumbup_number"] = [str(1950 + i) for i in range(9)] + ["0"]
    items["comment_number"] = [str(3 * 4 ** i) for i in range(9)] + ["1e30"]
    items.to_csv(tmp_path / "raw" / "item_info.csv", index=False)
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching"], terminal_width=250)
    rows = [[cell.strip() for cell in line.split("│")[2:5]] for line in result.output.splitlines() if "numeric" in line]
    assert any(row[0].startswith("thumbup_number: imputed") and row[1:] == ["1", "fill=1954; ids i00009"]
               for row in rows), rows
    assert ["comment_number: capped", "1", "at 196608"] in rows, rows  # the label wraps in the table
    assert not any(row[0].startswith("comment_number: all") for row in rows if row), rows


def test_the_rating_values_read_are_shown_so_an_off_scale_one_is_seen(config, tmp_path):
    interactions = pd.read_csv(tmp_path / "raw" / "interactions.csv", dtype=str)
    if "rating" not in interactions.columns:
        interactions["rating"] = "4"
    interactions.loc[0, "rating"] = "6"
    interactions.to_csv(tmp_path / "raw" / "interactions.csv", index=False)
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching", "--force-reprocess"],
                           terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "rating values read" in result.output and "6: 1" in result.output
    import json

    report = json.loads((tmp_path / "processed" / "preprocess_report.json").read_text())
    assert report["interactions"]["ratings"]["6"] == 1
    # Many distinct values (a dwell time): their range, labelled so (walkthrough I: it said "value: rows").
    interactions["rating"] = [str(i % 551) for i in range(len(interactions))]
    interactions.to_csv(tmp_path / "raw" / "interactions.csv", index=False)
    result = runner.invoke(app, ["preprocess", "-c", str(config), "--skip-caching", "--force-reprocess"],
                           terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "rating values read (range)" in result.output and "value: rows" not in result.output


def test_a_store_another_run_fills_skips_the_caching_step_after_the_tables(config, monkeypatch):
    from mmrec.errors import BusyError

    def busy(settings, progress=None):
        raise BusyError("Another run is filling the feature store /c/x_y (process 7, lock /c/.x_y.precompute.lock).")

    monkeypatch.setitem(sys.modules, "mmrec.pipeline.cache", SimpleNamespace(run_cache_precompute=busy))
    result = runner.invoke(app, ["preprocess", "-c", str(config)], terminal_width=300)
    flat = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "Processed tables and report in" in flat and "Feature caching skipped: Another run is filling the " \
        "feature store /c/x_y (process 7, lock /c/.x_y.precompute.lock). Its vectors serve this catalogue" in flat
