"""Interaction cleaning: ids as strings, bad rows and duplicates counted, unknown items, k-core."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

import pandas as pd

from mmrec.data.drops import describe_drops
from mmrec.data.ids import (
    catalogue_reason,
    mangled_ids_notes,
    unicode_forms_note,
    unicode_matches,
    unicode_spellings,
)
from mmrec.data.numeric import DECIMAL_COMMA, decimal_comma_column
from mmrec.errors import DataError
from mmrec.settings import PreprocessSettings

REQUIRED_COLUMNS = ("user_id", "item_id")
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
# Unix seconds a calendar date exists for (years 1-9999, what datetime and ISO-8601 can write); numbers in finer
# units are converted before (_FINER_UNITS).
TIMESTAMP_RANGE = (-62_135_596_800.0, 253_402_300_799.0)
# Spreadsheet serial dates: days since 1899-12-30 (day 25,569 is 1970-01-01). 20,000-80,000 spans 1954-2119;
# read as unix seconds these are moments of 1 January 1970, which real timestamps hardly ever are.
EXCEL_EPOCH_DAYS = 25_569.0
SERIAL_DAYS = (20_000.0, 80_000.0)
# What exports write for no value (SQL NULL, pandas NaN, R NA): a missing time, not a date in another format.
MISSING_MARKERS = ("", "nan", "nat", "null", "none", "na", "n/a", "-")
_NO_ROWS_HINTS = {  # drop reason -> what to change, shown when nothing is left
    "missing_id": "every row needs a user_id and an item_id",
    "missing_timestamp": "fill in the empty timestamps, or leave the timestamp column out of the file to train "
    "without times",
    "bad_timestamp": "timestamps must be unix seconds or ISO-8601 (e.g. 2024-03-01T12:00:00Z), or what "
    "data.timestamp_format says (e.g. '%d/%m/%Y'; 'excel' for spreadsheet serial days)",
    "timestamp_out_of_range": "timestamps must be unix times (seconds, or milliseconds, microseconds or "
    "nanoseconds of 1973 on) within years 1-9999",
    "bad_rating": "ratings must be numbers",
    "unsafe_user_id": "user ids must not contain control characters",
    "unsafe_item_id": "item ids must not contain control characters (see item_info's unsafe_id drops)",
    "unknown_item": "item_id values must match the item_id column of item_info",
    "below_threshold": "lower data.positive_rating_threshold",
    "k_core": "lower preprocess.min_user_interactions / preprocess.min_item_interactions",
}


RATING_VALUES_SHOWN = 20


def rating_values(ratings: pd.Series) -> dict[str, float]:
    """{value: rows} of numeric ratings with at most RATING_VALUES_SHOWN distinct values, else {min, max}."""
    counts = ratings.value_counts().sort_index()
    if len(counts) > RATING_VALUES_SHOWN:
        return {"min": float(ratings.min()), "max": float(ratings.max())}
    return {f"{value:g}": int(count) for value, count in counts.items()}


@dataclass
class InteractionReport:
    """Rows in, rows out, and every dropped row counted by reason (with example ids)."""

    input_rows: int = 0
    kept: int = 0
    users: int = 0
    items: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    k_core_rounds: int = 0
    # The rating values read (before the positive threshold): {value: rows} when at most RATING_VALUES_SHOWN
    # distinct ones, else {"min": .., "max": ..}; an out-of-scale value (a 0 or a 6 on a 1-5 scale) shows here.
    ratings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the user should know, e.g. a threshold with no ratings
    # (user_id, item_id) of the rows below the positive threshold: seen, not liked (never in the JSON report)
    rated_below: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The report as JSON-ready values (without the rated-below pairs, which are a table of their own)."""
        return {name: value for name, value in vars(self).items() if name != "rated_below"}

    def drop(self, reason: str, rows: pd.DataFrame) -> None:
        """Count `rows` as dropped for `reason`; keep up to 5 "(user, item)" examples (ids may hold '/')."""
        if len(rows) == 0:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + len(rows)
        examples = self.examples.setdefault(reason, [])
        if len(examples) >= 5:
            return
        head = rows[["user_id", "item_id"]].head(1000).drop_duplicates()  # one pair repeated is one example
        for user, item in zip(head["user_id"], head["item_id"], strict=True):
            shown = f"({_show(user)}, {_show(item)})"
            if len(examples) < 5 and shown not in examples:
                examples.append(shown)


