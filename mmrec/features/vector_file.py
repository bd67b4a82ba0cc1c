"""Item vectors from a user's file: a .npy matrix plus an id list, or parquet with `item_id` and either
one vector column (a list of numbers per row) or one number column per dimension. Read in row chunks (a
memory map for .npy), so a million-row file is never loaded whole; every problem with the file is a
FeatureError that says what is wrong and what to pass.

Nothing here is unpickled: .npy files (vectors and ids) load with allow_pickle=False.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmrec.errors import FeatureError
from mmrec.fileio import not_a_file, sha256_file, text_lines

ID_COLUMN = "item_id"
CATALOGUE_IDS = "catalogue"  # --ids catalogue: rows follow the processed item table's order
EXAMPLES = 5  # ids quoted in a message


def examples(ids: list[str]) -> str:
    """The first few of `ids`, quoted, for a message."""
    shown = ", ".join(repr(i) for i in ids[:EXAMPLES])
    return shown + (", ..." if len(ids) > EXAMPLES else "")


@dataclass
class VectorFile:
    """A validated [rows, dim] matrix of item vectors and the item id of each row."""

    path: Path
    ids: list[str]
    dim: int
    digest: str  # sha256 of the file's bytes
    columns: tuple[str, ...]  # parquet: the one list column, or the number columns of a wide file; () for .npy
    _matrix: np.ndarray | None = None  # the .npy memory map
    _parquet: object | None = None  # pyarrow.parquet.ParquetFile

    @property
    def rows(self) -> int:
        return len(self.ids)

    @property
    def column(self) -> str | None:
        """The vector column's name, "first..last (n columns)" for a wide file, None for .npy."""
        if len(self.columns) > 1:
            return f"{self.columns[0]}..{self.columns[-1]} ({len(self.columns)} columns)"
        return self.columns[0] if self.columns else None

    def chunks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, [m, dim] float32) for consecutive blocks of at most `rows` rows."""
        if self._matrix is not None:
            for start in range(0, self.rows, rows):
                yield start, np.asarray(self._matrix[start:start + rows], dtype=np.float32)
            return
        start = 0
        for batch in self._parquet.iter_batches(batch_size=rows, columns=list(self.columns)):
            if len(self.columns) > 1:  # one number per column: nulls become NaN, refused as non-finite
                block = np.column_stack([np.asarray(batch.column(i).to_numpy(zero_copy_only=False), dtype=np.float32)
                                         for i in range(len(self.columns))])
            else:
                block = _list_column_matrix(batch.column(0), self.dim, self.path, self.column)
            yield start, block
            start += len(block)


def _unreadable(path: Path, why: object) -> FeatureError:
    return FeatureError(f"Cannot read vector file {path}: {why}",
                        hint="Pass a .npy matrix (with --ids) or a parquet file with an item_id column.")


def read_vector_file(path: Path, ids: str | None, catalogue_ids: list[str], column: str | None = None,
                     id_column: str = ID_COLUMN) -> VectorFile:
    """Open and check `path`: .npy (ids from `ids`: a file, or "catalogue") or .parquet (ids inside, in an
    item_id column or the one data.item_id_column names: `id_column`)."""
    path = Path(path)
    if problem := not_a_file(path):
        raise FeatureError(f"Vector file {path} {problem}.",
                           hint="Pass the path of a .npy or .parquet file of item vectors.")
    if path.suffix.lower() == ".parquet":
        if ids is not None:
            raise FeatureError("--ids is for .npy files; a parquet file carries its ids in its item_id column.")
        vectors = _open_parquet(path, column, id_column)
    elif path.suffix.lower() == ".npy":
        if column is not None:
            raise FeatureError("--column is for parquet files; a .npy file is one matrix.")
        vectors = _open_npy(path, ids, catalogue_ids)
    else:
        raise FeatureError(f"Vector file {path} is neither .npy nor .parquet.",
                           hint="Save the vectors with numpy.save (and pass --ids) or as parquet.")
    _check_ids(vectors.ids, path)
    return vectors


def open_npy_matrix(path: Path) -> np.ndarray:
    """The non-empty 2-D numeric matrix a .npy file holds, memory-mapped (only its header is read now); FeatureError
    for a file that is no .npy, holds Python objects (never unpickled) or another shape or dtype."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if magic != b"\x93NUMPY":
        raise _unreadable(path, "it is not a .npy file (no numpy header)")
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "object" in str(exc).lower():
            raise FeatureError(f"{path} holds Python objects, which would need unpickling; mmrec never unpickles.",
                               hint="Save a plain float matrix: numpy.save(path, vectors.astype('float32')).") from None
        raise _unreadable(path, exc) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if matrix.ndim != 2:
        raise FeatureError(f"{path} holds an array of shape {matrix.shape}; expected a 2-D matrix [items, dim].",
                           hint="Save one row per item: numpy.save(path, vectors) with vectors.shape == (n, d).")
    _check_dtype(matrix.dtype, path)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise FeatureError(f"{path} is empty (shape {matrix.shape}).", hint="Pass a file with at least one vector.")
    return matrix


