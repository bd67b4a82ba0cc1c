"""run_preprocess: raw inputs -> processed tables, normalised images and a report of everything done."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import time
import unicodedata
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.data.ids import image_file_name
from mmrec.data.images import IMAGE_EXTENSIONS, IMAGE_STATUSES, ImageJob, ImageResult, process_images, unsupported_type
from mmrec.data.interactions import clean_interactions
from mmrec.data.items import clean_items
from mmrec.data.staging import remove_abandoned, staged_folder
from mmrec.data.tables import (
    INTERACTIONS_FILE,
    ITEMS_FILE,
    MANIFEST_FILE,
    RATED_BELOW_FILE,
    REPORT_FILE,
    record_in_manifest,
    save_interactions,
    save_items,
    save_rated_below,
    verify_in_manifest,
)
from mmrec.errors import ConfigError, DataError
from mmrec.features.file_digests import FileDigests
from mmrec.fileio import (
    DECOMPRESSION_ERRORS,
    atomic_write_json,
    compression,
    csv_separator,
    is_parquet,
    not_utf8_error,
    open_bytes,
    read_json,
)
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.provenance import package_versions
from mmrec.settings import Settings

PROCESSED_IMAGES = "images"
_OWN_ENTRIES = frozenset({ITEMS_FILE, INTERACTIONS_FILE, RATED_BELOW_FILE, REPORT_FILE, MANIFEST_FILE,
                          PROCESSED_IMAGES})


@dataclass
class PreprocessResult:
    """What run_preprocess did (or found already done when skipped=True)."""

    processed_dir: Path
    skipped: bool
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def report_path(self) -> Path:
        return self.processed_dir / REPORT_FILE


@dataclass(frozen=True)
class MalformedLine:
    """A line of a text table with more fields than its header: `line` counts from 1 (the header)."""

    line: int
    fields: int
    expected: int


def read_csv(path: Path, what: str, skip_malformed: bool = False) -> tuple[pd.DataFrame, list[MalformedLine]]:
    """(a CSV (comma-, tab-, semicolon- or pipe-separated: the header tells) or a parquet file with every column
    as strings (ids must never become numbers; a parquet number column is written as its values read), the lines
    skipped for holding more fields than the header); DataError if unusable. A line with more fields is a
    DataError unless `skip_malformed`, and even then when such lines outnumber the good ones (the file's
    separator or quoting is off, not a stray line)."""
    if not path.is_file():
        raise DataError(
            f"{what} file {path} is a folder, not a file." if path.is_dir() else f"{what} file not found: {path}",
            hint="Check paths.data_dir and the data.*_file settings.")
    if path.stat().st_size == 0:
        raise DataError(f"{what} file {path} is empty.", hint="It needs a header row and at least one row.")
    malformed: list[MalformedLine] = []
    if is_parquet(path):
        frame = _read_parquet(path, what)
    else:
        frame, malformed = _read_text_table(path, what, csv_separator(path), skip_malformed)
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{what} file {path} has a header but no rows.", hint="Add rows below the header.")
    return frame, malformed


_TOO_MANY_FIELDS = re.compile(r"Expected \d+ fields in line \d+, saw \d+")


def _read_text_table(
    path: Path, what: str, sep: str, skip_malformed: bool
) -> tuple[pd.DataFrame, list[MalformedLine]]:
    """A clean file is read by pandas in one pass. pandas reads lines with more fields than the header
    inconsistently (the first data line's width becomes the expected one; with index inference its first field
    silently became the index, shifting every column), so when it complains at all the file is read again
    record by record (`_fit_to_header`) and parsed from that."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = _parse_text(path, path, sep, what)
        except pd.errors.ParserError as exc:
            if not _TOO_MANY_FIELDS.search(str(exc)):  # an open quote, say: pandas says where
                raise _refused(path, what, sep, str(exc).strip(), skip_malformed) from None
            frame = None
    if frame is not None and not any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        return frame, []
    text, malformed = _fit_to_header(path, what, sep)
    if malformed and not skip_malformed:
        first = malformed[0]
        raise _refused(path, what, sep, f"line {first.line} holds {first.fields} fields, the header "
                                        f"{first.expected}", skip_malformed)
    frame = _parse_text(io.StringIO(text), path, sep, what)
    if len(malformed) > len(frame):
        first = malformed[0]
        raise _refused(path, what, sep, f"{len(malformed):,} of {len(malformed) + len(frame):,} lines hold more "
                                        f"fields than the header (e.g. line {first.line}: {first.fields} fields, "
                                        f"expected {first.expected})", skip_malformed)
    return frame, malformed


