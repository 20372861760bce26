"""Normalisation layers selectable by name: "bn", "syncbn", "frozen_bn"."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters (buffers, not parameters)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)  # present in nn.BatchNorm2d checkpoints
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Inference-mode batch norm in every mode: one fused op, and fvcore counts it like an eval BatchNorm2d,
        # so a frozen backbone's MACs match the same backbone with "bn".
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


NORMS = {"bn": nn.BatchNorm2d, "syncbn": nn.SyncBatchNorm, "frozen_bn": FrozenBatchNorm2d}


def make_norm(kind: str, channels: int) -> nn.Module:
    try:
        return NORMS[kind](channels)
    except KeyError:
        raise ValueError(f"unknown norm {kind!r}; expected one of {sorted(NORMS)}") from None
