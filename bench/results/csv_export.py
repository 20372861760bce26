"""CSV files made for people (report tables, `check --out`): a text cell that a spreadsheet would run as a formula
(starting with = + - @, a tab or a carriage return, and not a number) is written with a leading apostrophe, as
OWASP's CSV-injection advice says. Numbers, negative ones included, are written as they are. results.csv, the data
the project reads back, is not an export and keeps its cells verbatim."""
from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def defuse(value):
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def csv_text(frame, index: bool = False) -> str:
    """frame.to_csv(index=index) with every formula-leading text cell (and index or column label) defused."""
    safe = frame.copy()
    from pandas.api.types import is_object_dtype, is_string_dtype

    text_columns = [c for c in safe.columns if is_object_dtype(safe[c].dtype) or is_string_dtype(safe[c].dtype)]
    for column in text_columns:
        safe[column] = safe[column].map(defuse)
    safe.columns = [defuse(c) for c in safe.columns]
    if index:
        safe.index = safe.index.map(defuse)
    return safe.to_csv(index=index)
