"""Reading a JSON record of a run or sweep folder (bench.files.atomic.write_json writes them)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.files.no_follow import read_text_no_follow


def read_json(path: Path) -> Any | None:
    """The record's value, or None when it is missing or not JSON (a record being replaced is never half-read: every
    writer replaces the file atomically). A symbolic link is refused (bench/files/no_follow.py); other read errors,
    such as a permission error, propagate."""
    try:
        return json.loads(read_text_no_follow(Path(path)))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None

