"""Triton kernels for the fused IFA head (issue 27): a gather-sum over the first layer's table and the tail MLP.

`available()` says whether they can run here. Importing this package never imports triton; the kernel modules
load on first attribute access, so a machine without triton imports `ifa.kernels` and takes the torch path.
With TRITON_INTERPRET=1 in the environment *before triton is first imported* (triton reads it when its own
library functions are decorated), the kernels run in triton's interpreter on CPU tensors (slow; for tests).
"""
from __future__ import annotations

import importlib
import importlib.util
import os

# (the autograd function `gather_sum` is not exported: the package attribute of that name is its submodule once
# imported, so `from ifa.kernels import gather_sum` gives the module; use ifa.kernels.gather_sum.gather_sum)
_EXPORTS = {
    "gather_sum_triton": "gather_sum", "gather_sum_backward_triton": "gather_sum",
    "build_inverse_index": "gather_sum", "InverseIndex": "gather_sum", "GatherSum": "gather_sum",
    "tail_mlp_triton": "tail_mlp",
}


def available() -> tuple[bool, str]:
    """(True, "") when the kernels can run here, else (False, why)."""
    if importlib.util.find_spec("triton") is None:
        return False, "triton is not installed"
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        from triton.language import standard
        from triton.runtime.jit import JITFunction

        if isinstance(standard.zeros, JITFunction):
            return False, "TRITON_INTERPRET=1 was set after triton was imported (set it before the first import)"
        return True, ""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device and TRITON_INTERPRET is not set"
    return True, ""


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ifa.kernels' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = ["available", *_EXPORTS]
