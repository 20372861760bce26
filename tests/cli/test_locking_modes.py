"""Issue 10, classes 6 and 14: one process per directory (flock, holder's PID in the refusal, stale locks taken over)
and file/folder modes that follow the umask."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.files.atomic import make_temp_dir, write_json, write_text
from bench.errors import UserError
from bench.files.locking import LOCK_FILE, DirLock

HOLD = textwrap.dedent("""
    import sys, time
    from bench.files.locking import DirLock
    lock = DirLock(sys.argv[1], "sweep folder").acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def _holder(directory: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.timeout(60)
def test_second_process_refused_naming_holder_then_stale_lock_taken_over(tmp_path):
    holder = _holder(tmp_path / "sweep")
    try:
        t0 = time.monotonic()
        with pytest.raises(UserError) as err:
            DirLock(tmp_path / "sweep", "sweep folder").acquire()
        assert time.monotonic() - t0 < 5  # refused at once, not after waiting
        message = str(err.value)
        assert f"PID {holder.pid}" in message and str(tmp_path / "sweep") in message and "in use" in message
        assert "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The holder crashed: the file (with its PID) is still there, but the kernel dropped the flock.
    assert (tmp_path / "sweep" / LOCK_FILE).is_file()
    lock = DirLock(tmp_path / "sweep", "sweep folder").acquire()
    try:
        assert lock.stale == f"PID {holder.pid} on {os.uname().nodename}"
        assert str(os.getpid()) in (tmp_path / "sweep" / LOCK_FILE).read_text()
    finally:
        lock.release()
    assert not (tmp_path / "sweep" / LOCK_FILE).exists()  # released: nothing left behind


def test_lock_released_on_exit_and_reacquired_in_process(tmp_path):
    with DirLock(tmp_path / "run", "run directory") as lock:
        assert lock.held
        with pytest.raises(UserError, match=f"PID {os.getpid()}"):
            DirLock(tmp_path / "run", "run directory").acquire()
    assert not lock.held
    with DirLock(tmp_path / "run", "run directory"):
        pass


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_(value):
        os.umask(value)
    yield set_
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert oct(os.stat(write_text(tmp_path / "a.txt", "x")).st_mode & 0o777) == oct(0o666 & ~mask)
    assert oct(os.stat(write_json(tmp_path / "sub" / "b.json", {"a": 1})).st_mode & 0o777) == oct(0o666 & ~mask)
    assert oct(os.stat(make_temp_dir(".report.", tmp_path)).st_mode & 0o777) == oct(0o777 & ~mask)
    held = DirLock(tmp_path / "locked", "run directory").acquire()
    try:
        assert oct(os.stat(held.path).st_mode & 0o777) == oct(0o666 & ~mask)
    finally:
        held.release()


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_report_folder_follows_the_umask(tmp_path, umask, mask):
    from reports.build import build_report
    from tests.reports.fixture import default_trials, write_sweep

    sweep = write_sweep(tmp_path / "sweep", default_trials())
    umask(mask)
    report = build_report(sweep, tmp_path / "report")
    assert oct(os.stat(report.out_dir).st_mode & 0o777) == oct(0o777 & ~mask)
    files = [p for p in report.out_dir.rglob("*") if p.is_file()]
    assert files and all(os.stat(p).st_mode & 0o777 == 0o666 & ~mask for p in files), \
        {p.name: oct(os.stat(p).st_mode & 0o777) for p in files}
