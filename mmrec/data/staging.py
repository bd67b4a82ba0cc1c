"""Build a folder beside its final place, then swap it in whole: readers see the old or the new one.

`staged_folder(target)` yields an empty staging folder next to `target`. When the block succeeds
the staging folder replaces `target` in one step (Linux renameat2 RENAME_EXCHANGE; elsewhere two
renames, between which `target` is briefly absent, never mixed). When the block fails, or the
process is killed, `target` is untouched; the next run removes dead processes' staging folders
(and puts back a previous folder that a kill between the two renames left aside).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from mmrec.errors import DataError
from mmrec.fileio import fsync_dir, process_alive

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # from <linux/fs.h>
_STAGING = "staging"
_PREVIOUS = "previous"


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield a new empty folder; on success it becomes `target` (the old one is deleted)."""
    target = Path(os.path.realpath(target))  # a symlinked target: replace the folder it points at
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target)
    staging = _new_folder(target, _STAGING)
    try:
        yield staging
        try:
            _swap_in(staging, target)
        except OSError as exc:
            raise DataError(
                f"Cannot swap the new output into {target}: {exc}. The previous output is unchanged.",
                hint="The folder must be an ordinary folder on a writable filesystem, not a mount point.",
            ) from None
    finally:
        # After an exchange this is the previous output; after a failure, the partial new one.
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_files(folder: Path, family: Iterable[str], last: str) -> Iterator[Path]:
    """Yield a new empty folder inside `folder` to write a set of files into (e.g. an evaluation's JSON, markdown
    and plots). On success each is moved into `folder` (`last` last: the file readers take as the set's index),
    then the files of the `family` of names this set does not hold (an earlier set's) are removed. Until the moves,
    `folder` holds the previous set untouched: a failure or a kill never leaves new files beside old ones; the next
    call removes a dead process's staging folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    anchor = folder / f"{last}.set"  # names the staging folders: .{last}.set.staging-<pid>-<token>
    remove_abandoned(anchor)
    staging = _new_folder(anchor, _STAGING)
    try:
        yield staging
        names = sorted((p.name for p in staging.iterdir() if p.is_file()), key=lambda name: name == last)
        for name in names:
            os.replace(staging / name, folder / name)
        for name in set(family) - set(names):
            (folder / name).unlink(missing_ok=True)
        fsync_dir(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_abandoned(target: Path) -> list[Path]:
    """Remove staging/previous folders of `target` whose process is gone; returns what was removed."""
    removed = []
    if not target.parent.is_dir():
        return removed
    prefixes = tuple(_prefix(target, kind) for kind in (_STAGING, _PREVIOUS))
    for folder in sorted(target.parent.iterdir()):
        prefix = next((p for p in prefixes if folder.name.startswith(p)), None)
        if prefix is None or folder.is_symlink() or not folder.is_dir():
            continue
        pid = folder.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            if (folder / "old").is_dir() and not target.exists():  # killed between the two renames
                os.rename(folder / "old", target)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-"


def _new_folder(target: Path, kind: str) -> Path:
    """A new hidden folder beside `target` named after this process, so a dead run's is recognised. Its mode is
    0777 minus the umask, as for any folder the user makes (tempfile.mkdtemp's 0700 would stay with the folder
    once it is renamed into place: a processed/ no one else could read)."""
    for _ in range(100):
        folder = target.parent / f"{_prefix(target, kind)}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.mkdir(folder, 0o777)
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"could not create a staging folder beside {target}")


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
    elif not _exchange(staging, target):
        previous = _new_folder(target, _PREVIOUS)
        os.rename(target, previous / "old")
        try:
            os.rename(staging, target)
        except OSError:
            os.rename(previous / "old", target)
            raise
        finally:
            shutil.rmtree(previous, ignore_errors=True)
    fsync_dir(target.parent)


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # e.g. a filesystem without exchange
        return False
    raise OSError(code, os.strerror(code), str(second))

