"""Image verification and normalisation in worker processes: every failure is a per-item status."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmrec.fileio import atomic_write_json, create_temp_beside, process_alive, read_json
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import PreprocessSettings

# Statuses other than "ok" mean the item is kept but flagged has_image=False.
IMAGE_STATUSES = (
    "ok",
    "missing",
    "zero_byte",
    "not_image",
    "truncated",
    "corrupt",
    "decompression_bomb",
    "outside_folder",
)
# The file types read (Pillow's readers); .heic, .avif, .svg... are named as such, never opened.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_HIGH_BIT_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_CHUNK = 32  # images per task sent to a worker: amortises inter-process overhead
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_WATCHDOG_SECONDS = 0.5


@dataclass(frozen=True)
class ImageJob:
    """One image to verify: source file and the file name to write under the output folder.

    The source must resolve inside its own folder: a symlink leading elsewhere is refused unopened.
    """

    item_id: str
    source: str
    output_name: str
    alternatives: tuple[str, ...] = ()  # other files of the item, tried in order when `source` is unusable


@dataclass
class ImageResult:
    """Outcome for one item: status, the written file name (relative) and sha256 of its bytes."""

    item_id: str
    status: str
    output_name: str | None = None
    fingerprint: str | None = None
    width: int = 0
    height: int = 0
    detail: str = ""
    # Why a "missing" image is missing, counted apart in the report: not_found, folder, blank (the image column
    # names none), url (not downloaded), bad_id (an id that cannot be a file name), unsupported_type.
    missing_kind: str = ""
    source: str = ""  # the file an "ok" image was made from, and its (size, mtime_ns) before it was read
    stamp: tuple[int, int] | None = None
    reused: bool = False  # the image an earlier run made of the same, unchanged file (process_images' `earlier`)


def _write_replacing(path: Path, data: bytes) -> None:
    """Temp file + rename: readers never see a half-written image.

    No per-file fsync (it cost 2-3x throughput); process_images syncs once at the end instead.
    """
    tmp = create_temp_beside(path)  # 0666 minus the umask, as any file the user makes (mkstemp: 0600)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_rgb(source: str, max_pixels: int) -> Image.Image:
    """Open, verify and fully decode `source` as RGB; raises on any defect."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        # PIL only *warns* between 1x and 2x the pixel limit; both count as a bomb here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as probe:
            probe.verify()  # structural check; the object is unusable afterwards
        with Image.open(source) as image:
            image.load()  # full decode: catches truncation that verify() misses
            return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB: high-bit-depth values scaled (not clipped), transparency over white."""
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        image = _scaled_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(image, mask=image.getchannel("A"))
        return white
    return image.convert("RGB")


def _scaled_to_l(image: Image.Image) -> Image.Image:
    """Single-channel 16/32-bit or float image -> L by scaling its value range onto 0..255.

    PIL's own conversion clips at 255, so a 16-bit photo became pure white. Integer images use
    the 16-bit range (0..65535) when they fit it; float images 0..1 when they fit it; anything
    else is stretched from its own minimum to maximum.
    """
    values = np.asarray(image)  # its own type (2 bytes a pixel for 16-bit), not float64: 4x a photo's memory
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode == "F" and low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    elif image.mode != "F" and low >= 0.0 and high <= 65535.0:
        low, high = 0.0, 65535.0
    scale = 255.0 / (high - low) if high > low else 0.0
    scaled = np.empty(values.shape, np.uint8)
    for start in range(0, len(values), _SCALED_ROWS):  # a band of rows at a time: the float copies stay small
        band = (values[start:start + _SCALED_ROWS].astype(np.float64) - low) * scale
        scaled[start:start + _SCALED_ROWS] = np.clip(np.rint(band), 0, 255)
    return Image.fromarray(scaled, "L")


_SCALED_ROWS = 256


def _stays_in_its_folder(source: str) -> bool:
    """Whether `source`, with every symlink resolved, is still inside the folder that lists it."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(source)))
    resolved = os.path.realpath(source)  # resolves links without opening the target
    return os.path.commonpath([folder, resolved]) == folder


def unsupported_type(item_id: str, name: str) -> ImageResult:
    """The result of an item whose image file `name` is of a type not read (a .heic from a phone)."""
    return ImageResult(item_id, "missing", missing_kind="unsupported_type",
                       detail=f"{name}: not a file type read here (read: {', '.join(IMAGE_EXTENSIONS)}); convert it "
                              "to JPEG or PNG")


