"""bench/files/atomic.py: behaviour the fault-injection tests do not pin (survivors of `make mutation MUTATE=atomic`)."""
import errno
import json
import os
import stat
from pathlib import Path

import pytest

from bench.files import atomic
@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_current_umask_reads_proc_without_touching_the_umask(umask_027, monkeypatch):
    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc (not Linux)")

    def refuse(mask):
        raise AssertionError("os.umask called although /proc/self/status shows the umask")

    monkeypatch.setattr(atomic.os, "umask", refuse)
    assert atomic.current_umask() == 0o027


def test_current_umask_without_proc_sets_and_restores_it(umask_027, monkeypatch):
    real_read_text = Path.read_text

    def no_proc(self, *args, **kwargs):
        if str(self) == "/proc/self/status":
            raise PermissionError(errno.EACCES, "denied", str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", no_proc)
    assert atomic.current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # left as it was


def test_modes_are_the_open_and_mkdir_defaults_less_the_umask(umask_027, tmp_path):
    assert atomic.file_mode() == 0o640 and atomic.dir_mode() == 0o750
    made = atomic.make_temp_dir(".stage.", tmp_path)
    assert made.parent == tmp_path and made.name.startswith(".stage.") and made.is_dir()
    assert stat.S_IMODE(made.stat().st_mode) == 0o750
    written = atomic.write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(written.stat().st_mode) == 0o640


def test_named_adds_the_file_name_only_where_the_error_has_none(tmp_path):
    with_name = OSError(errno.EACCES, "Permission denied", "/somewhere/else")
    assert atomic.named(with_name, tmp_path / "x") is with_name
    bare = OSError(errno.ENOSPC, "No space left on device")
    err = atomic.named(bare, tmp_path / "x.json")
    assert (err.errno, err.strerror, err.filename) == (errno.ENOSPC, "No space left on device", str(tmp_path / "x.json"))
    assert err.__cause__ is bare
    no_text = atomic.named(OSError("disk on fire"), "out.csv")
    assert no_text.strerror == "disk on fire" and no_text.filename == "out.csv"


def test_write_text_is_utf8_and_returns_the_target(tmp_path):
    target = tmp_path / "sub" / "t.txt"
    assert atomic.write_text(target, "mIoU ± 0.5 — ok") == target
    assert target.read_bytes() == "mIoU ± 0.5 — ok".encode("utf-8")
    assert atomic.write_bytes(str(tmp_path / "b.bin"), b"\x00\xff") == tmp_path / "b.bin"


def test_json_safe_nulls_non_finite_floats_at_any_depth():
    value = {1: [float("nan"), (float("inf"), -float("inf"), 2.5)], "s": "nan", "n": None, "i": 3}
    assert atomic.json_safe(value) == {"1": [None, [None, None, 2.5]], "s": "nan", "n": None, "i": 3}
    assert atomic.json_safe(float("nan")) is None and atomic.json_safe(1.5) == 1.5


def test_write_json_layout(tmp_path):
    target = atomic.write_json(tmp_path / "r.json", {"b": [1, float("nan")], "a": "é"})
    assert target.read_text() == json.dumps({"b": [1, None], "a": "é"}, indent=2) + "\n"
    assert target.read_text().startswith('{\n  "b": [\n    1,')


def test_modes_with_an_empty_umask_are_the_full_defaults():
    old = os.umask(0)
    try:
        assert atomic.file_mode() == 0o666 and atomic.dir_mode() == 0o777
    finally:
        os.umask(old)
