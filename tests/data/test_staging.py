import os
from pathlib import Path

import pytest

from mmrec.data import staging
from mmrec.data.staging import remove_abandoned, staged_folder


def _fill(folder: Path, text: str) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "file.txt").write_text(text)


def _siblings(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name != target.name)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_success_replaces_the_folder_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(staging, "_exchange", lambda first, second: False)
    target = tmp_path / "out" / "processed"
    with staged_folder(target) as folder:
        _fill(folder, "one")
    assert (target / "sub" / "file.txt").read_text() == "one"
    (target / "stale.txt").write_text("from the first run")
    with staged_folder(target) as folder:
        _fill(folder, "two")
    assert sorted(p.name for p in target.rglob("*")) == ["file.txt", "sub"]
    assert (target / "sub" / "file.txt").read_text() == "two"
    assert _siblings(target) == []  # no staging or previous folder left behind


def test_a_staged_folder_gets_the_mode_of_any_folder_the_user_makes(tmp_path):
    import stat

    previous = os.umask(0o022)
    try:
        with staged_folder(tmp_path / "processed") as folder:
            _fill(folder, "one")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "processed").stat().st_mode) == 0o755  # not mkdtemp's 0700


def test_failure_leaves_the_previous_folder_untouched(tmp_path):
    target = tmp_path / "processed"
    with staged_folder(target) as folder:
        _fill(folder, "one")
    with pytest.raises(RuntimeError), staged_folder(target) as folder:
        _fill(folder, "two")
        raise RuntimeError("failed half way")
    assert (target / "sub" / "file.txt").read_text() == "one" and _siblings(target) == []


def test_a_symlinked_target_keeps_its_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with staged_folder(link) as folder:
        _fill(folder, "one")
    assert link.is_symlink() and (real / "sub" / "file.txt").read_text() == "one"


def test_abandoned_staging_of_dead_processes_is_removed(tmp_path):
    target = tmp_path / "processed"
    dead = tmp_path / ".processed.staging-999999999-abc"  # above any pid_max: no such process
    mine = tmp_path / f".processed.staging-{os.getpid()}-abc"  # a live run's: kept
    other = tmp_path / ".elsewhere.staging-999999999-abc"  # another target's: kept
    for folder in (dead, mine, other):
        folder.mkdir()
    assert remove_abandoned(target) == [dead]
    assert not dead.exists() and mine.exists() and other.exists()


def test_a_run_killed_between_the_two_renames_gets_its_previous_output_back(tmp_path):
    target = tmp_path / "processed"
    previous = tmp_path / ".processed.previous-999999999-abc"
    (previous / "old").mkdir(parents=True)
    (previous / "old" / "file.txt").write_text("one")
    remove_abandoned(target)
    assert (target / "file.txt").read_text() == "one" and _siblings(target) == []
