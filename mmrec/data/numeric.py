"""Numeric item columns: validation + imputation at preprocess time, log1p/standardisation for modelling."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from mmrec.errors import DataError


@dataclass
class ColumnReport:
    """What validation found in one numeric column and what it did about it."""

    non_numeric: int = 0
    missing: int = 0
    infinite: int = 0
    negative: int = 0
    imputed: int = 0
    fill_value: float = 0.0
    examples: list[str] = field(default_factory=list)  # item ids of a few imputed rows
    formatted: int = 0  # values written as 20.1K / 1.5M / 2B / 1,234, parsed to numbers
    formatted_examples: list[str] = field(default_factory=list)  # a few of them, "20.1K=20,100"
    # values written as 1.234: read as decimals, but in a file from a decimal-comma locale they are
    # thousands (validate_numeric_columns counts them; preprocess notes a column where they are common)
    dotted: int = 0
    dotted_examples: list[str] = field(default_factory=list)
    # values written with a decimal comma (1,5 / 2,50: no thousands grouping) in a column whose commas also group
    # thousands (2,500): not numbers, so imputed
    comma_decimals: int = 0
    comma_decimal_examples: list[str] = field(default_factory=list)
    # values written with a decimal comma beyond doubt (8,50 € / 1.234,5) in a column that writes decimal points
    # (40.95) and no thousands comma: read as decimal commas, as nothing else can mean them (a file of two locales)
    stray_comma_decimals: int = 0
    stray_comma_examples: list[str] = field(default_factory=list)
    # values of a column that writes every decimal with a comma (12,5 / 1.234,5): read so (decimal_comma_column);
    # `locale_points`: its values with a decimal point beyond doubt (40.95) read as decimals all the same
    locale_decimals: int = 0
    locale_decimal_examples: list[str] = field(default_factory=list)
    locale_points: int = 0
    # the few values more than FAR_ABOVE times every other value (1e30 views among counts up to 2e9): capped at the
    # largest other value, which the standardisation of the column then is not stretched by
    far_above: int = 0
    far_above_examples: list[str] = field(default_factory=list)
    far_above_cap: float | None = None
    # zeros where every other value lies far from 0 in a narrow band (a year of 0 among 1950-2004): a placeholder for
    # "unknown", imputed as a blank is; `zero_band` is that band (min, max)
    placeholder_zeros: int = 0
    zero_band: tuple[float, float] | None = None
    no_information: bool = False  # no valid value, or one value for all: the column is left out of the features
    constant: float | None = None  # the one value every valid entry holds (then no_information)


# A count written for people: "20.1K", "1.5m", "2B", "1,234", "1,234.5K"; a share as a spreadsheet shows it: "12%".
_FORMATTED = re.compile(r"([+-]?(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?)\s*([kmb%]?)", re.IGNORECASE)
_MAGNITUDE = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "%": 1}


# A value this many times every other value of its column is taken for an error (a 1e30 typed into a count column)
# when such values are at most FAR_ABOVE_SHARE of the column: real counts are heavy-tailed, but the largest does not
# stand a million times above the next largest. Capped at the largest other value, with a note.
FAR_ABOVE = 1e6
FAR_ABOVE_SHARE = 0.05


def far_above_cap(values: np.ndarray) -> float | None:
    """The largest value below a gap of FAR_ABOVE times (on log1p, the scaler's scale) that only a few values
    (<= FAR_ABOVE_SHARE, at least one) stand above, when the values below it differ (else the few above are all the
    column tells: 1 like for most items, millions for two); None when there is no such gap."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    top = max(1, int(len(ordered) * FAR_ABOVE_SHARE))
    if len(ordered) < 3 or ordered[-1] == ordered[0]:
        return None
    logs = np.log1p(ordered[: top + 1])
    for position in range(min(top, len(ordered) - 1) - 1, -1, -1):  # the lowest qualifying gap: every outlier above
        below = ordered[position + 1]
        if below > 0 and logs[position] - logs[position + 1] >= np.log(FAR_ABOVE) and below != ordered[-1]:
            return float(below)
    return None


# Zeros are taken for placeholders when every other value is at least ZERO_BAND_MIN and at most ZERO_BAND_RATIO
# times the smallest of them (years, or a model year: 0 says "unknown", not a value 2,000 years before the rest).
ZERO_BAND_MIN = 100.0
ZERO_BAND_RATIO = 2.0


# A price: a currency sign or code before or after the number ("$12.99", "12,99 €" is a decimal comma: not read,
# "EUR 5", "5 USD"); a range ("$5.99 - $12.99") is no number.
_CURRENCY = re.compile(r"(?:[$€£¥₹]|(?:USD|EUR|GBP|JPY|INR|CNY|CAD|AUD)\s)\s*([^$€£¥₹\s].*?)|"
                       r"([^$€£¥₹\s].*?)\s*(?:[$€£¥₹]|\s(?:USD|EUR|GBP|JPY|INR|CNY|CAD|AUD))")


# A number written with a decimal comma ("4,5", "487,0"): not read as one (1,234 is a thousands comma), but named.
DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")

# Written with a decimal comma beyond doubt ("12,5", "1.234,56", "0,1234": not a thousands comma), or with a decimal
# point beyond doubt ("12.5", "1,234.5"). A column of the first and none of the second writes decimal commas, as a
# decimal-comma locale's spreadsheet exports them (`decimal_comma_column`).
# Thousands grouped by a dot, or by a space as French exports write them (a no-break or narrow one too).
_GROUP = "[. \u00a0\u202f]"
_SURE_COMMA = re.compile(rf"[+-]?(?:\d{{1,3}}(?:{_GROUP}\d{{3}})+,\d+|\d+,(?:\d{{1,2}}|\d{{4,}}))")
_SURE_POINT = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+\.\d+|\d+\.(?:\d{1,2}|\d{4,}))")
_LOCALE_NUMBER = re.compile(rf"[+-]?(?:\d{{1,3}}(?:{_GROUP}\d{{3}})+|\d+)(?:,\d+)?")