def _show(value: object) -> str:
    missing = value is None or value is pd.NA or value != value or str(value).strip() == ""
    if missing:
        return "<missing>"
    text = str(value)
    return text if text.isprintable() else repr(text)  # control characters shown escaped, as the id really is


def _as_id(series: pd.Series) -> pd.Series:
    """Ids as stripped strings; missing values stay missing."""
    return series.astype("string").str.strip()


def clean_interactions(
    raw: pd.DataFrame,
    known_items: Collection[str],
    settings: PreprocessSettings,
    positive_rating_threshold: float | None = None,
    rejected_items: Collection[str] = (),
    timestamp_format: str | None = None,
    unrated: str = "drop",
    rating_words: dict[str, float] | None = None,
    decimal: str = "auto",
) -> tuple[pd.DataFrame, InteractionReport]:
    """Clean `raw` (user_id, item_id[, timestamp][, rating]) into the processed interactions table; timestamps
    read as `parse_timestamps` reads them with `timestamp_format` (data.timestamp_format); ratings that are words
    read as `rating_words` maps them (data.rating_values); with a threshold, a row without a readable rating is
    dropped or, `unrated` 'positive' (data.unrated), kept as a positive."""
    missing = [name for name in REQUIRED_COLUMNS if name not in raw.columns]
    if missing:
        raise DataError(
            f"interactions file lacks column(s) {', '.join(missing)}; "
            f"columns present: {', '.join(map(str, raw.columns))}.",
            hint="interactions.csv needs user_id,item_id and optionally timestamp,rating (other names: set "
            "data.user_id_column / item_id_column / timestamp_column / rating_column).",
        )
    report = InteractionReport(input_rows=len(raw))
    frame = pd.DataFrame({"user_id": _as_id(raw["user_id"]), "item_id": _as_id(raw["item_id"])})
    has_time = "timestamp" in raw.columns
    has_rating = "rating" in raw.columns
    if has_time:
        frame["timestamp"] = parse_timestamps(raw["timestamp"], timestamp_format)
        numbers = pd.to_numeric(raw["timestamp"], errors="coerce") if timestamp_format is None else None
        if numbers is not None and (serial := int(numbers.between(*SERIAL_DAYS).sum())):  # read as seconds
            report.notes.append(
                f"{serial:,} row(s) have a time between 20,000 and 80,000 (e.g. "
                f"{', '.join(map(repr, _examples(raw['timestamp'], numbers.between(*SERIAL_DAYS))))}), "
                "read as unix seconds: moments of 1 January 1970. Spreadsheets write dates as such serial day numbers "
                "(45850 = 2025-07-12): set data.timestamp_format: excel if the column holds them, or export the "
                "dates as yyyy-mm-dd.")
        if numbers is not None and (compact := _compact_date_rows(numbers)).any():
            report.notes.append(
                f"{int(compact.sum()):,} row(s) have a time that is a date written as digits (e.g. "
                f"{', '.join(map(repr, _examples(raw['timestamp'], compact)))}), read as unix seconds: moments of "
                "August 1970. Set data.timestamp_format: '%Y%m%d' if the column holds such dates.")
        if numbers is not None and (note := _before_any_log_note(numbers, compact)):
            report.notes.append(note)
        if numbers is not None:
            for unit, rows in _finer_units(numbers).items():
                report.notes.append(
                    f"{int(rows.sum()):,} row(s) hold unix times in {unit} (e.g. "
                    f"{', '.join(map(repr, _examples(raw['timestamp'], rows)))}): read as such.")
    if has_rating:
        frame["rating"] = read_ratings(raw["rating"], rating_words, report.notes, decimal)

    blank = (
        frame["user_id"].isna()
        | frame["item_id"].isna()
        | (frame["user_id"] == "")
        | (frame["item_id"] == "")
    )
    blank = blank.fillna(True).astype(bool)
    report.drop("missing_id", frame[blank])
    frame = frame[~blank]
    # A user id with control characters could not be typed back (`--users`) and would reach the terminal raw
    # (escape codes): rejected and counted, as item_info's item ids are.
    unsafe_user = frame["user_id"].map(catalogue_reason).notna()
    report.drop("unsafe_user_id", frame[unsafe_user])
    frame = frame[~unsafe_user]
    frame["user_id"] = _one_unicode_form(frame["user_id"], report)
    kept_unrated = None  # rows kept as positives without a readable rating: (index, note position, what, then)
    if has_rating:  # the values read, whatever else drops their rows
        readable = (frame["rating"].notna() & frame["rating"].between(-1e18, 1e18)).astype(bool)
        report.ratings = rating_values(frame.loc[readable, "rating"])
    for column, reason in (("timestamp", "bad_timestamp"), ("rating", "bad_rating")):
        if column in frame.columns:
            bad = frame[column].isna() | ~frame[column].between(-1e18, 1e18)
            if column == "rating" and (positive_rating_threshold is None or unrated == "positive"):
                # No threshold reads the rating, or the user counts an unrated row as liked: it is kept.
                if bad.any():
                    frame.loc[bad, "rating"] = float("nan")
                    why = ("data.positive_rating_threshold is not set" if positive_rating_threshold is None else
                           "data.unrated is 'positive'")
                    examples = _examples(raw["rating"], frame.index[bad])
                    # A rating that is no number orders nothing: `highest` keeps the latest of such a pair.
                    highest = (" preprocess.duplicate_rating: highest cannot compare them: of a user-item pair "
                               "without numeric ratings the latest row is kept."
                               if settings.duplicate_rating == "highest" else "")
                    rows = frame.index[bad]
                    what = f"no rating or one that is not a number (e.g. {', '.join(map(repr, examples))})"
                    then = (f"they count as positives, since {why}.{highest}"
                            + _event_words_hint(examples, highest=bool(highest), rating_words=rating_words))
                    # Said again once the other drops are done, with how many of these rows stay.
                    kept_unrated = (rows, len(report.notes), what, then)
                    report.notes.append(_unrated_note(rows, what, then, len(rows)))
                continue
            if column == "timestamp":  # an empty cell is no date format problem: counted and told apart
                cells = raw.loc[frame.index, column].astype("string").str.strip().str.lower().fillna("")
                empty = cells.isin(MISSING_MARKERS).to_numpy()
                report.drop("missing_timestamp", frame[empty])
                if empty.any():
                    report.notes.append(_missing_time_note(int(empty.sum()), len(raw)))
                bad &= ~empty
            report.drop(reason, frame[bad])
            if bad.any():  # all of them: the no-rows error shows this note with the examples
                report.notes.append(_unreadable_note(column, raw[column], frame.index[bad], len(raw),
                                                     timestamp_format, rating_words))
            frame = frame[~(bad | empty)] if column == "timestamp" else frame[~bad]
    if has_time:
        outside = ~frame["timestamp"].between(*TIMESTAMP_RANGE)
        report.drop("timestamp_out_of_range", frame[outside])
        if timestamp_format == "excel":  # the values were read as days: a unix-seconds value is the likely cause
            days = pd.to_numeric(raw.loc[frame.index[outside], "timestamp"], errors="coerce")
            as_seconds = int((days > SERIAL_DAYS[1]).sum())
            if as_seconds:
                report.notes.append(
                    f"{as_seconds:,} of the {int(outside.sum()):,} rows with an out-of-range timestamp hold values "
                    f"like {days[days > SERIAL_DAYS[1]].iloc[0]:.3g}, far beyond spreadsheet serial days (data."
                    "timestamp_format: excel): they look like unix seconds, and were dropped. Set "
                    "data.timestamp_format: null if the file holds unix seconds.")
        frame = frame[~outside]
        unreadable = sum(report.dropped.get(reason, 0)
                         for reason in ("missing_timestamp", "bad_timestamp", "timestamp_out_of_range"))
        if 2 * unreadable > report.input_rows and not frame.empty:  # none left: the no-rows error below says it
            share = 100 * unreadable / report.input_rows
            empty = report.dropped.get("missing_timestamp", 0)
            what = ("no timestamp (an empty cell)" if empty == unreadable else
                    "a timestamp that cannot be read" if not empty else
                    f"no timestamp ({empty:,}) or one that cannot be read")
            why = ("the column is mostly empty" if 2 * empty > report.input_rows else
                   "its dates are written in a form mmrec does not read as set")
            raise DataError(
                f"{unreadable:,} of the {report.input_rows:,} interaction rows ({share:.0f}%) have {what}: more than "
                f"half of the file, so {why}, and training on the rest would be training on a remnant (a column "
                "mostly empty: leave it out of the file to train without times).",
                hint="\n".join(report.notes) or _NO_ROWS_HINTS["bad_timestamp"])  # the notes name values and fixes

    rejected = frame["item_id"].isin(set(rejected_items))
    report.drop("unsafe_item_id", frame[rejected])
    frame = frame[~rejected]
    unknown = ~frame["item_id"].isin(set(known_items))
    if unknown.any() and (matched := unicode_matches(frame.loc[unknown, "item_id"], known_items)):
        renamed = frame["item_id"].isin(set(matched))
        frame.loc[renamed, "item_id"] = frame.loc[renamed, "item_id"].map(matched)
        report.notes.append(unicode_forms_note(matched, int(renamed.sum()), "the interactions' items", "item_info's"))
        unknown = ~frame["item_id"].isin(set(known_items))
    if unknown.any() and settings.unknown_items == "error":
        examples = ", ".join(frame.loc[unknown, "item_id"].unique()[:5])
        raise DataError(
            f"{int(unknown.sum())} interaction(s) refer to items absent from item_info (e.g. {examples}).",
            hint="Add the items to item_info.csv or set preprocess.unknown_items: drop.",
        )
    report.drop("unknown_item", frame[unknown])
    if unknown.any():
        report.notes.extend(mangled_ids_notes(frame.loc[unknown, "item_id"], known_items, "the interactions"))
    frame = frame[~unknown]

    if settings.drop_duplicates:
        if has_time:  # "last" means latest in time; ties keep file order
            frame = frame.sort_values("timestamp", kind="stable")
        pairs = ["user_id", "item_id"]
        if has_rating and settings.duplicate_rating == "highest":  # the best row last; a tie keeps the latest
            frame = frame.sort_values("rating", kind="stable", na_position="first")
        elif has_rating and positive_rating_threshold is not None:
            liked = frame.loc[frame["rating"] >= positive_rating_threshold, pairs].drop_duplicates()
            latest = frame.drop_duplicates(pairs, keep="last")
            undone = latest.merge(liked, on=pairs)["rating"] < positive_rating_threshold
            if undone.any():
                which = "latest" if has_time else "last (in file order: the interactions have no time column)"
                report.notes.append(
                    f"{int(undone.sum()):,} user-item pair(s) were rated at or above data.positive_rating_threshold "
                    f"({positive_rating_threshold:g}) in one row but below it in their {which}: that row is "
                    "kept, so they are not positives. For an event log whose rating is the event's strength (view "
                    "1, purchase 2), set preprocess.duplicate_rating: highest.")
        duplicate = frame.duplicated(pairs, keep="last")
        report.drop("duplicate", frame[duplicate])
        if has_time and duplicate.any():
            # A pair is dated by its first row that is a positive: when the user first had the item. Dated by its
            # latest (a favourite played before and after a time split's cut), it went to test whole, an item
            # recommend never shows back (it is seen), credited as a future find; dated by a view before its
            # purchase (an event log), a test-period purchase went to training.
            times = frame["timestamp"]
            if has_rating and positive_rating_threshold is not None:  # rows without a number: kept as positives
                times = times.where(~(frame["rating"] < positive_rating_threshold).fillna(False).astype(bool))
            first = times.groupby([frame["user_id"], frame["item_id"]], sort=False).transform("min")
            first = first.fillna(frame.groupby(pairs, sort=False)["timestamp"].transform("min"))  # no positive row
            redated = ~duplicate & (first < frame["timestamp"])
            frame = frame.assign(timestamp=frame["timestamp"].where(~redated, first))
            if has_rating and positive_rating_threshold is not None:  # counted among the positives kept below
                redated &= ~(frame["rating"] < positive_rating_threshold).fillna(False).astype(bool)
            if redated.any():
                report.notes.append(
                    f"{int(redated.sum()):,} user-item pair(s) with several rows are dated by their first row that is "
                    "a positive (when the user first had the item), with the kept row's rating: a time-based split "
                    "puts a pair the user had before its cut in training.")
        frame = frame[~duplicate]

    if positive_rating_threshold is not None and has_rating:
        below = (frame["rating"] < positive_rating_threshold).fillna(False).astype(bool)  # unrated: not below
        report.drop("below_threshold", frame[below])
        # Pairs (once each) rated below and not liked in another row (possible with drop_duplicates off).
        pairs = ["user_id", "item_id"]
        rated_below = frame.loc[below, pairs].drop_duplicates()
        liked = frame.loc[~below, pairs].drop_duplicates()
        rated_below = rated_below.merge(liked, on=pairs, how="left", indicator=True)
        report.rated_below = (rated_below.loc[rated_below["_merge"] == "left_only", pairs].astype(str)
                              .reset_index(drop=True))
        lost = frame.loc[below, "user_id"].drop_duplicates()  # users with no positive at all
        lost = lost[~lost.isin(set(frame.loc[~below, "user_id"]))]
        if len(lost):
            report.notes.append(
                f"{len(lost):,} user(s) (e.g. {lost.iloc[0]!r}) rated nothing at or above "
                f"data.positive_rating_threshold ({positive_rating_threshold:g}): none of their rows is a positive, so "
                "the model does not know them; recommend serves them the fallback list without the items they rated.")
        frame = frame[~below]
    elif has_rating and frame["rating"].nunique() > 1:
        low = frame["rating"].min()
        report.notes.append(
            f"The interactions have ratings ({low:g} to {frame['rating'].max():g}), but data.positive_rating_threshold "
            f"is not set, so every rated row counts as a positive (a {low:g} as much as the best). That is right when "
            "every row is an interaction to recommend from (benchmark sets such as MMRec's, or a split you did not "
            "make with `mmrec split`); to learn from what users liked, set it (e.g. 4 on a 1-5 scale) and split "
            "again: rows below it are then not recommended back either.")
    elif positive_rating_threshold is not None:
        report.notes.append(
            f"data.positive_rating_threshold is {positive_rating_threshold:g}, but the interactions have no rating "
            "column, so no row was filtered by it: every interaction is a positive. Set data.rating_column to the "
            "column that holds the ratings, or drop the threshold.")

    before = len(frame)
    frame, rounds, removed = k_core(frame, settings.min_user_interactions, settings.min_item_interactions)
    report.k_core_rounds = rounds
    report.drop("k_core", removed)
    if report.rated_below is not None and len(removed):
        # A user the k-core filter removed had positives: not one of those who only rated below the threshold
        # (whom recommend serves the fallback list), so their pairs go with their other rows.
        known = set(frame["user_id"].astype(str)) | set(lost.astype(str))
        report.rated_below = report.rated_below[report.rated_below["user_id"].isin(known)].reset_index(drop=True)
    if before and len(removed) * 2 > before:  # a filter that keeps a minority of the data deserves a sentence
        report.notes.append(
            f"preprocess.min_user_interactions {settings.min_user_interactions} / min_item_interactions "
            f"{settings.min_item_interactions} removed {len(removed):,} of {before:,} interactions "
            f"({len(removed) / before:.0%}, {rounds} round(s)): the model learns from the rest. Items left without an "
            "interaction stay in the catalogue as cold items (evaluate ranks them, recommend can show them); lower "
            "the thresholds to keep more of the data.")

    if kept_unrated is not None:
        rows, at, what, consequence = kept_unrated
        report.notes[at] = _unrated_note(rows, what, consequence, int(frame.index.isin(rows).sum()))
    frame = frame.sort_index(kind="stable").reset_index(drop=True)
    out = pd.DataFrame({"user_id": frame["user_id"].astype(str), "item_id": frame["item_id"].astype(str)})
    if has_time:
        out["timestamp"] = frame["timestamp"].astype("int64")
    if has_rating:
        out["rating"] = frame["rating"].astype("float64")
    report.kept = len(out)
    for note in (_case_variants_note(out["user_id"]), _float_variants_note(out["user_id"])):
        if note:
            report.notes.append(note)
    report.users = int(out["user_id"].nunique())
    report.items = int(out["item_id"].nunique())
    if out.empty:
        raise _no_rows_error(report)
    return out, report


