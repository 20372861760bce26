"""Semantic-FPN (Kirillov et al. 2019): FPN neck, per-level scale heads to stride 4, summed, classifier."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from baselines.blocks import classifier, conv_bn_relu, require_features, xavier_conv


class FPNHead(nn.Module):
    supports_query_size = False

    def __init__(self, input_shape, num_classes: int, in_features=("c2", "c3", "c4", "c5"), channels: int = 256,
                 scale_channels: int = 128, dropout: float = 0.1):
        super().__init__()
        require_features(input_shape, in_features, "FPNHead")
        # Finest first (the top-down pathway walks this order backwards); equal strides keep the given order.
        self.in_features = tuple(sorted(in_features, key=lambda n: input_shape[n].stride))
        self.extra_loss_weights: dict[str, float] = {}
        specs = [input_shape[n] for n in self.in_features]
        self.output_stride = min(s.stride for s in specs)
        self.lateral = nn.ModuleList(xavier_conv(s.channels, channels, 1) for s in specs)
        self.smooth = nn.ModuleList(xavier_conv(channels, channels, 3) for _ in specs)
        self.scale_heads = nn.ModuleList()
        for spec in specs:
            steps = max(1, int(round(math.log2(spec.stride / self.output_stride))))
            layers = []
            for i in range(steps):
                layers.append(conv_bn_relu(channels if i == 0 else scale_channels, scale_channels, 3))
                if spec.stride != self.output_stride:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*layers))
        self.cls = classifier(scale_channels, num_classes, dropout)

    def forward(self, features, size=None):
        laterals = [conv(features[n]) for conv, n in zip(self.lateral, self.in_features)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down pathway
            # in place: a conv's backward does not need its output, and the finest level is the largest tensor
            laterals[i - 1] += F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
        pyramid = [smooth(x) for smooth, x in zip(self.smooth, laterals)]
        target = pyramid[0].shape[-2:]
        out = None
        for head, x in zip(self.scale_heads, pyramid):
            x = head(x)
            if x.shape[-2:] != target:  # odd input sizes: x2 steps overshoot or undershoot by a pixel
                x = F.interpolate(x, size=target, mode="bilinear", align_corners=False)
            out = x if out is None else out + x  # not in place: a scale head ends in ReLU, which keeps its output
        return self.cls(out)