def _open_npy(path: Path, ids: str | None, catalogue_ids: list[str]) -> VectorFile:
    if ids is None:
        raise FeatureError(
            f"{path} is a bare matrix: its rows need item ids.",
            hint="Pass --ids FILE (one item_id per line, or a .npy/.json list of ids), or --ids catalogue "
                 "when the rows follow the processed item table's order (as MMRec's image_feat.npy/text_feat.npy).",
        )
    matrix = open_npy_matrix(path)
    row_ids = list(catalogue_ids) if ids == CATALOGUE_IDS else read_id_list(Path(ids))
    if len(row_ids) != matrix.shape[0]:
        source = "the processed item table" if ids == CATALOGUE_IDS else ids
        raise FeatureError(
            f"{path} has {matrix.shape[0]:,} rows but {source} gives {len(row_ids):,} item ids.",
            hint="Pass the id list written with these vectors (one id per row, in row order)."
            if ids != CATALOGUE_IDS else "--ids catalogue needs exactly one row per processed item, in table order; "
                                         "pass the id list written with these vectors instead.",
        )
    return VectorFile(path, row_ids, int(matrix.shape[1]), sha256_file(path), (), _matrix=matrix)


def _check_dtype(dtype: np.dtype, path: Path) -> None:
    if dtype.kind not in "fiu":
        raise FeatureError(f"{path} holds {dtype} values; vectors must be numbers (float or integer).",
                           hint="Convert the matrix to float32 before saving it.")


def read_id_list(path: Path) -> list[str]:
    """Item ids, one per row: a text file (one per line), a .npy of strings/integers, or a .json list."""
    if problem := not_a_file(path):
        raise FeatureError(f"Id list {path} {problem}.", hint="Pass --ids FILE or --ids catalogue.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
            if values.ndim != 1 or values.dtype.kind not in "USiu":
                raise FeatureError(f"Id list {path} holds a {values.dtype} array of shape {values.shape}; "
                                   "expected a 1-D array of strings or integers.")
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.tolist()]
        if suffix == ".json":
            values = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                       for v in values):
                raise FeatureError(f"Id list {path} is not a JSON list of strings or integers.")
            return [str(v) for v in values]
        lines = text_lines(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad JSON (or lists thousands deep), bad UTF-8, a pickled .npy
        raise FeatureError(f"Cannot read id list {path}: {exc}",
                           hint="Use a text file with one item_id per line.") from None
    except OSError as exc:
        raise FeatureError(f"Cannot read id list {path}: {exc}") from None
    ids = [line.strip() for line in lines]
    while ids and not ids[-1]:
        ids.pop()
    if "" in ids:
        raise FeatureError(f"Line {ids.index('') + 1} of id list {path} is empty; every row needs an item id.")
    return ids


def _check_ids(ids: list[str], path: Path) -> None:
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]
    if repeated:
        distinct = list(dict.fromkeys(repeated))
        raise FeatureError(f"{path}: {len(distinct):,} item id(s) have more than one row: {examples(distinct)}.",
                           hint="Keep one vector per item.")


