"""The kernel tests run their kernels in worker processes, never in the test process.

Why: triton decides once per process, when it is first imported, whether kernels are interpreted or compiled
(TRITON_INTERPRET is read as triton.language decorates its own helpers, e.g. `tl.zeros`). Setting it in this
conftest would switch the whole test process: every test collected beside these (the head's included) would
find `ifa.kernels.available()` true and run the kernels in the interpreter, and the sm_90 compile needs the
compiled mode. So one spawned worker imports triton with TRITON_INTERPRET=1 (the numerical tests on CPU
tensors) and a pool of two without it (the ahead-of-time compiles), each started once per session. The workers
compute and compare and send back numbers, so no tensor crosses a process boundary.
"""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor

import pytest

from . import _cases

NO_TRITON = "triton is not installed (dev extras on Linux x86_64, or `pip install triton`): these tests need its " \
            "interpreter and its sm_90 compiler"
RESULT_TIMEOUT_S = 240


class Worker:
    def __init__(self, env: dict[str, str | None], processes: int = 1):
        self.pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_cases.init_worker, initargs=(env,))

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def __call__(self, fn, *args):
        return self.submit(fn, *args).result(timeout=RESULT_TIMEOUT_S)


@pytest.fixture(scope="session")
def interpreter():
    if importlib.util.find_spec("triton") is None:
        pytest.skip(NO_TRITON)
    worker = Worker({"TRITON_INTERPRET": "1"})
    yield worker
    worker.pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="session")
def sm90_builds():
    """{variant: future of its compile statistics}; all variants start compiling at once, on two processes."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip(NO_TRITON)
    with tempfile.TemporaryDirectory(prefix="triton-cache-") as cache:
        # always compile: ptxas, whose report gives registers and spills, runs only on a cache miss
        env = {"TRITON_INTERPRET": None, "TRITON_CACHE_DIR": cache, "TRITON_ALWAYS_COMPILE": "1",
               "TRITON_DEFAULT_FP_FUSION": "1"}
        worker = Worker(env, processes=min(2, os.cpu_count() or 1))
        yield {name: worker.submit(_cases.sm90_build, name) for name in _cases.SM90_VARIANTS}
        worker.pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="session", autouse=True)
def _start_sm90_builds_early(request):
    """When the sm_90 tests are selected, their compiles start with the session and run beside the interpreter
    tests (two cores used instead of one); the tests then only collect the results."""
    if importlib.util.find_spec("triton") is not None and any(
            "test_sm90_compile" in item.nodeid for item in request.session.items):
        request.getfixturevalue("sm90_builds")
