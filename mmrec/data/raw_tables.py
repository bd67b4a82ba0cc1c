"""Reading the user's raw tables (item_info, interactions): CSV in any of the usual separators, JSON Lines or
parquet (the content tells), compressed or not, every column as text; CSV lines that do not fit the header are
skipped and counted, or refused; columns renamed to the canonical names; header lines repeated inside a file
dropped."""

from __future__ import annotations

import ast
import codecs
import csv
import io
import json
import re
import warnings
from collections.abc import Collection, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.errors import DataError
from mmrec.fileio import (
    DECOMPRESSION_ERRORS,
    compression,
    csv_separator,
    is_parquet,
    not_a_file,
    not_utf8_error,
    open_bytes,
)


@dataclass(frozen=True)
class MalformedLine:
    """A line of a text table with more fields than its header: `line` counts from 1 (the header); or a JSON Lines
    line that is no JSON object (`not_json`: why, as the parser says; `fields`, `expected` 0)."""

    line: int
    fields: int
    expected: int
    not_json: str = ""


@dataclass
class RawTable:
    """A raw table as read: every column as text, the lines skipped for holding more fields than the header, and
    what the report should say about how it was read."""

    frame: pd.DataFrame
    malformed: list[MalformedLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EveryKeyBut:
    """`each_entry` of read_table for every column but `names` (a catalogue's text columns, whose lists are a text
    in parts): the lists of any other column, one preprocess reads as categories or only names, are several values."""

    names: frozenset[str]

    def __contains__(self, key: object) -> bool:
        return key not in self.names


def read_table(path: Path, what: str, skip_malformed: bool | None = None, encoding: str = "utf-8",
               first_entry: Collection[str] = (), each_entry: Collection[str] | EveryKeyBut = ()) -> RawTable:
    """A CSV (comma-, tab-, semicolon- or pipe-separated: the header tells), JSON Lines (or one JSON array of
    objects) or parquet file (the content tells; CSV and JSON gzip/bz2/xz-compressed or not), every column as
    strings (ids must never become numbers; a parquet or JSON number is written as its value reads); DataError if
    unusable. A CSV line with more fields than the header is a DataError unless `skip_malformed`, and even then
    when such lines outnumber the good ones (the file's separator or quoting is off, not a stray line). False:
    preprocess.malformed_lines is `error` (the refusal names the setting); None: a file no setting skips lines of.
    `encoding`: data.encoding, of the CSV and JSON text (utf-8 also reads a byte-order mark). `first_entry`: JSON
    keys whose list values stand for one thing (an item's images: Amazon dumps list several), read as their first
    entry (`_first_entry`), with a note, instead of joined. `each_entry`: JSON keys whose list values are several
    values (an item's categories), their entries joined by U+001F (mmrec.data.categories.JOIN), which no text
    cell holds once cleaned; or `EveryKeyBut(names)`."""
    if problem := not_a_file(path):
        raise DataError(f"{what} file {path} {problem}." if path.exists() else f"{what} file not found: {path}",
                        hint="Check paths.data_dir and the data.*_file settings.")
    if path.stat().st_size == 0:
        raise DataError(f"{what} file {path} is empty.", hint="It needs a header row and at least one row.")
    each = each_entry if isinstance(each_entry, EveryKeyBut) else frozenset(each_entry)
    parquet = is_parquet(path)
    utf8_instead = None if parquet else _utf8_read_otherwise(path, what, encoding)
    if parquet:
        table = _read_parquet(path, what, frozenset(first_entry), each)
    elif (wide := _utf16_without_mark(path)) and codecs.lookup(encoding).name in ("utf-8", "utf-16"):
        raise DataError(f"{what} file {path} is UTF-16 text without a byte-order mark ({wide}: every other byte "
                        "is 0).", hint=f"Set data.encoding: {wide} (or re-save the file as UTF-8).")
    elif kind := _json_kind(path, encoding):
        table = _read_json(path, what, kind, encoding, frozenset(first_entry), skip_malformed, each)
    else:
        table = _read_text_table(path, what, csv_separator(path), skip_malformed, encoding)
    table.frame.columns = [str(c).strip() for c in table.frame.columns]
    if utf8_instead:
        table.notes.append(utf8_instead)
    if table.frame.empty:
        raise DataError(f"{what} file {path} has a header but no rows.", hint="Add rows below the header.")
    return table


_TOO_MANY_FIELDS = re.compile(r"Expected \d+ fields in line \d+, saw \d+")


def _read_text_table(path: Path, what: str, sep: str, skip_malformed: bool | None, encoding: str) -> RawTable:
    """A clean file is read by pandas in one pass. pandas reads lines with more fields than the header
    inconsistently (the first data line's width becomes the expected one; with index inference its first field
    silently became the index, shifting every column), so when it complains at all the file is read again
    record by record (`_fit_to_header`) and parsed from that. Quotes escaped with a backslash are made CSV's
    doubled quotes first (`_backslash_quotes`)."""
    text, escaped = _backslash_quotes(path, sep, encoding)
    notes = [] if not escaped else [
        f"{escaped:,} quote(s) in {path.name} are escaped with a backslash (\\\" inside a quoted value, as some "
        "exporters write them, e.g. Book-Crossing's files): read as quotes (CSV doubles them: \"\"). A backslash "
        "before the quote that closes a value is kept as text."]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = _parse_text(path if text is None else io.StringIO(text), path, sep, what, encoding)
        except pd.errors.ParserError as exc:
            if not _TOO_MANY_FIELDS.search(str(exc)):  # an open quote, say: the strict re-read names its line
                _fit_to_header(path, what, sep, encoding, text=text)
                raise _refused(path, what, sep, str(exc).strip(), skip_malformed) from None
            frame = None
    if frame is not None and not any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        return RawTable(frame, notes=notes)
    fitted = _fit_to_header(path, what, sep, encoding, text=text)
    if fitted.records and fitted.one_longer == fitted.records and fitted.trailing_empty < fitted.records:
        # Every line one field longer, and not by an empty last one (a trailing separator): row names whose
        # header cell was left out (R's write.table writes them so).
        fitted = _fit_to_header(path, what, sep, encoding, row_names=True, text=text)
        notes.append(f"Every line of {path.name} holds one field more than its header: the first is taken as row "
                     "names without a header cell (as R's write.table writes them) and left out.")
    malformed, records = fitted.malformed, fitted.records
    if malformed and not skip_malformed:
        first = malformed[0]
        raise _refused(path, what, sep, f"line {first.line} holds {first.fields} fields, the header "
                                        f"{first.expected}", skip_malformed)
    if 2 * len(malformed) > records:
        first = malformed[0]
        raise _refused(path, what, sep, f"{len(malformed):,} of {records:,} lines hold more fields than the "
                                        f"header (e.g. line {first.line}: {first.fields} fields, expected "
                                        f"{first.expected})", skip_malformed)
    return RawTable(_parse_text(io.StringIO(fitted.text), path, sep, what, encoding), malformed, notes)


def _parse_text(source: Path | io.StringIO, path: Path, sep: str, what: str, encoding: str) -> pd.DataFrame:
    """Every column as strings, empty cells missing; never an index column (index_col=False). A gzip, bz2 or xz
    file is read decompressed, whatever its name."""
    try:
        return pd.read_csv(source, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding,
                           index_col=False, compression=compression(source) if isinstance(source, Path) else None)
    except UnicodeError:  # UnicodeDecodeError, or utf-16 without its byte-order mark
        raise _undecodable(path, what, encoding) from None
    except DECOMPRESSION_ERRORS as exc:
        raise _undecompressed(path, what, exc) from None
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{what} file {path} cannot be parsed as CSV ({sep!r}-separated): "
                        f"{str(exc).strip()}.", hint="It needs a header row and at least one row.") from None


