"""The fresh process of bench.measure.processes.isolated: `python -m bench.measure.processes.child FD`. Reads (threads, func, args, serve)
pickled by the parent from stdin and sends its answers on the pipe FD.
- serve false: sends ("ok", func(*args)) and exits.
- serve true: keeps handler = func(*args), sends ("ready", None), then answers each pickled request tuple read from
  stdin with ("ok", handler(*request)) until stdin closes.
An exception is sent as ("error", one line), and the process exits."""
from __future__ import annotations

import pickle
import sys
from multiprocessing.connection import Connection


def main(fd: int) -> None:
    conn = Connection(fd, readable=False)
    stdin = sys.stdin.buffer
    try:
        import torch

        threads, func, args, serve = pickle.load(stdin)  # our own bytes, made by the parent just now
        torch.set_num_threads(threads)
        if not serve:
            conn.send(("ok", func(*args)))
            return
        handler = func(*args)
        conn.send(("ready", None))
        while True:
            try:
                request = pickle.load(stdin)
            except EOFError:  # the parent is done with us
                return
            conn.send(("ok", handler(*request)))
    except BaseException as exc:  # report, don't hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
