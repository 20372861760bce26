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

    def from_preactivation_lean(self, z: Tensor) -> Tensor:
        """`from_preactivation` in training mode, keeping only each BatchNorm's input for backward.

        Every hidden "BatchNorm -> ReLU -> next Linear" runs as one autograd function that recomputes the
        ReLU output in backward instead of storing it (same values, same running-statistics update): saved
        activations drop from two tensors per hidden layer to one. Falls back to the modules in eval mode."""
        if not self.training or not torch.is_grad_enabled():
            return self.from_preactivation(z)
        x = z
        for lin, bn in zip(self.linears[1:], self.norms):
            x = bn_relu_linear(x, bn, lin.weight, lin.bias)
        return x

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


def _bn_momentum(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """The factor nn.BatchNorm uses for its running statistics (and the counter update it implies)."""
    bn.num_batches_tracked.add_(1)
    if bn.momentum is None:
        return 1.0 / float(bn.num_batches_tracked)
    return bn.momentum


def bn_relu_linear(x: Tensor, bn: nn.modules.batchnorm._BatchNorm, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear(relu(bn(x)), weight, bias) for x (M, C), training-mode BatchNorm (statistics over the M rows),
    storing only x for backward (the ReLU output is recomputed there)."""
    # Only a plain BatchNorm may be replaced by the native kernel: a synchronised one (torch's SyncBatchNorm,
    # the engine's CPU SyncBN under DDP) must run its own forward so that statistics cross processes.
    plain = type(bn) in (nn.BatchNorm1d, nn.BatchNorm2d)
    if not plain or not bn.track_running_stats or bn.running_mean is None:
        return F.linear(F.relu(bn(x)), weight, bias)
    factor = _bn_momentum(bn)
    return _BNReLULinear.apply(x, bn.weight, bn.bias, weight, bias, bn.running_mean, bn.running_var, bn.eps, factor)


_ROW_BLOCK = 8192  # rows per block in backward: bounds the recomputed ReLU output


class _BNReLULinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gamma, beta, weight, bias, running_mean, running_var, eps, factor):
        # native_batch_norm updates the running statistics exactly as nn.BatchNorm does
        out, mean, invstd = torch.native_batch_norm(x, gamma, beta, running_mean, running_var, True, factor, eps)
        y = out.relu_()
        res = F.linear(y, weight, bias)
        ctx.eps = eps
        ctx.save_for_backward(x, gamma, beta, weight, mean, invstd)
        return res

    @staticmethod
    def backward(ctx, grad_out):
        """By blocks of rows: the ReLU output is recomputed per block (never whole), the input gradient is
        formed in place in the buffer that holds the gradient at the ReLU output."""
        x, gamma, beta, weight, mean, invstd = ctx.saved_tensors
        # Under autocast the forward's linear ran in bf16/fp16, so grad_out (and perhaps x) arrive in low precision
        # while the parameters are fp32: the backward runs in the parameters' dtype, x's gradient goes back in x's.
        x_dtype, dtype = x.dtype, weight.dtype
        x, grad_out, mean, invstd = x.to(dtype), grad_out.to(dtype), mean.to(dtype), invstd.to(dtype)
        m = x.shape[0]
        scale = gamma * invstd
        shift = beta - mean * scale
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[3] else None
        grad_bias = grad_out.sum(0) if ctx.needs_input_grad[4] else None
        dy = torch.empty_like(x)
        grad_beta = torch.zeros_like(mean)
        dot = torch.zeros_like(mean)  # sum over rows of dy * (x - mean)
        for r in range(0, m, _ROW_BLOCK):
            xb, gb, db = x[r:r + _ROW_BLOCK], grad_out[r:r + _ROW_BLOCK], dy[r:r + _ROW_BLOCK]
            yb = torch.addcmul(shift, xb, scale).relu_()
            if grad_weight is not None:
                grad_weight.addmm_(gb.t(), yb)
            torch.mm(gb, weight, out=db)
            db.mul_(yb.sign_())  # ReLU gradient: y >= 0, so sign(y) is the 0/1 mask
            grad_beta += db.sum(0)
            dot += (db * (xb - mean)).sum(0)
        grad_gamma = dot * invstd
        grad_x = None
        if ctx.needs_input_grad[0]:
            # dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * invstd
            k = -scale * invstd * invstd * dot / m
            grad_x = dy.mul_(scale).addcmul_(x, k.expand_as(x[:1])).sub_(scale * grad_beta / m + mean * k)
            grad_x = grad_x.to(x_dtype)
        return grad_x, grad_gamma, grad_beta, grad_weight, grad_bias, None, None, None, None
