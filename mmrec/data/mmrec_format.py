"""A dataset folder of the MMRec toolbox (enoche/MMRec: Amazon Baby / Sports / Clothing) -> the mmrec input
format, the dataset's own train/validation/test split and a ready config.

MMRec's folder: `{name}.inter` (tab-separated: userID, itemID[, rating][, timestamp], x_label with 0 = train,
1 = validation, 2 = test; 0-based integer ids), `image_feat.npy` / `text_feat.npy` (row i = itemID i; either
may be absent) and optionally `i_id_mapping.csv` (the original item ids). MMRec's catalogue is itemID
0..max(itemID), and its loader drops validation/test rows of users without training rows
(`filter_out_cod_start_users`); the import does the same by default and counts them.

The split is written into paths.splits_dir with a split_report.json whose `input_sha256` is null: the
processed interactions it matches do not exist yet, so train/evaluate's stale-split check does not apply
(it only compares a recorded sha). Vectors are not copied: `mmrec cache import` reads them from SRC, with
OUT/item_ids.txt naming each .npy row's item.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmrec.data.import_config import (
    config_sha256,
    files_record,
    import_config_target,
    kept_config_note,
    refuse_own_files,
)
from mmrec.data.interactions import TIMESTAMP_RANGE
from mmrec.data.splits import REPORT_FILE, SplitFrames, save_split, split_report
from mmrec.errors import DataError, FeatureError
from mmrec.features.vector_file import open_npy_matrix
from mmrec.fileio import atomic_path, atomic_write_json, atomic_write_text, not_utf8_error, sha256_file
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import DataSettings, SplitSettings

REQUIRED = ("userID", "itemID", "x_label")
VECTOR_FILES = {"vision": "image_feat.npy", "text": "text_feat.npy"}
ITEM_MAPPING = "i_id_mapping.csv"
ITEM_IDS_FILE = "item_ids.txt"
SPLITS_SUBDIR = "splits"
PART_NAMES = {0: "train", 1: "val", 2: "test"}
_EXAMPLES = 5


@dataclass
class MmrecImport:
    """What the import read, wrote and left out."""

    out_dir: Path
    inter_file: Path
    rows_read: int  # rows of the .inter file
    interactions: int  # rows written to interactions.csv (duplicate user-item pairs counted once)
    users: int
    items: int  # the catalogue: itemID 0..max(itemID), as MMRec counts it
    items_without_interactions: int = 0
    labels: dict[str, int] = field(default_factory=dict)  # .inter rows per x_label part
    parts: dict[str, int] = field(default_factory=dict)  # rows written to train/val/test.csv
    duplicates: int = 0  # repeated user-item pairs: the latest row kept, as preprocess keeps it
    cold_rows: dict[str, int] = field(default_factory=dict)  # val/test rows of users with no train row
    cold_users: int = 0
    cold_users_kept: bool = False
    vectors: dict[str, tuple[Path, int, int]] = field(default_factory=dict)  # modality -> (file, rows, dim)
    strategy: str = "stratified"  # the holdout strategy recorded in split_report.json
    original_ids: bool = False  # item_info has an original_id column (from i_id_mapping.csv)
    notes: list[str] = field(default_factory=list)
    config_path: Path | None = None
    splits_dir: Path | None = None
    item_ids_path: Path | None = None
    next_commands: list[str] = field(default_factory=list)


def find_inter_file(src: Path, name: str | None = None) -> Path:
    """SRC/{name}.inter, or the folder's only *.inter file."""
    if not src.is_dir():
        raise DataError(f"MMRec dataset folder {src} not found." if not src.exists() else
                        f"{src} is a file; SRC is the MMRec dataset folder (e.g. data/baby).",
                        hint="Pass the folder that holds {name}.inter, image_feat.npy and text_feat.npy.")
    if name is not None:
        path = src / (name if name.endswith(".inter") else f"{name}.inter")
        if not path.is_file():
            raise DataError(f"{path} not found.", hint=f"--name names the .inter file of {src} (e.g. baby).")
        return path
    found = sorted(p for p in src.glob("*.inter") if p.is_file())
    if not found:
        present = ", ".join(sorted(p.name for p in src.iterdir())[:15]) or "nothing"
        raise DataError(f"{src} has no *.inter file (found: {present}).",
                        hint="SRC is an MMRec dataset folder: {name}.inter, image_feat.npy, text_feat.npy. Raw review "
                             "and meta dumps (JSON Lines, CSV, gzip or not) need no import: point paths.data_dir at "
                             "them and name their files and columns in the data settings (README, Input format).")
    if len(found) > 1:
        raise DataError(f"{src} has {len(found)} .inter files: {', '.join(p.name for p in found)}.",
                        hint=f"Choose one with --name (e.g. --name {found[0].stem}).")
    return found[0]


