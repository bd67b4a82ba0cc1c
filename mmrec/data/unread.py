"""item_info columns no setting names: preprocess does not read them, and says so (nothing is dropped silently).

Each is described by what it looks like, so the note can say which setting would read it: a column of numbers
(item metadata: data.numerical_features_cols), one of short values that several items share (a channel, brand,
genre: data.category_columns), or anything else (free text: data.description_column takes a list).
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from mmrec.data.categories import cell_values
from mmrec.data.numeric import validate_numeric_columns
from mmrec.settings import DataSettings

SAMPLE_ROWS = 20_000  # rows looked at per column: enough to tell numbers, categories and text apart
SHOWN = 8  # columns named in the note, the rest counted
NUMBERS_SHARE = 0.95  # of the non-blank cells parse as numbers -> a column of numbers
CATEGORY_VALUE_CHARS = 40  # a category value is short (a longer one is text)
FILLED_SHARE = 0.25  # of the items have a value, as for a configured category column's note


def read_columns(data: DataSettings) -> set[str]:
    """The item_info columns some setting names (under the names the file gives them; the item id as `item_id`)."""
    return {"item_id", data.item_id_column, data.title_column, data.image_column, *data.description_columns,
            *data.numerical_features_cols, *data.category_columns} - {None}


def column_kind(cells: pd.Series, separator: str | None) -> str:
    """'numbers', 'category' or 'other' for one column's cells (item_info rows, any dtype)."""
    text = cells.astype("string").str.strip()
    filled = text[text.notna() & (text != "")]
    if filled.empty:
        return "other"
    parsed, reports = validate_numeric_columns(filled.to_frame("value").assign(item_id=range(len(filled))),
                                               ["value"], "median")
    if reports["value"].non_numeric <= (1 - NUMBERS_SHARE) * len(filled):
        values = parsed["value"]
        whole = bool((values == values.round()).all())
        row_numbers = whole and values.is_unique and values.max() - values.min() + 1 == len(values)
        return "other" if row_numbers else "numbers"  # 0..n-1 is an index a spreadsheet wrote, not metadata
    rows = [cell_values(cell, separator) for cell in filled.tolist()]
    counts = Counter(value for row in rows for value in row)
    with_value = sum(map(bool, rows))
    shared = sum(any(counts[value] >= 2 for value in row) for row in rows)
    short = pd.Series([len(value) for value in counts]).median() <= CATEGORY_VALUE_CHARS if counts else False
    is_category = (with_value >= max(2, FILLED_SHARE * len(cells)) and shared >= 0.5 * with_value
                   and len(counts) <= 0.5 * with_value and short)
    return "category" if is_category else "other"


def unread_columns(frame: pd.DataFrame, data: DataSettings) -> dict[str, str]:
    """{column: kind (column_kind)} of the item_info columns no setting names, in the file's order (the first
    SAMPLE_ROWS rows looked at)."""
    read = read_columns(data)
    sample = frame.head(SAMPLE_ROWS)
    return {str(column): column_kind(sample[column], data.category_separator)
            for column in frame.columns if column not in read}


def unread_note(unread: dict[str, str], n_items: int) -> str | None:
    """One note naming the unread columns by kind and the setting that would read each kind, or None when every
    column is read."""
    if not unread:
        return None
    hints = {"category": "values several items share (data.category_columns reads such a column as categories)",
             "numbers": "numbers (data.numerical_features_cols reads them as item metadata)",
             "other": "text or codes (data.description_column, a list, adds a text column to the title)"}
    parts = []
    for kind, hint in hints.items():
        names = [repr(column) for column, of in unread.items() if of == kind]
        if names:
            more = f" and {len(names) - SHOWN:,} more" if len(names) > SHOWN else ""
            parts.append(f"{', '.join(names[:SHOWN])}{more} {'hold' if len(names) > 1 else 'holds'} {hint}")
    looked = f" (judged on the first {SAMPLE_ROWS:,} rows)" if n_items > SAMPLE_ROWS else ""
    return (f"{len(unread):,} item_info column(s) are named by no setting, so mmrec does not read them: "
            f"{'; '.join(parts)}{looked}. Name the ones you want read (docs/data.md \"Input format\").")