@dataclass
class _Fitted:
    """What `_fit_to_header` made of a text table."""

    text: str  # the records fitted to the header's width, as CSV text
    malformed: list[MalformedLine]  # the records left out
    records: int  # data records read (blank lines aside)
    one_longer: int  # data records exactly one field longer than the header
    trailing_empty: int  # ... of which the extra (last) field is empty


def _backslash_quotes(path: Path, sep: str, encoding: str) -> tuple[str | None, int]:
    """(the file's text with each backslash-escaped quote (\\") inside a quoted value written as CSV writes it (""),
    how many) when the file holds such quotes, else (None, 0): most files hold none, and are then only scanned.
    Only lines that hold a \\" are looked at (`_unescape_line`)."""
    found, tail = False, ""
    try:
        with io.TextIOWrapper(open_bytes(path), encoding=_with_bom(encoding), newline="") as handle:
            for block in iter(lambda: handle.read(1 << 20), ""):
                if '\\"' in tail + block:
                    found = True
                    break
                tail = block[-1:]
            if not found:
                return None, 0
            handle.seek(0)
            text = handle.read()
    except (UnicodeError, *DECOMPRESSION_ERRORS):  # reading the file as it is says what is wrong
        return None, 0
    source = text.split("\n")
    lines, count, quoted = list(source), 0, False  # a quoted value may span lines: its state is carried
    width = _width(lines[0], sep)
    start, counted, number = 0, 0, 0  # the record in progress: its first line, the quotes counted in it
    while number < len(source):
        line = source[number]
        if not quoted:
            start, counted = number, 0
        if '\\"' in line:
            lines[number], done, quoted = _unescape_line(line, sep, quoted)
            count, counted = count + done, counted + done
        elif line.count('"') % 2:  # quotes open and close in pairs ("" included): an odd count flips the state
            quoted = not quoted
        number += 1
        if quoted:
            continue
        # The record (one line, or a value spanning lines) is read. A \" before a separator closed its value; where
        # that reading does not fit the header and the one where it is a quote does (`"said \"hi\", then"`, as
        # MySQL's exports escape), the record is read so, with the lines that reading's value goes on to.
        # (A next line whose first quote stands in the middle of a field, where no value opens, says the value went
        # on; a next line that opens a quoted value at a field's start is a record of its own.)
        if f'\\"{sep}' in "\n".join(source[start:number]) and (
                _width("\n".join(lines[start:number]), sep) != width
                or number < len(source) and _stray_quote(source[number], sep)):
            for end in range(number, min(number + _MAX_VALUE_LINES, len(source)) + 1):
                other, done, still = _unescape_line("\n".join(source[start:end]), sep, False, sep_closes=False)
                if not still:
                    if _width(other, sep) == width:
                        lines[start:end] = other.split("\n")
                        count += done - counted
                        number = end
                    break
    return ("\n".join(lines), count) if count else (None, 0)