def _unrated_note(rows: pd.Index, what: str, consequence: str, kept: int) -> str:
    """The note on `rows` kept as positives without a readable rating, `kept` of them still kept."""
    of = f" ({kept:,} of them kept: the others were dropped for the reasons counted)" if kept < len(rows) else ""
    return f"{len(rows):,} row(s) have {what}{of}; {consequence}"


def parse_timestamps(values: pd.Series, timestamp_format: str | None = None) -> pd.Series:
    """Unix seconds as float64 (NaN where unparsable) from unix-seconds numbers or ISO-8601 text.

    A number too large for unix seconds of a plausible date is read in the finer unit its size says
    (`_FINER_UNITS`: 1.7e12 is milliseconds). ISO-8601 text may carry a zone (`Z`, `+01:00`); text without one
    is taken as UTC. `timestamp_format`
    (data.timestamp_format): 'excel' reads numbers as spreadsheet serial days (days since 1899-12-30, the
    fraction the time of day); a strftime format reads every value with it, in UTC.
    """
    if timestamp_format not in (None, "excel"):
        parsed = pd.to_datetime(values.astype("string").str.strip(), format=timestamp_format, utc=True,
                                errors="coerce")
        return ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).astype("float64")
    seconds = pd.to_numeric(values, errors="coerce").astype("float64")
    if timestamp_format == "excel":
        seconds = (seconds - EXCEL_EPOCH_DAYS) * 86_400.0
    else:
        for unit, rows in _finer_units(seconds).items():
            seconds[rows] = seconds[rows] / _FINER_UNITS[unit]
    text = values[seconds.isna() & values.notna()]
    if len(text):
        parsed = pd.to_datetime(text.astype(str).str.strip(), format="ISO8601", utc=True, errors="coerce")
        seconds.loc[text.index] = ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).astype("float64")
    return seconds


