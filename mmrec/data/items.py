"""Item catalogue cleaning: safe string ids, cleaned text with fingerprints, validated numeric columns."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import asdict, dataclass, field

import pandas as pd

from mmrec.data.categories import clean_category_columns, column_notes
from mmrec.data.drops import describe_drops
from mmrec.data.ids import catalogue_reason, unicode_spellings
from mmrec.data.numeric import DECIMAL_COMMA, FAR_ABOVE, validate_numeric_columns
from mmrec.data.text import cap_text, clean_text, item_text
from mmrec.data.unread import unread_columns, unread_note
from mmrec.errors import DataError
from mmrec.settings import DataSettings, PreprocessSettings

IMPUTED_SHARE_NOTE = 0.25  # a numeric column imputed for this share of items or more gets a note
DOTTED_SHARE_NOTE = 0.1  # ... and one where this share is written like 1.234 (a thousands dot?)


def _not_numbers_hint(values: pd.Series) -> str | None:
    """What a numeric column without a single number holds instead, when it is dates or text categories."""
    text = values.dropna().astype(str).str.strip()
    text = text[~text.str.lower().isin(["", "n/a", "na", "nan", "none", "null", "-", "?"])]  # missing, said so
    if text.empty or pd.to_numeric(text, errors="coerce").notna().any():
        return None
    example = text.iloc[0]
    if text.map(lambda value: bool(DECIMAL_COMMA.fullmatch(value))).mean() >= 0.5:  # a decimal-comma export
        return (f"It holds numbers written with a decimal comma (e.g. {example!r}): write them with a point "
                f"({example.replace(',', '.')}), e.g. by exporting with a point as the decimal separator, or "
                "remove the column from data.numerical_features_cols.")
    dates = pd.to_datetime(text.head(200), errors="coerce", utc=True, format="mixed")
    if dates.notna().mean() >= 0.9:
        return (f"It holds dates (e.g. {example!r}), which are not read as numbers: add a number made from them "
                "(e.g. the age in days, or the year) as a column of its own, or remove it from "
                "data.numerical_features_cols.")
    return (f"It holds text (e.g. {example!r}, {text.nunique():,} distinct values): numeric features must be numbers. "
            "Text that names a category (a channel, a genre) can go into the description, which the text backbone "
            "reads; or remove the column from data.numerical_features_cols.")


@dataclass
class ItemReport:
    """Rows in/out of item_info, drops by reason with examples, and what text cleaning changed."""

    input_rows: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    text: dict[str, int] = field(default_factory=dict)
    numeric: dict[str, dict] = field(default_factory=dict)
    categories: dict[str, dict] = field(default_factory=dict)  # per category column: mmrec.data.categories report
    unread: dict[str, str] = field(default_factory=dict)  # columns no setting names: kind (mmrec.data.unread)
    notes: list[str] = field(default_factory=list)  # what the user should know, e.g. a numeric column left out

    def drop(self, reason: str, ids: list[str], count: int | None = None) -> None:
        count = len(ids) if count is None else count
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            # Plain, as every other report example; quoted only where the id hides something (spaces, controls).
            self.examples.setdefault(reason, []).extend(
                i if i.isprintable() and i == i.strip() and i else repr(i) for i in map(str, ids[:5]))


# A title that is a code, not words: no space, at least 7 characters of which 4 digits, only letters, digits and
# - _ . / (SS24-0917-BLK, B00012345; not a model name such as F-150, GLC300 or M340i).
_CODE = re.compile(r"(?=(?:[^\d ]*\d){4})[A-Za-z0-9][A-Za-z0-9\-_./]{6,}")
CODE_TITLES_SHARE = 0.1  # of the non-empty titles, from which a note names them
# Text cells that stand for no text (surrounding spaces aside), as a SQL or spreadsheet export writes its blanks; not
# None, NA or Nan, which are titles and words too (an EP, a name).
NO_TEXT = frozenset({"NULL", "null", "N/A", "n/a", "NaN", "nan", "-", "--", "\u2014"})


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clean_items(
    raw: pd.DataFrame, data: DataSettings, preprocess: PreprocessSettings
) -> tuple[pd.DataFrame, ItemReport, list[str]]:
    """Cleaned items (item_id, title, description, text, text_fingerprint, numeric columns as float64, category
    columns as `category:<name>`, mmrec.data.categories).

    Returns (items, report, rejected_ids): ids that are no ids (control characters) are rejected and
    returned so their interactions can be reported rather than silently lost; an id that only cannot name
    a file (a URL) is kept (mmrec.data.ids.image_file_name).
    """
    for column in ("item_id", data.title_column, *data.description_columns):
        if column is not None and column not in raw.columns:
            raise DataError(
                f"item_info lacks column {column!r}; columns present: {', '.join(map(str, raw.columns))}.",
                hint="item_info.csv needs item_id, title and description (names set by data.item_id_column / "
                "title_column / description_column; a catalogue without one sets its column to null).",
            )
    report = ItemReport(input_rows=len(raw))
    ids = raw["item_id"].astype("string").str.strip()
    blank = (ids.isna() | (ids == "")).fillna(True).astype(bool)
    # CSV line numbers (header is line 1) identify rows that have no id.
    report.drop("missing_id", [f"line {i + 2}" for i in raw.index[blank][:5]], count=int(blank.sum()))
    frame = raw[~blank].copy()
    frame["item_id"] = ids[~blank].astype(str)

    reasons = frame["item_id"].map(catalogue_reason)
    unsafe = reasons.notna()
    rejected = frame.loc[unsafe, "item_id"].tolist()
    report.drop("unsafe_id", rejected)
    frame = frame[~unsafe]

    # One id written composed and decomposed (macOS, zip): one item, spelt as its last row spells it.
    if matched := unicode_spellings(reversed(frame["item_id"].tolist())):
        renamed = frame["item_id"].isin(set(matched))
        example, kept = next(iter(matched.items()))
        report.notes.append(f"{int(renamed.sum()):,} item_info row(s) write an id another row writes in another "
                            f"Unicode form (e.g. {ascii(example)} and {ascii(kept)}): one item, spelt as its last row "
                            "spells it.")
        frame.loc[renamed, "item_id"] = frame.loc[renamed, "item_id"].map(matched)
    duplicate = frame.duplicated("item_id", keep="last")
    report.drop("duplicate_id", frame.loc[duplicate, "item_id"].tolist())
    if duplicate.any():  # rows of one id that disagree: the last one's values are kept, which may be the stale copy
        repeated = frame[frame["item_id"].isin(set(frame.loc[duplicate, "item_id"]))].fillna("")
        differing = repeated.groupby("item_id", sort=False).nunique().gt(1).any(axis=1)
        if differing.any():
            ids = differing.index[differing]
            report.notes.append(
                f"{len(ids):,} item id(s) appear on several item_info rows that differ (e.g. "
                f"{', '.join(map(repr, ids[:3]))}): the last row of each is kept. Remove the rows that are out of "
                "date (a copied row, an earlier export) if the last one is not the item as it is.")
    frame = frame[~duplicate]

    numeric, numeric_reports = validate_numeric_columns(
        frame, data.numerical_features_cols, preprocess.numeric_impute, decimal=data.decimal_separator
    )
    report.numeric = {name: asdict(col) for name, col in numeric_reports.items()}
    for name, col in numeric_reports.items():
        if col.no_information:
            found = ", ".join(f"{k}={getattr(col, k):,}" for k in ("missing", "non_numeric", "infinite", "negative")
                              if getattr(col, k))
            what = (f"every valid one of its {len(frame):,} values is {col.constant:g}" + (f" ({found})" if found
                    else "") if col.constant is not None else
                    f"none of its {len(frame):,} values is a valid number ({found})")
            report.notes.append(
                f"Numeric column {name!r} carries no information: {what}, so it is left out of the item features. "
                + ((_not_numbers_hint(frame[name]) if col.constant is None else None)  # no number read: what then
                   or "Fill it, or remove it from data.numerical_features_cols."))
            continue
        if col.far_above:
            report.notes.append(
                f"{col.far_above:,} value(s) of numeric column {name!r} are more than {FAR_ABOVE:,.0f} times every "
                f"other value (e.g. {', '.join(col.far_above_examples)}): taken for errors and capped at "
                f"{col.far_above_cap:,.6g}, the largest other value. Correct them at the source if they are real.")
        if col.placeholder_zeros:
            low, high = col.zero_band
            report.notes.append(
                f"{col.placeholder_zeros:,} value(s) of numeric column {name!r} are 0 while every other lies between "
                f"{low:,.6g} and {high:,.6g}: taken for placeholders of an unknown value (as a year of 0 is) and "
                f"imputed with the {preprocess.numeric_impute} ({col.fill_value:,.6g}), as blanks are.")
        if len(frame) and col.dotted / len(frame) >= DOTTED_SHARE_NOTE and data.decimal_separator == "auto":
            report.notes.append(
                f"{col.dotted:,} of {len(frame):,} values of numeric column {name!r} are written like "
                f"{', '.join(map(repr, col.dotted_examples))}: read as decimals ({col.dotted_examples[0]!r} = "
                f"{float(col.dotted_examples[0]):g}). If the file comes from a locale that writes thousands with a "
                "dot, they are 1,000 times too small: set data.decimal_separator: ','.")
        if col.locale_decimals:
            report.notes.append(
                f"Numeric column {name!r} is written as a decimal-comma locale's spreadsheet exports numbers (e.g. "
                f"{', '.join(map(repr, col.locale_decimal_examples))}; "
                + ("data.decimal_separator: ','" if data.decimal_separator == "," else
                   "decimal commas here or in another numeric column, decimal points seldom if ever")
                + f"): its {col.locale_decimals:,} values with a comma, a dot or a space are read so ('12,5' = 12.5, "
                  "'1.234' = 1234)"
                + (f", and its {col.locale_points:,} values with a decimal point beyond doubt ('40.95') as decimals"
                   if col.locale_points else "")
                + ". Set data.decimal_separator to say how the file writes numbers if that is wrong.")
        if col.stray_comma_decimals:
            report.notes.append(
                f"{col.stray_comma_decimals:,} values of numeric column {name!r} are written with a decimal comma "
                f"beyond doubt (e.g. {', '.join(map(repr, col.stray_comma_examples))}) while the others write "
                "decimal points: read as decimal commas ('8,50' = 8.5, '1.234,5' = 1234.5), as nothing else can mean "
                "them.")
        if col.comma_decimals and not col.no_information:
            grouped = "; values like '2,500' were read as thousands (2500), which they may not be" if col.formatted \
                else ""
            report.notes.append(
                f"{col.comma_decimals:,} values of numeric column {name!r} are written with a decimal comma (e.g. "
                f"{', '.join(map(repr, col.comma_decimal_examples))}): not read as numbers, so imputed{grouped}. "
                "Write decimals with a point (export with a point as the decimal separator), or, if every comma in "
                "the column is a decimal comma, set data.decimal_separator: ','.")
        if len(frame) and col.imputed / len(frame) >= IMPUTED_SHARE_NOTE:
            report.notes.append(
                f"Numeric column {name!r} has no valid value for {col.imputed:,} of {len(frame):,} items "
                f"({col.imputed / len(frame):.0%}); they all hold the {preprocess.numeric_impute} fill value "
                f"{col.fill_value:,.6g}, which the model cannot tell from a real one. Fill the column where you can, "
                "or remove it from data.numerical_features_cols.")

    categories, category_reports = clean_category_columns(frame, data.category_columns, data.category_separator)
    report.categories = {name: asdict(col) for name, col in category_reports.items()}
    report.notes.extend(column_notes(category_reports, len(frame), data.category_separator))
    report.unread = unread_columns(raw, data)  # as the file has them (rows dropped above leave gaps in an index)
    if note := unread_note(report.unread, len(raw)):
        report.notes.append(note)

    cap = preprocess.max_text_length
    placeholders: dict[str, int] = {}  # cells that stand for no text (a SQL export's NULL), as written: how many

    def text_rows(*names: str | None) -> list[list[str]]:  # per row the named columns' texts as written ([] for none)
        columns = []
        for name in (name for name in names if name is not None):
            cells = frame[name].astype("string").fillna("")
            empty = cells.str.strip().isin(NO_TEXT)
            for value, n in cells[empty].str.strip().value_counts(sort=False).items():
                placeholders[value] = placeholders.get(value, 0) + int(n)
            columns.append(cells.where(~empty, "").tolist())
        return [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in range(len(frame))]

    title_rows, desc_rows = text_rows(data.title_column), text_rows(*data.description_columns)
    # Several description columns are read as one text, in order; as written (one column: its cell) to count what
    # cleaning changed.
    titles_full = [item_text(*(clean_text(part, sys.maxsize) for part in row)) for row in title_rows]
    descs_full = [item_text(*(clean_text(part, sys.maxsize) for part in row)) for row in desc_rows]
    titles = [cap_text(t, cap) for t in titles_full]
    descriptions = [cap_text(d, cap) for d in descs_full]
    texts = [cap_text(item_text(t, d), cap) for t, d in zip(titles, descriptions, strict=True)]
    raw_titles = [row[0] if len(row) == 1 else item_text(*row) for row in title_rows]
    raw_descs = [row[0] if len(row) == 1 else item_text(*row) for row in desc_rows]
    if placeholders:
        report.notes.append(f"{sum(placeholders.values()):,} title or description cell(s) hold a placeholder for no "
                            f"text (e.g. {', '.join(map(repr, list(placeholders)[:3]))}): read as empty, not as words.")
    if data.description_columns and len(frame) and not any(descriptions):
        named = ", ".join(map(repr, data.description_columns))
        report.notes.append(f"The description column(s) {named} (data.description_column) are empty for every item: "
                            "the text features read the titles alone. Set data.description_column to the column(s) "
                            "that hold text, or to null.")
    codes = [title for title in titles if _CODE.fullmatch(title)]
    if len(codes) >= max(5, CODE_TITLES_SHARE * sum(map(bool, titles))):
        report.notes.append(
            f"{len(codes):,} of {sum(map(bool, titles)):,} titles look like codes, not words (e.g. "
            f"{', '.join(map(repr, list(dict.fromkeys(codes))[:3]))}): a text model reads them as noise. If the names "
            "are in another column, set data.title_column to it; with no names at all, data.title_column: null "
            "leaves titles out (model.use_text: false, the whole text).")
    report.text = {
        "titles_changed": sum(a != b for a, b in zip(raw_titles, titles, strict=True)),
        "descriptions_changed": sum(a != b for a, b in zip(raw_descs, descriptions, strict=True)),
        "truncated": sum(len(f) > cap for f in titles_full + descs_full),
        "empty_title": sum(not t for t in titles),
        "empty_text": sum(not t for t in texts),
    }

    items = pd.DataFrame(
        {
            "item_id": frame["item_id"].astype(str).to_numpy(),
            "title": titles,
            "description": descriptions,
            "text": texts,
            "text_fingerprint": [sha256_text(t) for t in texts],
        }
    )
    for name in data.numerical_features_cols:
        items[name] = numeric[name].to_numpy(dtype="float64")
    for name, values in categories.items():
        items[name] = values
    report.kept = len(items)
    if report.kept == 0:
        if report.input_rows == 0:
            raise DataError("item_info has no rows.", hint="Add item_id,title,description rows to it.")
        raise DataError(
            f"item_info has no usable items after cleaning: {report.input_rows:,} rows in, dropped "
            f"{describe_drops(report.dropped, report.examples)}.",
            hint="Every row needs an item_id that is a safe file name: no path separator, no '..', "
            "no control characters or surrounding spaces, at most 200 bytes.",
        )
    return items, report, rejected