def _bad_rows(frame: pd.DataFrame, bad: pd.Series, column: str) -> str:
    """`n row(s) (e.g. line 5: 'x', ...)` for the rows of `bad` (line 1 is the header)."""
    shown = ", ".join(f"line {i + 2}: {v!r}" for i, v in frame.loc[bad, column].head(_EXAMPLES).items())
    return f"{int(bad.sum()):,} row(s) (e.g. {shown})"


def _integers(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A column of non-negative integers (as written, digits only) as int64; DataError naming the rows."""
    text = frame[column].str.strip()
    bad = ~text.str.fullmatch(r"\d{1,18}")
    if bad.any():
        raise DataError(f"{path.name}: column {column!r} must hold non-negative integers; "
                        f"{_bad_rows(frame, bad, column)} do not.",
                        hint="MMRec's .inter files hold 0-based integer ids and x_label 0/1/2.")
    return text.astype("int64")


def read_inter(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """(user_id, item_id as int, x_label[, rating][, timestamp]) of an MMRec .inter file, plus notes."""
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise not_utf8_error(path, "The MMRec .inter file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path} cannot be read as a tab-separated file: {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(f"{path.name} lacks column(s) {', '.join(missing)}; columns present: "
                        f"{', '.join(raw.columns)}.",
                        hint="An MMRec .inter file is tab-separated with a header: userID, itemID, rating, "
                             "timestamp, x_label.")
    if raw.empty:
        raise DataError(f"{path.name} has a header but no rows.")
    frame = pd.DataFrame({"user_id": _integers(raw, "userID", path), "item_id": _integers(raw, "itemID", path)})
    labels = _integers(raw, "x_label", path)
    bad = ~labels.isin(list(PART_NAMES))
    if bad.any():
        raise DataError(f"{path.name}: x_label must be 0 (train), 1 (validation) or 2 (test); "
                        f"{_bad_rows(raw, bad, 'x_label')} hold other values.")
    frame["x_label"] = labels.astype("int8")
    notes = []
    if "timestamp" in raw.columns:
        stamps = pd.to_numeric(raw["timestamp"].str.strip(), errors="coerce")
        good = stamps.between(*TIMESTAMP_RANGE) & (stamps == stamps.round())
        if good.all():
            frame["timestamp"] = stamps.astype("int64")
        else:  # MMRec never reads timestamps: leave the column out rather than lose rows in preprocess
            notes.append(f"The timestamp column was left out: {_bad_rows(raw, ~good, 'timestamp')} are not unix "
                         "seconds (MMRec does not read timestamps; every row is kept).")
    if "rating" in raw.columns:
        ratings = pd.to_numeric(raw["rating"].str.strip(), errors="coerce")
        if ratings.isna().any():
            notes.append(f"{int(ratings.isna().sum()):,} rating(s) are not numbers and are left blank; the rows are "
                         "kept (every row is a positive, as in MMRec).")
        frame["rating"] = ratings.astype("float64")
    return frame, notes


def _deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per user-item pair: the latest (file order breaks ties), the row preprocess keeps."""
    ordered = frame.sort_values("timestamp", kind="stable") if "timestamp" in frame.columns else frame
    repeated = ordered.duplicated(["user_id", "item_id"], keep="last")
    kept = ordered[~repeated].sort_index(kind="stable")
    return kept, int(repeated.sum())


def check_vectors(src: Path, n_items: int) -> dict[str, tuple[Path, int, int]]:
    """modality -> (file, rows, dim) of SRC's image_feat.npy / text_feat.npy (absent ones left out); DataError
    unless each is a 2-D numeric matrix with one row per itemID 0..n_items-1. Only the header is read."""
    found = {}
    for modality, name in VECTOR_FILES.items():
        path = src / name
        if not path.exists():
            continue
        try:
            matrix = open_npy_matrix(path)  # one reader for every .npy of vectors (never unpickled)
        except FeatureError as exc:  # the import's inputs are data
            raise DataError(exc.message, hint=exc.hint) from None
        if matrix.shape[0] != n_items:
            raise DataError(f"{path} has {matrix.shape[0]:,} rows, but the .inter file's itemIDs run 0.."
                            f"{n_items - 1} ({n_items:,} items): row i must be itemID i.",
                            hint="Use the feature files that came with this .inter file.")
        found[modality] = (path.resolve(), int(matrix.shape[0]), int(matrix.shape[1]))
    return found


def _original_ids(src: Path, n_items: int, notes: list[str]) -> list[str] | None:
    """itemID -> original id from i_id_mapping.csv (tab-separated, itemID + one id column); None if unusable."""
    path = src / ITEM_MAPPING
    if not path.is_file():
        return None
    try:
        mapping = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        mapping.columns = [str(c).strip() for c in mapping.columns]
        other = [c for c in mapping.columns if c != "itemID"]
        ids = pd.to_numeric(mapping["itemID"].str.strip(), errors="raise").astype("int64")
        column = mapping[other[0]].str.strip()
    except (KeyError, IndexError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        notes.append(f"{path.name} was not used: it is not a tab-separated table with an itemID column and an "
                     "original-id column (item_info has no original_id column).")
        return None
    original = dict(zip(ids, column, strict=True))
    return [original.get(i, "") for i in range(n_items)]


def _holdout_strategy(parts: SplitFrames) -> str:
    """temporal_user when every user's validation/test rows follow their train rows in time (and test follows
    validation), else stratified: what `mmrec train` would mirror if it had to carve validation out of train."""
    if "timestamp" not in parts.train.columns or parts.train.empty:
        return "stratified"
    last = parts.train.groupby("user_id")["timestamp"].max()
    for part in (parts.val, parts.test):
        before = part["user_id"].map(last)
        if (part["timestamp"] < before).any():
            return "stratified"
    if len(parts.val) and len(parts.test):
        last_val = parts.val.groupby("user_id")["timestamp"].max()
        if (parts.test["timestamp"] < parts.test["user_id"].map(last_val)).any():
            return "stratified"
    return "temporal_user"


def import_mmrec(src: Path, out_dir: Path, data: DataSettings, name: str | None = None,
                 keep_cold_users: bool = False, progress: ProgressCallback = null_progress,
                 force: bool = False) -> MmrecImport:
    """Write item_info, interactions, item_ids.txt, the split (splits/), dataset.json and mmrec.yaml under
    `out_dir`; every check runs before anything is written (input files there that no import wrote are refused
    unless `force`)."""
    src, out_dir = Path(src), Path(out_dir)
    names = (data.item_info_file, data.interactions_file)
    refuse_own_files(out_dir, names, force, "mmrec data import mmrec")
    inter_file = find_inter_file(src, name)
    progress(ProgressEvent("import", message=f"Reading {inter_file}", done=True))
    raw, notes = read_inter(inter_file)
    n_items = int(raw["item_id"].max()) + 1
    vectors = check_vectors(src, n_items)
    frame, duplicates = _deduplicate(raw)
    result = MmrecImport(out_dir, inter_file, len(raw), len(frame), int(frame["user_id"].nunique()), n_items,
                         duplicates=duplicates, vectors=vectors, cold_users_kept=keep_cold_users, notes=notes)
    result.items_without_interactions = n_items - int(frame["item_id"].nunique())
    result.labels = {PART_NAMES[k]: int((raw["x_label"] == k).sum()) for k in PART_NAMES}
    if duplicates:
        notes.append(f"{duplicates:,} row(s) repeat a user-item pair: each pair is one interaction, its latest row "
                     "(as preprocess keeps it), so the split holds no pair twice.")

    columns = ["user_id", "item_id"] + [c for c in ("timestamp", "rating") if c in frame.columns]
    interactions = frame[columns].astype({"user_id": str, "item_id": str})
    parts = {PART_NAMES[k]: interactions[(frame["x_label"] == k).to_numpy()].reset_index(drop=True)
             for k in PART_NAMES}
    train_users = set(parts["train"]["user_id"])
    cold_users: set[str] = set()
    for part in ("val", "test"):
        cold = ~parts[part]["user_id"].isin(train_users)
        result.cold_rows[part] = int(cold.sum())
        cold_users |= set(parts[part].loc[cold, "user_id"])
        if not keep_cold_users:
            parts[part] = parts[part][~cold].reset_index(drop=True)
    result.cold_users = len(cold_users)
    if cold_users:
        rows = f"{sum(result.cold_rows.values()):,} validation/test row(s) of {len(cold_users):,} user(s) without " \
               "training rows"
        notes.append(f"{rows} are kept (--keep-cold-users): evaluate scores those users with the cold-user fallback "
                     "and counts them (test_cold_users); MMRec's loader drops them." if keep_cold_users else
                     f"{rows} are left out of val.csv/test.csv, as MMRec's loader drops them "
                     "(filter_out_cod_start_users); they stay in interactions.csv. --keep-cold-users keeps them.")
    frames = SplitFrames(parts["train"], parts["val"], parts["test"])
    result.parts = {part: len(rows) for part, rows in frames.parts().items()}
    result.strategy = _holdout_strategy(frames)
    notes.append("The format has no images and no item text: preprocess counts every item as lacking its image "
                 "and text, as expected" + ("; the vectors come from `mmrec cache import`." if vectors else
                               ", and with no feature file the model learns from the interactions alone."))
    if "rating" in frame.columns and frame["rating"].nunique() > 1:
        notes.append(f"Ratings run from {frame['rating'].min():g} to {frame['rating'].max():g}; preprocess will say "
                     "every rated row counts as a positive. That is MMRec's protocol: keep "
                     "data.positive_rating_threshold unset, as the split holds every row (a threshold would drop rows "
                     "from the processed interactions, not from the split).")
    if result.parts["val"] == 0:
        notes.append(f"The dataset has no validation rows: `mmrec train` holds out part of train instead "
                     f"(training.holdout_ratio, {result.strategy} like this split).")
    if result.parts["test"] == 0:
        notes.append("The dataset has no test rows: `mmrec evaluate` has nothing to score.")

    items = pd.DataFrame({"item_id": [str(i) for i in range(n_items)], "title": "", "description": ""})
    original = _original_ids(src, n_items, notes)
    if original is not None:
        items["original_id"] = original
        result.original_ids = True

    # Written only now that every check has passed.
    out_dir.mkdir(parents=True, exist_ok=True)
    # The format has no images: an empty folder says so (and preprocess finds the folder it looks for).
    (out_dir / data.images_subdir).mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / data.item_info_file) as tmp:
        items.to_csv(tmp, index=False)
    with atomic_path(out_dir / data.interactions_file) as tmp:
        interactions.to_csv(tmp, index=False)
    result.item_ids_path = out_dir.resolve() / ITEM_IDS_FILE
    atomic_write_text(result.item_ids_path, "".join(f"{i}\n" for i in range(n_items)))
    result.splits_dir = out_dir.resolve() / SPLITS_SUBDIR
    save_split(frames, result.splits_dir)
    atomic_write_json(result.splits_dir / REPORT_FILE, _split_report(result, frames, inter_file))
    result.config_path, kept = import_config_target(out_dir.resolve())
    if kept:
        result.notes.append(kept_config_note(out_dir.resolve(), result.config_path, kept))
    result.next_commands = _next_commands(result)
    config = _config_yaml(result)
    atomic_write_text(result.config_path, config)
    atomic_write_json(out_dir / "dataset.json", {**_dataset_record(result), "config_sha256": config_sha256(config),
                                                 "config_file": result.config_path.name,
                                                 **files_record(out_dir, names)})
    return result


def _split_report(result: MmrecImport, frames: SplitFrames, inter_file: Path) -> dict:
    """split_report.json as `mmrec split` writes it, for the dataset's own split: no seed, the shares as ratios,
    `input_sha256` null (no processed interactions existed: the stale-split check does not apply)."""
    total = max(1, sum(result.parts.values()))
    shares = [round(result.parts[p] / total, 6) for p in ("train", "val", "test")]
    settings = SplitSettings.model_construct(strategy=result.strategy, seed=None, sample_n=None,
                                             train_ratio=shares[0], val_ratio=shares[1], test_ratio=shares[2])
    report = split_report(frames, settings, result.interactions, None)
    report["source"] = {"made_by": "mmrec data import mmrec", "file": str(inter_file.resolve()),
                        "column": "x_label", "cold_users_kept": result.cold_users_kept,
                        "cold_rows_left_out": {} if result.cold_users_kept else result.cold_rows}
    report["notes"] = [
        f"The dataset's own split (x_label of {inter_file.name}), not made by `mmrec split` (which would replace "
        f"it). The strategy {result.strategy!r} is what train mirrors if it must hold out validation rows.",
    ]
    if result.cold_users:
        what = "kept (--keep-cold-users)" if result.cold_users_kept else "left out, as MMRec's loader drops them"
        report["notes"].append(f"{sum(result.cold_rows.values()):,} validation/test row(s) of {result.cold_users:,} "
                               f"user(s) without training rows were {what}.")
    return report


def _next_commands(result: MmrecImport) -> list[str]:
    config = shlex.quote(str(result.config_path))
    commands = [f"mmrec preprocess --config {config} --skip-caching"]
    for modality, (path, _, _) in result.vectors.items():
        commands.append(f"mmrec cache import --modality {modality} {shlex.quote(str(path))} "
                        f"--ids {shlex.quote(str(result.item_ids_path))} --config {config}")
    commands += [f"mmrec train --config {config}", f"mmrec evaluate --config {config} --compare",
                 f"mmrec recommend --config {config} --sample-users 3"]
    return commands


def _dataset_record(result: MmrecImport) -> dict:
    return {
        "source": str(result.inter_file.parent.resolve()),
        "format": "MMRec (enoche/MMRec)",
        "inter_file": result.inter_file.name,
        "inter_sha256": sha256_file(result.inter_file),
        "rows_read": result.rows_read,
        "interactions": result.interactions,
        "duplicate_pairs": result.duplicates,
        "users": result.users,
        "items": result.items,
        "items_without_interactions": result.items_without_interactions,
        "x_label_rows": result.labels,
        "split_rows": result.parts,
        "cold_users": result.cold_users,
        "cold_rows": result.cold_rows,
        "cold_users_kept": result.cold_users_kept,
        "vectors": {m: {"file": str(p), "rows": rows, "dim": dim} for m, (p, rows, dim) in result.vectors.items()},
        "item_ids": str(result.item_ids_path),
        "original_ids": ITEM_MAPPING if result.original_ids else None,
        "notes": result.notes,
        "next": result.next_commands,
    }


def _config_yaml(result: MmrecImport) -> str:
    out_dir = result.out_dir.resolve()

    def q(path: str) -> str:  # a JSON string is a valid double-quoted YAML scalar
        return json.dumps(str(out_dir / path) if path else str(out_dir))

    lines = [
        f"# Written by `mmrec data import mmrec` from {result.inter_file.resolve()}.",
        "# Next:",
        *[f"#   {command}" for command in result.next_commands],
        "# splits/ holds the dataset's own split (x_label): do not run `mmrec split`, which would replace it.",
        "paths:",
        f"  data_dir: {q('')}",
        f"  processed_dir: {q('processed')}",
        f"  splits_dir: {q(SPLITS_SUBDIR)}",
        f"  cache_dir: {q('cache')}",
        f"  checkpoint_dir: {q('models/checkpoints')}",
        f"  results_dir: {q('results')}",
        "data:",
        _commented("  numerical_features_cols: []", "the MMRec format has no numeric item columns"),
        _commented("  positive_rating_threshold: null", "every row is a positive, as in MMRec (the split holds "
                   "every row)"),
    ]
    if result.vectors:
        lines.append("features:")
        lines += [_commented(f"  {modality}_backbone: imported", f"{path.name} ({dim}-d), via `mmrec cache import`")
                  for modality, (path, _, dim) in result.vectors.items()]
    absent = [m for m in VECTOR_FILES if m not in result.vectors]
    if absent:
        lines.append("model:")
        lines += [_commented(f"  use_{m}: false", f"no {VECTOR_FILES[m]} in the dataset folder") for m in absent]
    return "\n".join(lines) + "\n"


def _commented(line: str, comment: str) -> str:
    return f"{line:<36} # {comment}"