def _stray_quote(line: str, sep: str) -> bool:
    """Whether `line`'s first quote (one not escaped by a backslash) stands inside a field, not at its start: the
    quote that closes a value begun on an earlier line (`and came back",d`)."""
    unescaped = line.replace('\\"', "\0\0")  # the same places, without the escaped quotes
    at = unescaped.find('"')
    return at > 0 and line[at - 1] != sep and unescaped.count('"') % 2 == 1


_MAX_VALUE_LINES = 200  # lines a value read with its \" as quotes may go on to (a cap on the look ahead)


def _unescape_line(line: str, sep: str, quoted: bool, sep_closes: bool = True) -> tuple[str, int, bool]:
    """(`line` with each \\" inside a quoted value written "", how many, whether the line ends inside a quoted value);
    `quoted`: whether it starts inside one (a value spanning lines). A \\" followed by the line's end, or by the
    separator if `sep_closes`, is a backslash ending the value and its closing quote (Book-Crossing writes both),
    left as it is; a \\" outside quotes is text."""
    out, count, field_start, i = [], 0, not quoted, 0
    ends = ("", "\r", "\n", sep) if sep_closes else ("", "\r", "\n")  # a record of several lines: each line's end
    while i < len(line):
        char = line[i]
        if quoted:
            if char == "\\" and line.startswith('"', i + 1):
                closes = line[i + 2:i + 3] in ends
                out.append('\\"' if closes else '""')
                count += not closes
                quoted, i = not closes, i + 2
                continue
            if char == '"':
                if line.startswith('"', i + 1):  # CSV's own doubled quote
                    out.append('""')
                    i += 2
                    continue
                quoted = False
        elif char == '"' and field_start:
            quoted = True
        field_start = not quoted and char == sep
        out.append(char)
        i += 1
    return "".join(out), count, quoted


def _width(record: str, sep: str) -> int:
    """How many fields one record of a table holds (a value in quotes may span lines), read as CSV."""
    return len(next(csv.reader(io.StringIO(record.rstrip("\r"), newline=""), delimiter=sep), []))


