"""Atomic file writes (temp file in the same folder + fsync + rename), JSON helpers, and reading
user-supplied text files with clear errors.

A crash mid-write leaves the previous file intact, never a truncated one.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import glob
import gzip
import hashlib
import json
import lzma
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from mmrec.errors import BusyError, ConfigError, DataError, MmrecError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    A symbolic link keeps pointing where it did: the file it names is replaced. A path that exists and is no
    regular file (/dev/stdout, a terminal, a named pipe) is written into as it is, once the content is complete;
    renaming over it would swap the device or pipe for a file. The file gets the mode the file it replaces had
    (a new one: 0666 minus the umask), whatever the writer did to the temp file (safetensors makes it 0600)."""
    target = check_output_file(path)
    if target.exists() and not target.is_file():  # is_file() follows links: /dev/stdout -> a pipe or terminal
        with tempfile.TemporaryDirectory(prefix="mmrec_out_") as folder:
            tmp = Path(folder) / target.name
            yield tmp
            with open(tmp, "rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
        return
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_temp_beside(target)
    mode = stat.S_IMODE((target if target.is_file() else tmp).stat().st_mode)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
            if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) != mode:
                os.fchmod(handle.fileno(), mode)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def remove_stale_temps(path: str | os.PathLike[str]) -> int:
    """Delete the temp files that killed writes of `path` left beside it; returns how many.

    Call it only where one process writes `path` at a time: a live writer's temp file looks the same.
    """
    target = Path(path)
    removed = 0
    if target.parent.is_dir():
        for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed += 1
    return removed


def looks_like_torch_save(path: str | os.PathLike[str]) -> bool:
    """Starts as a torch.save file does: a zip archive (since torch 1.6) or a legacy pickle (the PROTO opcode).
    False for a text file, a web page or an empty download, which torch would report as a pickle error."""
    with open(path, "rb") as handle:
        return starts_like_torch_save(handle.read(2))


def starts_like_torch_save(head: bytes) -> bool:
    """`head` (a file's first bytes) is how a torch.save file starts (see looks_like_torch_save)."""
    return head[:2] == b"PK" or head[:1] == b"\x80"


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of the whole file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def check_output_file(path: str | os.PathLike[str], option: str | None = None,
                      inputs: Sequence[tuple[str | os.PathLike[str] | None, str]] = ()) -> Path:
    """`path` as a Path, or a ConfigError when a file cannot go there (it is a folder, or under a file), or when it
    is one of `inputs` ((file or folder, what it is) the command's own inputs and artefacts) or lies inside one.

    Commands call it on their output options before any work; every atomic write calls it too. A leading `~` is
    the home folder, for this process and for the libraries it hands the path to alike (pyarrow expands it).
    """
    target = Path(os.path.expanduser(path))
    named = f"{option} {target}" if option else str(target)
    real = os.path.realpath(target)
    for source, what in inputs:
        held = os.path.realpath(os.path.expanduser(source)) if source is not None else None
        if held is not None and (real == held or real.startswith(held.rstrip(os.sep) + os.sep)):
            raise ConfigError(
                f"Cannot write {named}: it " + ("is " if real == held else "lies inside ") + f"{what} ({source}), "
                "which this command reads or mmrec manages: an output there could replace what it holds, or be "
                "taken for part of it.",
                hint="Write the output elsewhere, e.g. under paths.results_dir.")
    if target.is_dir():
        raise ConfigError(f"Cannot write {named}: it is a directory.",
                          hint=f"Pass a file path, e.g. {target / 'out.json'}.")
    blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"Cannot write {named}: {blocking} is a file, not a folder.",
                          hint="Pass a path inside an existing or new folder.")
    return target


def unrecorded_files(folder: Path, names: tuple[str, ...], recorded: dict[str, str]) -> list[str]:
    """The `names` in `folder` that are not as mmrec wrote them (their sha256 is not the `recorded` one): a user's own
    files, or files edited since, which a command that writes these names must not replace unasked."""
    return [name for name in names
            if (Path(folder) / name).is_file() and recorded.get(name) != sha256_file(Path(folder) / name)]


def text_lines(text: str) -> list[str]:
    """The lines of a user's text file, split at line ends only (\\n, \\r\\n, \\r): str.splitlines also splits at
    U+2028 and other separators an id may hold. A file ending with a line end has no empty last line."""
    return re.split(r"\r\n|\r|\n", text.removesuffix("\n")) if text else []


def not_a_file(path: Path, pipes: bool = False) -> str | None:
    """Why `path` is no file a user hands in ("does not exist", "is a folder, not a file", or a device or socket:
    /dev/zero never ends), or None for a regular file (a link to one included). With `pipes`, a pipe (a FIFO,
    `<(command)`, /dev/stdin fed by a pipe) is read too (read_text_file bounds it); else it is refused as well."""
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder, not a file"
    if path.exists():
        if pipes and stat.S_ISFIFO(path.stat().st_mode):
            return None
        return ("is a device or socket, not a file (a device such as /dev/zero never ends)" if pipes else
                "is a device, pipe or socket, not a regular file (it may never end, or wait for a writer)")
    return "does not exist"


