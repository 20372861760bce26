"""Run one measurement function in a fresh process ("spawn") on a pickled copy of the model and its input.

Memory (ru_maxrss is a lifetime peak) and CPU latency (speed is set partly per process: docs/measurement.md) need
a process that has done nothing else. The child gets the function by reference, the arguments as our own pickle
bytes made just now, the parent's intra-op thread count, and sends back the result or a one-line error; the parent
never waits past `timeout_s` and never leaves the child running (an interrupt kills it)."""
from __future__ import annotations

import pickle
from typing import Any, Callable

import torch


def _child(payload: bytes, threads: int, conn) -> None:
    try:
        torch.set_num_threads(threads)
        func, args = pickle.loads(payload)  # our own bytes, made by the parent just now
        del payload
        conn.send(("ok", func(*args)))
    except BaseException as exc:  # report, don't hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_in_fresh_process(func: Callable, args: tuple, *, what: str, timeout_s: float) -> Any:
    """func(*args) in a fresh interpreter; `what` names the measurement in errors."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    payload = pickle.dumps((func, args), protocol=pickle.HIGHEST_PROTOCOL)
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(payload, torch.get_num_threads(), child_conn), daemon=True)
    proc.start()
    child_conn.close()
    del payload
    try:
        if not parent_conn.poll(timeout_s):
            raise TimeoutError(f"{what} measurement: no result after {timeout_s:.0f} s")
        status, result = parent_conn.recv()
    except EOFError:
        status, result = "error", f"measurement process died (exit code {proc.exitcode})"
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if status != "ok":
        raise RuntimeError(f"{what} measurement failed: {result}")
    return result
