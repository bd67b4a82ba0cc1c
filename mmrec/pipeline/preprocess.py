"""run_preprocess: raw inputs -> processed tables, normalised images and a report of everything done."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from mmrec.data.ids import image_file_name
from mmrec.data.images import IMAGE_EXTENSIONS, IMAGE_STATUSES, ImageJob, ImageResult, process_images, unsupported_type
from mmrec.data.interactions import clean_interactions
from mmrec.data.items import clean_items
from mmrec.data.raw_tables import (
    EveryKeyBut,
    absent_optional_note,
    canonical_columns,
    malformed_note,
    one_error,
    read_table,
    without_header_rows,
)
from mmrec.data.staging import remove_abandoned, staged_folder
from mmrec.data.unread import SAMPLE_ROWS, column_kind, unread_interaction_columns, unread_interactions_note
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
from mmrec.fileio import IN_USE, atomic_write_json, check_not_in_use, read_json
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.provenance import package_versions
from mmrec.settings import DataSettings, PreprocessSettings, Settings

PROCESSED_IMAGES = "images"
# The version of what preprocess makes of given inputs and settings: raise it with any change that can give other
# processed data for them (a new reading of some value, another default), so an upgraded mmrec preprocesses again
# and says why. 2 (2026-12-05): a repeated pair dated by its first positive row, decimal commas read (past currency
# signs too), lists of JSON lists as text, a \" before a separator read by the record. Records without it are 1.
PREPROCESS_VERSION = 2
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
    # num_workers changes speed, not output, so it is not part of the fingerprint. Only the values set otherwise
    # than by default are: a setting a later mmrec adds (at its default) changes no fingerprint (PREPROCESS_VERSION
    # does, where a default changes what preprocess makes).
    defaults = _preprocess_settings(DataSettings(), PreprocessSettings())
    parts["settings"] = {section: {key: value for key, value in values.items() if defaults[section].get(key) != value}
                         for section, values in _preprocess_settings(settings.data, settings.preprocess).items()}
    parts["preprocess_version"] = PREPROCESS_VERSION
    return parts


def _preprocess_settings(data: DataSettings, preprocess: PreprocessSettings) -> dict[str, dict[str, Any]]:
    """The settings preprocess output depends on, as JSON values by section."""
    return {"data": data.model_dump(mode="json"),
            "preprocess": preprocess.model_dump(mode="json", exclude={"num_workers"})}


def input_fingerprint(parts: dict[str, Any]) -> str:
    """One sha256 over `input_parts`."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def changed_inputs(previous: dict[str, Any] | None, parts: dict[str, Any]) -> str | None:
    """What differs from the last run's recorded inputs ("interactions.csv, settings data.image_column"), or
    None when the last run recorded none (an older version, or no run yet)."""
    before = (previous or {}).get("input_parts")
    if not isinstance(before, dict):
        return None
    changed = [name for name in parts if name not in ("settings", "preprocess_version") and before.get(name) !=
               parts[name] and not (name.endswith("/") and _listing_digest(before.get(name)))]
    # Settings compared as they were in effect: a record holds every value (before 2026-12-05) or those set otherwise
    # than by default; a setting it lacks was at its default, or did not exist yet and now is at its default.
    defaults = _preprocess_settings(DataSettings(), PreprocessSettings())
    old, new = before.get("settings") or {}, parts["settings"]
    then = {section: {**values, **(old.get(section) or {})} for section, values in defaults.items()}
    now = {section: {**values, **new[section]} for section, values in defaults.items()}
    keys = [f"{section}.{key}" for section in defaults for key in {*then[section], *now[section]}
            if then[section].get(key) != now[section].get(key)]
    if keys:
        changed.append("settings " + ", ".join(sorted(keys)))
    if (version := before.get("preprocess_version", 1)) != parts["preprocess_version"]:
        changed.append(f"mmrec's preprocessing (version {version} -> {parts['preprocess_version']}: an upgraded mmrec "
                       "reads some data differently)")
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


def _check_no_train(processed_dir: Path) -> None:
    """BusyError while a `mmrec train` reads processed_dir (mark_in_use): checked before the work and again before
    the new folder replaces the old one (the staging is then discarded, the old data kept)."""
    check_not_in_use(processed_dir, "preprocessing again now would replace the data under it (its split and "
                     "checkpoint would then disagree with what evaluate and recommend read)")


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
        and not entry.name.startswith(IN_USE)
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
            if "\x00" in value:  # no file path holds one (the operating system refuses it)
                refused[item_id] = ImageResult(item_id, "missing", detail=f"{ascii(value)} holds a NUL character, "
                                               "which no file path can", missing_kind="not_found")
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


