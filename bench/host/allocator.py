"""glibc malloc's thresholds for a training process: keep freed activation memory instead of returning it to the OS.

torch's CPU tensors come from malloc. By default glibc serves a block above its mmap threshold (128 KiB, raised as
large blocks are freed, at most 32 MiB) with a fresh mmap, and gives the top of the heap back once more than twice
that threshold is free there; a training step allocates and frees tens of MB of activations, so the next step
faults those pages in again, zeroed by the kernel. On this project's CPU host (resnet18 x0.5, 256x256 crops, batch
2, 1 thread) that was 5,000-8,000 minor faults and 8-16 ms of system time per iteration, about 7% of the step, and
varied between runs with the heap's history. With both thresholds fixed (set explicitly, glibc stops adapting them)
the steady state faults nothing: same peak RSS, same results (only where memory comes from changes).

Process-wide and irreversible (mallopt has no "back to adaptive"); fork inherits it (loader workers). A no-op where
the C library is not glibc.
"""
from __future__ import annotations

import ctypes
from typing import Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's own ceiling for the adaptive threshold; larger blocks stay mmapped
TRIM_THRESHOLD = 256 * 2**20  # free memory kept at the heap's top before it is returned

_done: Optional[bool] = None


def _glibc():
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # absent from musl, macOS and Windows C libraries
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds (once per process). Returns whether they are set."""
    global _done
    if _done is None:
        libc = _glibc()
        _done = bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                     and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    return _done
