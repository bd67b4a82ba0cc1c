"""`mmrec cache import`: what it prints, a no-op re-import, replacement, every refusal exits 2, and
`precompute`/`train` report the items the import lacks."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mmrec.cli.app import app

runner = CliRunner()
TINY = Path(__file__).resolve().parents[1] / "training" / "tiny_project.py"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    from mmrec.cli.common import console, err_console

    monkeypatch.setattr(console, "width", 250)
    monkeypatch.setattr(err_console, "width", 250)  # error panels quote long temp paths


@pytest.fixture
def project(tmp_path):
    """The tiny training project (items i0..i39), both modalities imported; returns the config path."""
    spec = importlib.util.spec_from_file_location("tiny_project_for_import_cli", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.write_tiny_project(tmp_path, epochs=1, use_vision=True, use_text=True)
    values = yaml.safe_load(config.read_text())
    values["features"] = {"vision_backbone": "imported", "text_backbone": "imported", "num_workers": 0,
                          "device": "cpu"}
    config.write_text(yaml.safe_dump(values))
    return config


def _cache(*args):
    return runner.invoke(app, ["cache", *map(str, args)])


def test_import_reimport_replace_then_precompute_and_train_report_missing_items(project, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "v.npy", rng.normal(size=(39, 8)).astype(np.float32))
    (tmp_path / "ids.txt").write_text("\n".join([f"i{j}" for j in range(38)] + ["ghost"]) + "\n")
    first = _cache("import", "--modality", "vision", tmp_path / "v.npy", "--ids", tmp_path / "ids.txt", "-c", project)
    assert first.exit_code == 0, first.output
    assert "39 rows of 8-d vision vectors" in first.output and "Imported 38 vision vectors into imported_imported" \
        in first.output
    assert "Skipped 1 row(s) whose item id is not in the catalogue: 'ghost'" in first.output
    assert "2 catalogue item(s) have no row in the file and no vision vector (treated as lacking it): 'i38', " \
           "'i39'" in first.output
    again = _cache("import", "--modality", "vision", tmp_path / "v.npy", "--ids", tmp_path / "ids.txt", "-c", project)
    assert again.exit_code == 0 and "Already imported into imported_imported: nothing written." in again.output

    np.save(tmp_path / "v.npy", rng.normal(size=(39, 8)).astype(np.float32))  # the same name, new vectors
    replaced = _cache("import", "--modality", "vision", tmp_path / "v.npy", "--ids", tmp_path / "ids.txt",
                      "-c", project)
    assert replaced.exit_code == 0 and "They replace the earlier import imported:" in replaced.output
    assert "(38 vectors deleted)" in replaced.output

    pd.DataFrame({"item_id": [f"i{j}" for j in range(40)], "emb": list(rng.normal(size=(40, 4)))}).to_parquet(
        tmp_path / "t.parquet")
    text = _cache("import", "--modality", "text", tmp_path / "t.parquet", "-c", project)
    assert text.exit_code == 0 and "Imported 40 text vectors" in text.output

    precompute = _cache("precompute", "-c", project)
    assert precompute.exit_code == 0, precompute.output
    assert "not imported" in precompute.output
    assert "2 items have no imported vision vector" in precompute.output

    train = runner.invoke(app, ["train", "-c", str(project), "--epochs", "1"])
    assert train.exit_code == 0, train.output
    assert "2 of 40 items have no imported vision vector (treated as lacking vision): 'i38', 'i39'" in train.output
    from mmrec.data.splits import load_split
    from mmrec.data.tables import save_interactions

    split = load_split(tmp_path / "splits")  # the tiny project has splits only: serve every interaction
    save_interactions(pd.concat([split.train, split.val, split.test], ignore_index=True), tmp_path / "processed")
    recommend = runner.invoke(app, ["recommend", "-c", str(project), "--users", "u1", "--top-k", "3"])
    assert recommend.exit_code == 0, recommend.output

    # Other vectors imported since: the checkpoint refuses them (recommend, evaluate, resume) until retrained.
    pd.DataFrame({"item_id": [f"i{j}" for j in range(40)], "emb": list(rng.normal(size=(40, 4)))}).to_parquet(
        tmp_path / "t.parquet")
    assert _cache("import", "--modality", "text", tmp_path / "t.parquet", "-c", project).exit_code == 0
    last = next((tmp_path / "checkpoints").rglob("last_model.pth"))
    for command in (["recommend", "--users", "u1"], ["evaluate"], ["train", "--resume", str(last)]):
        refused = runner.invoke(app, [command[0], "-c", str(project), *command[1:]])
        assert refused.exit_code == 2, (command, refused.output)
        assert "another import" in refused.output and "than the one checkpoint" in refused.output, refused.output


def test_precompute_before_any_import_says_what_to_do(project):
    listed = _cache("list", "-c", project)
    assert listed.exit_code == 0 and "Fill one with `mmrec cache import`" in listed.output
    result = _cache("precompute", "-c", project)
    assert result.exit_code == 0, result.output
    assert "no vision vectors imported yet" in result.output and "mmrec cache import --modality vision" in result.output
    train = runner.invoke(app, ["train", "-c", str(project), "--epochs", "1"])
    assert train.exit_code == 2 and "no vision vectors were imported into imported_imported" in train.output


@pytest.mark.parametrize("make, extra, message", [
    (lambda p: np.save(p / "v.npy", np.ones((40, 2))), [], "its rows need item ids"),
    (lambda p: np.save(p / "v.npy", np.full((40, 2), np.nan)), ["--ids", "catalogue"],
     "40 row(s) contain NaN or infinite values (items 'i0', 'i1', 'i2', 'i3', 'i4', ...)"),
    (lambda p: np.save(p / "v.npy", np.ones((39, 2))), ["--ids", "catalogue"],
     "39 rows but the processed item table gives 40 item ids"),
    (lambda p: np.save(p / "v.npy", np.array([[object()]], dtype=object)), ["--ids", "catalogue"],
     "holds Python objects"),
    (lambda p: (p / "v.npy").write_bytes(b""), ["--ids", "catalogue"], "not a .npy file"),
    (lambda p: None, ["--ids", "catalogue"], "does not exist"),
])
def test_bad_files_exit_2_with_the_reason(project, tmp_path, make, extra, message):
    make(tmp_path)
    result = _cache("import", "--modality", "vision", tmp_path / "v.npy", *extra, "-c", project)
    assert result.exit_code == 2 and "FeatureError" in result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "cache" / "imported_imported" / "meta.json").exists()


def test_bad_options_and_configs_exit_2(project, tmp_path):
    np.save(tmp_path / "v.npy", np.ones((40, 2)))
    bad_modality = _cache("import", "--modality", "audio", tmp_path / "v.npy", "--ids", "catalogue", "-c", project)
    assert bad_modality.exit_code == 2 and "--modality must be vision or text" in bad_modality.output
    values = yaml.safe_load(project.read_text())
    values["features"]["text_backbone"] = "sentence-bert"
    project.write_text(yaml.safe_dump(values))
    not_imported = _cache("import", "--modality", "text", tmp_path / "v.npy", "--ids", "catalogue", "-c", project)
    assert not_imported.exit_code == 2 and "features.text_backbone is 'sentence-bert'" in not_imported.output
    assert _cache("import", "--modality", "vision", tmp_path / "v.npy", "--ids", "catalogue", "-c",
                  project).exit_code == 0
    np.save(tmp_path / "w.npy", np.ones((40, 3)))
    wider = _cache("import", "--modality", "vision", tmp_path / "w.npy", "--ids", "catalogue", "-c", project)
    # Another dimension replaces the earlier import as any other file does (was: refused until a cache clear).
    assert wider.exit_code == 0, wider.output
    assert "(40 vectors deleted; those were 2-d, these are 3-d)" in wider.output
    stats = _cache("stats", "imported_sentence-bert", "-c", project)
    dim_row = next(line for line in stats.output.splitlines() if line.strip("│┃ ").startswith("dim"))
    assert stats.exit_code == 0 and "3" in dim_row.split(), dim_row  # the vision column


def test_a_wide_parquet_imports_and_a_gap_in_it_is_refused(project, tmp_path):
    wide = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 4)), columns=[f"d{j}" for j in range(4)])
    wide.insert(0, "item_id", [f"i{j}" for j in range(40)])
    wide.to_parquet(tmp_path / "wide.parquet", index=False)
    result = _cache("import", "--modality", "text", tmp_path / "wide.parquet", "-c", project)
    assert result.exit_code == 0, result.output
    assert "40 rows of 4-d text vectors" in result.output and "Imported 40 text vectors" in result.output
    wide.loc[3, "d2"] = None  # an empty cell: no vector for that item
    wide.to_parquet(tmp_path / "gap.parquet", index=False)
    gap = _cache("import", "--modality", "text", tmp_path / "gap.parquet", "-c", project)
    assert gap.exit_code == 2 and "1 row(s) contain NaN or infinite values (items 'i3')" in gap.output
