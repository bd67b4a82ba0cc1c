"""`import_mmrec`: an MMRec benchmark folder -> input format, the dataset's own split, item ids, config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mmrec.data.mmrec_format import import_mmrec
from mmrec.data.splits import load_split, read_split_report, stale_split_note
from mmrec.errors import DataError
from mmrec.settings import DataSettings, load_settings

COLUMNS = ["userID", "itemID", "rating", "timestamp", "x_label"]


def write_mmrec_folder(root: Path, n_users: int = 12, n_items: int = 10, per_user: int = 6, seed: int = 0,
                       vision: bool = True, text: bool = True, cold_test_user: bool = True) -> pd.DataFrame:
    """An MMRec-format folder: toy.inter (per user: train, then one val, then one test row, in time order),
    image_feat.npy [n_items, 16], text_feat.npy [n_items, 8], i_id_mapping.csv. Returns the .inter rows."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, size=per_user, replace=False)):
            label = 0 if t < per_user - 2 else (1 if t == per_user - 2 else 2)
            rows.append((u, int(i), float(rng.integers(1, 6)), 1_500_000_000 + 1000 * u + t, label))
    if cold_test_user:  # a user with test rows only: MMRec's loader drops them
        rows += [(n_users, 1, 5.0, 1_600_000_000, 2), (n_users, 2, 4.0, 1_600_000_001, 2)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.to_csv(root / "toy.inter", sep="\t", index=False)
    if vision:
        np.save(root / "image_feat.npy", rng.normal(size=(n_items, 16)).astype(np.float32))
    if text:
        np.save(root / "text_feat.npy", rng.normal(size=(n_items, 8)).astype(np.float32))
    pd.DataFrame({"asin": [f"B{i:05d}" for i in range(n_items)], "itemID": range(n_items)}).to_csv(
        root / "i_id_mapping.csv", sep="\t", index=False)
    return frame


def test_import_writes_the_input_format_the_datasets_own_split_and_a_config(tmp_path):
    inter = write_mmrec_folder(tmp_path / "src")
    result = import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings())
    out = tmp_path / "out"

    items = pd.read_csv(out / "item_info.csv", dtype=str, keep_default_na=False)
    assert items["item_id"].tolist() == [str(i) for i in range(10)]  # itemID 0..max, in .npy row order
    assert set(items["title"]) == {""} and set(items["description"]) == {""}
    assert items["original_id"].tolist()[:2] == ["B00000", "B00001"]
    interactions = pd.read_csv(out / "interactions.csv", dtype={"user_id": str, "item_id": str})
    assert list(interactions.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert len(interactions) == len(inter) == result.rows_read == result.interactions  # every row, all labels
    assert (out / "item_ids.txt").read_text().split() == [str(i) for i in range(10)]

    split = load_split(out / "splits")
    assert len(split.train) == (inter["x_label"] == 0).sum() and len(split.val) == (inter["x_label"] == 1).sum()
    assert len(split.test) == (inter["x_label"] == 2).sum() - 2  # the cold user's two rows left out
    assert "12" not in set(split.test["user_id"]) and result.cold_rows == {"val": 0, "test": 2}
    assert result.cold_users == 1 and any("filter_out_cod_start_users" in n for n in result.notes)
    assert result.labels == {"train": 48, "val": 12, "test": 14} and result.parts == {"train": 48, "val": 12,
                                                                                         "test": 12}
    report = read_split_report(out / "splits")
    assert report["strategy"] == "temporal_user" and report["input_sha256"] is None
    assert report["parts"]["test"]["interactions"] == 12 and report["source"]["cold_rows_left_out"]["test"] == 2
    # No recorded input: the stale-split check stays silent, whatever preprocess writes.
    assert stale_split_note(out / "splits", out / "processed") is None

    config = yaml.safe_load((out / "mmrec.yaml").read_text())
    assert config["data"] == {"numerical_features_cols": [], "positive_rating_threshold": None}
    assert config["features"] == {"vision_backbone": "imported", "text_backbone": "imported"}
    assert "model" not in config
    settings = load_settings(out / "mmrec.yaml").settings
    assert settings.paths.splits_dir == (out / "splits").resolve() and settings.features.combo == "imported_imported"
    assert result.next_commands[0].startswith("mmrec preprocess --config ")
    assert result.next_commands[0].endswith("--skip-caching")
    assert [c.split()[4] for c in result.next_commands[1:3]] == ["vision", "text"]
    assert f"--ids {out.resolve() / 'item_ids.txt'}" in result.next_commands[1]
    assert result.next_commands[-2].endswith("--compare") and "recommend" in result.next_commands[-1]
    record = json.loads((out / "dataset.json").read_text())
    assert record["vectors"]["vision"]["dim"] == 16 and record["next"] == result.next_commands


def test_keep_cold_users_keeps_their_rows(tmp_path):
    inter = write_mmrec_folder(tmp_path / "src")
    result = import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings(), keep_cold_users=True)
    assert len(load_split(tmp_path / "out" / "splits").test) == (inter["x_label"] == 2).sum()
    assert result.cold_rows == {"val": 0, "test": 2} and any("--keep-cold-users" in n for n in result.notes)


def test_an_import_over_ones_own_interactions_is_refused_unless_forced(tmp_path):
    from mmrec.errors import DataError

    write_mmrec_folder(tmp_path / "src")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "interactions.csv").write_text("user_id,item_id\nme,X\n")
    with pytest.raises(DataError, match="already holds interactions.csv, which no import wrote"):
        import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings())
    import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings(), force=True)
    import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings())  # its own files now


