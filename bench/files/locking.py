"""One process per sweep folder or run directory: an exclusive flock on <dir>/.ifa-bench.lock.

The kernel drops a flock when its holder exits, however it exits, so a lock left by a crashed (SIGKILLed) process
never blocks: the file is still there with the dead holder's PID and host, and the next process takes it over.
The holder's PID and host are written into the file for the refusal message. The file is removed on release; a
process that locked a file which was removed meanwhile (the inode no longer at the path) locks again.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Optional

from bench.files.atomic import file_mode
from bench.files.no_follow import open_no_follow, read_text_no_follow
from bench.errors import UserError

LOCK_FILE = ".ifa-bench.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(read_text_no_follow(path) or "{}")
    except (OSError, ValueError, UserError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    return f"PID {info['pid']} on {info.get('host', '?')}"


class DirLock:
    """Exclusive, non-blocking lock on a directory (created if missing). Use as a context manager or
    acquire()/release(). `what` names the directory in messages ("sweep folder", "run directory")."""

    def __init__(self, directory: Path, what: str):
        self.directory, self.what = Path(directory), what
        self.path = self.directory / LOCK_FILE
        self._fd: Optional[int] = None
        self.stale: Optional[str] = None  # the holder recorded by a crashed earlier process, if any

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "DirLock":
        if self._fd is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = open_no_follow(self.path, os.O_RDWR | os.O_CREAT, file_mode())  # a planted link: refused
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"{self.directory}: this {self.what} is in use by {_holder(self.path)} "
                                f"(lock {self.path}); wait for it to finish or stop it") from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder released and removed the file between our open and flock: lock the new one
        old = os.read(fd, 4096)
        if old.strip():
            self.stale = _holder(self.path)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlink while still holding it, so no one locks a file on its way out
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
