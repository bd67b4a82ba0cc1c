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


def _mmrec_folder_writer():
    """tests/data/test_mmrec_format.py's write_mmrec_folder (tests are not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "test_mmrec_format.py"
    spec = importlib.util.spec_from_file_location("mmrec_format_tests_for_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_mmrec_folder


def test_import_mmrec_then_preprocess_cache_import_train_evaluate_on_the_datasets_split(tmp_path, one_torch_thread):
    import json
    import shlex

    import yaml

    inter = _mmrec_folder_writer()(tmp_path / "baby", n_users=30, n_items=24, per_user=6)
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "import", "mmrec", str(tmp_path / "baby"), "--out", str(out)], terminal_width=250)
    assert result.exit_code == 0, result.output
    flat = _flat(result.output)
    assert "1 user(s) without training rows are left out of val.csv/test.csv" in flat
    commands = result.output[result.output.index("Next, run:"):].splitlines()[1:]
    assert [c.split()[:2] for c in commands] == [["mmrec", "preprocess"], ["mmrec", "cache"], ["mmrec", "cache"],
                                                 ["mmrec", "train"], ["mmrec", "evaluate"], ["mmrec", "recommend"]]

    config = out / "mmrec.yaml"
    values = yaml.safe_load(config.read_text())  # tiny model and one epoch, so the test stays fast
    values["model"] = dict(embedding_dim=8, num_heads=2, dropout=0.0, user_history_length=4, num_negatives=8)
    values["training"] = dict(epochs=1, batch_size=64, device="cpu")
    values["features"].update(num_workers=0, device="cpu")
    config.write_text(yaml.safe_dump(values))
    outputs = {}
    for command in commands:  # exactly what the import printed
        args = shlex.split(command)[1:]
        done = runner.invoke(app, args, terminal_width=250)
        assert done.exit_code == 0, (command, done.output)
        outputs[args[0] if args[0] != "cache" else args[3]] = _flat(done.output)
    assert "Imported 24 vision vectors" in outputs["vision"] and "Imported 24 text vectors" in outputs["text"]
    assert "no row in the file" not in outputs["vision"] + outputs["text"]
    for name in ("train", "evaluate"):  # the hand-made split is taken as it is
        assert "mmrec split" not in outputs[name] and "held out as validation" not in outputs[name], outputs[name]

    report = json.loads((out / "results" / "evaluation.json").read_text())
    test = inter[(inter["x_label"] == 2) & inter["userID"].isin(inter.loc[inter["x_label"] == 0, "userID"])]
    assert report["counts"]["test_interactions"] == len(test) == (inter["x_label"] == 2).sum() - 2
    assert report["counts"]["test_users"] == test["userID"].nunique() == 30
    assert report["counts"]["test_cold_users"] == 0
    assert set(report["models"]) == {"multimodal", "random", "popularity", "item_knn", "user_knn"}


def test_import_mmrec_refusals_exit_2(tmp_path):
    missing = runner.invoke(app, ["data", "import", "mmrec", str(tmp_path / "nope"), "-o", str(tmp_path / "out")])
    assert missing.exit_code == 2 and "MMRec dataset folder" in _flat(missing.output)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.inter").write_text("userID\titemID\tx_label\n0\t1\t7\n")
    bad = runner.invoke(app, ["data", "import", "mmrec", str(src), "-o", str(tmp_path / "out")])
    assert bad.exit_code == 2 and "x_label must be 0 (train), 1 (validation) or 2 (test)" in _flat(bad.output)
    (src / "b.inter").write_text("userID\titemID\tx_label\n0\t1\t0\n")
    several = runner.invoke(app, ["data", "import", "mmrec", str(src), "-o", str(tmp_path / "out")])
    assert several.exit_code == 2 and "--name" in _flat(several.output)
    named = runner.invoke(app, ["data", "import", "mmrec", str(src), "-o", str(tmp_path / "out"), "--name", "b"])
    assert named.exit_code == 0, named.output


def test_synth_out_with_a_tilde_goes_to_the_home_folder(tmp_path, monkeypatch):
    # `--out '~/synth'` (quoted: no shell expansion) made ./~/synth and half-wrote $HOME/synth, then failed.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["data", "synth", "--out", "~/synth", "--users", "5", "--items", "8", "--no-images"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "synth" / "interactions.csv").is_file() and not (tmp_path / "~").exists()


def test_an_out_folder_that_is_a_file_is_refused_naming_the_option(tmp_path):
    """It failed later as a system error ("File exists") whose hint spoke of disk space and limits."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (["data", "synth", "--out", str(afile), "--users", "5", "--items", "5"],
                 ["data", "import", "movielens", str(tmp_path), "-o", str(afile / "sub")],
                 ["demo", "--out", str(afile)]):
        result = runner.invoke(app, args)
        flat = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and "'--out'" in flat and "afile is a file, not a folder" in flat, args
    assert afile.read_text() == "x"
