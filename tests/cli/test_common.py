"""The CLI's error block."""

from __future__ import annotations

import contextlib

from mmrec.cli import common
from mmrec.errors import ConfigError


def test_error_text_in_brackets_is_shown_not_read_as_markup():
    with common.err_console.capture() as captured:
        common.render_error(ConfigError("item [i1] is odd", hint="pip install 'mmrec[ann]'"))
    text = " ".join(captured.get().replace("│", " ").split())
    assert "item [i1] is odd" in text and "pip install 'mmrec[ann]'" in text


def test_escape_sequences_and_emoji_codes_from_the_data_are_shown_as_written_never_run():
    """A column name holding ESC ]0;...BEL retitled the terminal and ESC [31m recoloured it; `root:x:0` showed an
    emoji for `:x:`. Control characters print as escapes, and emoji codes as written."""
    name = "item\x1b]0;PWNED\x07_id\x1b[31m root:x:0 \u202egpj.exe [bold red]"
    with common.err_console.capture() as captured:
        common.render_error(ConfigError(f"columns present: {name}", hint=name))
    with common.console.capture() as notes:
        common.print_notes([f"file {name}\nnext line\ttab"])
    for text in (captured.get(), notes.get()):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "❌" not in text
        assert "item\\x1b]0;PWNED\\x07_id\\x1b[31m root:x:0 \\u202egpj.exe [bold red]" in text
    assert "\nnext line " in notes.get()  # line ends and tabs are kept (rich expands a tab)


def test_progress_rate_counts_this_runs_progress_and_slow_units_read_as_seconds_each():
    from rich.console import Console

    from mmrec.progress import ProgressEvent

    assert common._rate(0, 5.0) == "" and common._rate(3, 0.0) == ""
    assert common._rate(30, 2.0) == "15.0/s" and common._rate(2, 120.0) == "60 s each"
    progress = common.RichProgress(Console(file=None, force_terminal=False, width=200))
    with progress:
        progress(ProgressEvent("trials", 7, 10, "study"))  # a resumed study: 7 done before this run
        task = progress._progress.tasks[0]
        assert task.completed == 7 and task.fields["start_completed"] == 7 and task.fields["rate"] == ""
        # One task for every epoch: from epoch 2 on, elapsed froze at epoch 1's and the ETA read 0:00:00 (an ML-1M
        # walkthrough). Going back to the start restarts its clock; so does a length known after an uncounted phase.
        progress(ProgressEvent("train", 10, 10, "epoch 1"))
        progress(ProgressEvent("train", 1, 10, "epoch 2"))
        task = next(t for t in progress._progress.tasks if t.description == "epoch 2")
        assert not task.finished and task.completed == 1 and task.fields["start_completed"] == 1
        progress(ProgressEvent("recommend", 0, None, "loading"))
        progress(ProgressEvent("recommend", 100, 500, "scoring"))
        task = next(t for t in progress._progress.tasks if t.description == "scoring")
        assert task.fields["start_completed"] == 100 and task.total == 500


def test_verbose_after_the_command_moves_before_it():
    from mmrec.cli.app import verbose_first

    assert verbose_first(["split", "--verbose"]) == ["--verbose", "split"]
    assert verbose_first(["-c", "x.yaml", "cache", "list", "-v"]) == ["--verbose", "-c", "x.yaml", "cache", "list"]
    assert verbose_first(["--verbose", "split"]) == ["--verbose", "split"]  # already where the root reads it
    assert verbose_first(["split"]) == ["split"] and verbose_first([]) == []
    assert verbose_first(["recommend", "--", "-v"]) == ["recommend", "--", "-v"]  # after --: an argument


def test_a_redirected_error_keeps_a_long_path_on_one_line(tmp_path):
    """In a CI log (stderr to a file) the error block is 200 columns wide, as stdout: a path in it stays whole."""
    import os
    import subprocess
    import sys

    missing = tmp_path / ("a_long_folder_name_" * 4) / "config.yaml"
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "mmrec", "evaluate", "-c", str(missing)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 2 and any(str(missing) in line for line in done.stderr.splitlines())