# Unix times since 1973 in milliseconds start at 1e11, in microseconds at 1e14, in nanoseconds at 1e17 (a 2024
# time: 1.7e12, 1.7e15, 1.7e18); as seconds, 1e11 is the year 5138. So a number's size says its unit: JavaScript
# and Java logs write milliseconds, and a log may mix sources.
_FINER_UNITS = {"milliseconds": 1e3, "microseconds": 1e6, "nanoseconds": 1e9}


def _finer_units(numbers: pd.Series) -> dict[str, pd.Series]:
    """{unit: mask of the rows whose number is a unix time in that unit (`_FINER_UNITS`)}, for units with rows."""
    # Seconds from 1e8 (1973) to 1e11 (5138), in the unit.
    masks = {unit: (numbers >= 1e8 * size) & (numbers < 1e11 * size) for unit, size in _FINER_UNITS.items()}
    return {unit: rows for unit, rows in masks.items() if rows.any()}


# Unix seconds since 1973 (1e8) divided by 1000 once too often (milliseconds divided by 1e6) fall in 1e5-1e8: read
# as seconds, moments of 1970-1973, with days shrunk to minutes. Small numbers that only order the events (1, 2,
# 3, ...) start below, spreadsheet serial days too (20,000-80,000); yyyymmdd dates are noted apart.
_SHRUNK_SECONDS = (1e5, 1e8)


