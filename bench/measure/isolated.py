"""Run one measurement function in a fresh process on a pickled copy of the model and its input.

Memory (ru_maxrss is a lifetime peak) and CPU latency (speed is set partly per process: docs/measurement.md) need
a process that has done nothing else. The child is a new interpreter running bench.measure.child, started with
subprocess rather than multiprocessing's "spawn": spawn makes the child import the parent's main module first, which
fails outright in a script without an `if __name__ == "__main__"` guard or read from stdin, and in a Ray worker
imports Ray's worker module again (about 0.2 s per child measured here). The child gets
the parent's sys.path (as PYTHONPATH), the function by reference and the arguments as our own pickle bytes made just
now (on its stdin), and the parent's intra-op thread count; it sends back the result or a one-line error on a pipe
of its own. The parent never waits past `timeout_s` and never leaves the child running (an interrupt kills it)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any, Callable

import torch

CHILD = "bench.measure.child"


def _child_env() -> dict:
    paths = [p or os.getcwd() for p in sys.path]  # "" (a script's or -c's folder) means the working directory
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _feed(stdin, payload: bytes) -> None:
    try:
        stdin.write(payload)
    except (BrokenPipeError, OSError):  # the child died; the parent reports its exit code
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def run_in_fresh_process(func: Callable, args: tuple, *, what: str, timeout_s: float) -> Any:
    """func(*args) in a fresh interpreter; `what` names the measurement in errors."""
    payload = pickle.dumps((torch.get_num_threads(), func, args), protocol=pickle.HIGHEST_PROTOCOL)
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-m", CHILD, str(write_fd)], stdin=subprocess.PIPE,
                                pass_fds=(write_fd,), env=_child_env())
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # the child holds its own copy: its exit shows here as end of file
    conn = Connection(read_fd, writable=False)
    feeder = threading.Thread(target=_feed, args=(proc.stdin, payload), daemon=True)
    feeder.start()
    del payload
    try:
        if not conn.poll(timeout_s):
            raise TimeoutError(f"{what} measurement: no result after {timeout_s:.0f} s")
        status, result = conn.recv()
    except EOFError:  # the child died before it sent anything
        status, result = "died", None
    finally:
        conn.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also when a second interrupt lands in the wait
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        feeder.join(5)
    if status == "died":
        result = f"measurement process died (exit code {proc.returncode})"
    if status != "ok":
        raise RuntimeError(f"{what} measurement failed: {result}")
    return result
