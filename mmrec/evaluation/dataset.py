"""Turn train/val/test interaction frames into the matrices evaluation needs, counting what is odd.

Rows are the test users (in first-appearance order), columns the catalogue (items.parquet order).
Nothing is dropped silently: test rows on items outside the catalogue, duplicate test pairs, test
users unknown to training and test interactions on items never seen in training are all counted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mmrec.data.interactions import TIMESTAMP_RANGE, parse_timestamps, read_ratings
from mmrec.data.matrices import held_out_unseen, interaction_matrix
from mmrec.data.raw_tables import read_table
from mmrec.errors import DataError
from mmrec.fileio import not_a_file
from mmrec.evaluation.full_ranking import relevant_among
from mmrec.settings import DataSettings

REQUIRED_COLUMNS = ("user_id", "item_id")


def read_interactions_file(path: Path, role: str, data: DataSettings | None = None,
                           notes: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV/parquet interaction file (user_id, item_id as str); a clear DataError if unusable.

    With `data`, the file is read as preprocess reads interactions.csv: a column missing under its
    canonical name (user_id, item_id, timestamp, rating) is read under its data.*_column name, and with
    data.positive_rating_threshold and a rating column, the rows below it (or without a number) are left
    out, counted in `notes`. A file mmrec wrote (a split) holds the canonical names and only positives.
    """
    path = Path(os.path.expanduser(path))
    if problem := not_a_file(path):
        raise DataError(f"The {role} file {path} {problem}.",
                        hint=f"Pass an existing CSV or parquet file as {role} data.")
    names = {c: getattr(data, f"{c}_column") for c in ("user_id", "item_id", "timestamp", "rating")} if data else {}
    if data and data.interactions_item_id_column:
        names["item_id"] = data.interactions_item_id_column
    # As preprocess reads its files: every column as text (ids such as NA, null or nan are ids), any separator,
    # compressed or not; a line that does not fit the header is refused, naming it.
    table = read_table(path, f"The {role}", encoding=data.encoding if data else "utf-8")
    if notes is not None:
        notes.extend(table.notes)
    frame = table.frame
    frame = frame.rename(columns={source: canonical for canonical, source in names.items()
                                  if canonical not in frame.columns and source in frame.columns})
    frame = validate_interactions(frame, f"{role} file {path}", notes)
    if "timestamp" in frame.columns:
        frame = _timestamps_read(frame, path, role, data.timestamp_format if data else None, notes)
    threshold = data.positive_rating_threshold if data else None
    if threshold is not None and "rating" in frame.columns:
        said: list[str] = []  # read as preprocess reads them: decimal commas, data.rating_values' words
        ratings = read_ratings(frame["rating"], data.rating_values, said, data.decimal_separator)
        # As preprocess: a row without a number is a positive where data.unrated says so (an order never reviewed).
        positive = ((ratings >= threshold) | (ratings.isna() & (data.unrated == "positive"))).to_numpy()
        if notes is not None:
            notes.extend(f"{role.capitalize()} file {path.name}: {note}" for note in said)
        if not positive.all():
            if notes is not None:
                notes.append(f"{int((~positive).sum()):,} of the {len(frame):,} rows of the {role} file {path.name} "
                             f"rate below data.positive_rating_threshold ({threshold:g})"
                             + (" or have no number" if data.unrated != "positive" else "")
                             + ": left out, as preprocess leaves them out of the interactions.")
            frame = frame[positive].reset_index(drop=True)
            if frame.empty:
                raise DataError(f"No row of the {role} file {path} rates at or above "
                                f"data.positive_rating_threshold ({threshold:g}).",
                                hint="Lower the threshold, or pass a file of positives.")
    return frame