def _before_any_log_note(numbers: pd.Series, compact: pd.Series) -> str | None:
    """A note when every numeric time is unix seconds divided by 1000 by the look of it (`_SHRUNK_SECONDS`, and
    not a yyyymmdd date); None otherwise."""
    valid = numbers.dropna()
    if valid.empty or not valid.between(*_SHRUNK_SECONDS, inclusive="left").all() or compact[valid.index].any():
        return None
    span = float(valid.max() - valid.min())
    unit, size = next(((u, v) for u, v in (("days", 86_400.0), ("hours", 3_600.0), ("minutes", 60.0))
                       if span >= v), ("seconds", 1.0))
    return (f"Every timestamp written as a number lies between 100,000 and 100,000,000 ({valid.min():.4g} to "
            f"{valid.max():.4g}), read as "
            f"unix seconds: moments of 1970-1973 spanning {span / size:.3g} {unit}, older than any interaction log. "
            "Unix seconds divided by 1000 once too often (milliseconds divided by 1,000,000)? Time-ordered splits "
            "keep their order, but what counts days (the trend blend's half-lives, "
            "evaluation.popularity_halflife_days) reads them as seconds: write unix seconds (about 1.7e9 for 2024) "
            "or dates.")


def _compact_date_rows(numbers: pd.Series) -> pd.Series:
    """Rows whose time (`numbers`: the column as numbers, NaN where it is text) is a whole number that reads as a
    yyyymmdd date of 1900-2100 (20240301): read as unix seconds these are moments of August 1970, which real
    timestamps hardly ever are."""
    whole = numbers.between(19_000_101, 21_001_231) & (numbers % 1 == 0)
    text = numbers[whole].astype("int64").astype(str)
    dates = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    return whole & dates.notna().reindex(numbers.index, fill_value=False)


