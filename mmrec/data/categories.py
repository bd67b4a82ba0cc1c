"""Category columns (a channel, brand, author, genre): exact-match item features.

Preprocess cleans each configured column into a processed column `category:<name>` holding an item's
values joined by JOIN (cleaned text, letter case aside, in the order written, each once). Training
fits a `CategoryVocab` on the catalogue (item_info; interactions only say which items training learns
from): a value held by at least `model.category_min_items` items, one of them with a training
interaction, gets an index (1..n, in sorted order), any other reads as none (0). The vocabulary travels
in the checkpoint, so evaluate and recommend index a catalogue as training did; a value the checkpoint
never saw reads as none too.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmrec.data.text import clean_text
from mmrec.errors import DataError

PREFIX = "category:"
JOIN = "\x1f"  # never in a cleaned value (clean_text turns control characters into spaces)
SLOTS = 8  # values read per item and column: the first 8 with an index, in the cell's order
MAX_VALUE_LENGTH = 200
_NO_VALUE = frozenset({"null", "n/a", "nan", "none", "-", "--", "\u2014"})


def processed_column(name: str) -> str:
    """The processed item table's column of category column `name`."""
    return PREFIX + name


def cell_values(cell: object, separator: str | None) -> list[str]:
    """The values a raw cell names: a JSON or parquet list's entries (read_table joins them by JOIN), each split at
    `separator`, cleaned, case-folded, cut at MAX_VALUE_LENGTH characters, blanks and placeholders left out, each
    once in the order written."""
    return _distinct(_cleaned(cell, separator))


def _distinct(values: list[str]) -> list[str]:
    """Values cut at MAX_VALUE_LENGTH characters, each once in order."""
    return list(dict.fromkeys(value[:MAX_VALUE_LENGTH] for value in values))


def _cleaned(cell: object, separator: str | None) -> list[str]:
    """cell_values before the cut: whole."""
    text = "" if cell is None or (isinstance(cell, float) and cell != cell) else str(cell)
    parts = [part for entry in text.split(JOIN) for part in (entry.split(separator) if separator else [entry])]
    values = (clean_text(part, sys.maxsize).casefold() for part in parts)
    return [value for value in values if value and value not in _NO_VALUE]


@dataclass
class CategoryColumnReport:
    """What preprocess found in one category column."""

    items_with_value: int
    distinct_values: int
    shared_values: int  # values held by two items or more
    items_over_slots: int  # items naming more than SLOTS values (SLOTS of them are read)
    values_cut: int = 0  # distinct values longer than MAX_VALUE_LENGTH characters, cut there


def clean_category_columns(frame: pd.DataFrame, columns: Sequence[str], separator: str | None
                           ) -> tuple[dict[str, list[str]], dict[str, CategoryColumnReport]]:
    """{processed column: per-row joined values} and a report per configured column."""
    cleaned: dict[str, list[str]] = {}
    reports: dict[str, CategoryColumnReport] = {}
    for name in columns:
        whole = [_cleaned(cell, separator) for cell in frame[name].tolist()]
        rows = [_distinct(row) for row in whole]
        counts = Counter(value for row in rows for value in row)
        cleaned[processed_column(name)] = [JOIN.join(row) for row in rows]
        reports[name] = CategoryColumnReport(
            items_with_value=sum(map(bool, rows)), distinct_values=len(counts),
            shared_values=sum(1 for n in counts.values() if n >= 2),
            items_over_slots=sum(len(row) > SLOTS for row in rows),
            values_cut=len({value for row in whole for value in row if len(value) > MAX_VALUE_LENGTH}))
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
                         f"{name!r}: {SLOTS} of each are read (the first the model learns an embedding for).")
        if col.values_cut:
            notes.append(f"{col.values_cut:,} value(s) of category column {name!r} are longer than "
                         f"{MAX_VALUE_LENGTH} characters: cut there, so two that agree that far read as one.")
    return notes


