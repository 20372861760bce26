"""Write files so that no reader ever sees half of one: a temp file beside the target, fsync, os.replace.

mkstemp/mkdtemp create private files (0600) and folders (0700); what they become gets the modes an ordinary
open()/mkdir() would give (0666 / 0777 less the umask), so a team can read each other's results."""
from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (/proc/self/status), else set and reset."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def make_temp_dir(prefix: str, parent: str | Path) -> Path:
    """mkdtemp beside its final place, with the mode mkdir would give (mkdtemp's is 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, dir_mode())
    return tmp


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; when the block succeeds it replaces `path`, otherwise it is removed."""
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():  # mkdir would say "File exists"
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory (a file is in the way)", str(path.parent))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise named(exc, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def named(exc: OSError, path: str | Path) -> OSError:
    """The OSError of a failed write (a full disk gives one without a file name) naming the file it was for."""
    if exc.filename is not None:
        return exc
    err = OSError(exc.errno, exc.strerror or str(exc), str(path))
    err.__cause__ = exc
    return err


def write_bytes(path: str | Path, data: bytes) -> Path:
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def json_safe(value):
    """NaN and infinities become null (JSON has neither); containers are converted recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | Path, payload) -> Path:
    return write_text(path, json.dumps(json_safe(payload), indent=2, allow_nan=False, default=str) + "\n")
