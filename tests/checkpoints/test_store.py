import datetime
import json
import logging

import pytest
import torch

from mmrec.checkpoints.catalog import list_checkpoints
from mmrec.checkpoints.store import (
    BEST,
    checkpoint_path,
    find_checkpoint,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    sidecar_path,
    validate_combo,
)
from mmrec.errors import CheckpointError


def save(path, epoch=1, combo="v_t"):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": epoch, "rng": {"numpy": [1, [2, 3]]}}
    return save_checkpoint(path, state, {"combo": combo, "epoch": epoch, "encoders": {"user": "u1", "item": "i1"}})


def test_roundtrip_writes_sidecar_with_provenance_and_no_temp_files(tmp_path):
    path = save(checkpoint_path(tmp_path, "v_t"))
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.arange(4.0)) and state["epoch"] == 1
    meta = read_meta(path)
    assert meta["combo"] == "v_t" and "torch" in meta["versions"] and meta["created_at"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["best_model.json", "best_model.pth"]


def test_truncated_or_foreign_files_are_checkpoint_errors(tmp_path):
    path = save(tmp_path / "v_t" / BEST)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pth")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"  # anything beyond tensors/plain containers must not load
    torch.save({"model": {}, "obj": datetime.date(2020, 1, 1)}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_sidecar_missing_falls_back_to_embedded_meta(tmp_path):
    path = save(tmp_path / "v_t" / BEST)
    sidecar_path(path).unlink()
    assert read_meta(path)["combo"] == "v_t"


def test_find_checkpoint_layouts(tmp_path, caplog):
    with pytest.raises(CheckpointError) as info:
        find_checkpoint(tmp_path, None)
    assert "mmrec train" in info.value.hint
    flat = save(tmp_path / BEST)
    with caplog.at_level(logging.WARNING):
        assert find_checkpoint(tmp_path, "v_t") == flat
    assert "organize" in caplog.text
    organized = save(tmp_path / "v_t" / BEST)
    assert find_checkpoint(tmp_path, "v_t") == organized
    assert find_checkpoint(tmp_path, None) == organized
    save(tmp_path / "a_b" / BEST, combo="a_b")
    with pytest.raises(CheckpointError, match="Several"):
        find_checkpoint(tmp_path, None)
    with pytest.raises(CheckpointError) as info:  # a mistyped name: the hint lists what is there
        find_checkpoint(tmp_path, "v_t", "bset_model.pth")
    assert info.value.hint == f"Checkpoints there: {BEST}."


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "", "a\x00b"])
def test_combo_names_cannot_escape_the_folder(bad):
    with pytest.raises(CheckpointError):
        validate_combo(bad)


def test_a_stale_sidecar_never_wins_over_the_checkpoint_it_describes(tmp_path, caplog):
    # A kill between the .pth rename and the sidecar rename leaves the previous save's sidecar.
    path = save(tmp_path / "v_t" / BEST, epoch=1)
    stale = sidecar_path(path).read_bytes()
    save(path, epoch=2)
    sidecar_path(path).write_bytes(stale)
    with caplog.at_level(logging.WARNING):
        assert read_meta(path)["epoch"] == 2
    assert "does not describe" in caplog.text
    assert json.loads(sidecar_path(path).read_text())["epoch"] == 2  # rewritten from the embedded copy
    assert list_checkpoints(tmp_path)[0].epoch == 2


def test_save_removes_temp_files_left_by_killed_writes(tmp_path):
    folder = tmp_path / "v_t"
    folder.mkdir()
    leftovers = [folder / ".best_model.pth.k1ll3d.tmp", folder / ".best_model.json.x.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a checkpoint")
    other = folder / ".last_model.pth.live.tmp"  # another file's write: not ours to remove
    other.write_bytes(b"")
    save(folder / BEST)
    assert not any(p.exists() for p in leftovers) and other.exists()


def test_a_checkpoint_the_disk_cannot_take_is_a_clear_error_and_the_old_file_stays(tmp_path, monkeypatch):
    path = tmp_path / "best_model.pth"
    save_checkpoint(path, {"model": {}}, {"epoch": 1})

    def size_limit(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 506816 vs 506708")

    monkeypatch.setattr(torch, "save", size_limit)
    with pytest.raises(CheckpointError, match="the disk is full, or a file size limit"):
        save_checkpoint(path, {"model": {}}, {"epoch": 2})
    monkeypatch.undo()
    assert read_meta(path)["epoch"] == 1  # the earlier file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model.json", "best_model.pth"]  # no temp file left