def process_image(
    job: ImageJob, output_dir: str, max_side: int, quality: int, max_pixels: int
) -> ImageResult:
    """Verify one image, shrink it to `max_side`, write it as JPEG; never raises for bad files."""
    try:
        if not _stays_in_its_folder(job.source):
            return ImageResult(job.item_id, "outside_folder", detail="symlink leaves the images folder")
        if not os.path.isfile(job.source):
            folder = os.path.isdir(job.source)
            return ImageResult(job.item_id, "missing", missing_kind="folder" if folder else "not_found",
                               detail=f"{os.path.basename(job.source)}: " + (
                                   "a folder, not a file" if folder else "file not found"))
        stamp = _stamp(job.source)
        if stamp[0] == 0:
            return ImageResult(job.item_id, "zero_byte", detail="empty file")
        image = load_rgb(job.source, max_pixels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow names its own limit, twice the setting, when it refuses outright: the setting is what counts.
        size = re.search(r"Image size \((\d+) pixels\)", str(exc))
        return ImageResult(job.item_id, "decompression_bomb", detail=(
            f"{f'{int(size.group(1)):,}' if size else 'more'} pixels exceed "
            f"preprocess.max_image_pixels ({max_pixels:,}): a decompression bomb, or an image to shrink first"))
    except UnidentifiedImageError as exc:
        if os.path.splitext(job.source)[1].lower() not in (*IMAGE_EXTENSIONS, ""):  # data.image_column named it
            return unsupported_type(job.item_id, os.path.basename(job.source))
        return ImageResult(job.item_id, "not_image", detail=str(exc)[:200])
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        status = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        return ImageResult(job.item_id, status, detail=f"{type(exc).__name__}: {str(exc)[:200]}")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    data = buffer.getvalue()
    _write_replacing(Path(output_dir) / job.output_name, data)
    return ImageResult(job.item_id, "ok", job.output_name, hashlib.sha256(data).hexdigest(), image.width,
                       image.height, source=job.source, stamp=stamp)


def _stamp(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of a file: what says it is unchanged since an earlier run read it."""
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


def _process_chunk(
    jobs: Sequence[ImageJob], output_dir: str, max_side: int, quality: int, max_pixels: int
) -> list[ImageResult]:
    return [_first_usable(job, output_dir, max_side, quality, max_pixels) for job in jobs]


def _first_usable(job: ImageJob, *args: Any) -> ImageResult:
    """The result of the job's first usable file (source, then its alternatives), else the source's failure."""
    result = process_image(job, *args)
    if result.status == "ok":
        return result
    for other in job.alternatives:
        retry = process_image(replace(job, source=other, alternatives=()), *args)
        if retry.status == "ok":
            return retry
    return result


def _die_with_parent(parent_pid: int) -> None:
    """Pool worker initializer: end this worker when the process that started the pool dies.

    Otherwise a killed preprocess leaves its workers blocked on the task queue forever. Linux
    delivers SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); a watchdog thread covers
    other systems and the moment before prctl took effect.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    starter = os.getppid()
    if starter != parent_pid and not process_alive(parent_pid):
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(starter, parent_pid), daemon=True).start()


def _watch_parent(starter: int, parent_pid: int) -> None:
    # Reparenting (getppid changes) means the starter died; kill(pid, 0) checks the pool's owner.
    while os.getppid() == starter and process_alive(parent_pid):
        time.sleep(_WATCHDOG_SECONDS)
    os._exit(1)