def _examples(raw: pd.Series, where: pd.Series | pd.Index, n: int = 3) -> list[str]:
    """Up to `n` distinct raw values (as written) of the rows `where` selects (a mask or an index)."""
    values = raw.loc[where] if isinstance(where, pd.Index) else raw[where.reindex(raw.index, fill_value=False)]
    return ["" if pd.isna(v) else str(v) for v in pd.unique(values)[:n]]


def _share(rows: int, total: int) -> str:
    """'3 of the 400 rows (under 1%)'."""
    percent = 100 * rows / max(total, 1)
    return f"{rows:,} of the {total:,} rows ({f'{percent:.0f}%' if percent >= 1 else 'under 1%'})"


def _missing_time_note(rows: int, total: int) -> str:
    """The note for rows dropped because their timestamp cell is empty."""
    return (f"{_share(rows, total)} have no timestamp (an empty cell, NULL/NaN/NA, or a line cut short: one with "
            "fewer fields than the header leaves its last ones empty): dropped, since splits by time and the recency "
            "settings need every row's time. Fill them in (or mend the cut lines), or leave the timestamp column out "
            "of the file to keep every row and train without times.")


def _unreadable_note(column: str, raw: pd.Series, rows: pd.Index, total: int, timestamp_format: str | None,
                     rating_words: dict[str, float] | None = None) -> str:
    """The note for rows dropped because their timestamp or rating could not be read: how many, examples of the
    values as written, and the setting or fix that reads them."""
    examples = _examples(raw, rows)
    share = _share(len(rows), total)
    shown = ", ".join(map(repr, examples))
    if column == "timestamp":
        how = (f"with data.timestamp_format {timestamp_format!r}" if timestamp_format else
               "as unix seconds or ISO-8601")
        return (f"{share} have a timestamp that cannot be read {how} (e.g. {shown}): dropped. Set "
                "data.timestamp_format to how the file writes its dates (e.g. '%d/%m/%Y' or '%m/%d/%Y %H:%M'; "
                "'excel' for spreadsheet serial days), or export them as yyyy-mm-dd.")
    comma = any(DECIMAL_COMMA.fullmatch(value) for value in examples)
    return (f"{share} have no rating or one that is not a number (e.g. {shown}): dropped, since "
            "data.positive_rating_threshold reads the ratings (data.unrated: positive keeps them as positives, "
            "e.g. orders never reviewed)."
            + (" Values like '4,5' are written with a decimal comma: write them with a point (4.5), or set "
               "data.decimal_separator: ','." if comma else "")
            + _event_words_hint(examples, rating_words=rating_words))


