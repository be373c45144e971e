"""How a CSV cell that is no plain number reads, and what one that does not read looks like.

Exports spell a value that is not there, and a yes or a no, as words: SQL
writes `NULL` or `\\N` and `t`/`f`, spreadsheets `#N/A` and `TRUE`/`FALSE`,
pandas an empty cell or `NaN` and `True`/`False`. A boolean word reads as 1
or 0, in the label as in a feature; a missing value reads as the value an
institution fills in, if it chose one (`fedd ... --fill-missing`). Words are
matched in any case, with any spaces around.

A cell that reads as neither gets, in its error, what it most probably is:
a missing value, a number with a decimal comma or a spreadsheet's
formatting, or text from a column that is no feature.
"""

from __future__ import annotations

import math
import re

__all__ = ["BOOLEANS", "MISSING", "SPELLED", "is_missing", "looks_like"]

MISSING = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "\\n", "none", "?", "-"})
BOOLEANS = {
    "true": 1.0,
    "t": 1.0,
    "yes": 1.0,
    "y": 1.0,
    "false": 0.0,
    "f": 0.0,
    "no": 0.0,
    "n": 0.0,
}
# The spellings exports use, for a lookup in C (`SPELLED.get(cell, cell)`): the
# others (" yes", "tRuE") are matched one cell at a time.
SPELLED = {
    spelling: value
    for word, value in BOOLEANS.items()
    for spelling in (word, word.upper(), word.capitalize())
}
# Letters, or digits in a date or a time.
_TEXT = re.compile(r"[^\W\d_]|\d[-/:]\d")
# What a spreadsheet's number format adds around a number.
_FORMATTING = str.maketrans("", "", "$\u20ac\u00a3\u00a5%() \u00a0,")


def is_missing(cell: str) -> bool:
    """Whether `cell` spells a value that is not there."""
    return cell.strip().lower() in MISSING


def looks_like(cell: str) -> str:
    """What a cell that is no finite number probably is, as the end of its error
    (" (...)"; '' if unsure, as for `inf`)."""
    text = cell.strip()
    if is_missing(text):
        return " (a missing value: fill them in with --fill-missing VALUE, or leave the column out)"
    if "," in text and _finite(text.replace(",", ".")):
        return " (a decimal comma? fedd reads numbers with a decimal point)"
    if _finite(text.translate(_FORMATTING)):
        return (
            " (a formatted number? fedd reads plain ones such as -1234.5: no currency or "
            "percent signs, digit grouping or parentheses)"
        )
    if _TEXT.search(text) and not _number(text):
        return " (ids, names, categories and dates are no features: leave such a column out)"
    return ""


def _number(text: str) -> bool:
    return _value(text) is not None


def _finite(text: str) -> bool:
    value = _value(text)
    return value is not None and math.isfinite(value)


def _value(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