def _open_parquet(path: Path, column: str | None, id_column: str = ID_COLUMN) -> VectorFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from None
    id_name = next((name for name in (ID_COLUMN, id_column) if name in schema.names), None)
    if id_name is None:
        named = ID_COLUMN if id_column == ID_COLUMN else f"{ID_COLUMN} or {id_column} (data.item_id_column)"
        raise FeatureError(f"{path} has no {named} column (columns: {', '.join(schema.names)}).",
                           hint="Name the id column item_id, or set data.item_id_column to its name.")
    # pandas writes its index as __index_level_0__ (DataFrame.to_parquet of a filtered frame): not a candidate
    others = [name for name in schema.names if name != id_name and not name.startswith("__index_level_")]
    def numbers(kind: pa.DataType) -> bool:
        return pa.types.is_floating(kind) or pa.types.is_integer(kind)

    wide = column is None and len(others) > 1 and all(numbers(schema.field(name).type) for name in others)
    if column is None and not wide:
        if len(others) != 1:
            raise FeatureError(f"{path} has {len(others)} columns besides {id_name} "
                               f"({', '.join(others[:8]) or 'none'}{', ...' if len(others) > 8 else ''}): "
                               "which holds the vectors?",
                               hint="Pass --column NAME (a column holding one list of floats per row), or keep only "
                                    f"{id_name} and one number column per dimension.")
        column = others[0]
    elif column is not None and column not in others:
        raise FeatureError(f"{path} has no vector column {column!r} (columns: {', '.join(schema.names)}).")
    if not wide:
        kind = schema.field(column).type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
            raise FeatureError(f"Column {column!r} of {path} holds {kind}, not vectors.",
                               hint="Store each item's vector as one list of floats in one column, or one number "
                                    f"per column with no other columns besides {id_name}.")
        if not numbers(kind.value_type):
            raise FeatureError(f"Column {column!r} of {path} holds lists of {kind.value_type}; vectors must be "
                               "numbers.")
    try:
        id_values = parquet.read(columns=[id_name]).column(0)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from None
    if id_values.null_count:
        raise FeatureError(f"{path}: {id_values.null_count:,} row(s) have no {id_name}.")
    if not (pa.types.is_string(id_values.type) or pa.types.is_large_string(id_values.type)
            or pa.types.is_integer(id_values.type)):
        raise FeatureError(f"The {id_name} column of {path} holds {id_values.type}; ids must be strings or integers.")
    ids = [str(v) for v in id_values.to_pylist()]
    if not ids:
        raise FeatureError(f"{path} is empty (no rows).", hint="Pass a file with at least one vector.")
    if wide:
        return VectorFile(path, ids, len(others), sha256_file(path), tuple(others), _parquet=parquet)
    first = next(parquet.iter_batches(batch_size=1, columns=[column])).column(0)
    if first.null_count or len(first[0]) == 0:
        raise FeatureError(f"The first row of {path} has no vector (null or empty list).")
    dim = len(first[0])
    return VectorFile(path, ids, dim, sha256_file(path), (column,), _parquet=parquet)


def _list_column_matrix(values, dim: int, path: Path, column: str) -> np.ndarray:
    """A pyarrow list array of `dim`-long numeric lists -> [rows, dim] float32 (FeatureError otherwise)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if values.null_count:
        raise FeatureError(f"{path}: {values.null_count:,} row(s) of column {column!r} have no vector (null).",
                           hint="Drop those rows, or give them a vector.")
    if not pa.types.is_fixed_size_list(values.type):
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(lengths != dim)
        if len(wrong):
            raise FeatureError(f"{path}: vectors of column {column!r} differ in length ({dim} in the first row, "
                               f"{int(lengths[wrong[0]])} in another; {len(wrong):,} row(s) are not {dim}-long).",
                               hint="Every row needs a vector of the same dimension.")
    elif values.type.list_size != dim:
        raise FeatureError(f"{path}: column {column!r} changes dimension within the file.")
    flat = values.flatten().to_numpy(zero_copy_only=False)  # null numbers become NaN: refused as non-finite
    return np.asarray(flat, dtype=np.float32).reshape(len(values), dim)
