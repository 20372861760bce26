"""Records and locks are opened without following a symbolic link in their last component (O_NOFOLLOW): a link
planted in a run or sweep folder must not make ifa-bench read or write the file it points at."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from bench.errors import UserError


def open_no_follow(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """os.open with O_NOFOLLOW; a symbolic link is a UserError naming it."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path}: is a symbolic link; ifa-bench does not follow links for its records and "
                            f"locks (remove it)") from None
        raise


def read_text_no_follow(path: str | Path) -> str:
    fd = open_no_follow(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.read().decode("utf-8")
