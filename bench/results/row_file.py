"""A results file that grows one row at a time (`measure --out`): CSV (`.csv`) or JSON lines (`.jsonl`).

Every append rewrites the whole file atomically (bench/files/atomic.py), so an interrupted run leaves the rows it
finished and never half a row. Rows already in the file are kept (a rerun appends); a file whose rows are not
`measure` rows (ROW_KEYS missing) is refused rather than rewritten. CSV columns are the union of
all rows' keys in order of first appearance; a value that is a list or dict is stored as JSON text."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from bench.files.atomic import json_safe, write_text
from bench.errors import UserError

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
ROW_KEYS = ("model",)  # in every row `measure` writes; not in a sweep's results.csv


class RowFile:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.format = FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise UserError(f"--out {self.path}: unknown file type {self.path.suffix or '(none)'!r}; "
                            f"use {' or '.join(FORMATS)}")
        if self.path.is_dir():
            raise UserError(f"--out {self.path}: is a directory")
        self._rows = self._read() if self.path.exists() else []

    def _read(self) -> list[dict]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--out {self.path}: cannot read the existing file ({exc})") from None
        if self.format == "csv":
            reader = csv.DictReader(io.StringIO(text))
            self._require_row_columns(reader.fieldnames or [], "its header")
            return list(reader)
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise UserError(f"--out {self.path}: line {n} is not JSON; refusing to append to it") from None
            if not isinstance(row, dict):
                raise UserError(f"--out {self.path}: line {n} is not a JSON object; refusing to append to it")
            self._require_row_columns(row, f"line {n}")
            rows.append(row)
        return rows

    def _require_row_columns(self, keys, where: str) -> None:
        """Append only to a file of `measure` rows: another results file (a sweep's results.csv) is not rewritten."""
        missing = [k for k in ROW_KEYS if k not in keys]
        if keys and missing:
            noun = "column" if self.format == "csv" else "key"
            raise UserError(f"--out {self.path}: {where} has no {missing[0]!r} {noun}, so it is not a file of "
                            f"`ifa-bench measure` rows; refusing to append to it")

    def append(self, row: dict) -> None:
        self._rows.append(json_safe(row))
        try:
            write_text(self.path, self._render())
        except OSError as exc:
            self._rows.pop()
            raise UserError(f"--out {self.path}: cannot write ({exc.strerror or exc})") from None

    def _render(self) -> str:
        if self.format == "jsonl":
            return "".join(json.dumps(r, allow_nan=False) + "\n" for r in self._rows)
        columns = list(dict.fromkeys(k for r in self._rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in self._rows:
            writer.writerow({k: _cell(r.get(k)) for k in columns})
        return buf.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value