def test_a_settings_file_before_and_another_after_the_command_is_refused(tmp_path):
    from typer.testing import CliRunner

    from mmrec.cli.app import app

    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("model:\n  embedding_dim: 32\n")
    second.write_text("model:\n  embedding_dim: 16\n")
    runner = CliRunner()
    refused = runner.invoke(app, ["-c", str(first), "config", "show", "-c", str(second)], terminal_width=300)
    flat = " ".join(refused.output.replace("│", " ").split())
    assert refused.exit_code == 2 and "Two settings files" in flat and "only one is read" in flat
    for args in (["-c", str(first), "config", "show"], ["config", "show", "-c", str(first)],
                 ["-c", str(first), "config", "show", "-c", str(first)]):  # the same file twice is one file
        result = runner.invoke(app, args, terminal_width=300)
        shown = next(line for line in result.output.splitlines() if "model.embedding_dim " in line)
        assert result.exit_code == 0 and "32" in shown and "default" not in shown, result.output


def test_a_progress_stopped_by_an_interrupt_leaves_no_last_frame_in_a_log():
    import io

    import pytest
    from rich.console import Console

    from mmrec.progress import ProgressEvent

    for stop in (None, KeyboardInterrupt):
        log = io.StringIO()
        progress = common.RichProgress(Console(file=log, force_terminal=False, width=120))
        with pytest.raises(KeyboardInterrupt) if stop else contextlib.nullcontext():
            with progress:
                progress(ProgressEvent("epochs", 5, 12, "epochs"))
                if stop:
                    raise stop
        assert ("epochs" in log.getvalue()) is (stop is None)  # a finished run shows its bars, a stopped one none


def test_config_show_shows_a_value_in_brackets_as_written(monkeypatch):
    # A list written YAML's way in an environment variable is a string '[a, b]': it showed as "" (read as markup).
    from typer.testing import CliRunner

    from mmrec.cli.app import app

    monkeypatch.setenv("MMREC_DATA__DESCRIPTION_COLUMN", "[description, title]")
    shown = CliRunner().invoke(app, ["config", "show"])
    (row,) = [line for line in shown.output.splitlines() if "data.description_column" in line]
    assert shown.exit_code == 0 and '"[description,' in row


def test_config_show_lists_a_search_space_entry_set_to_null(tmp_path):
    # docs/tuning.md's `model.dropout: null  # stop searching one` made `config show` a traceback (exit 1).
    config = tmp_path / "tune.yaml"
    from typer.testing import CliRunner

    from mmrec.cli.app import app

    config.write_text("tune:\n  search_space:\n    model.dropout: null\n")
    result = CliRunner().invoke(app, ["config", "show", "-c", str(config)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "not searched" in result.output and "model.dropout" in result.output


def test_a_long_task_without_a_terminal_says_how_far_it_is_now_and_then(monkeypatch):
    # Run from a log or cron, a 17-minute text encoding printed nothing until its end (a 40k-item walkthrough).
    import io

    from rich.console import Console

    from mmrec.progress import ProgressEvent

    clock = {"now": 1000.0}
    log = io.StringIO()
    progress = common.RichProgress(Console(file=log, force_terminal=False, width=120, get_time=lambda: clock["now"]))
    monkeypatch.setattr(progress._progress, "get_time", lambda: clock["now"])
    with progress:
        for done, now in ((0, 1000.0), (100, 1010.0), (400, 1040.0), (900, 1090.0), (1200, 1120.0), (2000, 1160.0)):
            clock["now"] = now
            progress(ProgressEvent("text", done, 2000, "text features", done=done == 2000))
    lines = [line for line in log.getvalue().splitlines() if line.startswith("text features:")]
    assert lines == ["text features: 400/2,000 (20%) after 0:00:40, 10.0/s, about 0:02:40 left",
                     "text features: 1,200/2,000 (60%) after 0:02:00, 10.0/s, about 0:01:20 left",
                     "text features: 2,000/2,000 (100%) after 0:02:40, 12.5/s (done)"]
    short = io.StringIO()  # a task done within LOG_AFTER seconds says nothing more than before
    with common.RichProgress(Console(file=short, force_terminal=False, width=120)) as quick:
        quick(ProgressEvent("text", 10, 10, "text features", done=True))
    assert "text features:" not in short.getvalue()