def _timestamps_read(frame: pd.DataFrame, path: Path, role: str, timestamp_format: str | None,
                     notes: list[str] | None) -> pd.DataFrame:
    """The time column as preprocess reads it (unix seconds as int64): as text, 999999999 sorted after 1000000000,
    so histories, recency and transitions followed another order than training's. Rows whose time cannot be read
    are left out and counted, as preprocess leaves them out. A column of numbers that data.timestamp_format reads
    nowhere (a split mmrec wrote, in unix seconds, under a format for the raw file) is read as unix seconds."""
    seconds = parse_timestamps(frame["timestamp"], timestamp_format)
    if timestamp_format is not None and not seconds.between(*TIMESTAMP_RANGE).any() \
            and pd.to_numeric(frame["timestamp"], errors="coerce").notna().all():
        seconds = parse_timestamps(frame["timestamp"], None)
    bad = (~seconds.between(*TIMESTAMP_RANGE)).to_numpy()  # unreadable (NaN) or no date (as preprocess drops it)
    if bad.all():
        raise DataError(f"No time in the timestamp column of the {role} file {path} can be read (e.g. "
                        f"{frame['timestamp'].iloc[0]!r}).",
                        hint="Write unix seconds or ISO-8601 times (or what data.timestamp_format says), or leave "
                             "the column out.")
    if bad.any():
        message = (f"{int(bad.sum()):,} row(s) of the {role} file {path.name} have a time that cannot be read (e.g. "
                   f"{frame.loc[bad, 'timestamp'].iloc[0]!r})")
        if notes is None:
            raise DataError(f"{message}.", hint="Fix or remove those rows.")
        notes.append(f"{message}: left out, as preprocess leaves them out.")
        frame, seconds = frame[~bad].reset_index(drop=True), seconds[~bad].reset_index(drop=True)
    return frame.assign(timestamp=np.floor(seconds.to_numpy()).astype("int64"))


def validate_interactions(frame: pd.DataFrame, what: str, notes: list[str] | None = None) -> pd.DataFrame:
    """Check the columns and emptiness of an interaction table; ids become str. With `notes` (a file the user
    passed), rows with an empty id are left out and counted there, as preprocess drops them (`missing_id`);
    without (a split mmrec wrote, which has none), they are an error."""
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise DataError(
            f"The {what} lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, frame.columns)) or 'none'}).",
            hint="Interaction files need a header with user_id and item_id (or the columns data.user_id_column "
                 "and data.item_id_column name).",
        )
    if frame.empty:
        raise DataError(f"The {what} has no interactions.", hint="Check the file, or re-run `mmrec split`.")
    frame = frame.copy()
    for column in REQUIRED_COLUMNS:  # stripped as preprocess strips them: ' a1' and 'a1' are one id
        frame[column] = frame[column].astype("string").str.strip()
    empty = frame["user_id"].isna() | frame["item_id"].isna() | (frame["user_id"] == "") | (frame["item_id"] == "")
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0])
        message = (f"The {what} has {int(empty.sum()):,} row(s) with an empty user_id or item_id (the first: "
                   f"row {first + 1:,} of the data)")
        if notes is None or empty.all():
            raise DataError(f"{message}.", hint="Remove or fill those rows.")
        notes.append(f"{message}: left out, as preprocess leaves them out.")
        frame = frame[~empty.to_numpy()].reset_index(drop=True)
    frame["user_id"] = frame["user_id"].astype(str)
    frame["item_id"] = frame["item_id"].astype(str)
    return frame


@dataclass
class EvaluationData:
    """Held-out positives and seen-item masks over the catalogue, with the anomaly counts."""

    item_ids: list[str]
    user_ids: np.ndarray  # [n_users] str, the rows of relevant/exclude
    relevant: sp.csr_matrix  # [n_users, n_items] test positives
    exclude: sp.csr_matrix  # [n_users, n_items] train (+ val) items, masked when ranking
    cold_user_rows: np.ndarray  # rows whose user has no training interactions
    cold_items: np.ndarray  # catalogue indices with no training interactions
    train_popularity: np.ndarray  # [n_items] training interaction counts
    counts: dict[str, int] = field(default_factory=dict)
    # [n_users, n_items] the users' other known positives, not masked (the split's val when train is a file of the
    # user's): never drawn as sampled negatives; None: none
    known: sp.csr_matrix | None = None

    @property
    def not_negatives(self) -> sp.csr_matrix:
        """What sampled evaluation never draws as a user's negative, besides the test positives: the masked items
        and the other known positives."""
        return self.exclude if self.known is None else sp.csr_matrix(self.exclude + self.known)

    @property
    def relevant_cold(self) -> sp.csr_matrix:
        """Test positives restricted to cold items (items never seen in training)."""
        return relevant_among(self.relevant, self.cold_items)


