"""Atomic writes: the final file replaces the old one whole and gets the mode any other file would."""

import contextlib
import os
import stat
import time
from pathlib import Path

import pytest

from mmrec.errors import ConfigError, DataError
from mmrec.fileio import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    check_output_file,
    read_json,
    read_text_file,
)


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


def test_a_writer_that_narrows_the_temp_files_mode_does_not_narrow_the_result(tmp_path, set_umask):
    # safetensors' save_file leaves its file 0600: the pipeline walkthrough's item-item fits were unreadable to the
    # group. The result gets the umask's mode, or the mode of the file it replaces.
    set_umask(0o022)
    target = tmp_path / "fit.safetensors"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"x")
        os.chmod(tmp, 0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    os.chmod(target, 0o640)  # the user's choice for this file is kept across rewrites
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"y")
        os.chmod(tmp, 0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() == b"y"


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert read_json(target) == {"a": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


def test_a_killed_writers_temp_file_is_removed_by_the_next_write_and_a_live_ones_is_not(tmp_path):
    # `recommend --all-users` killed mid-way left .recs.parquet.<hex>.tmp for good (hundreds of MB at scale).
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / f".recs.parquet.{int(dead.stdout)}-0badf00d.tmp"
    live = tmp_path / f".recs.parquet.{os.getppid()}-0badf00d.tmp"  # a writer still running
    other = tmp_path / f".other.parquet.{int(dead.stdout)}-0badf00d.tmp"  # another file's: not this write's
    for path in (killed, live, other):
        path.write_bytes(b"half")
    atomic_write_text(tmp_path / "recs.parquet", "x")
    assert not killed.exists() and live.exists() and other.exists()


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_writing_onto_a_directory_or_under_a_file_is_a_config_error(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a directory"):
        atomic_write_text(tmp_path / "folder", "y")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        atomic_write_text(tmp_path / "file" / "out.json", "y")
    assert check_output_file(tmp_path / "new" / "out.json") == tmp_path / "new" / "out.json"


def test_read_text_file_names_what_is_wrong(tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    # /dev/zero never ends: read whole, it took a machine's memory
    cases = {tmp_path / "latin1.txt": "not UTF-8", tmp_path: "is a folder, not a file", tmp_path / "no.txt":
             "does not exist", Path("/dev/zero"): "is a device or socket, not a file"}
    for path, expected in cases.items():
        with pytest.raises(DataError, match=expected):
            read_text_file(path, "User file")
    (tmp_path / "ok.txt").write_text("héllo", encoding="utf-8")
    assert read_text_file(tmp_path / "ok.txt", "User file") == "héllo"
    # A pipe (`--user-file <(grep ...)`, `-c <(...)`) is read, up to a bound: it has no size to check first.
    import threading

    os.mkfifo(tmp_path / "fifo")

    def feed(data: bytes) -> threading.Thread:
        def write() -> None:
            with open(tmp_path / "fifo", "wb") as handle:
                with contextlib.suppress(BrokenPipeError):
                    handle.write(data)
        thread = threading.Thread(target=write)
        thread.start()
        return thread

    writer = feed("u1\nu2\n".encode())
    assert read_text_file(tmp_path / "fifo", "User file") == "u1\nu2\n"
    writer.join()
    writer = feed(b"caf\xe9")
    with pytest.raises(DataError, match="is not UTF-8 text \\(byte 0xe9 at offset 3\\)"):
        read_text_file(tmp_path / "fifo", "User file")
    writer.join()


def test_a_file_that_is_not_utf8_names_the_line_and_how_to_resave_it(tmp_path):
    path = tmp_path / "users.txt"
    path.write_bytes(("é\n" * 3).encode() + b"u1\nj\xfcrgen\n")
    with pytest.raises(DataError) as info:
        read_text_file(path, "User file")
    assert "Line 5 holds byte 0xfc" in info.value.message and "offset" not in info.value.message
    assert "UTF-8" in info.value.hint


def test_a_link_keeps_pointing_and_a_named_pipe_is_written_into_not_replaced(tmp_path):
    """--output through a symbolic link replaces the file it names (the link stays); a path that is no regular file
    (a named pipe here, /dev/stdout in a shell) receives the content in place instead of being renamed over."""
    import threading

    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write_json(link, {"a": 1})
    assert link.is_symlink() and read_json(real) == {"a": 1}

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    atomic_write_json(fifo, {"b": 2})
    reader.join(timeout=10)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and '"b": 2' in received[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe.json", "real.json"]


def test_a_lock_removes_the_folders_it_made_when_nothing_was_written_into_them(tmp_path):
    # A train refused for missing backbone weights left an empty models/checkpoints/<combo>/ behind.
    from mmrec.fileio import ProcessLock

    with pytest.raises(RuntimeError), ProcessLock(tmp_path / "models" / "combo" / "train.lock", "busy", "hint"):
        raise RuntimeError("weights not found")
    assert list(tmp_path.iterdir()) == []
    with ProcessLock(tmp_path / "models" / "combo" / "train.lock", "busy", "hint"):
        (tmp_path / "models" / "combo" / "best_model.pth").write_bytes(b"x")
    assert [p.name for p in (tmp_path / "models" / "combo").iterdir()] == ["best_model.pth"]


def test_a_leading_tilde_is_the_home_folder_for_outputs_and_inputs(tmp_path, monkeypatch):
    # `-o '~/r.parquet'` wrote an empty ./~/r.parquet while pyarrow put the data in $HOME (it expands `~`).
    from mmrec.fileio import check_output_file, read_text_file

    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_output_file("~/out/r.json") == tmp_path / "out" / "r.json"
    atomic_write_text("~/x.txt", "hi")
    assert (tmp_path / "x.txt").read_text() == "hi" and read_text_file("~/x.txt", "File") == "hi"


def test_an_os_error_on_a_temporary_file_names_its_folder_first():
    import errno

    from mmrec.errors import os_error

    staging = os_error(PermissionError(errno.EACCES, "Permission denied",
                                       "/data/results/.evaluation.json.set.staging-23435-9b08fdb1"))
    assert staging.message == ("The system refused this command's file operation (Permission denied): /data/results "
                               "(writing the temporary .evaluation.json.set.staging-23435-9b08fdb1 there).")
    temp = os_error(OSError(errno.EFBIG, "File too large", "/out/.recs.parquet.99-abcdef12.tmp"))
    assert "File too large): /out (writing the temporary .recs.parquet.99-abcdef12.tmp there)." in temp.message
    plain = os_error(OSError(errno.ENOSPC, "No space left on device", "/out/recs.parquet"))
    assert plain.message.endswith("(No space left on device): /out/recs.parquet.")


def test_json_files_hold_non_ascii_text_as_written(tmp_path):
    # A German shop's recommendations read 'Gr\u00f6\u00dfe' in an editor; -o - printed 'Größe'.
    from mmrec.fileio import atomic_write_json, read_json

    atomic_write_json(tmp_path / "r.json", {"title": "Größe", "odd": "a"})
    assert '"Größe"' in (tmp_path / "r.json").read_text(encoding="utf-8")
    atomic_write_json(tmp_path / "s.json", {"id": "x\udcff"})  # a lone surrogate: escaped, still JSON
    assert read_json(tmp_path / "s.json") == {"id": "x\udcff"}


def _hold_the_lock(lock: str, log: str, barrier) -> None:
    from mmrec.errors import BusyError
    from mmrec.fileio import ProcessLock

    barrier.wait()
    try:
        with ProcessLock(Path(lock), "busy", "hint"):
            with open(log, "a") as out:
                out.write(f"in {os.getpid()}\n")
            time.sleep(0.05)
            with open(log, "a") as out:
                out.write(f"out {os.getpid()}\n")
    except BusyError:
        pass


def test_processes_racing_for_a_lock_never_hold_it_together(tmp_path):
    """A lock file was created empty and written after: a competitor reading it then took it for a killed run's and
    removed it, and two killed-run takeovers could each remove the other's fresh lock (two `mmrec train` into one
    folder). Races from a killed run's lock and from none; holds must never overlap."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    lock, log = tmp_path / "train.lock", tmp_path / "holds.log"
    for trial in range(12):
        if trial % 2 == 0:
            lock.write_text("999999999")  # a killed run's
        barrier = context.Barrier(5)
        workers = [context.Process(target=_hold_the_lock, args=(str(lock), str(log), barrier)) for _ in range(5)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        assert not lock.exists()
    lines = log.read_text().split()
    events = list(zip(lines[0::2], lines[1::2], strict=True))
    assert events and all(a[0] == "in" and b[0] == "out" and a[1] == b[1] for a, b in zip(events[0::2],
                                                                                          events[1::2], strict=True))