def decimal_comma_column(text: pd.Series, locale_known: bool = False, decimal: str = "auto",
                         bare: pd.Series | None = None) -> tuple[pd.Series, int, list[str]] | None:
    """When `text` (a column's stripped cells) writes decimals with a comma ("12,5"; "1.234,5" with a dot
    grouping thousands) and never with a point, (the cells rewritten as Python reads numbers, "12.5" and
    "1234.5", how many were, up to 3 examples); else None. In such a column "1,234" is 1.234 and "1.234" is
    1234, as its locale means them. `locale_known`: another column of the file showed the locale, so this one
    only needs no decimal point (a column of counts grouped "2.852"). A currency sign or code is looked past
    ("€49,95" is a decimal comma, rewritten "€49.95"). `decimal` (data.decimal_separator): "," reads the column so
    whatever it holds, "." never. `bare`: `_bare_numbers(text)`, when the caller has it."""
    if decimal == ".":
        return None
    original = text.astype("string")
    cells = _bare_numbers(original) if bare is None else bare
    sure_comma = cells.str.fullmatch(_SURE_COMMA.pattern).fillna(False).astype(bool)
    if decimal != ",":
        sure_point = cells.str.fullmatch(_SURE_POINT.pattern).fillna(False).astype(bool)
        if not (sure_comma.any() or locale_known) or int(sure_point.sum()) * 2 >= max(1, int(sure_comma.sum())):
            return None  # decimal points as often as commas, or more (a stray "3.99" among comma prices is read so)
        if not sure_comma.any() and cells.str.contains(",", regex=False).fillna(False).astype(bool).any():
            return None  # "2,269" with nothing else to go on is an English thousands comma, whatever the other columns
        grouped = cells.str.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+").fillna(False).astype(bool)
        if grouped.any() and int(sure_comma.sum()) <= int(grouped.sum()):
            return None  # as much "2,269" as "2,5": thousands commas, and a stray "2,5" (imputed, with its note)
    local = cells.str.fullmatch(_LOCALE_NUMBER.pattern).fillna(False).astype(bool) & cells.str.contains(r"[.,\s]")
    if not local.any():
        return None
    rewritten = original.where(~local, _as_python_number(original))
    examples = pd.unique(original[sure_comma if sure_comma.any() else local].to_numpy())[:3]  # each value once
    return rewritten, int(local.sum()), [str(value) for value in examples]


