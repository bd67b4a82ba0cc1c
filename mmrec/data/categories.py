"""Category columns (a channel, brand, author, genre): exact-match item features.

Preprocess cleans each configured column into a processed column `category:<name>` holding an item's
values joined by JOIN (cleaned text, letter case aside, in the order written, each once). Training
fits a `CategoryVocab` on the catalogue (item_info only, never interactions): a value held by at least
`model.category_min_items` items gets an index (1..n, in sorted order), any other reads as none (0).
The vocabulary travels in the checkpoint, so evaluate and recommend index a catalogue as training did;
a value the checkpoint never saw reads as none too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmrec.data.text import clean_text
from mmrec.errors import DataError

PREFIX = "category:"
JOIN = "\x1f"  # never in a cleaned value (clean_text turns control characters into spaces)
SLOTS = 8  # values read per item and column: the first 8 the cell names
MAX_VALUE_LENGTH = 200
_NO_VALUE = frozenset({"null", "n/a", "nan", "none", "-", "--", "\u2014"})


def processed_column(name: str) -> str:
    """The processed item table's column of category column `name`."""
    return PREFIX + name


def cell_values(cell: object, separator: str | None) -> list[str]:
    """The values a raw cell names: split at `separator`, cleaned, case-folded, blanks and placeholders left out,
    each once in the order written."""
    text = "" if cell is None or (isinstance(cell, float) and cell != cell) else str(cell)
    parts = text.split(separator) if separator else [text]
    values = (clean_text(part, MAX_VALUE_LENGTH).casefold() for part in parts)
    return list(dict.fromkeys(value for value in values if value and value not in _NO_VALUE))


@dataclass
class CategoryColumnReport:
    """What preprocess found in one category column."""

    items_with_value: int
    distinct_values: int
    shared_values: int  # values held by two items or more
    items_over_slots: int  # items naming more than SLOTS values (the first SLOTS are read)


def clean_category_columns(frame: pd.DataFrame, columns: Sequence[str], separator: str | None
                           ) -> tuple[dict[str, list[str]], dict[str, CategoryColumnReport]]:
    """{processed column: per-row joined values} and a report per configured column."""
    cleaned: dict[str, list[str]] = {}
    reports: dict[str, CategoryColumnReport] = {}
    for name in columns:
        rows = [cell_values(cell, separator) for cell in frame[name].tolist()]
        counts = Counter(value for row in rows for value in row)
        cleaned[processed_column(name)] = [JOIN.join(row) for row in rows]
        reports[name] = CategoryColumnReport(
            items_with_value=sum(map(bool, rows)), distinct_values=len(counts),
            shared_values=sum(1 for n in counts.values() if n >= 2),
            items_over_slots=sum(len(row) > SLOTS for row in rows))
    return cleaned, reports


def column_notes(reports: dict[str, CategoryColumnReport], n_items: int, separator: str | None) -> list[str]:
    """Notes on category columns that cannot help as configured (no value shared, few items with one, ...)."""
    notes = []
    for name, col in reports.items():
        if col.items_with_value == 0:
            notes.append(f"Category column {name!r} has no value on any item: it adds nothing. Fill it, or remove it "
                         "from data.category_columns.")
        elif col.shared_values == 0:
            notes.append(f"No value of category column {name!r} is shared by two items ({col.distinct_values:,} "
                         "distinct values): an item's own code, not a category, so it adds nothing. Remove it from "
                         "data.category_columns, or, if a cell holds several values, set data.category_separator to "
                         f"what separates them ({'null' if separator is None else repr(separator)} now).")
        elif col.items_with_value < 0.25 * n_items:
            notes.append(f"Category column {name!r} has a value on {col.items_with_value:,} of {n_items:,} items "
                         "only: the others are placed without it.")
        if col.items_over_slots:
            notes.append(f"{col.items_over_slots:,} item(s) name more than {SLOTS} values in category column "
                         f"{name!r}: the first {SLOTS} of each are read.")
    return notes


@dataclass
class CategoryVocab:
    """Per category column the values that have an index (1..n in this order; 0 = none or unknown)."""

    values: dict[str, list[str]]

    @classmethod
    def fit(cls, items: pd.DataFrame, columns: Sequence[str], min_items: int) -> CategoryVocab:
        """The values held by at least `min_items` catalogue items, per column."""
        vocab = {}
        for name in columns:
            counts = Counter(value for row in _rows(items, name) for value in row)
            vocab[name] = sorted(value for value, n in counts.items() if n >= min_items)
        return cls(vocab)

    @property
    def columns(self) -> list[str]:
        return list(self.values)

    @property
    def sizes(self) -> list[int]:
        """Embedding rows per column: its values + the none row."""
        return [len(values) + 1 for values in self.values.values()]

    def encode(self, items: pd.DataFrame) -> np.ndarray:
        """[n_items, len(columns) x SLOTS] int64 value indices (column c in slots c*SLOTS...; 0 = none)."""
        out = np.zeros((len(items), len(self.values) * SLOTS), dtype=np.int64)
        for c, (name, values) in enumerate(self.values.items()):
            index = {value: k for k, value in enumerate(values, start=1)}
            for row, held in enumerate(_rows(items, name)):
                known = [index[value] for value in held if value in index][:SLOTS]
                out[row, c * SLOTS : c * SLOTS + len(known)] = known
        return out

    def to_dict(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.values.items()}


def _rows(items: pd.DataFrame, name: str) -> list[list[str]]:
    column = processed_column(name)
    if column not in items.columns:
        raise DataError(
            f"The processed item table has no category column {name!r} (data.category_columns).",
            hint="Run `mmrec preprocess` with the data.category_columns the model is to read (the data was "
                 "preprocessed without it).")
    return [cell.split(JOIN) if cell else [] for cell in items[column].fillna("").astype(str).tolist()]
