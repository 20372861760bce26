"""The fresh process of bench.measure.isolated: `python -m bench.measure.child FD`. Reads (threads, func, args)
pickled by the parent from stdin, sends ("ok", func(*args)) or ("error", one line) on the pipe FD, and exits."""
from __future__ import annotations

import pickle
import sys
from multiprocessing.connection import Connection


def main(fd: int) -> None:
    conn = Connection(fd, readable=False)
    try:
        import torch

        threads, func, args = pickle.loads(sys.stdin.buffer.read())  # our own bytes, made by the parent just now
        torch.set_num_threads(threads)
        conn.send(("ok", func(*args)))
    except BaseException as exc:  # report, don't hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
