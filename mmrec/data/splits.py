"""Train/validation/test splits of interactions, leakage checks, and the split CSV files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.errors import DataError, SplitError
from mmrec.fileio import atomic_path, atomic_write_json, not_a_file, read_json, remove_stale_temps, sha256_file
from mmrec.settings import SplitSettings

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "val", "test")
TIME_STRATEGIES = ("temporal", "temporal_user")
REPORT_FILE = "split_report.json"
FILES_MANIFEST = "split_files.json"  # sha256 of the parts one save_split wrote


@dataclass
class SplitFrames:
    """The three parts of a split (same columns as the processed interactions)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "val": self.val, "test": self.test}


class Draws:
    """Seeded uniform draws in [0, 1) keyed by what they are drawn for (a row's user and item, a user, an
    entity), not by position: a split made again after rows were added or removed leaves every user the new rows
    do not touch as it was, so nightly metrics stay comparable (one appended row reshuffled a third of the users
    when the draws followed row order)."""

    def __init__(self, seed: int) -> None:
        self.key = hashlib.sha256(f"mmrec-split:{seed}".encode()).hexdigest()[:16]  # pandas' 16-byte hash key

    def of(self, values: pd.DataFrame | pd.Series, salt: str) -> np.ndarray:
        """One draw per row of `values`, from its values (as text) and `salt` (what the draw is for)."""
        frame = values.to_frame() if isinstance(values, pd.Series) else values
        keyed = frame.astype(str).reset_index(drop=True).assign(_draw_for=salt)
        hashed = pd.util.hash_pandas_object(keyed, index=False, hash_key=self.key).to_numpy()
        return (hashed >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def of_rows(self, frame: pd.DataFrame) -> np.ndarray:
        return self.of(frame[["user_id", "item_id"]], "row")


def _counts(n: np.ndarray, val_ratio: float, test_ratio: float,
            draws: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-group (n_val, n_test), leaving at least one row for training. Rounded to the nearest, or with `draws`
    (uniform, one per group for val and one for test) up or down at random in proportion (0.5 -> 1 for half the
    groups): per-user shares then add up to the ratio even where every user has a handful of rows (a user with 5
    rows and 0.1 to test: 0 rows, always, when rounded, so a catalogue of such users got an empty test part)."""

    def rounded(share: np.ndarray, draw: np.ndarray | None) -> np.ndarray:
        if draw is None:
            return np.round(share).astype(int)
        low = np.floor(share)
        return (low + (draw < share - low)).astype(int)

    val_draws, test_draws = draws if draws is not None else (None, None)
    n_test = np.minimum(rounded(n * test_ratio, test_draws), np.maximum(n - 1, 0))
    n_val = np.minimum(rounded(n * val_ratio, val_draws), np.maximum(n - 1 - n_test, 0))
    return n_val, n_test


def _assign_by_rank(rank: np.ndarray, n_val: np.ndarray, n_test: np.ndarray) -> np.ndarray:
    """rank 0 = the row most eligible for test (latest / random first); then val; the rest train."""
    labels = np.full(len(rank), TRAIN, dtype=np.int8)
    labels[rank < n_test + n_val] = VAL
    labels[rank < n_test] = TEST
    return labels


def _per_user(frame: pd.DataFrame, key: np.ndarray, val_ratio: float, test_ratio: float,
              draws: Draws) -> np.ndarray:
    """Within each user, rows with the largest `key` go to test, then val; at least one stays in train. Each
    user's counts are the ratios of their rows, rounded at random in proportion (`_counts`, draws per user)."""
    keyed = pd.DataFrame({"user": frame["user_id"].to_numpy(), "key": key})
    rank = keyed.groupby("user")["key"].rank(method="first", ascending=False).to_numpy().astype(int) - 1
    codes, users = pd.factorize(keyed["user"])
    per_user = pd.Series(users)
    n_val, n_test = _counts(np.bincount(codes), val_ratio, test_ratio,
                            (draws.of(per_user, "val count"), draws.of(per_user, "test count")))
    return _assign_by_rank(rank, n_val[codes], n_test[codes])


def _time_key(frame: pd.DataFrame) -> np.ndarray:
    # Row position breaks timestamp ties, so equal times keep file order (deterministic).
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy()))
    key = np.empty(len(frame), dtype=np.int64)
    key[order] = np.arange(len(frame))
    return key