def _parse_text(source: Path | io.StringIO, path: Path, sep: str, what: str) -> pd.DataFrame:
    """Every column as strings, empty cells missing; never an index column (index_col=False). A gzip, bz2 or xz
    file is read decompressed, whatever its name."""
    try:
        return pd.read_csv(source, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8",
                           index_col=False, compression=compression(source) if isinstance(source, Path) else None)
    except UnicodeDecodeError:
        raise not_utf8_error(path, f"{what} file") from None
    except DECOMPRESSION_ERRORS as exc:
        raise _undecompressed(path, what, exc) from None
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{what} file {path} cannot be parsed as UTF-8 CSV ({sep!r}-separated): "
                        f"{str(exc).strip()}.", hint="It needs a header row and at least one row.") from None


def _fit_to_header(path: Path, what: str, sep: str) -> tuple[str, list[MalformedLine]]:
    """(the file as CSV text whose records are at most the header's width: trailing empty fields dropped (an
    exporter's trailing separator), records with more non-empty fields left out; those left out). Short records
    stay as they are (their missing cells are missing). Python's csv module reads quoting as pandas does."""
    out, malformed = io.StringIO(), []
    limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # a long description is a field, not an error
    try:
        with io.TextIOWrapper(open_bytes(path), encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=sep, strict=True)  # strict: a quote left open is an error
            writer = csv.writer(out, delimiter=sep, lineterminator="\n")
            width, line = None, 1
            for record in reader:
                if record and width is None:  # the header: the first line that is not blank, as for pandas
                    width = len(record)
                if record and len(record) > width and any(field.strip() for field in record[width:]):
                    malformed.append(MalformedLine(line, len(record), width))
                elif record:
                    writer.writerow(record[:width])
                line = reader.line_num + 1
    except UnicodeDecodeError:
        raise not_utf8_error(path, f"{what} file") from None
    except csv.Error as exc:
        raise _refused(path, what, sep, f"line {line}: {exc}", True) from None
    except DECOMPRESSION_ERRORS as exc:
        raise _undecompressed(path, what, exc) from None
    finally:
        csv.field_size_limit(limit)
    return out.getvalue(), malformed


def _undecompressed(path: Path, what: str, exc: BaseException) -> DataError:
    return DataError(f"{what} file {path} is {compression(path)}-compressed but cannot be read as such: "
                     f"{exc or type(exc).__name__}.", hint="The file is damaged or was cut short: compress it again "
                                                            "from the original, or pass it uncompressed.")


def _refused(path: Path, what: str, sep: str, detail: str, skip_malformed: bool) -> DataError:
    if "EOF inside string" in detail or "unexpected end of data" in detail:
        hint = ('A value opens a quote (") that never closes, so the rest of the file would be one value: close '
                'it, or double a quote meant as text ("12"" screen").')
    else:
        hint = (f"A row with more fields than the header usually holds an unquoted {sep!r} inside a value: quote "
                f"that value (\"a{sep} b\") or remove the extra field"
                + ("." if skip_malformed else
                   " (preprocess.malformed_lines: skip skips such lines, counted in the report)."))
    return DataError(f"{what} file {path} cannot be parsed as UTF-8 CSV ({sep!r}-separated): {detail}.", hint=hint)