def _fit_to_header(path: Path, what: str, sep: str, encoding: str, row_names: bool = False, strict: bool = True,
                   text: str | None = None) -> _Fitted:
    """The file as CSV text whose records are at most the header's width: trailing empty fields dropped (an
    exporter's trailing separator), records with more non-empty fields left out (counted). Short records stay as
    they are (their missing cells are missing); with `row_names`, each data record's first field is left out
    first. Python's csv module reads quoting as pandas does; `strict` refuses a quote left open (the rest of
    the file would be one value), and quoting pandas tolerates (`"Weird Al" Yankovic`) is then read leniently."""
    out, malformed = io.StringIO(), []
    width, line, records, one_longer, trailing_empty = None, 1, 0, 0, 0
    limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # a long description is a field, not an error
    try:
        with (io.StringIO(text, newline="") if text is not None else
              io.TextIOWrapper(open_bytes(path), encoding=_with_bom(encoding), newline="")) as handle:
            reader = csv.reader(handle, delimiter=sep, strict=strict)
            writer = csv.writer(out, delimiter=sep, lineterminator="\n")
            for record in reader:
                if record and width is None:  # the header: the first line that is not blank, as for pandas
                    width = len(record)
                elif record:
                    records += 1
                    if len(record) == width + 1:
                        one_longer += 1
                        trailing_empty += not record[-1].strip()
                    record = record[1:] if row_names else record
                if record and len(record) > width and any(cell.strip() for cell in record[width:]):
                    malformed.append(MalformedLine(line, len(record) + row_names, width))
                elif record:
                    writer.writerow(record[:width])
                line = reader.line_num + 1
    except UnicodeError:  # UnicodeDecodeError, or utf-16 without its byte-order mark
        raise _undecodable(path, what, encoding) from None
    except csv.Error as exc:
        if "unexpected end of data" in str(exc) or not strict:
            raise _refused(path, what, sep, f"line {line}: {exc}", True) from None
        lenient = True
    except DECOMPRESSION_ERRORS as exc:
        raise _undecompressed(path, what, exc) from None
    else:
        lenient = False
    finally:
        csv.field_size_limit(limit)
    if lenient:  # a quote pandas reads leniently (text after a closing quote): read so, after the strict check
        return _fit_to_header(path, what, sep, encoding, row_names, strict=False, text=text)
    return _Fitted(out.getvalue(), malformed, records, one_longer, trailing_empty)


def _utf8_read_otherwise(path: Path, what: str, encoding: str) -> str | None:
    """For a file read with a `data.encoding` other than UTF-8 that is UTF-8 all the same: a DataError when it
    starts with UTF-8's byte-order mark (its header then read 'ï»¿item_id'), else a note when its non-ASCII bytes
    all decode as UTF-8 (cp1252 reads 'Größe' as 'GrÃ¶ÃŸe' without a word); None otherwise."""
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return None
    try:
        with open_bytes(path) as handle:
            data = handle.read(1 << 24)  # the first 16 MiB tell
    except (OSError, *DECOMPRESSION_ERRORS):
        return None
    if data.startswith(codecs.BOM_UTF8):
        raise DataError(f"{what} file {path} starts with UTF-8's byte-order mark: it is UTF-8 text, but "
                        f"data.encoding reads it as {encoding}.", hint="Remove data.encoding (or set it to utf-8).")
    if data.isascii():
        return None
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=False)  # a character cut at the end: fine
    except UnicodeDecodeError:
        return None
    example = next((word for word in re.findall(r"[^\s,;|\"]+", text) if not word.isascii()), "")[:40]
    return (f"{path.name} is valid UTF-8 with non-ASCII text (e.g. {example!r}), but data.encoding reads it as "
            f"{encoding} ({example.encode('utf-8').decode(encoding, errors='replace')!r}): if its text reads garbled, "
            "remove data.encoding.")