def _stratified(frame: pd.DataFrame, s: SplitSettings, draws: Draws) -> np.ndarray:
    return _per_user(frame, draws.of_rows(frame), s.val_ratio, s.test_ratio, draws)


def _temporal(frame: pd.DataFrame, s: SplitSettings, draws: Draws) -> np.ndarray:
    key = _time_key(frame)  # 0..n-1 in time order
    n = len(frame)
    n_val, n_test = _counts(np.array([n]), s.val_ratio, s.test_ratio)
    return _assign_by_rank(n - 1 - key, n_val[0], n_test[0])


def _temporal_user(frame: pd.DataFrame, s: SplitSettings, draws: Draws) -> np.ndarray:
    return _per_user(frame, _time_key(frame).astype(float), s.val_ratio, s.test_ratio, draws)


def _leave_one_out(frame: pd.DataFrame, s: SplitSettings, draws: Draws) -> np.ndarray:
    key = _time_key(frame).astype(float) if "timestamp" in frame.columns else draws.of_rows(frame)
    keyed = pd.DataFrame({"user": frame["user_id"].to_numpy(), "key": key})
    rank = keyed.groupby("user")["key"].rank(method="first", ascending=False).to_numpy().astype(int) - 1
    n = keyed.groupby("user")["key"].transform("size").to_numpy()
    n_test = (n >= 2).astype(int)  # the last item, if the user keeps one for training
    n_val = ((n >= 3) & (s.val_ratio > 0)).astype(int)
    return _assign_by_rank(rank, n_val, n_test)


def _by_entity(column: str) -> Callable[[pd.DataFrame, SplitSettings, Draws], np.ndarray]:
    def split(frame: pd.DataFrame, s: SplitSettings, draws: Draws) -> np.ndarray:
        entities = np.array(sorted(frame[column].unique()), dtype=object)
        entities = entities[np.argsort(draws.of(pd.Series(entities), column), kind="stable")]
        n_val, n_test = _counts(np.array([len(entities)]), s.val_ratio, s.test_ratio)
        labels = _assign_by_rank(np.arange(len(entities)), n_val[0], n_test[0])
        return pd.Series(labels, index=entities).reindex(frame[column].to_numpy()).to_numpy().astype(np.int8)

    return split


STRATEGIES: dict[str, Callable[[pd.DataFrame, SplitSettings, Draws], np.ndarray]] = {
    "stratified": _stratified,
    "temporal": _temporal,
    "temporal_user": _temporal_user,
    "user": _by_entity("user_id"),
    "item": _by_entity("item_id"),
    "leave_one_out": _leave_one_out,
}


def split_interactions(frame: pd.DataFrame, settings: SplitSettings) -> SplitFrames:
    """Split `frame` per settings.strategy (seeded); raises SplitError on leakage."""
    if frame.empty:
        raise DataError(
            "There are no interactions to split.", hint="Run `mmrec preprocess` and check its report."
        )
    if settings.strategy in TIME_STRATEGIES and "timestamp" not in frame.columns:
        raise DataError(
            f"Split strategy {settings.strategy!r} needs a timestamp column, and the interactions have none.",
            hint="If the interactions file has a time column under another name, set data.timestamp_column to it "
                 "and preprocess again; else use --strategy stratified, user, item or leave_one_out (random order "
                 "without timestamps).",
        )
    frame = frame.reset_index(drop=True)
    if settings.sample_n is not None and settings.sample_n < len(frame):
        frame = (
            frame.sample(n=settings.sample_n, random_state=settings.seed).sort_index().reset_index(drop=True)
        )
    repeated = frame.duplicated(["user_id", "item_id"])
    if repeated.any():  # one copy in train and one in test would be leakage, wherever the split put them
        example = frame[repeated].iloc[0]
        raise SplitError(
            f"Leakage: {int(repeated.sum())} interaction(s) repeat a user-item pair (e.g. user "
            f"{example['user_id']!r}, item {example['item_id']!r}), so a split could put one copy in train and "
            "another in validation or test.",
            hint="Keep preprocess.drop_duplicates: true so each user-item pair occurs once.")
    labels = STRATEGIES[settings.strategy](frame, settings, Draws(settings.seed))
    parts = [frame[labels == code].reset_index(drop=True) for code in (TRAIN, VAL, TEST)]
    frames = SplitFrames(*parts)
    check_leakage(frames, settings.strategy)
    return frames


