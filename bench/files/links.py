"""A second name for a file: a hard link, or a copy where the file system has no links (or they cross devices)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
