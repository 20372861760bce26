"""Reading a JSON record of a run or sweep folder (bench.files.atomic.write_json writes them)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: Path) -> Any | None:
    """The record's value, or None when it is missing or not JSON (a record being replaced is never half-read: every
    writer replaces the file atomically). Other read errors, such as a permission error, propagate."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None