def holdout_validation(train: pd.DataFrame, ratio: float, strategy: str, seed: int
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train', val): a validation part carved out of `train` for a split that has none.

    The holdout mirrors the split's own strategy: per user, `ratio` of each user's rows at random
    (`stratified`, and any unknown strategy), the latest ones (`temporal_user`; `temporal` takes the
    latest `ratio` of all rows), whole users or items (`user`, `item`), or each user's last row
    (`leave_one_out`). Per-user holdouts leave every user at least one training row. Time-ordered
    strategies without a timestamp column fall back to `stratified`."""
    frame = train.reset_index(drop=True)
    if strategy not in STRATEGIES or (strategy in TIME_STRATEGIES + ("leave_one_out",)
                                      and "timestamp" not in frame.columns):
        strategy = "stratified"
    draws = Draws(seed)
    if strategy == "leave_one_out":  # its test row (each user's last, users with >= 2 rows) becomes val
        labels = _leave_one_out(frame, SplitSettings.model_construct(val_ratio=0.0), draws)
        labels = np.where(labels == TEST, VAL, TRAIN)
    else:  # no test share: n_test = 0 everywhere
        settings = SplitSettings.model_construct(strategy=strategy, train_ratio=1.0 - ratio, val_ratio=ratio,
                                                 test_ratio=0.0, seed=seed, sample_n=None)
        labels = STRATEGIES[strategy](frame, settings, draws)
    return (frame[labels == TRAIN].reset_index(drop=True), frame[labels == VAL].reset_index(drop=True))


def _pairs(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(frame[["user_id", "item_id"]])


def check_leakage(frames: SplitFrames, strategy: str) -> None:
    """SplitError if a val/test user-item pair is in train, or (temporal) val/test precede train."""
    train_pairs = _pairs(frames.train)
    for name, part in (("val", frames.val), ("test", frames.test)):
        shared = _pairs(part).isin(train_pairs)
        if shared.any():
            example = part[shared].iloc[0]
            raise SplitError(
                f"Leakage: {int(shared.sum())} {name} interaction(s) also appear in train "
                f"(e.g. user {example['user_id']!r}, item {example['item_id']!r}).",
                hint="Keep preprocess.drop_duplicates: true so each user-item pair occurs once.",
            )
    if strategy == "temporal" and len(frames.train):
        train_end = frames.train["timestamp"].max()
        for name, part in (("val", frames.val), ("test", frames.test)):
            if len(part) and part["timestamp"].min() < train_end:
                raise SplitError(f"Leakage: {name} has interactions earlier than the end of train.")
    if strategy == "temporal_user" and len(frames.train):
        train_end = frames.train.groupby("user_id")["timestamp"].max()
        for name, part in (("val", frames.val), ("test", frames.test)):
            if len(part):
                earlier = (
                    part["timestamp"].to_numpy() < part["user_id"].map(train_end).fillna(-np.inf).to_numpy()
                )
                if earlier.any():
                    raise SplitError(
                        f"Leakage: {int(earlier.sum())} {name} interaction(s) precede their user's train."
                    )


def _time_range(part: pd.DataFrame) -> list[str] | None:
    if "timestamp" not in part.columns or part.empty:
        return None
    return [_iso(int(t)) for t in (part["timestamp"].min(), part["timestamp"].max())]


def _iso(seconds: int) -> str:
    """ISO-8601 UTC of unix `seconds`; the number itself where no calendar date exists (preprocess drops such
    rows since timestamp_out_of_range, but a table processed before may still hold them)."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (unix seconds, outside years 1-9999)"


def split_report(frames: SplitFrames, settings: SplitSettings, input_rows: int,
                 input_sha256: str | None = None) -> dict:
    """Counts, users/items per part, cold users/items (absent from train) and time ranges; `input_sha256`:
    the processed interactions table split (its manifest entry), so a later preprocess is noticed."""
    train_users, train_items = set(frames.train["user_id"]), set(frames.train["item_id"])
    report: dict = {
        "strategy": settings.strategy,
        "seed": settings.seed,
        "sample_n": settings.sample_n,
        "ratios": [settings.train_ratio, settings.val_ratio, settings.test_ratio],
        "input_interactions": input_rows,
        "input_sha256": input_sha256,
        "parts": {},
    }
    for name, part in frames.parts().items():
        users, items = set(part["user_id"]), set(part["item_id"])
        report["parts"][name] = {
            "interactions": len(part),
            "users": len(users),
            "items": len(items),
            "cold_users": len(users - train_users) if name != "train" else 0,
            "cold_items": len(items - train_items) if name != "train" else 0,
            "time_range": _time_range(part),
        }
    return report


def time_ties_note(frames: SplitFrames, strategy: str) -> str | None:
    """A note when a split by time had to order interactions of equal timestamps (file order decides, as
    `_time_key` breaks ties): every timestamp the same, or the cut falling inside a run of equal ones; None when
    time alone decided, or the strategy does not split by time."""
    parts = frames.parts()
    if strategy not in (*TIME_STRATEGIES, "leave_one_out") or "timestamp" not in frames.train.columns:
        return None
    held = pd.concat([frames.val, frames.test], ignore_index=True)
    if held.empty or frames.train.empty:
        return None
    stamps = pd.concat([part["timestamp"] for part in parts.values()], ignore_index=True)
    if stamps.nunique() == 1:
        return ("Every interaction has the same timestamp, so a split by time cannot order them: file order decided "
                "(the file's last rows went to test). Unless the file is in time order, use --strategy stratified.")
    if strategy == "temporal":  # two cuts: train | val, and val | test
        ties = []
        for before, after, between in ((frames.train, held, "train and the held-out parts"),
                                       (frames.val, frames.test, "validation and test")):
            if before.empty or after.empty or before["timestamp"].max() < (cut := after["timestamp"].min()):
                continue
            ties.append(f"{int((stamps == cut).sum()):,} interactions share the timestamp at the cut between "
                        f"{between} ({_iso(int(cut))})")
        return f"{'; '.join(ties)}: file order decided which side each went to." if ties else None

    def tied_users(before: pd.DataFrame, after: pd.DataFrame) -> set:
        """Users whose first row in `after` is not later than their last in `before`."""
        last, first = before.groupby("user_id")["timestamp"].max(), after.groupby("user_id")["timestamp"].min()
        both = first.index.intersection(last.index)
        return set(both[(first[both] <= last[both]).to_numpy()])

    with_train = tied_users(frames.train, held)
    test_with_val = tied_users(frames.val, frames.test)  # which of the two is the test row
    tied = len(with_train | test_with_val)
    if not tied:
        return None
    which = (f" ({len(with_train):,} with a training row, {len(test_with_val):,} a test row with a validation row, "
             "so file order also decided which is test)" if test_with_val else " with a training row")
    return (f"{tied:,} of the {held['user_id'].nunique():,} users with held-out rows have one at the same timestamp "
            f"as a row of theirs on the other side of the cut{which}: file order decided which was held out "
            "(timestamps of a coarse resolution, such as dates, or a batch import give many such ties).")


def read_split_report(splits_dir: Path) -> dict:
    """split_report.json of `splits_dir`; {} when there is none or it cannot be read (a hand-made split)."""
    try:
        report = json.loads((Path(splits_dir) / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def stale_split_note(splits_dir: Path, processed_dir: Path) -> str | None:
    """A note when the split in `splits_dir` was made from other processed interactions than `processed_dir`
    holds now (e.g. `mmrec preprocess` ran again with other filters); None when they match or it is unknown
    (a hand-made split, or one written before split reports recorded their input)."""
    from mmrec.data.tables import interactions_sha256

    report = read_split_report(splits_dir)
    recorded = report.get("input_sha256")
    current = interactions_sha256(processed_dir)
    if not recorded or not current or recorded == current:
        return None
    rows = report.get("input_interactions")
    then = f" ({rows:,} interactions then)" if isinstance(rows, int) else ""
    return (f"The split in {splits_dir} was made from other processed interactions than {processed_dir} holds "
            f"now{then}: `mmrec preprocess` ran again since. Run `mmrec split` again to split the current data.")


def save_split(frames: SplitFrames, splits_dir: Path) -> None:
    """Write train/val/test CSVs, each atomically, then FILES_MANIFEST (their sha256) atomically: a write killed
    between the parts leaves parts of two splits beside the previous manifest, which `load_split` refuses."""
    digests = {}
    for name, part in frames.parts().items():
        path = Path(splits_dir) / f"{name}.csv"
        remove_stale_temps(path)  # left by a killed split: one `mmrec split` writes a folder at a time
        with atomic_path(path) as tmp:
            part.to_csv(tmp, index=False)
        digests[path.name] = sha256_file(path)
    atomic_write_json(Path(splits_dir) / FILES_MANIFEST, digests)


def _check_manifest(splits_dir: Path, names: tuple[str, ...] | None = None) -> None:
    """DataError when the split files (`names`, default every one) are not the ones FILES_MANIFEST records (none
    recorded: nothing to check)."""
    manifest = Path(splits_dir) / FILES_MANIFEST
    if not manifest.is_file():
        return
    try:
        digests = read_json(manifest)
    except (OSError, ValueError):
        digests = None
    if not isinstance(digests, dict):
        digests = None
    changed = [name for name, digest in (digests or {}).items()  # a missing file: load_split says so (val: optional)
               if (names is None or name in names)
               and (Path(splits_dir) / name).is_file() and sha256_file(Path(splits_dir) / name) != digest]
    if digests is None or changed:
        raise DataError(
            f"The split files in {splits_dir} are not the ones `mmrec split` wrote together "
            f"({', '.join(changed) or FILES_MANIFEST} differ{'s' if len(changed) == 1 else ''} from {FILES_MANIFEST}):"
            " a split killed half-way or run twice at once leaves parts of two splits, whose test rows can be "
            "training rows.",
            hint=f"Run `mmrec split` again (with the same --config). If you replaced the files yourself, delete "
                 f"{manifest}.")


def load_split(splits_dir: Path, test: bool = True) -> SplitFrames:
    """Read train/val/test CSVs (ids as str); DataError hinting `mmrec split` when one is missing.
    val.csv is optional (a hand-made train/test split): without it val is empty, like a val.csv with no rows.
    `test` False: test.csv is not opened (training reads no test row; the test part is empty).
    Parts that are not the ones one `save_split` wrote together are refused (`_check_manifest`)."""
    read = SPLIT_NAMES if test else tuple(name for name in SPLIT_NAMES if name != "test")
    _check_manifest(Path(splits_dir), tuple(f"{name}.csv" for name in read))
    parts = []
    for name in SPLIT_NAMES:
        path = Path(splits_dir) / f"{name}.csv"
        if (name == "val" and not path.exists()) or name not in read:  # (a val.csv that is a folder is refused)
            parts.append(parts[0].iloc[:0].copy())
            continue
        if problem := not_a_file(path):
            raise DataError(
                f"Split file {path} {problem}.", hint="Run `mmrec split` first (with the same --config)."
            )
        try:
            frame = pd.read_csv(path, dtype={"user_id": str, "item_id": str}, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(
                f"Split file {path} cannot be read: {exc}", hint="Re-run `mmrec split`."
            ) from None
        if not {"user_id", "item_id"} <= set(frame.columns):
            raise DataError(f"Split file {path} lacks user_id/item_id columns.", hint="Re-run `mmrec split`.")
        frame["user_id"] = frame["user_id"].astype(str)
        frame["item_id"] = frame["item_id"].astype(str)
        if "timestamp" in frame.columns:
            frame["timestamp"] = frame["timestamp"].astype("int64")
        if "rating" in frame.columns:  # a blank cell is an unrated interaction preprocess kept (data.unrated)
            rating = pd.to_numeric(frame["rating"].replace("", np.nan), errors="coerce")
            bad = rating.isna() & frame["rating"].astype(str).str.strip().ne("")
            if bad.any():
                raise DataError(f"Split file {path} has {int(bad.sum()):,} rating(s) that are not numbers (e.g. "
                                f"{frame.loc[bad, 'rating'].iloc[0]!r}).", hint="Re-run `mmrec split`.")
            frame["rating"] = rating.astype("float64")
        parts.append(frame)
    return SplitFrames(*parts)