def process_images(
    jobs: Sequence[ImageJob],
    output_dir: Path,
    settings: PreprocessSettings,
    progress: ProgressCallback = null_progress,
    num_workers: int | None = None,
    earlier: Path | None = None,
) -> dict[str, ImageResult]:
    """Process every job (in `num_workers` processes; 1 = in this process). Returns item_id -> result.

    `earlier`: the output folder of an earlier run. An item whose image file is the one that run made its
    image from, unchanged (same path, size and modification time) and processed with the same settings, gets
    that image (hard-linked, else copied) instead of being decoded again: a nightly rerun whose interactions
    changed reads only new and changed images. What each image was made from is in SOURCES_FILE."""
    workers = num_workers or settings.num_workers
    output_dir.mkdir(parents=True, exist_ok=True)
    args = (str(output_dir), settings.max_image_side, settings.jpeg_quality, settings.max_image_pixels)
    # An item with no image file to open is missing without a worker (a text-only catalogue: every item).
    absent = {job.item_id: ImageResult(job.item_id, "missing", detail="file not found", missing_kind="not_found")
              for job in jobs if not job.source}
    jobs = [job for job in jobs if job.source]
    results = _reused(jobs, output_dir, list(args[1:]), earlier)
    jobs = [job for job in jobs if job.item_id not in results]
    total = len(jobs)
    if not total:
        _write_sources(output_dir, list(args[1:]), results)
        return {**absent, **results}
    reused = len(results)
    description = "Verifying images" + (f" ({reused:,} unchanged since the last run)" if reused else "")
    progress(ProgressEvent("images", 0, total, description))
    chunks = [jobs[start : start + _CHUNK] for start in range(0, total, _CHUNK)]
    if workers <= 1 or len(chunks) <= 1:
        saved_limit = Image.MAX_IMAGE_PIXELS
        try:
            for chunk in chunks:
                for result in _process_chunk(chunk, *args):
                    results[result.item_id] = result
                progress(ProgressEvent("images", len(results) - reused, total, description))
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
    else:
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),))
        try:
            futures = [pool.submit(_process_chunk, chunk, *args) for chunk in chunks]
            for future in as_completed(futures):
                for result in future.result():
                    results[result.item_id] = result
                progress(ProgressEvent("images", len(results) - reused, total, description))
        finally:
            # On an error or Ctrl-C, queued chunks are dropped instead of finished first.
            pool.shutdown(wait=True, cancel_futures=True)
    _write_sources(output_dir, list(args[1:]), results)
    os.sync()  # one flush for all written images (see _write_replacing)
    progress(ProgressEvent("images", total, total, description, done=True))
    return {**absent, **results}


SOURCES_FILE = "sources.json"  # in a processed images folder: what each image was made from, and how


def _reused(jobs: Sequence[ImageJob], output_dir: Path, params: list[int], earlier: Path | None
            ) -> dict[str, ImageResult]:
    """The results of `jobs` whose image the `earlier` output folder holds, made with `params` from the job's
    own first file as it is now; each such image is linked (else copied) into `output_dir`."""
    record = _read_sources(earlier) if earlier is not None else None
    if not record or record.get("params") != params:
        return {}
    made = record.get("items") or {}
    reused: dict[str, ImageResult] = {}
    for job in jobs:
        entry = made.get(job.item_id)
        if not isinstance(entry, dict) or entry.get("source") != job.source:
            continue
        try:
            if list(_stamp(job.source)) != entry.get("stamp") or not _stays_in_its_folder(job.source):
                continue
            previous = Path(earlier) / str(entry["output_name"])
            if previous.parent != Path(earlier) or not previous.is_file():
                continue
            _link_or_copy(previous, output_dir / job.output_name)
        except (OSError, KeyError, TypeError):
            continue  # processed anew
        reused[job.item_id] = ImageResult(job.item_id, "ok", job.output_name, entry.get("fingerprint"),
                                          int(entry.get("width", 0)), int(entry.get("height", 0)),
                                          source=job.source, stamp=tuple(entry["stamp"]), reused=True)
    return reused


def _link_or_copy(source: Path, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        _write_replacing(target, source.read_bytes())


def _read_sources(folder: Path) -> dict[str, Any] | None:
    try:
        record = read_json(Path(folder) / SOURCES_FILE)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_sources(output_dir: Path, params: list[int], results: dict[str, ImageResult]) -> None:
    """SOURCES_FILE of `output_dir`: for each image made, its source file, that file's stamp and the image."""
    items = {item_id: {"source": result.source, "stamp": list(result.stamp), "output_name": result.output_name,
                       "fingerprint": result.fingerprint, "width": result.width, "height": result.height}
             for item_id, result in results.items() if result.status == "ok" and result.stamp is not None}
    atomic_write_json(Path(output_dir) / SOURCES_FILE, {"params": params, "items": items})


def result_as_dict(result: ImageResult) -> dict:
    return asdict(result)