# A duration as players show it: "3:35" (m:ss) or "1:02:03" (h:mm:ss), read as seconds.
_DURATION = re.compile(r"(\d+):([0-5]\d)(?::([0-5]\d))?")


def parse_formatted_number(text: str) -> float | None:
    """`text` written with a magnitude suffix (K = 1e3, M = 1e6, B = 1e9, any case), a percent sign (12% = 12,
    in the column's own percentage points), a currency sign or code ($12.99, 5 EUR) and/or thousands separators, or
    a duration (m:ss, h:mm:ss: seconds),
    as a number; None for anything else (plain numbers included: those are pd.to_numeric's). Full-width digits and
    signs (１２３, ２０Ｋ, as East Asian input methods type them) read as their ASCII forms."""
    text = str(text).strip()
    folded = unicodedata.normalize("NFKC", text)
    if folded != text:
        with contextlib.suppress(ValueError):
            return float(folded)
        text = folded
    if duration := _DURATION.fullmatch(text):
        first, second, third = (int(part) if part else None for part in duration.groups())
        return float(first * 60 + second if third is None else (first * 60 + second) * 60 + third)
    priced = _CURRENCY.fullmatch(text)
    text = priced.group(1) or priced.group(2) if priced else text
    match = _FORMATTED.fullmatch(text)
    if match is None:
        return None
    number, suffix = match.groups()
    if not any(char.isdigit() for char in number) or (not suffix and "," not in number and not priced):
        return None
    return float(Decimal(number.replace(",", "")) * _MAGNITUDE[suffix.lower()])


def _as_python_number(cells: pd.Series) -> pd.Series:
    """Cells written as a decimal-comma locale writes numbers ("1.234,5", "1 234,5") as Python reads them
    ("1234.5"): the thousands groups' dot or space taken out, the comma made a point."""
    return cells.str.replace(rf"(?<=\d){_GROUP}(?=\d{{3}})", "", regex=True).str.replace(",", ".", regex=False)


def _stray_comma_decimals(raw: pd.Series, bare: pd.Series) -> tuple[pd.Series, int, list[str]]:
    """(`raw` with its cells written with a decimal comma beyond doubt ("8,50 €", "1.234,5") rewritten as Python
    reads numbers, how many, up to 3 examples as written), for a column `decimal_comma_column` does not read as a
    decimal-comma locale's (its decimals are mostly points: "40.95"). Such a cell means one number only, unless
    the column also groups thousands with a comma ("2,500"): then the column's commas are in doubt and nothing is
    rewritten (those cells are imputed, with a note). `bare`: `_bare_numbers` of the stripped cells."""
    sure = bare.str.fullmatch(_SURE_COMMA.pattern).fillna(False).astype(bool)
    if not sure.any() or bare.str.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?").fillna(False).any():
        return raw, 0, []
    original = raw.astype("string")
    number = _as_python_number(bare[sure])
    # The number alone: a currency sign, a percent sign or a magnitude suffix is read as around any number.
    rewritten = original.copy()
    rewritten[sure] = [cell.replace(text, plain, 1)
                       for cell, text, plain in zip(original[sure].str.strip(), bare[sure], number, strict=True)]
    examples = pd.unique(original[sure].str.strip().to_numpy())[:3]
    return rewritten, int(sure.sum()), [str(value) for value in examples]


def _bare_numbers(cells: pd.Series) -> pd.Series:
    """`cells` without a currency sign or code ("12,50 €" -> "12,50"), a trailing percent sign ("0,5 %") or a
    magnitude suffix ("1,2K")."""
    def bare(value: object) -> object:
        if not isinstance(value, str):
            return value
        value = re.sub(r"(?<=\d)\s*(?:%|[kKmMbB])$", "", value)
        return (match.group(1) or match.group(2)) if (match := _CURRENCY.fullmatch(value)) else value

    cells = cells.astype("string")
    dressed = cells.str.contains(r"[^\d.,+\- ]", regex=True).fillna(False).astype(bool)  # most cells: digits only
    if not dressed.any():
        return cells
    return cells.where(~dressed, cells[dressed].map(bare).astype("string"))