def _with_bom(encoding: str) -> str:
    """utf-8 as utf-8-sig, which also reads (and drops) a byte-order mark; any other encoding as it is."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _utf16_without_mark(path: Path) -> str | None:
    """"utf-16-le" / "utf-16-be" when the file starts as ASCII text in UTF-16 without a byte-order mark does (every
    other byte 0), else None."""
    try:
        with open_bytes(path) as handle:
            start = handle.read(4096)
    except DECOMPRESSION_ERRORS:
        return None
    start = start[:len(start) // 2 * 2]
    if len(start) < 8 or start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    even, odd = start[0::2], start[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _undecodable(path: Path, what: str, encoding: str) -> DataError:
    """The error for text that `encoding` cannot decode: for utf-8, where and how to re-save it (not_utf8_error), or
    to say its encoding with data.encoding; for another encoding, that it is not that one."""
    if codecs.lookup(encoding).name != "utf-8":
        return DataError(f"{what} file {path} cannot be read as {encoding} text (data.encoding): it was saved in "
                         "another encoding.", hint="Set data.encoding to the encoding the file was saved in (utf-8, "
                                                   "cp1252, latin-1, utf-16...).")
    error = not_utf8_error(path, f"{what} file")
    if "not UTF-8" in error.message and "UTF-16" not in error.message and "not text" not in error.message:
        error.hint = f"{error.hint} Or read it as it is: `data: {{encoding: cp1252}}` in the config (or latin-1)."
    return error


def _undecompressed(path: Path, what: str, exc: BaseException) -> DataError:
    return DataError(f"{what} file {path} is {compression(path)}-compressed but cannot be read as such: "
                     f"{exc or type(exc).__name__}.", hint="The file is damaged or was cut short: compress it again "
                                                            "from the original, or pass it uncompressed.")


def _refused(path: Path, what: str, sep: str, detail: str, skip_malformed: bool | None) -> DataError:
    if "EOF inside string" in detail or "unexpected end of data" in detail:
        hint = ('A value opens a quote (") that never closes, so the rest of the file would be one value: close '
                'it, or double a quote meant as text ("12"" screen").')
    else:
        hint = (f"A row with more fields than the header usually holds an unquoted {sep!r} inside a value: quote "
                f"that value (\"a{sep} b\") or remove the extra field"
                + (" (preprocess.malformed_lines: skip skips such lines, counted in the report)."
                   if skip_malformed is False else "."))
    return DataError(f"{what} file {path} cannot be parsed as CSV ({sep!r}-separated): {detail}.", hint=hint)


def malformed_note(malformed: list[MalformedLine], file: Path) -> str:
    """The report's note on the lines of `file` skipped for holding more fields than its header (or, in JSON Lines,
    for being no JSON object)."""
    if malformed[0].not_json:
        return (f"{len(malformed):,} line(s) of {file.name} are no JSON object (line {malformed[0].line}: "
                f"{malformed[0].not_json}): skipped. Set preprocess.malformed_lines: error to stop on such lines.")
    shown = ", ".join(f"line {m.line}: {m.fields}" for m in malformed[:3])
    sep = csv_separator(file)
    return (f"{len(malformed):,} line(s) of {file.name} hold more fields than its header's {malformed[0].expected} "
            f"({shown}{', ...' if len(malformed) > 3 else ''}): skipped. An unquoted {sep!r} inside a value splits "
            f"it in two: quote the value (\"a{sep} b\"), or set preprocess.malformed_lines: error to stop on such "
            "lines.")


def _read_parquet(path: Path, what: str, first_entry: frozenset[str] = frozenset(),
                  each_entry: Container[str] = frozenset()) -> RawTable:
    """The table, every value as text; list and struct values as a JSON file's are read (`_cell`)."""
    import pyarrow as pa

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(f"{what} file {path} cannot be read as parquet: {exc}") from None
    frame = frame.reset_index(drop=True)
    listed: dict[str, int] = {}
    for column in frame.columns:  # as pandas reads text: str values, missing ones NaN
        values = frame[column]
        if values.dtype == object and values.map(lambda v: isinstance(v, (list, np.ndarray, dict))).any():
            # A list column (a description in parts, an item's images) reads as the same JSON value would: pandas
            # gives numpy arrays, whose text ("['a' 'b']") no model should read.
            frame[column] = values.map(lambda v, c=str(column): _cell(c, _python(v), first_entry, listed, each_entry)
                                       ).astype(object)
            continue
        if pd.api.types.is_float_dtype(values) and bool((values.dropna() % 1 == 0).all()):
            values = values.astype("Int64")  # whole numbers stored as float (a column with gaps): 12, not 12.0
        frame[column] = values.astype(str).where(values.notna(), np.nan).astype(object)
    return RawTable(frame, notes=_listed_notes(path, listed))


def _json_kind(path: Path, encoding: str) -> str | None:
    """"lines" for JSON Lines (a JSON object per line), "array" for one JSON array, else None (CSV). The start is
    read as `encoding` text (a UTF-16 file's bytes hide its braces)."""
    try:
        with io.TextIOWrapper(open_bytes(path), encoding=_with_bom(encoding), errors="replace") as handle:
            start = handle.read(4096).lstrip("\ufeff \t\r\n")
    except (UnicodeError, *DECOMPRESSION_ERRORS):
        return None  # reading it as CSV says what is wrong
    return "lines" if start.startswith("{") else "array" if start.startswith("[") else None


