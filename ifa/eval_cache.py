"""Eval-mode caches of the fused formulation: folded weights per dtype, keyed by the parameters' state.

Everything here depends only on parameters and buffers (and on a plan, for the PE rows): it is recomputed only when
one of them changes. "Changed" means a different `data_ptr` or `_version` of any parameter or buffer of the head:
optimizer steps, `load_state_dict`, `.to()` and in-place updates under `torch.no_grad()` all change one of them.
In-place writes through `.data` do not (torch gives `.data` its own version counter): call `head.clear_caches()`
after such a write. A training-mode forward updates BatchNorm buffers (`num_batches_tracked` is bumped).

When the signature changes, new values are written *into the existing tensors* (same shapes), so a captured CUDA
graph that reads them stays valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn


def param_signature(module: nn.Module) -> tuple:
    """(data_ptr, _version) of every parameter and buffer: changes whenever one of them is replaced or updated."""
    return tuple((t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))


@dataclass
class FoldedWeights:
    """Eval-mode weights of the fused path, BatchNorm folded, cast to the compute dtype once.

    red_t[l]: (C_in, channels) = (folded reduction)^T, contiguous; red_b[l]: (channels,)
    proj_t[l]: (channels, width) = W_f_l^T, contiguous (the first layer's feature block, BN folded)
    pe_w[l]: (width, pe_out) = W_pe_l, in the parameters' dtype (PE tables are computed there, then cast)
    bias: (width,) the first layer's folded bias, parameters' dtype
    tail: [(W (out, in), b)] of the layers after the first, folded (the last is the classifier)
    """

    red_t: list[Tensor]
    red_b: list[Tensor]
    proj_t: list[Tensor]
    pe_w: list[Tensor]
    bias: Tensor
    tail: list[tuple[Tensor, Tensor]]

    def tensors(self) -> list[Tensor]:
        return [*self.red_t, *self.red_b, *self.proj_t, *self.pe_w, self.bias, *(t for wb in self.tail for t in wb)]

    def copy_from(self, other: "FoldedWeights") -> None:
        for dst, src in zip(self.tensors(), other.tensors()):
            dst.copy_(src)


def fold_weights(head, dtype: torch.dtype) -> FoldedWeights:
    """The head's eval-mode weights (differentiable when called with gradients on)."""
    from .mlp import fold_batchnorm  # noqa: PLC0415

    layers = head.mlp.folded()
    (w1, b1), tail = layers[0], layers[1:]
    red_t, red_b = [], []
    for seq in head.reduce:
        conv, bn = seq[0], seq[1]
        w, b = fold_batchnorm(conv.weight.flatten(1), conv.bias, bn)
        red_t.append(w.t().to(dtype).contiguous())
        red_b.append(b.to(dtype))
    slices = head._first_layer_slices(w1)
    return FoldedWeights(
        red_t, red_b,
        [wf.t().to(dtype).contiguous() for _, wf in slices],
        [wpe for wpe, _ in slices],
        b1,
        [(w.to(dtype).contiguous(), b.to(dtype)) for w, b in tail],
    )


class WeightCache:
    """Folded weights per (dtype, device), refreshed in place when the head's parameter signature changes."""

    def __init__(self):
        self.signature: Optional[tuple] = None
        self.by_dtype: dict[tuple, FoldedWeights] = {}
        self.folds = 0  # how many times weights were folded (tests read it)
        self.generation = 0  # bumped at every refresh: what depends on the weights (PE rows) compares it

    def get(self, head, dtype: torch.dtype, device, signature: tuple) -> FoldedWeights:
        if signature != self.signature:
            here = next(head.parameters()).device
            # a head moved to another device: its old entries are dropped, the others refreshed in place
            self.by_dtype = {k: v for k, v in self.by_dtype.items() if k[1] == here}
            with torch.no_grad():
                for (dt, _), old in self.by_dtype.items():
                    old.copy_from(fold_weights(head, dt))
                    self.folds += 1
            self.signature = signature
            self.generation += 1
        key = (dtype, torch.device(device))
        if key not in self.by_dtype:
            with torch.no_grad():
                self.by_dtype[key] = fold_weights(head, dtype)
            self.folds += 1
        return self.by_dtype[key]

    def clear(self) -> None:
        self.signature = None
        self.by_dtype.clear()
        self.generation += 1