def _shows_the_locale(text: pd.Series, bare: pd.Series) -> bool:
    """Whether a column shows that its file writes numbers as a decimal-comma locale does: most of its values are
    written with a decimal comma beyond doubt, and `decimal_comma_column` reads it so. (One stray '2,5' among English
    counts does not make '2,269' in another column 2.269.)"""
    cells = bare.dropna()
    cells = cells[cells != ""]
    sure = cells.str.fullmatch(_SURE_COMMA.pattern).fillna(False).astype(bool)
    return len(cells) > 0 and 2 * int(sure.sum()) >= len(cells) and decimal_comma_column(text, bare=bare) is not None


def validate_numeric_columns(
    items: pd.DataFrame,
    columns: Sequence[str],
    impute: Literal["median", "mean", "zero"],
    id_column: str = "item_id",
    decimal: str = "auto",
) -> tuple[pd.DataFrame, dict[str, ColumnReport]]:
    """Float64 copies of `columns` with invalid values imputed, plus a report per column.

    "20.1K", "1.5M", "2B", "1,234", "12%" and durations "3:35" are parsed as numbers (and counted). Invalid:
    other non-numeric strings, NaN/empty, +-inf, negative values (these columns are counts or years; log1p
    later assumes >= 0). The fill value is computed from the valid values only. A column with no valid value carries no
    information: it is not imputed but kept all-NaN, which `informative_columns` leaves out of the features;
    so is a column whose valid values are all one value (imputed, every item would hold it).
    """
    missing_columns = [name for name in columns if name not in items.columns]
    if missing_columns:
        raise DataError(
            f"Numeric column(s) {', '.join(map(repr, missing_columns))} not found in item_info. "
            f"Columns present: {', '.join(map(str, items.columns))}.",
            hint="Fix data.numerical_features_cols in your config (it may be an empty list).",
        )
    result = pd.DataFrame(index=items.index)
    reports: dict[str, ColumnReport] = {}
    texts = {name: items[name].astype("string").str.strip() for name in columns}
    bares = {name: _bare_numbers(text) for name, text in texts.items()}
    locale = any(_shows_the_locale(texts[name], bares[name]) for name in columns)  # the file's, from a column
    for name in columns:
        raw = items[name]
        report = ColumnReport()
        local = decimal_comma_column(texts[name], locale_known=locale, decimal=decimal, bare=bares[name])
        if local is not None:
            raw, report.locale_decimals, report.locale_decimal_examples = local
            report.locale_points = int(bares[name].str.fullmatch(_SURE_POINT.pattern).fillna(False).sum())
        elif decimal == "auto":
            raw, report.stray_comma_decimals, report.stray_comma_examples = _stray_comma_decimals(raw, bares[name])
        blank = raw.isna() | raw.astype("string").str.strip().isin(["", "nan", "NaN", "None"]).fillna(True)
        values = pd.to_numeric(raw.where(~blank), errors="coerce").astype("float64")
        unparsed = raw[values.isna() & ~blank]
        formatted = unparsed.map(parse_formatted_number).astype("float64")
        values.loc[formatted.index] = formatted
        parsed = formatted.notna()
        report.formatted = int(parsed.sum())
        # distinct texts, as written (a decimal comma read above shows as the file has it)
        examples = dict(zip(texts[name].loc[unparsed[parsed].index].astype(str), formatted[parsed], strict=True))
        report.formatted_examples = [f"{text}={number:,.10g}" for text, number in list(examples.items())[:3]]
        text = raw[~blank].astype("string").str.strip()
        dotted = text[text.str.fullmatch(r"\d{1,3}\.\d{3}").fillna(False).astype(bool)]  # 12.004.511: no number
        points = bares[name].loc[text.index].str.fullmatch(_SURE_POINT.pattern).fillna(False).astype(bool)
        if local is not None or points.any():  # read as its locale writes numbers, or it writes '2.5': no doubt left
            dotted = dotted.iloc[:0]
        report.dotted, report.dotted_examples = len(dotted), dotted.head(3).tolist()
        unread = text[values.isna().reindex(text.index).to_numpy()]
        bare = _bare_numbers(unread)  # with a currency sign or code too: '€49,95'
        commas = unread[bare.str.fullmatch(DECIMAL_COMMA.pattern).fillna(False).astype(bool)]
        report.comma_decimals, report.comma_decimal_examples = len(commas), commas.head(3).tolist()
        report.missing = int(blank.sum())
        report.non_numeric = int((values.isna() & ~blank).sum())
        infinite = np.isinf(values.to_numpy())
        report.infinite = int(infinite.sum())
        negative = values.to_numpy() < 0
        report.negative = int(negative.sum())
        invalid = values.isna().to_numpy() | infinite | negative
        cap = far_above_cap(values[~invalid].to_numpy())
        if cap is not None:
            far = (values > cap).to_numpy() & ~invalid
            report.far_above, report.far_above_cap = int(far.sum()), cap
            report.far_above_examples = [f"{v:g}" for v in pd.unique(values[far])[:3]]
            values = values.where(~far, cap)
        zeros = (values == 0).to_numpy() & ~invalid
        others = values[~invalid & ~zeros]
        if zeros.any() and len(others) and zeros.sum() <= max(1, FAR_ABOVE_SHARE * (~invalid).sum()) \
                and ZERO_BAND_MIN <= others.min() and others.max() <= ZERO_BAND_RATIO * others.min():
            report.placeholder_zeros, report.zero_band = int(zeros.sum()), (float(others.min()), float(others.max()))
            invalid |= zeros
        valid = values[~invalid]
        if len(valid) and valid.nunique() == 1:  # the same for every item, once imputed: a constant input
            report.constant = float(valid.iloc[0])
        if not len(valid) or report.constant is not None:
            report.no_information = True
            result[name] = np.full(len(items), np.nan)
            reports[name] = report
            continue
        if impute == "median":
            fill = float(valid.median())
        elif impute == "mean":
            fill = float(valid.mean())
        else:
            fill = 0.0
        report.fill_value = fill
        report.imputed = int(invalid.sum())
        if id_column in items.columns:
            report.examples = [str(v) for v in items.loc[invalid, id_column].head(5)]
        clean = values.to_numpy().copy()
        clean[invalid] = fill
        result[name] = clean
        reports[name] = report
    return result, reports


class NumericScaler:
    """log1p(max(x, 0)) then per-column standardisation; fit on TRAIN items only (no test leakage)."""

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        self.mean = mean
        self.std = std

    @staticmethod
    def _log(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        return np.log1p(np.clip(values, 0.0, None))

    def fit(self, values: np.ndarray) -> NumericScaler:
        """Learn mean/std of log1p(values) per column. values: [n, c]."""
        logged = self._log(values)
        if logged.shape[0] == 0:
            raise DataError("Cannot fit the numeric scaler on zero rows.", hint="Check the training split.")
        self.mean = logged.mean(axis=0)
        std = logged.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)  # constant columns map to 0, not NaN
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scaled features, float32 [n, c]."""
        if self.mean is None or self.std is None:
            raise RuntimeError("NumericScaler.transform called before fit")
        logged = self._log(values)
        if logged.shape[1] != len(self.mean):
            raise DataError(
                f"Numeric features have {logged.shape[1]} columns "
                f"but the scaler was fitted on {len(self.mean)}.",
                hint="Use the same data.numerical_features_cols as when the model was trained, on data where the "
                "same columns carry information (preprocess leaves out a column with no valid value), or retrain.",
            )
        return ((logged - self.mean) / self.std).astype(np.float32)

    def fit_transform(self, values: np.ndarray) -> np.ndarray:
        return self.fit(values).transform(values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state."""
        if self.mean is None or self.std is None:
            return {"mean": None, "std": None}
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> NumericScaler:
        if state.get("mean") is None:
            return cls()
        return cls(np.asarray(state["mean"], dtype=np.float64), np.asarray(state["std"], dtype=np.float64))


def interaction_counts(train: pd.DataFrame, item_ids: Sequence[str]) -> np.ndarray:
    """Number of TRAIN interactions per item of `item_ids`, float32 [len(item_ids)] (0 for unseen)."""
    counts = train["item_id"].astype(str).value_counts()
    return counts.reindex([str(i) for i in item_ids], fill_value=0).to_numpy(dtype=np.float32)