def malformed_note(malformed: list[MalformedLine], file: Path) -> str:
    """The report's note on the lines of `file` skipped for holding more fields than its header."""
    shown = ", ".join(f"line {m.line}: {m.fields}" for m in malformed[:3])
    sep = csv_separator(file)
    return (f"{len(malformed):,} line(s) of {file.name} hold more fields than its header's {malformed[0].expected} "
            f"({shown}{', ...' if len(malformed) > 3 else ''}): skipped. An unquoted {sep!r} inside a value splits "
            f"it in two: quote the value (\"a{sep} b\"), or set preprocess.malformed_lines: error to stop on such "
            "lines.")


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    import pyarrow as pa

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(f"{what} file {path} cannot be read as parquet: {exc}") from None
    frame = frame.reset_index(drop=True)
    for column in frame.columns:  # as read_csv reads text: str values, missing ones NaN
        values = frame[column]
        if pd.api.types.is_float_dtype(values) and bool((values.dropna() % 1 == 0).all()):
            values = values.astype("Int64")  # whole numbers stored as float (a column with gaps): 12, not 12.0
        frame[column] = values.astype(str).where(values.notna(), np.nan).astype(object)
    return frame


def canonical_columns(
    frame: pd.DataFrame, path: Path, what: str, names: dict[str, str], used: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
) -> pd.DataFrame:
    """`frame` with the user's column names (names: canonical -> its data.*_column setting) renamed to the
    canonical ones the rest of mmrec reads. A renamed column that is absent, or a file that holds both a
    renamed column and another under its canonical name, is a DataError; a missing column under its
    default name is left to the checks that follow (timestamp and rating are optional). `used` (same
    shape) names further columns the file must hold, read under the user's names (titles, descriptions):
    they are checked here too, so the error names the file's own columns. `settings` names the setting
    behind a canonical column where it is not data.<canonical>_column."""
    setting_of = {canonical: f"data.{canonical}_column" for canonical in {*names, *(used or {})}}
    setting_of.update(settings or {})
    renamed = {canonical: source for canonical, source in names.items() if source != canonical}
    present = ", ".join(map(str, frame.columns))
    folded = {str(column).casefold(): str(column) for column in frame.columns}

    def meant(name: str, setting: str) -> str:
        """" (setting: 'Name'? ...)" naming the column that differs from `name` only by letter case, else ""."""
        other = folded.get(name.casefold())
        return f" ({setting}: {other!r}? Column names are matched exactly)" if other else ""

    for canonical in ("user_id", "item_id"):  # required wherever named; the others are optional
        if canonical in names and canonical not in renamed and canonical not in frame.columns:
            raise DataError(f"{what} file {path.name} has no '{canonical}' column ({setting_of[canonical]}); "
                            f"columns present: {present}.",
                            hint=f"Set {setting_of[canonical]} to the column that holds the "
                                 f"{canonical.replace('_id', '')} ids{meant(canonical, setting_of[canonical])}.")
    for canonical, source in {**renamed, **(used or {})}.items():
        setting = setting_of[canonical]
        if source not in frame.columns:
            raise DataError(f"{what} file {path.name} lacks column '{source}' ({setting}); columns present: "
                            f"{present}.",
                            hint=f"Set {setting} to the column that holds the {canonical.replace('_', ' ')}s"
                                 f"{meant(source, setting)}.")
    for canonical, source in renamed.items():
        setting = setting_of[canonical]
        if canonical in frame.columns:
            raise DataError(f"{what} file {path.name} has a column '{canonical}' besides '{source}', which {setting} "
                            f"renames to '{canonical}'.",
                            hint="Remove or rename one of the two, or point the setting at the other.")
    return frame.rename(columns={source: canonical for canonical, source in renamed.items()})


