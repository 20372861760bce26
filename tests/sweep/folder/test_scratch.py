"""Scratch folders of trial attempts (--storage): an attempt whose process died without cleaning up leaves a folder
that the next attempt on the node removes; folders of live processes, and folders of another name, are kept."""
import os
import subprocess
import sys
import tempfile
import time

import psutil

from bench.sweep.folder.layout import SCRATCH
from bench.sweep.folder.storage import remove_orphaned_scratch, scratch_dir


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_new_attempt_removes_folders_of_dead_attempts_only(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = tmp_path / SCRATCH
    dead = base / f"3e5a00c0ffee-{_dead_pid()}-1b2c3d4e"
    alive = base / f"3e5a00c0ffee-{os.getpid()}-aaaabbbb"
    other = base / "3e5a00c0ffee-1b2c3d4e"  # round 6's naming: no owner to check, kept
    for folder in (dead, alive, other):
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "last.pt").write_bytes(b"x" * 1024)

    path = scratch_dir("3e5a00c0ffee")

    assert not dead.exists()
    assert alive.is_dir() and other.is_dir()
    assert path.parent == base and path.name.startswith(f"3e5a00c0ffee-{os.getpid()}-") and path.is_dir()
    assert oct(path.stat().st_mode & 0o777) == "0o700"


def test_remove_orphaned_scratch_reports_what_it_removed(tmp_path):
    pid = _dead_pid()
    dead = tmp_path / f"abc123-{pid}-0123abcd"
    dead.mkdir()
    a_file = tmp_path / f"abc124-{pid}-0123abcd"
    a_file.write_text("not a folder")
    assert remove_orphaned_scratch(tmp_path) == [dead]
    assert a_file.exists()


def test_a_killed_unreaped_process_counts_as_gone(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    folder = tmp_path / f"abc123-{proc.pid}-0123abcd"
    folder.mkdir()
    assert remove_orphaned_scratch(tmp_path) == []  # alive: kept
    proc.kill()
    deadline = time.time() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.time() < deadline:
        time.sleep(0.01)
    assert remove_orphaned_scratch(tmp_path) == [folder]  # a zombie until we reap it below
    proc.wait()
