"""Recommendations as a parquet table (user_id, rank, item_id, score, fallback[, new]), written chunk by chunk.

Each chunk of users becomes one row group, so memory holds one chunk, never every user's list; the
file is built beside the target and renamed over it at the end (mmrec.fileio.atomic_path).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mmrec.fileio import atomic_path

# fallback: null when the model scored the user, else the recommender whose list a user it does not know got
SCHEMA = pa.schema([("user_id", pa.string()), ("rank", pa.int32()), ("item_id", pa.string()),
                    ("score", pa.float32()), ("fallback", pa.dictionary(pa.int8(), pa.string()))])
NEW_COLUMN = pa.field("new", pa.bool_())  # with --new-items: the item had no interaction (a reserved place)


class RecommendationsWriter:
    """Appends one row group per chunk of users to an open ParquetWriter."""

    def __init__(self, writer: pq.ParquetWriter, item_ids: Sequence[str], is_new: np.ndarray | None = None,
                 path: Path | None = None) -> None:
        self._writer, self._path = writer, path
        self._item_ids = pa.array(list(item_ids), type=pa.string())
        self._is_new = is_new
        self.n_rows = 0

    def write(self, users: Sequence[str], lists: Sequence[tuple[np.ndarray, np.ndarray]],
              fallback: Sequence[str | None] | None = None) -> None:
        """lists[u] = (catalogue rows, scores) of users[u], best first; fallback[u] = the recommender users[u] got
        its list from when the model does not know them (None: the model's own list)."""
        lengths = np.fromiter((len(idx) for idx, _ in lists), dtype=np.int64, count=len(lists))
        if not lengths.sum():
            return
        rows = np.concatenate([idx for idx, _ in lists]).astype(np.int64)
        scores = np.concatenate([val for _, val in lists]).astype(np.float32)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        columns = [pa.array(np.repeat(np.asarray(users, dtype=object), lengths), type=pa.string()),
                   pa.array((np.arange(len(rows)) - starts + 1).astype(np.int32)),
                   self._item_ids.take(pa.array(rows)),
                   pa.array(scores),
                   pa.array(np.repeat(np.asarray(fallback if fallback is not None else [None] * len(users),
                                                 dtype=object), lengths), type=pa.string())
                   .dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string()))]
        if self._is_new is not None:
            columns.append(pa.array(self._is_new[rows]))
        table = pa.Table.from_arrays(columns, schema=self._writer.schema)
        with _named(self._path):
            self._writer.write_table(table)
        self.n_rows += len(rows)


@contextlib.contextmanager
def parquet_recommendations(path: Path, item_ids: Sequence[str], is_new: np.ndarray | None = None,
                            provenance: dict[str, Any] | None = None) -> Iterator[RecommendationsWriter]:
    """A writer whose file appears at `path` only when the block completes without error.

    is_new [n_items]: also write a boolean `new` column (the item had no interaction: --new-items).
    provenance: what made the lists (recommender, checkpoint), as JSON in the schema's metadata under
    `mmrec` (`json.loads(pyarrow.parquet.read_schema(path).metadata[b"mmrec"])`).
    """
    schema = SCHEMA.append(NEW_COLUMN) if is_new is not None else SCHEMA
    if provenance is not None:
        schema = schema.with_metadata({b"mmrec": json.dumps(provenance).encode()})
    with atomic_path(path) as tmp:
        with _named(tmp):
            writer = pq.ParquetWriter(tmp, schema)
        try:
            yield RecommendationsWriter(writer, item_ids, is_new, tmp)
        finally:
            with _named(tmp):
                writer.close()


@contextlib.contextmanager
def _named(path: Path | None) -> Iterator[None]:
    """An OSError of pyarrow's writer names no file ("Error writing bytes to file ... File too large"): the one
    written is added, so the error says where."""
    try:
        yield
    except OSError as error:
        if error.filename or path is None:
            raise
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