def read_ratings(column: pd.Series, rating_words: dict[str, float] | None, notes: list[str],
                 decimal: str = "auto") -> pd.Series:
    """A rating column as float64 (NaN: no number), read as preprocess reads it, for the interactions and for the
    files evaluate is handed alike: decimal commas where the column writes them (`decimal_comma_column`), words
    as `rating_words` (data.rating_values) maps them, `decimal` as data.decimal_separator says; what was read so is
    said in `notes`."""
    ratings = column.astype("string").str.strip()
    # "4,5" from a decimal-comma locale's export
    if (local := decimal_comma_column(ratings, decimal=decimal)) is not None:
        ratings, read, examples = local
        notes.append(f"The ratings are read as data.decimal_separator ',' says: {read:,} rating(s) with a comma or a "
                     f"dot (e.g. {', '.join(map(repr, examples))}; '4,5' = 4.5)." if decimal == "," else
                     f"The ratings are written with a decimal comma (e.g. {', '.join(map(repr, examples))}) and seldom "
                     f"if ever with a point: {read:,} rating(s) with a comma or a dot are read so ('4,5' = 4.5).")
    numbers = pd.to_numeric(ratings, errors="coerce").astype("float64")
    if rating_words:  # an event log's types: view 1, purchase 4
        words = {word.strip().casefold(): float(number) for word, number in rating_words.items()}
        mapped = ratings.str.casefold().map(words).astype("float64")
        numbers = numbers.where(numbers.notna(), mapped)
        if counts := {word: int(n) for word, n in ratings[mapped.notna()].str.casefold().value_counts().items()}:
            notes.append("Ratings read by data.rating_values: " + ", ".join(
                f"{word!r} = {words[word]:g} ({n:,} rows)" for word, n in counts.items()) + ".")
    return numbers


# Words that stand for no value (a JSON NaN, a SQL NULL): a rating written so is missing, not an event type.
MISSING_WORDS = frozenset({"nan", "null", "none", "na", "n/a"})


def _event_words_hint(examples: list[str], highest: bool = False, rating_words: dict[str, float] | None = None) -> str:
    """" The column holds words: ..." when every example rating is a word (an event type), else ""; `highest`:
    preprocess.duplicate_rating is already highest (not suggested again); `rating_words`: data.rating_values is set,
    so the words it lacks are named instead."""
    if not examples or not all(re.fullmatch(r"\s*[^\W\d]+(?:[ _-][^\W\d]+)*\s*", v) for v in examples):
        return ""
    if all(v.strip().casefold() in MISSING_WORDS for v in examples):  # NaN, null: no rating, not an event type
        return ""
    if rating_words:
        return (f" They are words data.rating_values does not name ({', '.join(map(repr, examples))}): add them to it "
                "to read them as ratings.")
    return (" The column holds words: if they are event types, map them to numbers with data.rating_values (e.g. "
            "{view: 1, purchase: 4}) and set data.positive_rating_threshold between them"
            + ("." if highest else " (or preprocess.duplicate_rating: highest to keep each pair's strongest event)."))


def _one_unicode_form(user_ids: pd.Series, report: InteractionReport) -> pd.Series:
    """`user_ids` with each user written one way: ids that are the same text in other Unicode forms (composed 'é',
    decomposed 'e' + U+0301) become the form most rows use, counted in a note; else unchanged."""
    matched = unicode_spellings(user_ids.value_counts(sort=True).index)  # most rows first: the spelling kept
    if not matched:
        return user_ids
    renamed = user_ids.isin(set(matched))
    example, kept = next(iter(matched.items()))
    report.notes.append(f"{len(matched):,} user id(s) ({int(renamed.sum()):,} row(s)) are other users' ids written in "
                        f"another Unicode form (e.g. {ascii(example)} and {ascii(kept)}: the same text, composed "
                        "differently, as macOS and zip tools write it): each is read as one user, written as most of "
                        "its rows write it.")
    return user_ids.where(~renamed, user_ids.map(matched))


def _case_variants_note(user_ids: pd.Series) -> str | None:
    """A note when some user ids are one id in different letter case ('ANNA@X.COM', 'anna@x.com'), else None."""
    users = pd.Series(user_ids.unique())
    folded = users.str.casefold()
    variants = folded.duplicated(keep=False)
    if not variants.any():
        return None
    first = folded[variants].iloc[0]
    shown = " and ".join(map(repr, users[folded == first].head(2)))
    return (f"{folded[variants].nunique():,} user id(s) are written in more than one letter case (e.g. {shown}): ids "
            "are compared exactly, so each spelling is a user of its own. If they are one user (e-mail addresses), "
            "write the column in one case.")


def _float_variants_note(user_ids: pd.Series) -> str | None:
    """A note when some user ids are also written with a '.0' ('256' and '256.0': one column read as numbers
    somewhere), which makes two users of one; else None."""
    users = pd.Series(user_ids.unique())
    whole = users.str.extract(r"^(\d+)\.0+$")[0]
    both = whole.notna() & whole.isin(set(users))
    if not both.any():
        return None
    first = users[both].iloc[0]
    return (f"{int(both.sum()):,} user id(s) also appear with a '.0' (e.g. {whole[both].iloc[0]!r} and {first!r}): the "
            "column was read as numbers in some rows, and each spelling is a user of its own. Write the ids as text "
            "(one spelling per user).")


def _no_rows_error(report: InteractionReport) -> DataError:
    """Says how many rows came in, why each was dropped, and what to change for the reasons seen, with the notes
    made on the way (e.g. unknown ids that are catalogue ids read as numbers: the likely cause)."""
    if report.input_rows == 0:
        return DataError("The interactions table has no rows.", hint="Add user_id,item_id rows to it.")
    # The reason that dropped the most rows first: it is the likeliest thing to change.
    seen = sorted((reason for reason in _NO_ROWS_HINTS if report.dropped.get(reason)),
                  key=lambda reason: -report.dropped[reason])
    hints = [_NO_ROWS_HINTS[reason] for reason in seen]
    return DataError(
        f"No interactions are left after cleaning: {report.input_rows:,} rows in, dropped "
        f"{describe_drops(report.dropped, report.examples)}.",
        hint="\n".join(filter(None, ["; ".join(hints), *report.notes])) or None,
    )


def k_core(frame: pd.DataFrame, min_user: int, min_item: int) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """Drop users/items below the thresholds, repeated until stable. Returns (kept, rounds, removed)."""
    removed_parts = []
    rounds = 0
    while True:
        user_counts = frame["user_id"].map(frame["user_id"].value_counts())
        item_counts = frame["item_id"].map(frame["item_id"].value_counts())
        weak = (user_counts < min_user) | (item_counts < min_item)
        if not weak.any():
            break
        rounds += 1
        removed_parts.append(frame[weak])
        frame = frame[~weak]
    removed = pd.concat(removed_parts) if removed_parts else frame.iloc[:0]
    return frame, rounds, removed
