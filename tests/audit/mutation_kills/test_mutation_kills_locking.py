"""Kill tests for bench/files/locking.py (issue 32's mutation pass): the holder named in a refusal for every kind of
lock-file content, the exact refusal, what the lock file holds, a stale holder taken over, and idempotent
acquire/release. All in-process (the holder-process test is tests/cli/test_locking_modes.py)."""
import json
import os
import socket

import pytest

from bench.errors import UserError
from bench.files.locking import LOCK_FILE, DirLock, _holder


@pytest.mark.parametrize("content, named", [
    ("", "another process"), ("not json", "another process"), ("[1, 2]", "another process"),
    ('{"host": "h"}', "another process"), ('{"pid": 5}', "PID 5 on ?"), ('{"pid": 5, "host": "h"}', "PID 5 on h"),
])
def test_the_holder_named_for_each_content(tmp_path, content, named):
    (tmp_path / LOCK_FILE).write_text(content)
    assert _holder(tmp_path / LOCK_FILE) == named


def test_a_missing_lock_file_names_another_process(tmp_path):
    assert _holder(tmp_path / LOCK_FILE) == "another process"


def test_the_lock_file_the_refusal_and_the_release(tmp_path):
    folder = tmp_path / "a" / "b"
    lock = DirLock(folder, "run directory")
    assert not lock.held and lock.acquire() is lock and lock.held
    fd = lock._fd
    assert lock.acquire() is lock and lock._fd == fd  # a second acquire keeps the lock it has
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    assert (folder / LOCK_FILE).read_text() == json.dumps(me) + "\n" and lock.stale is None
    with pytest.raises(UserError) as err:
        DirLock(folder, "run directory").acquire()
    assert str(err.value) == (f"{folder}: this run directory is in use by PID {me['pid']} on {me['host']} "
                              f"(lock {folder / LOCK_FILE}); wait for it to finish or stop it")
    lock.release()
    assert not lock.held and not (folder / LOCK_FILE).exists()
    lock.release()  # a second release is harmless
    assert not lock.held


def test_a_stale_holder_is_recorded_and_its_longer_line_replaced(tmp_path):
    old = {"pid": 999999, "host": "some-old-host-with-a-long-name", "extra": "x" * 200}
    (tmp_path / LOCK_FILE).write_text(json.dumps(old))
    with DirLock(tmp_path, "sweep folder") as lock:
        assert lock.stale == "PID 999999 on some-old-host-with-a-long-name"
        assert json.loads((tmp_path / LOCK_FILE).read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
    (tmp_path / LOCK_FILE).write_text("  \n")  # an empty (whitespace) file names no earlier holder
    with DirLock(tmp_path, "sweep folder") as lock:
        assert lock.stale is None


def test_release_after_someone_removed_the_lock_file(tmp_path):
    lock = DirLock(tmp_path, "run directory").acquire()
    (tmp_path / LOCK_FILE).unlink()  # e.g. a user cleaning the folder by hand
    lock.release()  # no error: the lock is let go all the same
    assert not lock.held


def _flock_after(monkeypatch, before_first):
    """The real flock, with `before_first` run once just before its first call: what another process could do
    between our open and our flock (a race no test can time), brought about in process."""
    import fcntl

    real, calls = fcntl.flock, []

    def flock(fd, op):
        if not calls:
            calls.append(fd)
            before_first()
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    return calls


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("recreated", [False, True])
def test_a_lock_file_removed_between_open_and_flock_is_locked_anew(tmp_path, monkeypatch, recreated):
    """The holder released (removed the file) between our open and our flock, and maybe another process created a
    new one: the file locked must be the one at the path, else two processes could hold "the" lock."""
    path = tmp_path / LOCK_FILE

    def release_by_another():
        path.unlink()
        if recreated:
            path.write_text("")

    calls = _flock_after(monkeypatch, release_by_another)
    before = _open_fds()
    lock = DirLock(tmp_path, "sweep folder").acquire()
    assert calls and os.stat(path).st_ino == os.fstat(lock._fd).st_ino
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert _open_fds() == before  # the first descriptor was closed too


def test_a_flock_error_other_than_held_is_raised_and_closes_the_file(tmp_path, monkeypatch):
    import errno
    import fcntl

    def flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", flock)
    before = _open_fds()
    with pytest.raises(OSError) as err:
        DirLock(tmp_path, "sweep folder").acquire()
    assert err.value.errno == errno.ENOLCK and _open_fds() == before