def without_header_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(`frame` without the rows that repeat its header line, how many): files joined with a header each
    (`cat new.csv >> old.csv`) hold one, whose cells are the column names. A row counts when every non-empty cell
    is its column's name (case and surrounding spaces aside) and at least two are (the one, in a one-column
    file); no data row looks like that, and as data it would be an item named 'item_id'."""
    if frame.empty or len(frame.columns) == 0:
        return frame, 0
    columns = list(frame.columns)

    def cells(column: object, rows: pd.Index) -> pd.Series:  # a header pasted from an Excel CSV keeps its BOM
        return frame.loc[rows, column].astype("string").str.lstrip("\ufeff").str.strip().str.casefold()

    first = cells(columns[0], frame.index)
    rows = frame.index[(first == str(columns[0]).lstrip("\ufeff").strip().casefold()).fillna(False)
                       .to_numpy(dtype=bool)]
    if rows.empty:
        return frame, 0
    named = pd.Series(1, index=rows)
    whole = pd.Series(True, index=rows)
    for column in columns[1:]:
        values = cells(column, rows)
        same = (values == str(column).strip().casefold()).fillna(False)
        whole &= same | values.fillna("").eq("")
        named += same.astype(int)
    header = rows[(whole & (named >= min(2, len(columns)))).to_numpy(dtype=bool)]
    return (frame.drop(index=header), len(header)) if len(header) else (frame, 0)


def input_parts(settings: Settings) -> dict[str, Any]:
    """What preprocess output depends on, part by part: sha256 of each input file's bytes and of the image
    folder (each file's name and bytes), and the settings used (as values, so a change can be named)."""
    data_dir = Path(settings.paths.data_dir)
    parts: dict[str, Any] = {}
    for name in (settings.data.item_info_file, settings.data.interactions_file):
        path, digest = data_dir / name, hashlib.sha256()
        if path.is_file():
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        parts[name] = digest.hexdigest() if path.is_file() else None
    images_dir, digest = data_dir / settings.data.images_subdir, hashlib.sha256()
    if images_dir.is_dir():
        # Images named by data.image_column may sit in subfolders: the whole tree (links not followed). Each file
        # counts by its bytes, remembered by size and mtime (under paths.cache_dir, as for the feature store), so a
        # copy of the folder (new mtimes, same bytes) is no change and an unchanged file is not read again.
        entries = (sorted(Path(root, name) for root, _, names in os.walk(images_dir) for name in names)
                   if settings.data.image_column else sorted(images_dir.iterdir(), key=lambda p: p.name))
        digests = FileDigests.in_folder(Path(settings.paths.cache_dir))
        for entry in entries:
            # A link's own target text (never followed out of the folder); a folder or unreadable file by its size.
            content = (f"link:{os.readlink(entry)}" if entry.is_symlink()
                       else digests.digest(entry) if entry.is_file() else None) or f"size:{entry.lstat().st_size}"
            digest.update(f"{entry.relative_to(images_dir)}|{content}\n".encode())
        if Path(settings.paths.cache_dir).is_dir():
            digests.save()  # never creates the cache folder just to remember digests
    parts[f"{settings.data.images_subdir}/"] = f"content:{digest.hexdigest()}" if images_dir.is_dir() else None
    # num_workers changes speed, not output, so it is not part of the fingerprint.
    parts["settings"] = {
        "data": settings.data.model_dump(mode="json"),
        "preprocess": settings.preprocess.model_dump(mode="json", exclude={"num_workers"}),
    }
    return parts


def input_fingerprint(parts: dict[str, Any]) -> str:
    """One sha256 over `input_parts`."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def changed_inputs(previous: dict[str, Any] | None, parts: dict[str, Any]) -> str | None:
    """What differs from the last run's recorded inputs ("interactions.csv, settings data.image_column"), or
    None when the last run recorded none (an older version, or no run yet)."""
    before = (previous or {}).get("input_parts")
    if not isinstance(before, dict):
        return None
    changed = [name for name in parts if name != "settings" and before.get(name) != parts[name]
               and not (name.endswith("/") and _listing_digest(before.get(name)))]
    old, new = before.get("settings") or {}, parts["settings"]
    keys = [f"{section}.{key}" for section in new for key in new[section]
            if (old.get(section) or {}).get(key) != new[section][key]]
    if keys:
        changed.append("settings " + ", ".join(keys))
    return ", ".join(changed) or None


def _listing_digest(value: Any) -> bool:
    """Whether a recorded image-folder part is the name/size/mtime digest of mmrec before 2026-12-05, which
    cannot be compared with the content digest now recorded (a copied folder changed it): not reported."""
    return isinstance(value, str) and len(value) == 64 and ":" not in value


def stale_processed_note(settings: Settings) -> str | None:
    """A note when the raw data (item_info, interactions, the image folder) or the data/preprocess settings are not
    those paths.processed_dir was made from: `mmrec preprocess` has not run since they changed. None when they match,
    or nothing is known (no report, or the raw files are gone: deleting them changes no data)."""
    processed = Path(settings.paths.processed_dir)
    parts = input_parts(settings)
    present = {name: value for name, value in parts.items() if value is not None}
    changed = changed_inputs(_last_report(processed), present)
    if not changed:
        return None
    return (f"{processed} was made from other inputs than there are now ({changed} changed since): these runs use "
            "the data of the last `mmrec preprocess`. Run `mmrec preprocess` (then `mmrec split`) to use the "
            "current data.")


def _last_report(processed_dir: Path) -> dict[str, Any] | None:
    """The report processed_dir holds, or None."""
    try:
        return read_json(processed_dir / REPORT_FILE)
    except (OSError, ValueError, DataError):
        return None


def _up_to_date(processed_dir: Path, report: dict[str, Any] | None, fingerprint: str) -> bool:
    """Whether processed_dir holds the complete output of the run that wrote `report`, for these inputs."""
    if report is None or report.get("fingerprint") != fingerprint:
        return False
    try:
        for name in (ITEMS_FILE, INTERACTIONS_FILE, REPORT_FILE):
            verify_in_manifest(processed_dir / name)
    except (OSError, ValueError, DataError):
        return False
    return True


def _check_replaceable(processed_dir: Path) -> None:
    """Preprocess replaces processed_dir whole, so it must hold nothing that preprocess did not write."""
    if not processed_dir.exists():
        return
    if not processed_dir.is_dir():
        raise ConfigError(
            f"paths.processed_dir ({processed_dir}) is a file, not a folder.",
            hint="Point it at a folder of its own (it is created when missing).",
        )
    foreign = sorted(
        entry.name
        for entry in processed_dir.iterdir()
        if entry.name not in _OWN_ENTRIES and not (entry.name.startswith(".") and entry.name.endswith(".tmp"))
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(
            f"paths.processed_dir ({processed_dir}) holds entries preprocess did not write: {shown}.",
            hint="Preprocess replaces that folder as a whole. Point paths.processed_dir at a folder "
            "of its own, or move those entries out.",
        )


def image_files(images_dir: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(image file names of `images_dir` by item id, the other files by item id) in one listing: the id is the
    name without its extension, in Unicode NFC (macOS and zip files may write names decomposed); any case of
    extension (.JPG is .jpg); each item's images in the order of IMAGE_EXTENSIONS. The other files (.heic, .svg)
    are no image read, but named after an item, which the report then says."""
    found: dict[str, list[tuple[int, str]]] = {}
    other: dict[str, list[str]] = {}
    for entry in images_dir.iterdir() if images_dir.is_dir() else ():
        stem, ext = os.path.splitext(entry.name)
        item = unicodedata.normalize("NFC", stem)
        if ext.lower() in IMAGE_EXTENSIONS:
            found.setdefault(item, []).append((IMAGE_EXTENSIONS.index(ext.lower()), entry.name))
        elif ext:
            other.setdefault(item, []).append(entry.name)
    return ({stem: [name for _, name in sorted(names)] for stem, names in found.items()},
            {stem: sorted(names) for stem, names in other.items()})


def _image_jobs(items: pd.DataFrame, images_dir: Path, named: dict[str, str] | None = None
                ) -> tuple[list[ImageJob], dict[str, ImageResult], list[str]]:
    """One job per item: its first image file, the others tried when that one is unusable (a text file named
    x1.jpg beside a good x1.png). Names come from the folder's own listing, so a path stays inside it.

    With `named` (item id -> the data.image_column value), each item's image is that path under the folder;
    a blank cell (no image), a URL or a path that leads out of it is not opened: its result ("missing",
    "outside_folder") comes back beside the jobs, and last the folder's files named after no item (looked up by
    item id only)."""
    if named is not None:
        root = os.path.realpath(images_dir)
        jobs, refused = [], {}
        for item_id in items["item_id"]:
            value = named.get(item_id)
            value = "" if value is None or pd.isna(value) else str(value).strip()
            if not value:  # the documented way to say "no image"
                refused[item_id] = ImageResult(item_id, "missing", detail="no image (blank in data.image_column)",
                                               missing_kind="blank")
                continue
            if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):  # nothing is downloaded
                refused[item_id] = ImageResult(item_id, "missing", detail=f"{value} is a URL: images are read from "
                                               f"files under {images_dir} (download them there)", missing_kind="url")
                continue
            source = os.path.realpath(os.path.join(root, value))
            if os.path.commonpath([root, source]) != root:
                refused[item_id] = ImageResult(item_id, "outside_folder", detail=f"{value} leads out of {images_dir}")
                continue
            jobs.append(ImageJob(item_id, source, image_file_name(item_id)))
        return jobs, refused, []
    files, unread = image_files(images_dir)
    ids = {unicodedata.normalize("NFC", item_id) for item_id in items["item_id"]}
    orphans = sorted(name for stem in set(files) | set(unread) if stem not in ids
                     for name in files.get(stem, []) + unread.get(stem, []))
    jobs, refused = [], {}
    for item_id in items["item_id"]:
        if item_id in (".", "..") or "/" in item_id or "\x00" in item_id:  # no file in a folder has such a name
            refused[item_id] = ImageResult(item_id, "missing", detail="its id cannot be a file name ('.', '..' or a "
                                           "'/'): name its image in a column set as data.image_column",
                                           missing_kind="bad_id")
            continue
        names = files.get(unicodedata.normalize("NFC", item_id))
        if not names and (other := unread.get(unicodedata.normalize("NFC", item_id))):
            refused[item_id] = unsupported_type(item_id, other[0])
            continue
        if not names:  # reported missing
            jobs.append(ImageJob(item_id, "", image_file_name(item_id)))
            continue
        jobs.append(ImageJob(item_id, str(images_dir / names[0]), image_file_name(item_id),
                             tuple(str(images_dir / name) for name in names[1:])))
    return jobs, refused, orphans


