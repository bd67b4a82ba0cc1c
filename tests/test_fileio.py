"""Atomic writes: the final file replaces the old one whole and gets the mode any other file would."""

import os
import stat

import pytest

from mmrec.fileio import atomic_path, atomic_write_json, atomic_write_text, read_json


@pytest.fixture
def set_umask():
    """os.umask for one test; the previous umask is restored afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=oct)
def test_atomic_files_follow_the_umask(tmp_path, set_umask, mask):
    set_umask(mask)
    atomic_write_text(tmp_path / "a.txt", "hello")
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")  # how any other file the user creates comes out
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == 0o666 & ~mask == stat.S_IMODE(plain.stat().st_mode)


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert read_json(target) == {"a": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]