def _read_json(path: Path, what: str, kind: str, encoding: str, first_entry: frozenset[str] = frozenset(),
               skip_malformed: bool | None = None, each_entry: Container[str] = frozenset()) -> RawTable:
    """The objects of a JSON Lines file (or of one JSON array) as a table, every value as text (`_as_text`);
    a key an object lacks is a missing cell. DataError naming the line that is not a JSON object. Lines that are
    Python dict literals (single quotes: the 2014 Amazon review dumps) are read as such, and counted."""
    literals: list[int] = []  # the numbers of lines read as Python literals
    malformed: list[MalformedLine] = []  # lines that are no JSON, skipped
    listed: dict[str, int] = {}  # first_entry key -> rows whose value was a list (read as its first entry)
    try:
        with io.TextIOWrapper(open_bytes(path), encoding=_with_bom(encoding)) as handle:
            if kind == "array":
                try:
                    records = json.loads(handle.read().lstrip("\ufeff"))  # a mark utf-16-le/-be leave in
                except json.JSONDecodeError as exc:
                    raise _not_json(path, what, f"line {exc.lineno}", f"{exc.msg} (column {exc.colno})") from None
                if not isinstance(records, list):
                    raise _not_json(path, what, "line 1", "the file is not a list of objects")
                if not records:
                    raise DataError(f"{what} file {path} is an empty JSON array: it holds no rows.",
                                    hint="Write one JSON object per row (or one per line: JSON Lines).")
                numbered = enumerate(records, 1)
            else:
                numbered = ((number, _json_line(path, what, number, line.lstrip("\ufeff"), literals,
                                                skip_malformed, malformed))
                            for number, line in enumerate(handle, 1) if line.strip())
            rows = []
            for number, record in numbered:
                if record is _SKIPPED:  # a line that is no JSON, skipped (preprocess.malformed_lines: skip)
                    continue
                if not isinstance(record, dict):
                    where = f"element {number} of the array" if kind == "array" else f"line {number}"
                    raise _not_json(path, what, where, f"a JSON {type(record).__name__}, not an object")
                rows.append({str(key): _cell(str(key), value, first_entry, listed, each_entry)
                             for key, value in record.items()})
    except UnicodeError:  # UnicodeDecodeError, or utf-16 without its byte-order mark
        raise _undecodable(path, what, encoding) from None
    except DECOMPRESSION_ERRORS as exc:
        raise _undecompressed(path, what, exc) from None
    except RecursionError:  # [[[[... thousands deep: no table is written so
        raise DataError(f"{what} file {path} nests lists or objects thousands deep, deeper than a reader can follow: "
                        "it is no table of rows.", hint="Write one JSON object per row, its values text, numbers or "
                        "short lists.") from None
    notes = [f"{len(literals):,} line(s) of {path.name} are Python dict literals ({{'key': 'value'}}, as the 2014 "
             f"Amazon review dumps write them), not JSON (e.g. line {literals[0]}): read as such."] if literals else []
    if 2 * len(malformed) > len(malformed) + len(rows):  # not a stray line: the file is no JSON Lines table
        first = malformed[0]
        raise _not_json(path, what, f"line {first.line}", f"{first.not_json}; {len(malformed):,} of "
                        f"{len(malformed) + len(rows):,} lines are no JSON object")
    notes += _listed_notes(path, listed)
    return RawTable(pd.DataFrame.from_records(rows).astype(object) if rows else pd.DataFrame(), malformed, notes)


_SKIPPED = object()  # what _json_line gives for a line it skips


def _json_line(path: Path, what: str, number: int, line: str, literals: list[int], skip_malformed: bool | None = None,
               malformed: list[MalformedLine] | None = None) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        # Python's words for a line that stops inside a string or before its object closes (a download cut off)
        cut = exc.msg in ("Invalid control character at", "Unterminated string starting at") or \
            exc.pos >= len(line.rstrip())
        detail = f"{exc.msg} (column {exc.colno})" + (
            "; the line ends before its object does (cut short, as a download stopped early?)" if cut else "")
        error = _not_json(path, what, f"line {number}", detail)
    if line.lstrip().startswith("{'"):  # a Python dict literal: literal_eval reads literals only, never runs code
        try:
            record = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
            record = None
        if isinstance(record, dict):
            literals.append(number)
            return record
    if skip_malformed and malformed is not None:  # a stray line (a download cut short): skipped and counted
        malformed.append(MalformedLine(number, 0, 0, detail))
        return _SKIPPED
    if skip_malformed is False:
        error.hint += " (preprocess.malformed_lines: skip skips such lines, counted in the report.)"
    raise error


def _not_json(path: Path, what: str, where: str, detail: str) -> DataError:
    example = ('{"item_id": "i1", "title": "Red mug"}' if what == "item_info" else
               '{"user_id": "u1", "item_id": "i1"}')
    return DataError(f"{what} file {path} reads as JSON (one object per line, or one array of objects), but at "
                     f"{where}: {detail}.",
                     hint=f"Fix or remove that line (each line one JSON object: {example}), or export the table as "
                          "CSV.")


