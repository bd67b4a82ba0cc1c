import pytest
import torch

from mmrec.checkpoints.catalog import list_checkpoints, move_checkpoint, organize, summary, unknown_combo_checkpoints
from mmrec.checkpoints.store import BEST, LAST, save_checkpoint
from mmrec.errors import CheckpointError


def flat_project(root):
    save_checkpoint(root / BEST, {"model": {}}, {"combo": "v_t", "epoch": 2, "monitor": "ndcg@10",
                                                   "monitored_value": 0.5})
    save_checkpoint(root / "v_t" / LAST, {"model": {}}, {"combo": "v_t", "epoch": 3})
    torch.save({"model": {}}, root / "mystery.pth")  # an old file with no metadata


def test_list_marks_organized_and_flat(tmp_path):
    flat_project(tmp_path)
    infos = {info.path.name: info for info in list_checkpoints(tmp_path)}
    assert infos[LAST].organized and not infos[BEST].organized
    assert infos[BEST].combo == "v_t" and infos[BEST].metric == 0.5 and infos[BEST].epoch == 2
    assert infos["mystery.pth"].combo is None


def test_organize_dry_run_then_real(tmp_path):
    flat_project(tmp_path)
    (tmp_path / "best_model.json").unlink()  # a checkpoint whose metadata is only inside the .pth
    list_checkpoints(tmp_path)
    report = organize(tmp_path, dry_run=True)
    assert not (tmp_path / "best_model.json").exists()  # listing and a dry run write nothing
    assert [(s.name, t.relative_to(tmp_path).as_posix()) for s, t in report.moves] == [(BEST, "v_t/best_model.pth")]
    assert (tmp_path / BEST).exists()
    report = organize(tmp_path)
    assert (tmp_path / "v_t" / BEST).exists() and (tmp_path / "v_t" / "best_model.json").exists()
    assert not (tmp_path / BEST).exists()
    assert [p.name for p in report.unknown_combo] == ["mystery.pth"]


def test_organize_never_overwrites(tmp_path):
    flat_project(tmp_path)
    save_checkpoint(tmp_path / "v_t" / BEST, {"model": {}}, {"combo": "v_t", "epoch": 9})
    report = organize(tmp_path)
    assert [p.name for p in report.conflicts] == [BEST] and (tmp_path / BEST).exists()


def test_manual_move_records_combo_and_validates_name(tmp_path):
    flat_project(tmp_path)
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")  # never offered: it is no checkpoint
    pending, unreadable = unknown_combo_checkpoints(tmp_path)
    assert [p.name for p in pending] == ["mystery.pth"] and [p.name for p in unreadable] == ["broken.pth"]
    with pytest.raises(CheckpointError):
        move_checkpoint(tmp_path / "mystery.pth", "../evil", tmp_path)
    target = move_checkpoint(tmp_path / "mystery.pth", "x_y", tmp_path)
    assert summary(target)["combo"] == "x_y" and summary(target)["organized"]


def test_checkpoint_whose_weights_do_not_load_is_listed_as_broken(tmp_path):
    flat_project(tmp_path)
    path = tmp_path / "v_t" / LAST
    path.write_bytes(path.read_bytes()[:100])  # truncated after its sidecar was written
    infos = {info.path.name: info for info in list_checkpoints(tmp_path)}
    assert not infos[LAST].valid and "truncated" in infos[LAST].problem
    assert infos[LAST].combo == "v_t"  # what the sidecar says is still shown
    assert infos[BEST].valid and infos["mystery.pth"].combo is None
    facts = summary(path)
    assert facts["status"] == "broken" and "truncated" in facts["problem"]
    assert summary(tmp_path / BEST)["status"] == "ok"
