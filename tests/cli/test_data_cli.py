from typer.testing import CliRunner

from mmrec.cli.app import app

runner = CliRunner()


def _flat(output: str) -> str:
    """Rich panel text without borders and line wraps, for phrase checks."""
    return " ".join(output.replace("│", " ").split())


def test_synth_writes_input_format(tmp_path):
    result = runner.invoke(
        app, ["data", "synth", "--out", str(tmp_path), "--users", "6", "--items", "8", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "8 items" in result.output and (tmp_path / "item_info.csv").is_file()
    assert len(list((tmp_path / "images").iterdir())) == 8


def test_import_movielens_100k_and_bad_folder(tmp_path):
    src = tmp_path / "ml"
    src.mkdir()
    (src / "u.item").write_text(
        "1|Heat (1995)|01-Jan-1995||u|" + "|".join(["0"] * 19) + "\n", encoding="latin-1"
    )
    (src / "u.data").write_text("1\t1\t4\t100\n")
    result = runner.invoke(app, ["data", "import", "movielens", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "posters missing" in result.output and "mmrec.yaml" in result.output
    bad = runner.invoke(
        app, ["data", "import", "movielens", str(tmp_path / "out"), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "not a MovieLens folder" in _flat(bad.output)
    no_posters = runner.invoke(
        app,
        [
            "data",
            "import",
            "movielens",
            str(src),
            "--out",
            str(tmp_path / "y"),
            "--posters",
            str(tmp_path / "nope"),
        ],
    )
    assert no_posters.exit_code == 2 and "Posters folder" in _flat(no_posters.output)


def test_help_lists_commands():
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0 and "synth" in result.output and "import" in result.output


def test_synth_interaction_target_without_images(tmp_path):
    args = ["data", "synth", "--out", str(tmp_path), "--users", "20", "--items", "30"]
    result = runner.invoke(app, [*args, "--interactions", "150", "--no-images"])
    assert result.exit_code == 0, result.output
    assert "150 interactions" in _flat(result.output) and "no image files" in _flat(result.output)
    assert not (tmp_path / "images").exists()
