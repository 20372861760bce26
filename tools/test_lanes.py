"""`make test`: the suite in two pytest processes at once, so that its waits (Ray starting, trials, subprocesses)
overlap with other tests' work on a 2-core machine.

    python tools/test_lanes.py [PYTEST ARGS ...]

Lane "ray" runs every test that starts an embedded Ray (the `ray` mark), one at a time in file order, and a few long
tests without Ray that would otherwise make lane "rest" end minutes later (tests/conftest.py BALANCE_TO_RAY_LANE): two embedded
Rays would fight over Ray's fixed agent ports and the two cores (lane "rest" fails a test that leaves one running). Lane "rest" runs everything else, including the
`ray start` cluster test, whose nodes have ports of their own (tests/conftest.py OWN_PORTS). Each lane has its own
pytest temp folder, removed when the lanes end (set IFA_KEEP_TEST_TEMP=1 to keep them); their output is streamed line by
line with a `[lane]` prefix. The exit code is the first failing lane's (0 when both pass).

Before starting, it checks that the temp folder's disk has room for the suite (MIN_FREE_GIB): round 6's CI ran on a
disk with 1.9 GB free and took 90 minutes to fail with "No space left on device"; the check turns that into one line
and exit code 2 at once.

Why not pytest-xdist: its `--dist loadgroup` (which keeps marked tests on one worker) renames node ids through
`item._nodeid`, which pytest 9.2 no longer reads, so grouping silently does nothing there.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading

LANES = ("ray", "rest")
# Measured in round 7's CI run: the lanes' temp folders, Ray's session folders and the dataset cache peaked at 1.1 GB.
MIN_FREE_GIB = 2.0


def disk_room_error(folder: str, min_free_gib: float | None = None) -> str | None:
    """One line saying the disk under `folder` is too full for the suite, or None when it has room."""
    min_free_gib = MIN_FREE_GIB if min_free_gib is None else min_free_gib
    free_gib = shutil.disk_usage(folder).free / 2**30
    if free_gib >= min_free_gib:
        return None
    return (f"test_lanes: only {free_gib:.1f} GiB free on the disk of {folder}; the suite needs {min_free_gib:.1f} "
            f"GiB (its temp folders and Ray's logs): free some space, or point TMPDIR at a disk with room")


def _stream(name: str, proc: subprocess.Popen, lock: threading.Lock) -> None:
    for line in proc.stdout:
        with lock:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()


def main(argv: list[str]) -> int:
    error = disk_room_error(tempfile.gettempdir())
    if error:
        print(error, file=sys.stderr)
        return 2
    lock = threading.Lock()
    procs, threads, basetemps = {}, [], []
    for name in LANES:
        basetemp = tempfile.mkdtemp(prefix=f"pytest-{name}-")
        basetemps.append(basetemp)
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "pytest", f"--lane={name}", f"--basetemp={basetemp}", *argv],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        threads.append(threading.Thread(target=_stream, args=(name, procs[name], lock), daemon=True))
        threads[-1].start()
    codes = {name: proc.wait() for name, proc in procs.items()}
    for t in threads:
        t.join(timeout=10)
    print("lanes: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
    if os.environ.get("IFA_KEEP_TEST_TEMP") == "1":
        print("lanes: temp folders kept: " + ", ".join(basetemps))
    else:
        for basetemp in basetemps:
            shutil.rmtree(basetemp, ignore_errors=True)
    return next((code for code in codes.values() if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
