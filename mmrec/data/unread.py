"""item_info columns no setting names: preprocess does not read them, and says so (nothing is dropped silently).

Each is described by what its first SAMPLE_ROWS rows hold, so the note can say which setting would read it: numbers
(item metadata: data.numerical_features_cols), short values that several items share (a channel, brand, genre:
data.category_columns), dates, links or file paths, text, or nothing (empty; a row index a spreadsheet wrote).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from mmrec.data.categories import cell_values
from mmrec.data.numeric import validate_numeric_columns
from mmrec.data.raw_tables import NAMED_LIKE, name_words
from mmrec.settings import DataSettings

SAMPLE_ROWS = 20_000  # rows looked at per column: enough to tell numbers, categories and text apart
SHOWN = 8  # columns named per kind, the rest counted
NUMBERS_SHARE = 0.95  # of the non-blank cells parse as numbers -> a column of numbers
DATES_SHARE = 0.9  # of the non-blank cells (of the first 200) read as dates -> a column of dates
LINKS_SHARE = 0.9  # of the non-blank cells (of the first 200) are URLs -> links (or file paths -> paths)
CATEGORY_VALUE_CHARS = 40  # a category value is short (a longer one is text)
FILLED_SHARE = 0.25  # of the items have a value, as for a configured category column's note
SEPARATORS = (",", ";")  # tried after data.category_separator on a column that does not read as categories
# Names pandas or a spreadsheet gives a column of row numbers (`Unnamed: 0` from `to_csv` with its index).
_ROW_INDEX = re.compile(r"unnamed: ?\d+|index|row|#|", re.IGNORECASE)
_LINK = re.compile(r"[a-z][a-z0-9+.-]*://\S+|www\.\S+", re.IGNORECASE)
_PATH = re.compile(r"\S*[/\\]\S+\.[a-z0-9]{2,5}|[^\s/\\]+\.(?:jpe?g|png|webp|gif|bmp|tiff?)", re.IGNORECASE)

# Per kind, what the note says after the columns' names (what they hold, and the setting that reads such a column).
HINTS = {
    "category": "values several items share (data.category_columns reads such a column as categories{separator})",
    "numbers": "numbers (data.numerical_features_cols reads them as item metadata, when they describe the item and "
               "not its interactions: a count exported today holds the test period)",
    "dates": "dates (not read as such: an item's year or age as a number of its own can be numeric metadata)",
    "links": "links (nothing is downloaded: save each item's image in the images folder, named by its id or by a "
             "path a column data.image_column names)",
    "paths": "file paths (data.image_column names each item's image file, relative to the images folder)",
    "other": "text (data.description_column, a list, joins a column's text after the title)",
    "index": "row numbers an export wrote (nothing to read)",
    "empty": "no value",
}


def read_columns(data: DataSettings) -> set[str]:
    """The item_info columns some setting names (under the names the file gives them; the item id as `item_id`)."""
    return {"item_id", data.item_id_column, data.title_column, data.image_column, *data.description_columns,
            *data.numerical_features_cols, *data.category_columns} - {None}


def _category_values(cells: list[str], separator: str | None, n_rows: int) -> int | None:
    """How many distinct values `cells` (the non-blank ones of n_rows) hold when they read as categories at
    `separator` (short values, each item's shared with other items), else None."""
    rows = [cell_values(cell, separator) for cell in cells]
    counts = Counter(value for row in rows for value in row)
    with_value = sum(map(bool, rows))
    if not counts or with_value < max(2, FILLED_SHARE * n_rows) or len(counts) > 0.5 * with_value:
        return None
    shared = sum(any(counts[value] >= 2 for value in row) for row in rows)
    short = pd.Series([len(v) for v in counts]).median() <= CATEGORY_VALUE_CHARS
    return len(counts) if shared >= 0.5 * with_value and short else None


def column_kind(name: str, cells: pd.Series, separator: str | None, ids_or_times: bool = False) -> str:
    """What one column's cells (item_info rows, any dtype) hold: a key of HINTS; a category whose cells split at
    another separator than `separator` is 'category:<separator>'. `ids_or_times` (interactions): numbers that are
    ids or times, named like them (`session_id`, `unixReviewTime`) or whole numbers most of which differ, are
    'codes' (no rating)."""
    text = cells.astype("string").str.strip()
    filled = text[text.notna() & (text != "")]
    if filled.empty:
        return "empty"
    if filled.str.len().median() > 4 * CATEGORY_VALUE_CHARS and not filled.str.contains("\x1f", regex=False).any():
        return "other"  # long text (a list of values is joined by U+001F): no need to parse or split every cell
    with np.errstate(all="ignore"):  # values near the float limit: a column of numbers all the same
        parsed, reports = validate_numeric_columns(filled.to_frame("value").assign(item_id=range(len(filled))),
                                                   ["value"], "median")
    if reports["value"].non_numeric <= (1 - NUMBERS_SHARE) * len(filled):
        values = parsed["value"]
        whole = bool((values == values.round()).all())
        if whole and values.is_unique and (_ROW_INDEX.fullmatch(name.strip()) is not None
                                           or values.max() - values.min() + 1 == len(values)):
            return "index"
        if ids_or_times and (name_words(name) & (NAMED_LIKE["timestamp"] | {"id", "ids"})
                             or whole and values.nunique() > 0.5 * len(values)):
            return "codes"
        return "numbers"
    head = filled.head(200)
    if (head.str.contains(r"\d").mean() >= DATES_SHARE  # a date has digits ('May' alone is a word)
            and pd.to_datetime(head, errors="coerce", utc=True, format="mixed").notna().mean() >= DATES_SHARE):
        return "dates"
    links = head.map(lambda value: bool(_LINK.fullmatch(value)))
    paths = head.map(lambda value: bool(_PATH.fullmatch(value))) & ~links  # an image URL is a link
    if (links | paths).mean() >= LINKS_SHARE:  # a mix of both: what most are
        return "links" if links.mean() >= paths.mean() else "paths"
    cells_list = filled.tolist()
    # Another separator the cells hold counts when splitting at it leaves fewer distinct values (tags that recur
    # in other combinations: 'news,cars'), not more (a name with a comma: 'Acme, Inc.').
    tried = [separator, *(s for s in SEPARATORS if s != separator and filled.str.contains(s, regex=False).any())]
    found = [(n, i, candidate) for i, candidate in enumerate(tried)
             if (n := _category_values(cells_list, candidate, len(cells))) is not None]
    if found:
        candidate = min(found)[2]
        return "category" if candidate == separator else f"category:{candidate}"
    return "other"


def unread_columns(frame: pd.DataFrame, data: DataSettings) -> dict[str, str]:
    """{column: kind (column_kind)} of the item_info columns no setting names, in the file's order (the first
    SAMPLE_ROWS rows looked at)."""
    read = read_columns(data)
    sample = frame.head(SAMPLE_ROWS)
    return {str(column): column_kind(str(column), sample.iloc[:, i], data.category_separator)  # by position: two
            for i, column in enumerate(frame.columns) if column not in read}  # names may strip to one


def unread_interaction_columns(frame: pd.DataFrame) -> dict[str, str]:
    """{column: kind} of the interactions columns no setting names (`frame`'s columns renamed to the canonical
    user_id, item_id, timestamp, rating: every other one), in the file's order (the first SAMPLE_ROWS rows); a
    column of ids or times is 'codes', not one a rating could be."""
    sample = frame.head(SAMPLE_ROWS)
    return {str(column): column_kind(str(column), sample.iloc[:, i], None, ids_or_times=True)
            for i, column in enumerate(frame.columns) if column not in ("user_id", "item_id", "timestamp", "rating")}


def unread_interactions_note(unread: dict[str, str], n_rows: int) -> str | None:
    """One note naming the interactions columns no setting reads: one of numbers can be the rating (a watch ratio,
    a score), or None."""
    if not unread:
        return None
    numbers = [repr(column) for column, kind in unread.items() if kind == "numbers"]
    looked = f" (judged on the first {SAMPLE_ROWS:,} rows)" if n_rows > SAMPLE_ROWS else ""
    return (f"{len(unread):,} interactions column(s) are named by no setting, so mmrec does not read them: "
            f"{', '.join(repr(column) for column in list(unread)[:SHOWN])}"
            + (f" and {len(unread) - SHOWN:,} more" if len(unread) > SHOWN else "") + looked + "."
            + (f" {', '.join(numbers[:3])} {'hold' if len(numbers) > 1 else 'holds'} numbers: data.rating_column "
               "reads one as each row's rating (a score, a watch ratio), and data.positive_rating_threshold says "
               "which rows count as liked." if numbers else ""))


def unread_note(unread: dict[str, str], n_rows: int) -> str | None:
    """One note naming the unread columns by kind and the setting that would read each kind, or None when every
    column is read."""
    if not unread:
        return None
    parts = []
    for kind in HINTS:
        names = [(column, of) for column, of in unread.items() if of.split(":")[0] == kind]
        if not names:
            continue
        others = sorted({of.split(":", 1)[1] for _, of in names if ":" in of})
        separator = (f"; their values are separated by {' or '.join(map(repr, others))}: set "
                     "data.category_separator to it") if others else ""
        more = f" and {len(names) - SHOWN:,} more" if len(names) > SHOWN else ""
        shown = ", ".join(repr(column) for column, _ in names[:SHOWN])
        parts.append(f"{shown}{more} {'hold' if len(names) > 1 else 'holds'} "
                     + HINTS[kind].format(separator=separator))
    looked = f" (judged on the first {SAMPLE_ROWS:,} rows)" if n_rows > SAMPLE_ROWS else ""
    return (f"{len(unread):,} item_info column(s) are named by no setting, so mmrec does not read them: "
            f"{'; '.join(parts)}{looked}. Name the ones you want read (docs/data.md \"Input format\").")
