"""The two hot steps of the fused eval forward, behind a seam that kernels can replace.

- `gather_sum(table (R, width), index (Q, S) int, weight (Q, S) | None, bias (width,) | None, relu) -> (Q, width)`:
  per query, the (weighted) sum of S rows of `table`, plus bias, then an optional ReLU.
- `tail_mlp(x (Q, width), layers [(W (out, in), b (out,)), ...]) -> (Q, classes)`: Linear + ReLU for every layer
  but the last, then the last Linear. W is laid out as `nn.Linear.weight`.

The torch versions below are the reference implementations. Triton versions of the same signatures live in
`ifa.kernels` (`gather_sum_triton`, `tail_mlp_triton`), imported lazily: `select_kernels` returns them only when
asked to ("triton"; "auto" only for CUDA tensors) and they import; otherwise the torch ones, with the name of what
was chosen ("torch" / "triton") so that the head can record it.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

KERNELS = ("auto", "torch", "triton")


def gather_sum(table: Tensor, index: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], relu: bool) -> Tensor:
    out = F.embedding_bag(index, table, mode="sum", per_sample_weights=weight)
    if bias is not None:
        out.add_(bias)
    return out.relu_() if relu else out


def tail_mlp(x: Tensor, layers: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    for wt, b in layers[:-1]:
        x = addmm_relu(b, x, wt.t())
    wt, b = layers[-1]
    return torch.addmm(b, x, wt.t())


def addmm_relu(bias: Tensor, x: Tensor, mat: Tensor) -> Tensor:
    """relu(bias + x @ mat) as one op where torch has it (`_addmm_activation`), else addmm then relu_. Under a
    jit trace (fvcore's MAC count) and under autograd always the latter: fvcore has no handle for
    `_addmm_activation`, and autograd no derivative."""
    grad = torch.is_grad_enabled() and (bias.requires_grad or x.requires_grad or mat.requires_grad)
    if _HAS_ADDMM_ACTIVATION and not grad and not torch.jit.is_tracing():
        return torch._addmm_activation(bias, x, mat)
    return torch.addmm(bias, x, mat).relu_()


_HAS_ADDMM_ACTIVATION = hasattr(torch, "_addmm_activation")

_triton_cache: dict[str, Optional[tuple[Callable, Callable]]] = {}


def _triton_ops() -> Optional[tuple[Callable, Callable]]:
    """(gather_sum_triton, tail_mlp_triton) from ifa.kernels, or None when that module or triton is absent."""
    if "ops" not in _triton_cache:
        try:
            from .kernels import gather_sum_triton, tail_mlp_triton  # noqa: PLC0415 (lazy: triton is optional)
            _triton_cache["ops"] = (gather_sum_triton, tail_mlp_triton)
        except Exception:  # ImportError, or triton failing to initialise
            _triton_cache["ops"] = None
    return _triton_cache["ops"]


def select_kernels(kernels: str, device: torch.device) -> tuple[Callable, Callable, str]:
    """(gather_sum, tail_mlp, name). "torch": the torch versions. "triton": the Triton ones on any device (under
    TRITON_INTERPRET=1 they run on CPU tensors), torch when ifa.kernels does not import. "auto": Triton on CUDA
    tensors when it imports, torch otherwise."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
    if kernels == "triton" or (kernels == "auto" and device.type == "cuda"):
        ops = _triton_ops()
        if ops is not None:
            return ops[0], ops[1], "triton"
    return gather_sum, tail_mlp, "torch"