def _unmatched_images_note(items: pd.DataFrame, images_dir: Path, ok: int) -> str | None:
    """When images were looked up by item id and none matched while the folder holds image files."""
    if ok or not images_dir.is_dir():
        return None
    files = sorted(os.path.relpath(os.path.join(root, name), images_dir) for root, _, names in os.walk(images_dir)
                   for name in names if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)
    if not files:
        return None
    return (f"None of the {len(files):,} image files in {images_dir} (subfolders included) is named after an item "
            f"id (e.g. {', '.join(files[:3])}; ids such as {', '.join(items['item_id'].head(2))}): images are found "
            "as {item_id}.jpg there. If item_info names each item's image in a column, set data.image_column to it.")


def _image_report(results: dict, seconds: float, workers: int) -> dict[str, Any]:
    counts = {status: 0 for status in IMAGE_STATUSES}
    kinds: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    for result in results.values():
        counts[result.status] += 1
        if result.missing_kind:
            kinds[result.missing_kind] = kinds.get(result.missing_kind, 0) + 1
    flagged = [result for result in results.values() if result.status != "ok"]
    firsts: dict[tuple[str, str], ImageResult] = {}  # the first of each kind leads the examples
    for result in flagged:
        firsts.setdefault((result.status, result.missing_kind), result)
    for result in [*firsts.values(), *flagged]:
        shown, text = examples.setdefault(result.status, []), f"{result.item_id}: {result.detail}"
        if len(shown) < 5 and text not in shown:
            shown.append(text)
    reused = sum(result.reused for result in results.values())
    return {
        "referenced": len(results),
        **counts,
        "reused": reused,  # of the ok ones: unchanged files, their images taken from the last run
        "missing_kinds": kinds,
        "examples": examples,
        "workers": workers,
        "seconds": round(seconds, 3),
        "images_per_s": round((len(results) - reused) / seconds, 1) if seconds > 0 and len(results) > reused
        else None,
    }


def run_preprocess(
    settings: Settings, force: bool = False, progress: ProgressCallback = null_progress
) -> PreprocessResult:
    """Clean items, images and interactions into settings.paths.processed_dir; no-op when up to date."""
    start = time.perf_counter()
    data_dir = Path(settings.paths.data_dir)
    processed_dir = Path(settings.paths.processed_dir)
    if not data_dir.is_dir():
        raise DataError(
            f"paths.data_dir {data_dir} is a file; it names the folder that holds item_info.csv, interactions.csv "
            "and images/." if data_dir.is_file() else
            f"Data folder {data_dir} not found" + ("." if data_dir.is_absolute() else
                                                    f" (relative to the current folder: {data_dir.absolute()})."),
            hint="Set paths.data_dir, or create data with `mmrec data synth --out DIR`.",
        )
    if (processed_dir / PROCESSED_IMAGES).resolve() == (data_dir / settings.data.images_subdir).resolve():
        # Preprocess replaces its images folder; it must never be the input folder.
        raise ConfigError(
            f"paths.processed_dir ({processed_dir}) would put processed images over the input images.",
            hint="Use a processed_dir different from data_dir.",
        )
    _check_replaceable(processed_dir)
    remove_abandoned(Path(os.path.realpath(processed_dir)))  # a killed run's staging, even if nothing is redone
    parts = input_parts(settings)
    fingerprint = input_fingerprint(parts)
    previous = _last_report(processed_dir)
    if not force and _up_to_date(processed_dir, previous, fingerprint):
        progress(
            ProgressEvent(
                "preprocess",
                message="Inputs unchanged since the last run: nothing to do "
                "(use --force-reprocess to redo it).",
                done=True,
            )
        )
        return PreprocessResult(processed_dir, True, previous, time.perf_counter() - start)
    if not force and (changed := changed_inputs(previous, parts)):
        progress(ProgressEvent("preprocess", message=f"Changed since the last run: {changed}. Preprocessing again."))

    data = settings.data
    item_file, interactions_file = data_dir / data.item_info_file, data_dir / data.interactions_file
    skip_malformed = settings.preprocess.malformed_lines == "skip"
    raw_items, item_malformed = read_csv(item_file, "item_info", skip_malformed)
    raw_items, item_headers = without_header_rows(raw_items)
    if missing := [name for name in data.numerical_features_cols if name not in raw_items.columns]:
        raise DataError(f"item_info file {item_file.name} lacks numeric column(s) {', '.join(map(repr, missing))} "
                        f"(data.numerical_features_cols); columns present: {', '.join(map(str, raw_items.columns))}.",
                        hint="Fix data.numerical_features_cols in your config (it may be an empty list).")
    used = {"title": data.title_column, "description": data.description_column, "image": data.image_column}
    raw_items = canonical_columns(raw_items, item_file, "item_info", {"item_id": data.item_id_column},
                                  {name: column for name, column in used.items() if column is not None})
    # The last row of an id wins, as clean_items keeps it.
    named = (dict(zip(raw_items["item_id"].astype("string").str.strip(), raw_items[data.image_column]))
             if data.image_column else None)
    own_item_column = data.interactions_item_id_column is not None
    raw_interactions, interaction_malformed = read_csv(interactions_file, "interactions", skip_malformed)
    raw_interactions, interaction_headers = without_header_rows(raw_interactions)
    raw_interactions = canonical_columns(
        raw_interactions, interactions_file, "interactions",
        {"user_id": data.user_id_column, "item_id": data.interactions_item_id_column or data.item_id_column,
         "timestamp": data.timestamp_column, "rating": data.rating_column},
        settings={"item_id": "data.interactions_item_id_column" if own_item_column else
                  "data.item_id_column (or data.interactions_item_id_column, when the interactions name it "
                  "otherwise than item_info)"},
    )
    items, item_report, rejected = clean_items(raw_items, settings.data, settings.preprocess)
    # Interactions before images: running out of rows should not cost the image stage first.
    interactions, interaction_report = clean_interactions(
        raw_interactions,
        set(items["item_id"]),
        settings.preprocess,
        settings.data.positive_rating_threshold,
        rejected,
        settings.data.timestamp_format,
        settings.data.unrated,
    )
    for report, headers, malformed, file in (
            (item_report, item_headers, item_malformed, item_file),
            (interaction_report, interaction_headers, interaction_malformed, interactions_file)):
        if malformed:  # counted as rows in, as the file has them
            report.input_rows += len(malformed)
            report.dropped["malformed_line"] = len(malformed)
            report.examples["malformed_line"] = [f"line {m.line}" for m in malformed[:5]]
            report.notes.append(malformed_note(malformed, file))
        if headers:  # counted as rows in, as the file has them
            report.input_rows += headers
            report.dropped["header_row"] = headers
            report.notes.append(f"{headers:,} row(s) of {file.name} repeat its header line (files joined with the "
                                "header of each, e.g. `cat new.csv >> old.csv`): not data, dropped.")
    images_dir = data_dir / settings.data.images_subdir
    progress(ProgressEvent("preprocess", message=f"{len(items)} items cleaned; " + (
        "verifying their images" if images_dir.is_dir() else f"no images folder ({images_dir})"), done=True))
    # Everything is built in a staging folder that replaces processed_dir in one step at the end:
    # a failure or a kill at any point leaves the previous output as it was.
    with staged_folder(processed_dir) as staging:
        jobs, refused, orphans = _image_jobs(items, images_dir, named)
        image_start = time.perf_counter()
        # Unchanged image files keep the images the last run made of them (not with --force-reprocess).
        results = {**process_images(jobs, staging / PROCESSED_IMAGES, settings.preprocess, progress,
                                    earlier=None if force else processed_dir / PROCESSED_IMAGES), **refused}
        image_seconds = time.perf_counter() - image_start
        ok = [results[i].status == "ok" for i in items["item_id"]]
        if named is None and (note := _unmatched_images_note(items, data_dir / data.images_subdir, sum(ok))):
            item_report.notes.append(note)
        elif orphans:
            item_report.notes.append(f"{len(orphans):,} file(s) in {data_dir / data.images_subdir} are named after no "
                                     f"catalogue item (e.g. {', '.join(orphans[:3])}): not used.")
        items.insert(
            4,
            "image_path",
            [
                f"{PROCESSED_IMAGES}/{results[i].output_name}" if good else None
                for i, good in zip(items["item_id"], ok, strict=True)
            ],
        )
        items.insert(5, "has_image", ok)
        items.insert(6, "image_fingerprint", [results[i].fingerprint for i in items["item_id"]])
        save_items(items, staging)
        save_interactions(interactions, staging)
        if interaction_report.rated_below is not None:
            save_rated_below(interaction_report.rated_below, staging)
        report = {
            "fingerprint": fingerprint,
            "input_parts": parts,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": {
                "data_dir": str(data_dir),
                "item_info": settings.data.item_info_file,
                "interactions": settings.data.interactions_file,
                "images": settings.data.images_subdir,
            },
            "items": {
                **asdict(item_report),
                "with_image": int(sum(ok)),
                "without_interactions": int((~items["item_id"].isin(interactions["item_id"])).sum()),
            },
            "images": {**_image_report(results, image_seconds, settings.preprocess.num_workers),
                       "folder": str(data_dir / data.images_subdir),
                       "folder_exists": images_dir.is_dir()},
            "interactions": interaction_report.to_dict(),
            "columns": {
                "numeric": [c for c in settings.data.numerical_features_cols
                            if not item_report.numeric[c]["no_information"]],
                "numeric_left_out": [c for c in settings.data.numerical_features_cols
                                     if item_report.numeric[c]["no_information"]],
                "timestamp": "timestamp" in interactions.columns,
                "rating": "rating" in interactions.columns,
            },
            "versions": package_versions(),
        }
        atomic_write_json(staging / REPORT_FILE, report)
        record_in_manifest(staging / REPORT_FILE)
    return PreprocessResult(processed_dir, False, report, time.perf_counter() - start)