MAX_PIPED_BYTES = 256 * 2**20  # what read_text_file takes through a pipe, which has no size to check first


def read_text_file(
    path: str | os.PathLike[str], what: str, error: type[MmrecError] = DataError, hint: str | None = None
) -> str:
    """The UTF-8 text of a user-supplied file (without the byte-order mark Notepad and Excel may write), or
    `error` saying what is wrong (`what` names the file; a leading `~` is the home folder). A pipe is read up to
    MAX_PIPED_BYTES."""
    path = Path(os.path.expanduser(path))
    if problem := not_a_file(path, pipes=True):
        raise error(f"{what} {path} {problem}.", hint=hint)
    try:
        if path.is_file():
            return path.read_text(encoding="utf-8-sig")
        with open(path, "rb") as handle:
            data = handle.read(MAX_PIPED_BYTES + 1)
        if len(data) > MAX_PIPED_BYTES:
            raise error(f"{what} {path} is a pipe that gives more than {MAX_PIPED_BYTES // 2**20} MiB: no settings "
                        "or id list is that long.", hint=hint)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start:,}).",
                        hint=hint) from None
    except UnicodeDecodeError:
        raise not_utf8_error(path, what, error) from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}.", hint=hint) from None


_UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_WORKBOOK_MAGIC = ((b"PK\x03\x04", "a zip archive, as an Excel (.xlsx) or OpenDocument (.ods) workbook is"),
                   (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-format Excel workbook (.xls)"))
_RESAVE_AS_UTF8 = ("Re-save it as UTF-8: choose that encoding when saving (Excel: 'CSV UTF-8'; LibreOffice: character "
                   "set 'Unicode (UTF-8)'), or convert it, e.g. `iconv -f cp1252 -t utf-8 OLD > NEW` (cp1252, what "
                   "Windows and Excel write, keeps the dashes and the euro sign that -f latin1 drops; -f utf-16 for "
                   "UTF-16).")


CSV_SEPARATORS = ",\t;|"
# Compressed text tables are read as such whatever their name says (interactions.csv.gz, or a .csv that is one).
_COMPRESSION_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
# What a damaged compressed file raises while it is read (gzip: BadGzipFile is an OSError, a cut file EOFError).
DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError)


def compression(path: str | os.PathLike[str]) -> str | None:
    """"gzip", "bz2" or "xz" for a file compressed so (its first bytes tell), else None."""
    with open(path, "rb") as handle:
        start = handle.read(6)
    return next((kind for magic, kind in _COMPRESSION_MAGIC if start.startswith(magic)), None)


def open_bytes(path: str | os.PathLike[str]) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip, bz2 or xz (`compression`)."""
    kind = compression(path)
    return _OPENERS[kind](path, "rb") if kind else open(path, "rb")



def csv_separator(path: str | os.PathLike[str]) -> str:
    """The separator a CSV file's header line uses: of CSV_SEPARATORS, the one it holds most often outside
    quotes (a comma on a tie or when it holds none). The header alone decides: a semicolon file's rows may
    hold commas (decimal commas, text), and a comma file's text may hold semicolons."""
    try:
        with open_bytes(path) as handle:
            header = ""
            for _ in range(1000):  # the first line that is not blank (a BOM aside), as pandas takes the header
                line = handle.readline(1 << 20)
                header = line.decode("utf-8", errors="replace")  # reading the file says if it is not UTF-8
                if not line or header.lstrip("\ufeff").strip():
                    break
    except DECOMPRESSION_ERRORS:
        return ","  # reading the file says what is wrong
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {sep: unquoted.count(sep) for sep in CSV_SEPARATORS}
    return max(CSV_SEPARATORS, key=lambda sep: (counts[sep], sep == ","))


def is_parquet(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with parquet's magic bytes (whatever its name)."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def not_utf8_error(path: str | os.PathLike[str], what: str, error: type[MmrecError] = DataError) -> MmrecError:
    """`error` for a file that is not UTF-8: the line of its first undecodable byte (one streamed pass) and how
    to re-save it. `what` names the file, as in read_text_file."""
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, found = 1, ""
    with open_bytes(path) as handle:
        start = handle.read(8)
        if start[:2] in _UTF16_MARKS:
            return error(f"{what} {path} is not UTF-8 text. It starts with a UTF-16 byte order mark: it is UTF-16 "
                         "text.", hint=_RESAVE_AS_UTF8)
        if workbook := next((kind for magic, kind in _WORKBOOK_MAGIC if start.startswith(magic)), None):
            return error(f"{what} {path} is not text: it is {workbook}.",
                         hint="Export the sheet as a CSV file (Excel: File > Save As > 'CSV UTF-8'; LibreOffice / "
                              "Google Sheets: CSV, character set UTF-8) and point the setting at that file.")
        handle.seek(0)
        for block in iter(lambda: handle.read(1 << 20), b""):
            pending = len(decoder.getstate()[0])  # bytes of a character split across blocks (never a newline)
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                offset = max(exc.start - pending, 0)
                line += block.count(b"\n", 0, offset)
                found = f" Line {line} holds byte 0x{block[offset]:02x}, which is not UTF-8 (latin-1 or cp1252 text?)."
                break
            line += block.count(b"\n")
    return error(f"{what} {path} is not UTF-8 text.{found}", hint=_RESAVE_AS_UTF8)


def create_temp_beside(target: Path) -> Path:
    """Create `.{name}.{pid}-XXXXXXXX.tmp` next to `target` with mode 0666 minus the umask, after removing
    the temp files of `target` that killed processes left (named after their pid, so a live writer's stays).

    tempfile.mkstemp would make it 0600, and the rename would carry that mode to the final file;
    os.open with 0o666 lets the kernel apply the umask, as for any other file the user creates.
    """
    prefix = f".{target.name}."
    for leftover in target.parent.glob(f"{glob.escape(prefix)}*-*.tmp"):
        owner = re.fullmatch(r"(\d+)-[0-9a-f]{8}", leftover.name[len(prefix):-len(".tmp")])
        if owner and int(owner.group(1)) != os.getpid() and not process_alive(int(owner.group(1))):
            with contextlib.suppress(OSError):
                leftover.unlink()
    for _ in range(100):
        tmp = target.parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {target}")


def fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not supported on every platform/filesystem.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented JSON; non-JSON values (Path, numpy scalars) become strings/numbers."""
    # Non-ASCII as written ('Größe', not 'Gr\u00f6\u00dfe'); a lone surrogate (UTF-8 cannot hold one): escaped.
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessLock:
    """One process at a time: a lock file holding the owner's pid; a dead owner's lock is taken over.
    `busy` says what the owner is doing (BusyError "<busy> (process N, lock PATH)."), `hint` what to do."""

    def __init__(self, path: Path, busy: str, hint: str) -> None:
        self.path, self.busy, self.hint = Path(path), busy, hint
        self._made: list[Path] = []  # the folders the lock created, innermost first: removed again if left empty

    def __enter__(self) -> ProcessLock:
        self._made = [folder for folder in self.path.parents if not folder.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not _create_holding_pid(self.path):
            # Taken over one process at a time (two that both saw a killed run's lock could each remove the other's
            # fresh one), reading the owner again inside.
            with _folder_guard(self.path.parent):
                try:
                    text = self.path.read_text().strip()
                except FileNotFoundError:  # released meanwhile: create it again (removing now could remove
                    continue  # the lock another process has just created)
                owner = int(text) if text.isdigit() else None
                if owner is not None and owner != os.getpid() and process_alive(owner):
                    raise BusyError(f"{self.busy} (process {owner}, lock {self.path}).", hint=self.hint) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # left by a killed run: only a process holding this guard removes it
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for folder in self._made:  # a run that failed before writing anything leaves no empty folder behind
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (or gone): nor are the folders above it


IN_USE = ".in-use."  # + pid: a process reads the folder (mark_in_use)


@contextlib.contextmanager
def mark_in_use(folder: Path, what: str) -> Iterator[None]:
    """While the block runs, `folder` holds `.in-use.<pid>` saying `what` reads it, so that a command about to
    rewrite the folder refuses (check_not_in_use) instead of changing the rows under a run that has not ended."""
    marker = Path(folder) / f"{IN_USE}{os.getpid()}"
    try:
        atomic_write_text(marker, what)
    except OSError:  # a read-only folder is read all the same; nothing else can rewrite it either
        marker = None
    try:
        yield
    finally:
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink()


def check_not_in_use(folder: Path, doing: str,
                     hint: str = "Let it finish, then run this again (a nightly job: start it after the previous "
                                 "night's has ended).") -> None:
    """BusyError when another live process marked `folder` in use (mark_in_use): "<what> (process N) reads <folder>:
    <doing>"; markers of processes that have ended are removed."""
    for marker in sorted(Path(folder).glob(f"{IN_USE}*")):
        try:
            pid, what = int(marker.name[len(IN_USE):]), marker.read_text(encoding="utf-8").strip()
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and process_alive(pid):
            raise BusyError(f"{what} (process {pid}) reads {folder}: {doing}.", hint=hint)
        with contextlib.suppress(OSError):
            marker.unlink()  # left by a killed run


def _create_holding_pid(path: Path) -> bool:
    """Create lock file `path` already holding this process's pid (a file linked into place whole: a competitor
    never reads it empty and takes it for a killed run's); False when it exists."""
    draft = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    draft.write_text(str(os.getpid()))
    try:
        os.link(draft, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: created exclusively, then written
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return True
    finally:
        draft.unlink(missing_ok=True)


@contextlib.contextmanager
def _folder_guard(folder: Path) -> Iterator[None]:
    """An exclusive flock on `folder` itself (released by the kernel if the process dies; no file left behind);
    nothing where flock is not to be had."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