def _case_matches_note(orphans: list[str], without_image: pd.Series) -> str:
    """" N of them match an item without an image but for letter case ..." (file names are matched exactly: 'abc'
    and 'ABC' may be two items), else ""."""
    folded: dict[str, list[str]] = {}
    for item_id in without_image:
        folded.setdefault(unicodedata.normalize("NFC", item_id).casefold(), []).append(item_id)
    pairs = []
    for name in orphans:  # a name written decomposed (macOS) matches too
        stem = unicodedata.normalize("NFC", os.path.splitext(name)[0])
        matches = folded.get(stem.casefold(), [])
        if len(matches) == 1 and unicodedata.normalize("NFC", matches[0]) != stem:  # the case differs, not only read
            pairs.append((name, matches[0]))
    if not pairs:
        return ""
    name, item_id = pairs[0]
    return (f" {len(pairs):,} of them match an item without an image but for letter case (e.g. {name} and item "
            f"{item_id!r}): file names must match item ids exactly, since ids that differ in case are different "
            "items. Rename the files, or name each item's image in a column set as data.image_column.")


def _unmatched_images_note(items: pd.DataFrame, images_dir: Path, ok: int) -> str | None:
    """When images were looked up by item id and none matched while the folder holds image files."""
    if ok or not images_dir.is_dir():
        return None
    files = sorted(os.path.relpath(os.path.join(root, name), images_dir) for root, _, names in os.walk(images_dir)
                   for name in names if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)
    ids = {unicodedata.normalize("NFC", item_id) for item_id in items["item_id"]}
    if not files or any(unicodedata.normalize("NFC", os.path.splitext(name)[0]) in ids for name in files):
        return None  # files named after items, none of them readable: the image report counts why
    return (f"None of the {len(files):,} image files in {images_dir} (subfolders included) is named after an item "
            f"id (e.g. {', '.join(files[:3])}; ids such as {', '.join(items['item_id'].head(2))}): images are found "
            "as {item_id}.jpg there. If item_info names each item's image in a column, set data.image_column to it."
            + _case_matches_note([name for name in files if os.sep not in name], items["item_id"]))


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
    _check_no_train(processed_dir)
    if not force and (changed := changed_inputs(previous, parts)):
        progress(ProgressEvent("preprocess", message=f"Changed since the last run: {changed}. Preprocessing again."))

    data = settings.data
    item_file, interactions_file = data_dir / data.item_info_file, data_dir / data.interactions_file
    skip_malformed = settings.preprocess.malformed_lines == "skip"
    item_table = read_table(item_file, "item_info", skip_malformed, data.encoding,
                            first_entry=(data.image_column,) if data.image_column else (),
                            # list cells are several values, but in a text column (a description in parts)
                            each_entry=EveryKeyBut(frozenset({data.title_column, *data.description_columns}
                                                             - {None, *data.category_columns})))
    raw_items, item_headers = without_header_rows(item_table.frame)
    problems: list[DataError] = []  # the columns both files miss, said at once (not one error a run)
    if missing := [name for name in data.numerical_features_cols if name not in raw_items.columns]:
        numbers = [repr(str(column)) for i, column in enumerate(raw_items.columns) if column != data.item_id_column
                   and column_kind(str(column), raw_items.iloc[:SAMPLE_ROWS, i], None) == "numbers"]
        problems.append(DataError(
            f"item_info file {item_file.name} lacks numeric column(s) {', '.join(map(repr, missing))} "
            f"(data.numerical_features_cols); columns present: {', '.join(map(str, raw_items.columns))}"
            + (f" (of which {', '.join(numbers)} hold numbers)" if numbers else " (none of them holds numbers)")
            + ".", hint="Fix data.numerical_features_cols in your config (it may be an empty list)."))
    if missing := [name for name in data.category_columns if name not in raw_items.columns]:
        problems.append(DataError(
            f"item_info file {item_file.name} lacks category column(s) {', '.join(map(repr, missing))} "
            f"(data.category_columns); columns present: {', '.join(map(str, raw_items.columns))}.",
            hint="Fix data.category_columns in your config (it may be an empty list)."))
    used = {"title": data.title_column, "description": data.description_columns or None, "image": data.image_column}
    try:
        raw_items = canonical_columns(raw_items, item_file, "item_info", {"item_id": data.item_id_column},
                                      {name: column for name, column in used.items() if column is not None})
    except DataError as exc:
        problems.append(exc)
    own_item_column = data.interactions_item_id_column is not None
    interaction_table = read_table(interactions_file, "interactions", skip_malformed, data.encoding)
    raw_interactions, interaction_headers = without_header_rows(interaction_table.frame)
    try:
        raw_interactions = canonical_columns(
            raw_interactions, interactions_file, "interactions",
            {"user_id": data.user_id_column, "item_id": data.interactions_item_id_column or data.item_id_column,
             "timestamp": data.timestamp_column, "rating": data.rating_column},
            settings={"item_id": "data.interactions_item_id_column" if own_item_column else
                      "data.item_id_column (or data.interactions_item_id_column, when the interactions name it "
                      "otherwise than item_info)"},
        )
    except DataError as exc:
        problems.append(exc)
    if problems:
        raise one_error(problems)
    # The last row of an id wins, as clean_items keeps it.
    named = (dict(zip(raw_items["item_id"].astype("string").str.strip(), raw_items[data.image_column]))
             if data.image_column else None)
    items, item_report, rejected = clean_items(raw_items, settings.data, settings.preprocess)
    unmapped = absent_optional_note(raw_interactions, "interactions",
                                    {"timestamp": data.timestamp_column, "rating": data.rating_column})
    # Interactions before images: running out of rows should not cost the image stage first.
    interactions, interaction_report = clean_interactions(
        raw_interactions,
        set(items["item_id"]),
        settings.preprocess,
        settings.data.positive_rating_threshold,
        rejected,
        settings.data.timestamp_format,
        settings.data.unrated,
        settings.data.rating_values,
        settings.data.decimal_separator,
    )
    if unmapped:
        interaction_report.notes.append(unmapped)
    unread_interactions = unread_interaction_columns(raw_interactions)
    if note := unread_interactions_note(unread_interactions, len(raw_interactions)):
        interaction_report.notes.append(note)
    for report, headers, table, file in ((item_report, item_headers, item_table, item_file),
                                         (interaction_report, interaction_headers, interaction_table,
                                          interactions_file)):
        report.notes.extend(table.notes)
        if malformed := table.malformed:  # counted as rows in, as the file has them
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
        if urls := [result for result in refused.values() if result.missing_kind == "url"]:
            by_id = image_files(images_dir)[0] if images_dir.is_dir() else {}
            named_after_id = sum(unicodedata.normalize("NFC", result.item_id) in by_id for result in urls)
            item_report.notes.append(
                f"{len(urls):,} item(s) name their image by a URL in {data.image_column} (e.g. {urls[0].item_id}: "
                f"{str(named[urls[0].item_id]).strip()}): nothing is downloaded, images are read from files under "
                f"{images_dir}. " + (
                    f"{named_after_id:,} of them have a file there named after their item id, which data.image_column "
                    "set to a column of URLs leaves unread: remove that setting to use the files named by id."
                    if named_after_id else
                    "Download them there and name each file in that column (or after its item id, without "
                    "data.image_column)."))
        if named is None and (note := _unmatched_images_note(items, data_dir / data.images_subdir, sum(ok))):
            item_report.notes.append(note)
        elif orphans:
            item_report.notes.append(f"{len(orphans):,} file(s) in {data_dir / data.images_subdir} are named after no "
                                     f"catalogue item (e.g. {', '.join(n if n.isprintable() else ascii(n) for n in orphans[:3])}): "
                                     "not used."
                                     + _case_matches_note(orphans, items.loc[[not good for good in ok], "item_id"]))
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
            "interactions": {**interaction_report.to_dict(), "unread": unread_interactions},
            "columns": {
                "numeric": [c for c in settings.data.numerical_features_cols
                            if not item_report.numeric[c]["no_information"]],
                "numeric_left_out": [c for c in settings.data.numerical_features_cols
                                     if item_report.numeric[c]["no_information"]],
                "categories": list(settings.data.category_columns),
                "timestamp": "timestamp" in interactions.columns,
                "rating": "rating" in interactions.columns,
            },
            "versions": package_versions(),
        }
        atomic_write_json(staging / REPORT_FILE, report)
        record_in_manifest(staging / REPORT_FILE)
        _check_no_train(processed_dir)  # again: a train may have started meanwhile (the swap would end its marker)
    return PreprocessResult(processed_dir, False, report, time.perf_counter() - start)
