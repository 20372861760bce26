"""`make test`: the suite in two pytest processes at once, so that its waits (Ray starting, trials, subprocesses)
overlap with other tests' work on a 2-core machine.

    python tools/test_lanes.py [PYTEST ARGS ...]

Lane "ray" runs every test that starts an embedded Ray (the `ray` mark), one at a time in file order: two embedded
Rays would fight over Ray's fixed agent ports and the two cores (lane "rest" fails a test that leaves one running). Lane "rest" runs everything else, including the
`ray start` cluster test, whose nodes have ports of their own (tests/conftest.py OWN_PORTS). Each lane has its own
pytest temp folder; their output is streamed line by line with a `[lane]` prefix. The exit code is the first
failing lane's (0 when both pass).

Why not pytest-xdist: its `--dist loadgroup` (which keeps marked tests on one worker) renames node ids through
`item._nodeid`, which pytest 9.2 no longer reads, so grouping silently does nothing there.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import threading

LANES = ("ray", "rest")


def _stream(name: str, proc: subprocess.Popen, lock: threading.Lock) -> None:
    for line in proc.stdout:
        with lock:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()


def main(argv: list[str]) -> int:
    lock = threading.Lock()
    procs, threads = {}, []
    for name in LANES:
        basetemp = tempfile.mkdtemp(prefix=f"pytest-{name}-")
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
    return next((code for code in codes.values() if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
