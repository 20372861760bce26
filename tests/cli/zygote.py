"""A pre-imported parent that forks one child per `ifa-bench` invocation, for the bad-input corpus.

Each of the corpus's ~120 cases used to start the console script: a fresh interpreter importing torch, pandas and
the project, ~1.5 s of CPU before the command even read its input (3 of the suite's 18 minutes). Here one process
imports all that once, runs no torch op (so no OpenMP pool exists to be broken by fork), and forks a child per
case that runs bench.cli.main(argv) exactly as the console script does: its own working directory and environment,
stdout and stderr on its own file descriptors, an uncaught exception printed as the interpreter would (a
traceback, exit 1), SystemExit's code as the exit code. Each child is a real, separate process, so a crash or
leftover state in one case cannot leak into the next. The console script itself is still run by the corpus's
other tests.

Protocol: one JSON request per line on stdin ({"argv", "cwd", "env", "out", "err"}), one JSON reply per line on
stdout ({"returncode"}); the child's output goes to the files `out` and `err`.
"""
from __future__ import annotations

import json
import os
import sys
import traceback


PRELOAD = ("numpy", "pandas", "pydantic", "yaml", "PIL.Image", "torch", "matplotlib.pyplot", "seaborn", "bench.cli",
           *(f"bench.commands.{name}" for name in ("check", "convert", "data", "eval", "measure", "predict", "report",
                                                   "sweep", "train")))


def _preload() -> None:
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for name in PRELOAD:
        importlib.import_module(name)


def _child(req: dict) -> None:
    """In the forked child: become the command and never return."""
    code = 1
    try:
        out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the child exits with os._exit
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = ["ifa-bench", *req["argv"]]
        from bench.cli import main

        try:
            result = main(req["argv"])
            code = 0 if result is None else int(result)
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> int:
    _preload()
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        sys.stdout.write(json.dumps({"returncode": code}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