@dataclass
class CategoryVocab:
    """Per category column the values that have an index (1..n in this order; 0 = none or unknown)."""

    values: dict[str, list[str]]

    @classmethod
    def fit(cls, items: pd.DataFrame, columns: Sequence[str], min_items: int,
            trained: np.ndarray | None = None) -> CategoryVocab:
        """Per column the values held by at least `min_items` catalogue items, and (`trained` [n_items] bool: the
        items training learns from) by one of those at least: a value only other items hold would keep its
        untrained embedding, so it reads as none."""
        vocab = {}
        for name in columns:
            rows = _rows(items, name)
            counts = Counter(value for row in rows for value in row)
            taught = None if trained is None else {value for row, t in zip(rows, trained, strict=True) if t
                                                   for value in row}
            vocab[name] = sorted(value for value, n in counts.items()
                                 if n >= min_items and (taught is None or value in taught))
        return cls(vocab)

    @property
    def sizes(self) -> list[int]:
        """Embedding rows per column: its values + the none row."""
        return [len(values) + 1 for values in self.values.values()]

    def encode(self, items: pd.DataFrame) -> np.ndarray:
        """[n_items, len(columns) x SLOTS] int64 value indices (column c in slots c*SLOTS...; 0 = none)."""
        return self._encode(self._cells(items), len(items))

    def read(self, items: pd.DataFrame, min_items: int) -> tuple[np.ndarray, str | None]:
        """`encode(items)` and `unlearned_note(items, min_items)`, reading the cells once (serving)."""
        cells = self._cells(items)
        return self._encode(cells, len(items)), self._unlearned(cells, min_items)

    def unlearned_note(self, items: pd.DataFrame, min_items: int) -> str | None:
        """A note on the items placed without a column although the catalogue shares its values now: all their
        values of it are unknown to this vocabulary, and one at least is held by `min_items` items (a channel new
        since training). Values too rare to learn (one item's own) are no news and not counted. None: no such
        item."""
        return self._unlearned(self._cells(items), min_items)

    def _cells(self, items: pd.DataFrame) -> dict[str, list[list[str]]]:
        return {name: _rows(items, name) for name in self.values}

    def _encode(self, cells: dict[str, list[list[str]]], n: int) -> np.ndarray:
        out = np.zeros((n, len(self.values) * SLOTS), dtype=np.int64)
        for c, (name, values) in enumerate(self.values.items()):
            index = {value: k for k, value in enumerate(values, start=1)}
            for row, held in enumerate(cells[name]):
                known = [index[value] for value in held if value in index][:SLOTS]
                out[row, c * SLOTS : c * SLOTS + len(known)] = known
        return out

    def _unlearned(self, cells: dict[str, list[list[str]]], min_items: int) -> str | None:
        parts = []
        for name, values in self.values.items():
            known, rows = set(values), cells[name]
            counts = Counter(value for row in rows for value in row)
            lost = [row for row in rows if row and not known.intersection(row)
                    and any(counts[value] >= min_items for value in row)]
            if lost:
                example = next(value for value in lost[0] if counts[value] >= min_items)
                parts.append(f"{len(lost):,} in {name!r} (e.g. {example!r})")
        if not parts:
            return None
        return (f"Catalogue items hold category values the model has no embedding for, shared by {min_items} or "
                f"more items now, and no other value of that column: {'; '.join(parts)}. New since training (or "
                "then held only by items without interactions): they are placed without that column until a "
                "retrain learns them.")

    def to_dict(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.values.items()}


def _rows(items: pd.DataFrame, name: str) -> list[list[str]]:
    column = processed_column(name)
    if column not in items.columns:
        raise DataError(
            f"The processed item table has no category column {name!r}, which the model reads (it was preprocessed "
            "without it in data.category_columns).",
            hint=f"Add {name!r} to data.category_columns and run `mmrec preprocess` again; or train a model "
                 "without it.")
    return [cell.split(JOIN) if cell else [] for cell in items[column].fillna("").astype(str).tolist()]