def _as_text(value: Any) -> Any:
    """A JSON value as a table cell, as a CSV would hold it: null missing, 12.0 as 12, true as true, a list of
    plain values joined by spaces (a description in parts, a list of categories), a list of such lists joined by
    commas, anything else as JSON."""
    if value is None:
        return np.nan
    if isinstance(value, (set, frozenset, bytes, tuple)):  # a Python literal's (json reads lists only)
        value = list(value) if isinstance(value, tuple) else _python_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, list) and all(_plain(v) for v in value):
        return " ".join(map(str, value))
    if isinstance(value, list) and all(_plain(v) or isinstance(v, list) and all(map(_plain, v)) for v in value):
        # Lists of lists (the 2014 Amazon dumps' category paths [["Baby", "Feeding"], ["Baby", "Gifts"]]): each
        # joined by spaces, then by commas, not JSON text that a text model would read brackets and quotes of.
        return ", ".join(" ".join(map(str, v)) if isinstance(v, list) else str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, default=_python_value)


def _cell(key: str, value: Any, first_entry: frozenset[str], listed: dict[str, int],
          each_entry: Container[str] = frozenset()) -> Any:
    """A JSON (or parquet) value of column `key` as a table cell: a list under a `first_entry` key as its first
    entry (counted in `listed`), one under an `each_entry` key as its entries joined by U+001F, anything else as
    `_as_text` writes it."""
    if key in first_entry and isinstance(value, list):
        listed[key] = listed.get(key, 0) + 1
        return _first_entry(value)
    if key in each_entry and isinstance(value, list):
        return "\x1f".join(text for entry in value if isinstance(text := _as_text(entry), str))
    return _as_text(value)


def _listed_notes(path: Path, listed: dict[str, int]) -> list[str]:
    return [f"{count:,} row(s) of {path.name} hold a list under {key!r} (as Amazon dumps list an item's images): "
            "the first entry of each is used (of an image object: its large, hi_res, path or url)."
            for key, count in listed.items()]


