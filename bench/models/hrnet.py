"""HRNetV2 (Wang et al. 2019) in plain torch, with mmsegmentation's stage configurations and module names.

Module names equal mmseg's `HRNet` (conv1, bn1, conv2, bn2, layer1, transitionN, stageN.M.branches / fuse_layers),
which are also those of the official HRNet ImageNet checkpoints, so both load without renaming. The four branch
outputs are returned as c2..c5 (strides 4, 8, 16, 32) for any head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.norm import make_norm
from bench.models.resnet import BasicBlock, Bottleneck
from ifa.shape_spec import ShapeSpec

# name -> (stage1 blocks, per-stage (modules, blocks per branch), branch widths); stage1 is 64-wide Bottlenecks.
VARIANTS = {
    "hrnetv2_w18_small": (2, ((1, 2), (3, 2), (2, 2)), (18, 36, 72, 144)),
    "hrnetv2_w18": (4, ((1, 4), (4, 4), (3, 4)), (18, 36, 72, 144)),
    "hrnetv2_w48": (4, ((1, 4), (4, 4), (3, 4)), (48, 96, 192, 384)),
}


def _conv_bn(cin, cout, kernel, stride, norm, relu):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), make_norm(norm, cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class HRModule(nn.Module):
    """Parallel BasicBlock branches, then every output branch sums all inputs brought to its resolution."""

    def __init__(self, widths, num_blocks: int, norm: str):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(w, w, norm=norm) for _ in range(num_blocks)]) for w in widths)
        n = len(widths)
        self.fuse_layers = None
        if n > 1:
            self.fuse_layers = nn.ModuleList()
            for i in range(n):
                row = nn.ModuleList()
                for j in range(n):
                    if j > i:  # coarser: 1x1 conv + BN, upsampled in forward
                        row.append(_conv_bn(widths[j], widths[i], 1, 1, norm, relu=False))
                    elif j == i:
                        row.append(None)
                    else:  # finer: (i - j) strided 3x3 convs, ReLU between them, not after the last
                        steps = [_conv_bn(widths[j], widths[j], 3, 2, norm, relu=True) for _ in range(i - j - 1)]
                        row.append(nn.Sequential(*steps, _conv_bn(widths[j], widths[i], 3, 2, norm, relu=False)))
                self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = 0
            for j, layer in enumerate(row):
                if j == i:
                    y = y + xs[j]
                elif j > i:
                    z = layer(xs[j])
                    # mmseg: Upsample by 2**(j-i), then resize to the exact size (odd inputs differ by a pixel)
                    z = F.interpolate(z, size=[s * 2 ** (j - i) for s in z.shape[-2:]], mode="bilinear",
                                      align_corners=False)
                    if z.shape[-2:] != xs[i].shape[-2:]:
                        z = F.interpolate(z, size=xs[i].shape[-2:], mode="bilinear", align_corners=False)
                    y = y + z
                else:
                    y = y + layer(xs[j])
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    def __init__(self, variant: str = "hrnetv2_w18", norm: str = "bn"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown HRNet variant {variant!r}; expected one of {sorted(VARIANTS)}")
        stage1_blocks, stages, widths = VARIANTS[variant]
        self.variant = variant
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = make_norm(norm, 64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = make_norm(norm, 64)
        self.relu = nn.ReLU(inplace=True)
        downsample = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), make_norm(norm, 256))
        self.layer1 = nn.Sequential(Bottleneck(64, 64, downsample=downsample, norm=norm),
                                    *[Bottleneck(256, 64, norm=norm) for _ in range(stage1_blocks - 1)])
        previous = [256]
        for s, (modules, blocks) in enumerate(stages):
            current = list(widths[:s + 2])
            self.add_module(f"transition{s + 1}", self._transition(previous, current, norm))
            self.add_module(f"stage{s + 2}", nn.Sequential(*[HRModule(current, blocks, norm) for _ in range(modules)]))
            previous = current
        self._shapes = {f"c{i + 2}": ShapeSpec(w, 4 * 2 ** i) for i, w in enumerate(widths)}
        for m in self.modules():  # mmseg's HRNet init: Kaiming-normal convs, unit BN
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _transition(previous, current, norm) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, width in enumerate(current):
            if i < len(previous):
                layers.append(None if width == previous[i] else _conv_bn(previous[i], width, 3, 1, norm, True))
            else:  # a new, coarser branch from the coarsest existing one
                extra = i + 1 - len(previous)
                layers.append(nn.Sequential(*[
                    _conv_bn(previous[-1], width if k == extra - 1 else previous[-1], 3, 2, norm, True)
                    for k in range(extra)]))
        return layers

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for s in range(3):
            transition, stage = getattr(self, f"transition{s + 1}"), getattr(self, f"stage{s + 2}")
            # mmseg feeds every transition (new branches, in practice) from the last branch
            xs = [xs[i] if t is None else t(xs[-1]) for i, t in enumerate(transition)]
            xs = stage(xs)
        return {f"c{i + 2}": x for i, x in enumerate(xs)}
