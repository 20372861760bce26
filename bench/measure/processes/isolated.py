"""Measurement code run in a fresh process on a pickled copy of the model and its input.

Memory (ru_maxrss is a lifetime peak) needs a process that has done nothing else, and CPU latency is timed in fresh
processes that take turns (bench/measure/processes/fresh_processes.py). The child is a new interpreter running
bench.measure.processes.child, started with subprocess rather than multiprocessing's "spawn": spawn makes the child import the
parent's main module first, which fails outright in a script without an `if __name__ == "__main__"` guard or read
from stdin, and in a Ray worker imports Ray's worker module again (about 0.2 s per child measured here). The child
gets the parent's sys.path (as PYTHONPATH), the function by reference and the arguments as our own pickle bytes made
just now (on its stdin), and the parent's intra-op thread count; it answers, or sends a one-line error, on a pipe of
its own. The parent never waits past `timeout_s` for an answer and never leaves the child running (an interrupt
kills it)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any, Callable

import torch

CHILD = "bench.measure.processes.child"


def _child_env() -> dict:
    paths = [p or os.getcwd() for p in sys.path]  # "" (a script's or -c's folder) means the working directory
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _feed(stdin, payload: bytes, close: bool) -> None:
    try:
        stdin.write(payload)
        stdin.flush()
    except (BrokenPipeError, OSError, ValueError):  # the child died or was killed; the parent reports it
        pass
    finally:
        if close:
            try:
                stdin.close()
            except OSError:
                pass


class FreshProcess:
    """func(*args) in a fresh interpreter. serve=False: its value is the one answer (`answer()`). serve=True: the
    value is a handler kept in the child, `call(*request)` returns handler(*request); the child is ready once
    `answer()` returned (func has run). Always `close()` it (it is a context manager)."""

    def __init__(self, func: Callable, args: tuple, *, what: str, timeout_s: float, serve: bool = False):
        self.what, self.timeout_s = what, timeout_s
        payload = pickle.dumps((torch.get_num_threads(), func, args, serve), protocol=pickle.HIGHEST_PROTOCOL)
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", CHILD, str(write_fd)], stdin=subprocess.PIPE,
                                         pass_fds=(write_fd,), env=_child_env())
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child holds its own copy: its exit shows here as end of file
        self.conn = Connection(read_fd, writable=False)
        # a thread, so that a child that dies or stalls before reading a large model cannot block the timeout
        self.feeder = threading.Thread(target=_feed, args=(self.proc.stdin, payload, not serve), daemon=True)
        self.feeder.start()

    def answer(self) -> Any:
        try:
            if not self.conn.poll(self.timeout_s):
                raise TimeoutError(f"{self.what} measurement: no result after {self.timeout_s:.0f} s")
            status, result = self.conn.recv()
        except EOFError:  # the child died before it answered
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            status, result = "died", f"measurement process died (exit code {self.proc.returncode})"
        if status not in ("ok", "ready"):
            raise RuntimeError(f"{self.what} measurement failed: {result}")
        return result

    def call(self, *request) -> Any:
        self.feeder.join()  # the payload is in (the child answered "ready" after reading it)
        try:
            self.proc.stdin.write(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child died: answer() says how
        return self.answer()

    def close(self) -> None:
        self.conn.close()
        if self.feeder.is_alive():  # the child never read all its payload: it is stuck or dying
            self.proc.kill()
            self.feeder.join(5)
        try:
            self.proc.stdin.close()  # a serving child exits at the end of its input
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also when a second interrupt lands in the wait
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "FreshProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_in_fresh_process(func: Callable, args: tuple, *, what: str, timeout_s: float) -> Any:
    """func(*args) in a fresh interpreter; `what` names the measurement in errors."""
    with FreshProcess(func, args, what=what, timeout_s=timeout_s) as proc:
        return proc.answer()
