"""The IFA query MLP: per-query 1x1 layers, hidden layers Linear -> BatchNorm (over batch x queries) -> ReLU.

Rows are queries: inputs are (M, in_dim) with M = batch * queries, so BatchNorm1d's statistics are
over batch and queries exactly as hzhupku/IFA's Conv1d + BatchNorm1d on (N, C, Q).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class QueryMLP(nn.Module):
    def __init__(self, in_dim: int, widths: Sequence[int], num_classes: int):
        super().__init__()
        if not widths:
            raise ValueError("mlp needs at least one hidden layer")
        dims = [in_dim, *widths]
        self.linears = nn.ModuleList(
            [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])] + [nn.Linear(dims[-1], num_classes)]
        )
        self.norms = nn.ModuleList([nn.BatchNorm1d(w) for w in widths])

    def forward(self, x: Tensor) -> Tensor:
        return self.from_preactivation(self.linears[0](x))

    def from_preactivation(self, z: Tensor) -> Tensor:
        """Continue from the first layer's output (before its BatchNorm): what the fused path computes."""
        x = F.relu(self.norms[0](z))
        for lin, bn in zip(self.linears[1:-1], self.norms[1:]):
            x = F.relu(bn(lin(x)))
        return self.linears[-1](x)

    def folded(self) -> list[tuple[Tensor, Tensor]]:
        """Eval-mode (weight, bias) per layer with each BatchNorm folded into the Linear before it."""
        out = []
        for lin, bn in zip(self.linears[:-1], self.norms):
            out.append(fold_batchnorm(lin.weight, lin.bias, bn))
        out.append((self.linears[-1].weight, self.linears[-1].bias))
        return out


def fold_batchnorm(weight: Tensor, bias: Tensor | None, bn: nn.modules.batchnorm._BatchNorm) -> tuple[Tensor, Tensor]:
    """(W, b) of `bn(W x + b)` in eval mode. weight: (out, in)."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return weight * scale[:, None], (b - bn.running_mean) * scale + bn.bias
