"""`make test` refuses to start on a disk without room for the suite, in one line, instead of failing test by test."""
import subprocess
import sys
from pathlib import Path

from tools.test_lanes import disk_room_error

ROOT = Path(__file__).resolve().parents[2]


def test_room_enough_is_no_error(tmp_path):
    assert disk_room_error(str(tmp_path), min_free_gib=0.0) is None


def test_too_little_room_names_the_folder_and_both_sizes(tmp_path):
    error = disk_room_error(str(tmp_path), min_free_gib=1e9)
    assert error is not None and "\n" not in error
    assert str(tmp_path) in error and "GiB free" in error and "needs 1000000000.0 GiB" in error


def test_lanes_exit_2_with_one_line_when_the_disk_is_too_full(tmp_path):
    code = ("import sys, tools.test_lanes as t; t.MIN_FREE_GIB = 1e9; "
            "sys.exit(t.main(['--collect-only', '-q']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "GiB free on the disk of" in proc.stderr
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []
