"""docs/cli.md lists every command and option as the CLI itself has them."""

from pathlib import Path

from mmrec.cli.reference import reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_committed_reference_matches_the_cli():
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/cli.md is out of date: run `python -m mmrec.cli.reference > docs/cli.md`")


def test_the_reference_names_options_the_guides_do_not():
    text = reference()
    for expected in ("## `mmrec cache precompute`", "--max-items", "--sampling-strategy", "--diversity-lambda",
                     "## `mmrec checkpoints info`", "--top <int range>"):
        assert expected in text