def _python(value: Any) -> Any:
    """A parquet cell as the JSON value it stands for: numpy arrays as lists, recursively; a missing one None."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        return [_python(v) for v in value]
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


# An image object's keys, best first (Amazon 2023: {thumb, large, variant, hi_res}; others name a path or url).
_IMAGE_KEYS = ("large", "hi_res", "path", "file", "url", "image", "thumb")


def _first_entry(values: list[Any]) -> Any:
    """The first usable entry of a list that stands for one thing: its first non-empty string, or the first
    object's image under _IMAGE_KEYS (else its first string value); missing (NaN) when there is none."""
    for value in values:
        if isinstance(value, list):
            value = _first_entry(value)
        elif isinstance(value, dict):
            strings = {str(k).lower(): v for k, v in value.items() if isinstance(v, str) and v.strip()}
            value = next((strings[k] for k in _IMAGE_KEYS if k in strings), next(iter(strings.values()), None))
        if isinstance(value, str) and value.strip():
            return value.strip()
    return np.nan


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _python_value(value: Any) -> Any:
    """What json.dumps writes for the values only a Python literal holds (tuples it writes as lists itself): sets as
    sorted lists, bytes as text, anything else (a complex number) as its text."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# The words of a column name (unixReviewTime: unix, review, time; created_at: created, at) that say what it holds.
NAMED_LIKE = {"timestamp": {"time", "timestamp", "date", "datetime", "epoch", "ts", "dt", "when", "created", "posted",
                             "updated"},
              "rating": {"rating", "ratings", "score", "stars", "star", "overall", "grade", "rate"}}  # not votes


def name_words(name: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)}


def absent_optional_note(frame: pd.DataFrame, what: str, columns: dict[str, str]) -> str | None:
    """A note when `frame` (columns renamed to canonical ones) lacks the optional timestamp or rating column (named
    in the file `columns[canonical]`, by data.<canonical>_column) while other columns are named like one (an Amazon
    dump's unixReviewTime and overall under the default settings): without it the rows are not ordered by time, or
    every row is a positive, and nothing said so."""
    said = []
    for canonical, consequence, holds in (("timestamp", "so they are not ordered by time (time-based splits, "
                                           "recency)", "times"),
                                          ("rating", "so every row counts as a positive", "ratings")):
        like = [str(c) for c in frame.columns
                if c not in ("user_id", "item_id") and NAMED_LIKE[canonical] & name_words(str(c))]
        if canonical not in frame.columns and like:
            said.append(f"no column {columns[canonical]!r} (data.{canonical}_column), {consequence}; "
                        f"{', '.join(map(repr, like[:3]))} may hold {holds}: set data.{canonical}_column to it")
    return f"The {what} have {'; and '.join(said)}." if said else None


def canonical_columns(
    frame: pd.DataFrame, path: Path, what: str, names: dict[str, str],
    used: dict[str, str | list[str]] | None = None, settings: dict[str, str] | None = None,
) -> pd.DataFrame:
    """`frame` with the user's column names (names: canonical -> its data.*_column setting) renamed to the
    canonical ones the rest of mmrec reads. A renamed column that is absent, or a file that holds both a
    renamed column and another under its canonical name, is a DataError; a missing column under its
    default name is left to the checks that follow (timestamp and rating are optional). `used` (same
    shape, or a list of names) names further columns the file must hold, read under the user's names (titles,
    descriptions):
    they are checked here too, so the error names the file's own columns. `settings` names the setting
    behind a canonical column where it is not data.<canonical>_column."""
    setting_of = {canonical: f"data.{canonical}_column" for canonical in {*names, *(used or {})}}
    setting_of.update(settings or {})
    renamed = {canonical: source for canonical, source in names.items() if source != canonical}
    present = ", ".join(map(str, frame.columns))
    folded = {str(column).casefold(): str(column) for column in frame.columns}

    def meant(name: str, setting: str) -> str:
        """" (setting: 'Name'? ...)" naming the column that differs from `name` only by letter case, else ""."""
        other = folded.get(name.casefold())
        return f" ({setting}: {other!r}? Column names are matched exactly)" if other else ""

    problems: list[tuple[str, str]] = []  # (what is wrong, what to do): every column the settings miss, not one a run
    for canonical in ("user_id", "item_id"):  # required wherever named; the others are optional
        if canonical in names and canonical not in renamed and canonical not in frame.columns:
            problems.append((f"has no '{canonical}' column ({setting_of[canonical]})",
                             f"Set {setting_of[canonical]} to the column that holds the "
                             f"{canonical.replace('_id', '')} ids{meant(canonical, setting_of[canonical])}."))
    for canonical, source in [(c, name) for c, named in {**renamed, **(used or {})}.items()
                              for name in ([named] if isinstance(named, str) else named)]:
        setting = setting_of[canonical]
        if source not in frame.columns:
            problems.append((f"lacks column '{source}' ({setting})", f"Set {setting} to the column that holds the "
                             f"{canonical.replace('_', ' ')}s{meant(source, setting)}."))
    for canonical, source in renamed.items():
        setting = setting_of[canonical]
        if canonical in frame.columns and source in frame.columns:  # both there (an absent source is said above)
            problems.append((f"has a column '{canonical}' besides '{source}', which {setting} renames to "
                             f"'{canonical}'", "Remove or rename one of the two, or point the setting at the other."))
    if len(problems) == 1:
        (wrong, todo), = problems
        raise DataError(f"{what} file {path.name} {wrong}; columns present: {present}.", hint=todo)
    if problems:
        raise DataError(f"{what} file {path.name}:\n" + "\n".join(f"- {wrong};" for wrong, _ in problems)
                        + f"\ncolumns present: {present}.", hint=" ".join(dict.fromkeys(todo for _, todo in problems)))
    return frame.rename(columns={source: canonical for canonical, source in renamed.items()})


def one_error(errors: list[DataError]) -> DataError:
    """One error saying what each of `errors` (the column checks of both files) says."""
    if len(errors) == 1:
        return errors[0]
    return DataError("\n".join(error.message for error in errors),
                     hint=" ".join(dict.fromkeys(error.hint for error in errors if error.hint)) or None)


def without_header_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(`frame` without the rows that repeat its header line, how many): files joined with a header each
    (`cat new.csv >> old.csv`) hold one, whose cells are the column names. A row counts when every non-empty cell
    is its column's name (case and surrounding spaces aside) and at least two are (the one, in a one-column
    file); no data row looks like that, and as data it would be an item named 'item_id'."""
    if frame.empty or len(frame.columns) == 0:
        return frame, 0
    columns = list(frame.columns)

    def cells(column: object, rows: pd.Index) -> pd.Series:  # a header pasted from an Excel CSV keeps its BOM
        return frame.loc[rows, column].astype("string").str.lstrip("\ufeff").str.strip().str.casefold()

    first = cells(columns[0], frame.index)
    rows = frame.index[(first == str(columns[0]).lstrip("\ufeff").strip().casefold()).fillna(False)
                       .to_numpy(dtype=bool)]
    if rows.empty:
        return frame, 0
    named = pd.Series(1, index=rows)
    whole = pd.Series(True, index=rows)
    for column in columns[1:]:
        values = cells(column, rows)
        same = (values == str(column).strip().casefold()).fillna(False)
        whole &= same | values.fillna("").eq("")
        named += same.astype(int)
    header = rows[(whole & (named >= min(2, len(columns)))).to_numpy(dtype=bool)]
    return (frame.drop(index=header), len(header)) if len(header) else (frame, 0)
