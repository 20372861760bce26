"""Backbone + head (+ auxiliary head): what the engine trains and the measurement layer measures."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from bench.config.formulation import AUTO, ran_formulation


class Segmentor(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module, aux_head: Optional[nn.Module] = None,
                 aux_weight: float = 0.4, formulation_setting: Optional[str] = None):
        super().__init__()
        self.backbone, self.head, self.aux_head = backbone, head, aux_head
        self.aux_weight = aux_weight
        # Eval only: query a head that supports it (IFA) at the output size instead of upsampling its logits.
        self.query_at_output = False
        # With query_at_output: query on the 1/query_stride grid of the output size and upsample the rest
        # (None or 1: the output size itself; the head's own output_stride: its own grid, the upsample protocol).
        self.query_stride = None
        # IFA's formulation setting. "auto" (the head built as on the CPU, bench.models.build.build_head): chosen
        # again whenever a forward's images are on another device type (bench/config/formulation.py), so that a model
        # built on the CPU and moved to a GPU runs the GPU's choice. A formulation set on the head by hand holds until
        # the model runs on another device type.
        self.formulation_setting = formulation_setting
        self._formulation_device = "cpu"

    @property
    def loss_weights(self) -> dict[str, float]:
        weights = {"main": 1.0}
        if self.aux_head is not None:
            weights["aux"] = self.aux_weight
        weights.update(getattr(self.head, "extra_loss_weights", {}))
        return weights

    def forward(self, images: torch.Tensor, size=None):
        """Training: {"main", "aux"?, head extras} at native strides (weights: `loss_weights`).
        Eval: logits at `size or images.shape[-2:]`, queried (IFA with `query_at_output`) or upsampled bilinearly
        with the head's `align_corners` (default False)."""
        self._choose_formulation(images.device.type)
        features = self.backbone(images)
        if self.training:
            out = self.head(features)
            out = dict(out) if isinstance(out, dict) else {"main": out}
            if self.aux_head is not None:
                out["aux"] = self.aux_head(features)
            return out
        size = tuple(size) if size is not None else tuple(images.shape[-2:])
        if self.query_at_output and getattr(self.head, "supports_query_size", False):
            logits = self.head(features, size=query_grid(size, self.query_stride, self.head.output_stride))
        else:
            logits = self.head(features)
        if tuple(logits.shape[-2:]) == size:
            return logits
        align_corners = getattr(self.head, "align_corners", False)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=align_corners)

    def _choose_formulation(self, device_type: str) -> None:
        if self.formulation_setting != AUTO or device_type == self._formulation_device:
            return
        self.head.formulation = ran_formulation(AUTO, device_type)
        self._formulation_device = device_type


def query_grid(size: tuple[int, int], stride: Optional[int], head_stride: int) -> Optional[tuple[int, int]]:
    """The grid a queryable head is asked for: `size` at stride 1, None (the head's own feature grid, which the
    deep stem's ceil-mode pooling can make one cell larger than ceil(size / 4)) at the head's own stride, else
    ceil(size / stride)."""
    if stride is None or stride == 1:
        return size
    if stride == head_stride:
        return None
    return (math.ceil(size[0] / stride), math.ceil(size[1] / stride))
