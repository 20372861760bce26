"""The one plain-text table of every command's output (eval, measure, check, sweep --dry-run): fixed-width
columns, two spaces apart, text left-aligned and numbers right-aligned."""
from __future__ import annotations

import re
from typing import Optional, Sequence

# "12", "-3.5", "61.00 ± 1.00", "+0.25", "2/3", "50 / 61", "-" or "—" (missing) all count as numbers
_NUMBER = re.compile(r"^[-+−]?\d[\d.,]*(\s*(±|/)\s*[-+]?\d[\d.,]*)?\s*[†*]?$")
_MISSING = {"-", "—", ""}


def is_number_column(cells: Sequence[str]) -> bool:
    known = [c for c in cells if c.strip() not in _MISSING]
    return bool(known) and all(_NUMBER.match(c.strip()) for c in known)


def text_table(headers: Sequence[str], rows: Sequence[Sequence], numeric: Optional[Sequence[bool]] = None,
               rule: bool = False) -> str:
    """Rows of cells (any values, shown with str()). `numeric`: which columns are right-aligned (default:
    those whose every known cell is a number). `rule`: a line of dashes under the header."""
    headers = [str(h) for h in headers]
    body = [[str(c) for c in row] for row in rows]
    if numeric is None:
        numeric = [is_number_column([r[j] for r in body]) for j in range(len(headers))]
    widths = [max([len(headers[j])] + [len(r[j]) for r in body]) for j in range(len(headers))]

    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    lines = [line(headers)]
    if rule:
        lines.append(line(["-" * w for w in widths]))
    lines += [line(r) for r in body]
    return "\n".join(lines)


def plural(count: int, noun: str, many: Optional[str] = None) -> str:
    """"1 trial", "2 trials", "0 trials"; `many` for irregular nouns ("1 process", "2 processes")."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"