def _columns(frame: pd.DataFrame, item_index: dict[str, int]) -> np.ndarray:
    return frame["item_id"].map(item_index).to_numpy()


def build_evaluation_data(
    train: pd.DataFrame, test: pd.DataFrame, item_ids: Sequence[str], also_seen: Sequence[pd.DataFrame] = (),
    known: Sequence[pd.DataFrame] = (),
) -> EvaluationData:
    """Matrices for ranking `test` positives against the catalogue; `also_seen` (e.g. val) is masked too; `known`
    (val, when not masked) holds positives of the users that are never sampled as their negatives."""
    item_ids = [str(i) for i in item_ids]
    item_index = {item: j for j, item in enumerate(item_ids)}
    test_cols = _columns(test, item_index)
    in_catalogue = ~pd.isna(test_cols)
    kept = test[in_catalogue]
    if kept.empty:
        raise DataError(
            f"None of the {len(test)} test interactions is on a catalogue item.",
            hint="The test file and items.parquet must come from the same preprocessing run.",
        )
    user_ids = pd.unique(kept["user_id"])
    user_index = {user: i for i, user in enumerate(user_ids)}
    rows = kept["user_id"].map(user_index).to_numpy(np.int64)
    cols = test_cols[in_catalogue].astype(np.int64)
    relevant = interaction_matrix(rows, cols, len(user_ids), len(item_ids))

    seen = pd.concat([train, *also_seen], ignore_index=True)
    seen_cols = _columns(seen, item_index)
    seen_rows = seen["user_id"].map(user_index).to_numpy()
    usable = ~pd.isna(seen_cols) & ~pd.isna(seen_rows)
    exclude = interaction_matrix(
        seen_rows[usable].astype(np.int64), seen_cols[usable].astype(np.int64), len(user_ids), len(item_ids)
    )
    known_matrix = None
    if known:
        others = pd.concat(list(known), ignore_index=True)
        other_cols, other_rows = _columns(others, item_index), others["user_id"].map(user_index).to_numpy()
        usable = ~pd.isna(other_cols) & ~pd.isna(other_rows)
        known_matrix = interaction_matrix(other_rows[usable].astype(np.int64), other_cols[usable].astype(np.int64),
                                          len(user_ids), len(item_ids))
    # A pair both seen and held out (repeated consumption, a test file that overlaps train) is not a test
    # positive: recommend never serves a user an item they have, so no ranking could earn it. Counted.
    relevant, repeated = held_out_unseen(relevant, exclude)
    if relevant.nnz == 0:
        raise DataError(
            f"Every one of the {repeated:,} test pairs is one the user already has in the training data (or "
            "validation): recommendations never hold those, so nothing is left to evaluate.",
            hint="Test on interactions that are not in the training data (the split's test.csv is).",
        )

    train_cols = _columns(train, item_index)
    train_cols = train_cols[~pd.isna(train_cols)].astype(np.int64)
    popularity = np.bincount(train_cols, minlength=len(item_ids)).astype(np.float32)
    train_users = set(train["user_id"])
    cold_user_rows = np.array([i for i, u in enumerate(user_ids) if u not in train_users], dtype=np.int64)
    cold_items = np.flatnonzero(popularity == 0)
    cold_mask = np.isin(cols, cold_items)
    counts = {
        "test_interactions": len(test),
        "test_unknown_items_dropped": int((~in_catalogue).sum()),
        "test_duplicate_pairs": int(len(cols) - relevant.nnz - repeated),
        "test_pairs_seen_in_training": repeated,
        "test_users_without_new_items": int(((np.diff(relevant.indptr) == 0)).sum()),
        "test_users": len(user_ids),
        "test_cold_users": len(cold_user_rows),
        "test_cold_item_interactions": int(cold_mask.sum()),
        "catalogue_items": len(item_ids),
        "catalogue_cold_items": len(cold_items),
        "train_interactions_outside_catalogue": int((~train["item_id"].isin(item_index)).sum()),
    }
    return EvaluationData(
        item_ids=item_ids,
        user_ids=np.asarray(user_ids, dtype=object),
        relevant=relevant,
        exclude=exclude,
        cold_user_rows=cold_user_rows,
        cold_items=cold_items,
        train_popularity=popularity,
        counts=counts,
        known=known_matrix,
    )