def test_an_absent_modality_keeps_the_default_backbone_and_turns_the_model_input_off(tmp_path):
    write_mmrec_folder(tmp_path / "src", text=False)
    result = import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings())
    config = yaml.safe_load((tmp_path / "out" / "mmrec.yaml").read_text())
    assert config["features"] == {"vision_backbone": "imported"} and config["model"] == {"use_text": False}
    settings = load_settings(tmp_path / "out" / "mmrec.yaml").settings
    assert settings.features.text_backbone == "sentence-bert" and not settings.model.use_text
    assert not any("--modality text" in c for c in result.next_commands) and len(result.next_commands) == 5


def test_duplicate_pairs_keep_the_latest_row_and_a_shuffled_split_is_stratified(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rows = [(0, 0, 5, 10, 0), (0, 1, 5, 20, 0), (0, 1, 3, 30, 2), (0, 2, 4, 5, 1), (1, 0, 5, 1, 0), (1, 2, 5, 2, 2)]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(src / "toy.inter", sep="\t", index=False)
    result = import_mmrec(src, tmp_path / "out", DataSettings())
    split = load_split(tmp_path / "out" / "splits")
    assert result.duplicates == 1 and result.interactions == 5 and result.items == 3
    assert split.test[["user_id", "item_id"]].values.tolist() == [["0", "1"], ["1", "2"]]  # the later row (t=30)
    assert len(split.train) == 2 and result.strategy == "stratified"  # user 0's val row precedes its train rows
    assert read_split_report(tmp_path / "out" / "splits")["strategy"] == "stratified"


def test_optional_columns_bad_timestamps_and_an_unusable_mapping_are_notes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "toy.inter").write_text("userID\titemID\ttimestamp\tx_label\n0\t0\tyesterday\t0\n0\t1\t7\t2\n")
    (src / "i_id_mapping.csv").write_text("asin,itemID\nB1,0\n")  # comma-separated: no itemID column
    result = import_mmrec(src, tmp_path / "out", DataSettings())
    interactions = pd.read_csv(tmp_path / "out" / "interactions.csv")
    assert list(interactions.columns) == ["user_id", "item_id"] and len(interactions) == 2
    assert any("timestamp column was left out" in n and "line 2: 'yesterday'" in n for n in result.notes)
    assert any("i_id_mapping.csv was not used" in n for n in result.notes) and not result.original_ids


def _several_inter(src: Path) -> None:
    write_mmrec_folder(src)
    (src / "other.inter").write_text((src / "toy.inter").read_text())


@pytest.mark.parametrize("make, kwargs, message", [
    (lambda src: None, {}, "MMRec dataset folder"),
    (lambda src: src.mkdir(), {}, "has no *.inter file"),
    (_several_inter, {}, "has 2 .inter files"),
    (lambda src: write_mmrec_folder(src), {"name": "baby"}, "baby.inter not found"),
    (lambda src: (src.mkdir(), (src / "x.inter").write_text("userID\titemID\n0\t1\n")), {},
     "lacks column(s) x_label"),
    (lambda src: (src.mkdir(), (src / "x.inter").write_text("userID\titemID\tx_label\n0\t1\t3\n0\t2\t0\n")), {},
     "x_label must be 0 (train), 1 (validation) or 2 (test); 1 row(s) (e.g. line 2: '3')"),
    (lambda src: (src.mkdir(), (src / "x.inter").write_text("userID\titemID\tx_label\nu1\t1\t0\n")), {},
     "column 'userID' must hold non-negative integers; 1 row(s) (e.g. line 2: 'u1')"),
    (lambda src: (src.mkdir(), (src / "x.inter").write_text("userID\titemID\tx_label\n1\t-4\t0\n1\t2.5\t0\n")), {},
     "column 'itemID' must hold non-negative integers; 2 row(s)"),
    (lambda src: (src.mkdir(), (src / "x.inter").write_text("userID\titemID\tx_label\n")), {}, "no rows"),
    (lambda src: (write_mmrec_folder(src), np.save(src / "text_feat.npy", np.ones((9, 4), np.float32))), {},
     "text_feat.npy has 9 rows, but the .inter file's itemIDs run 0..9 (10 items)"),
    (lambda src: (write_mmrec_folder(src), np.save(src / "image_feat.npy", np.ones(10, np.float32))), {},
     "expected a 2-D matrix"),
    (lambda src: (write_mmrec_folder(src), (src / "image_feat.npy").write_text("garbage\n")), {},
     "it is not a .npy file (no numpy header)"),
])
def test_refusals_name_the_problem_and_write_nothing(tmp_path, make, kwargs, message):
    src = tmp_path / "src"
    make(src)
    with pytest.raises(DataError) as error:
        import_mmrec(src, tmp_path / "out", DataSettings(), **kwargs)
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


def test_name_picks_one_of_several_inter_files(tmp_path):
    _several_inter(tmp_path / "src")
    result = import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings(), name="other")
    assert result.inter_file.name == "other.inter"


def test_a_reimport_keeps_an_edited_config_and_points_its_commands_at_the_new_one(tmp_path):
    write_mmrec_folder(tmp_path / "src")
    first = import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings())
    assert first.config_path.name == "mmrec.yaml"
    assert import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings()).config_path == first.config_path
    edited = first.config_path.read_text() + "training:\n  epochs: 3\n"
    first.config_path.write_text(edited)
    again = import_mmrec(tmp_path / "src", tmp_path / "out", DataSettings())
    assert first.config_path.read_text() == edited and again.config_path.name == "mmrec.imported.yaml"
    assert any("was edited since the last import" in note for note in again.notes)
    assert all(str(again.config_path) in command for command in again.next_commands if "--config" in command)
