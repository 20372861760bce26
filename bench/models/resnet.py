"""ResNet-18/34/50/101 in plain torch, returning C2..C5 with their shape spec.

Module names follow torchvision (conv1, bn1, layerN.i.convK, downsample.0/1); deep stems follow timm's
`conv1 = Sequential(conv, bn, relu, conv, bn, relu, conv)` + `bn1`, so ImageNet weights map with few renames.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from bench.models.norm import make_norm
from ifa.shape_spec import ShapeSpec

DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
          101: ("bottleneck", (3, 4, 23, 3))}
STEM_WIDTHS = {"deep": (64, 64, 128), "v1c": (32, 32, 64)}


def _conv3x3(cin, cout, stride=1, dilation=1):
    return nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, dilation=1, downsample=None, norm="bn"):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride, dilation)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = make_norm(norm, planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as torchvision and mmseg: BatchNorm's backward does not need its output
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, cin, planes, stride=1, dilation=1, downsample=None, norm="bn"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = _conv3x3(planes, planes, stride, dilation)
        self.bn2 = make_norm(norm, planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = make_norm(norm, planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity  # in place (see BasicBlock): no new activation-sized tensor per block
        return self.relu(out)


def stage_dilations(output_stride: int) -> tuple[tuple[int, int], ...]:
    """(stride, dilation) of layer1..layer4 for an output stride of 32, 16 or 8."""
    table = {32: ((1, 1), (2, 1), (2, 1), (2, 1)), 16: ((1, 1), (2, 1), (2, 1), (1, 2)),
             8: ((1, 1), (2, 1), (1, 2), (1, 4))}
    if output_stride not in table:
        raise ValueError(f"output_stride must be 32, 16 or 8, got {output_stride}")
    return table[output_stride]


class ResNet(nn.Module):
    def __init__(self, depth: int = 50, stem: str = "standard", output_stride: int = 32,
                 multi_grid: Optional[Sequence[int]] = None, width: float = 1.0, norm: str = "bn",
                 multi_grid_rule: str = "absolute", zero_init_residual: bool = False):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"unsupported ResNet depth {depth}; expected one of {sorted(DEPTHS)}")
        kind, blocks = DEPTHS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        scale = lambda c: max(8, int(round(c * width)))  # noqa: E731
        self.depth, self.stem_kind, self.width = depth, stem, width

        if stem == "standard":
            stem_out = scale(64)
            self.conv1 = nn.Conv2d(3, stem_out, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        elif stem in STEM_WIDTHS:
            w1, w2, stem_out = (scale(c) for c in STEM_WIDTHS[stem])
            self.conv1 = nn.Sequential(
                _conv3x3(3, w1, 2), make_norm(norm, w1), nn.ReLU(inplace=True),
                _conv3x3(w1, w2), make_norm(norm, w2), nn.ReLU(inplace=True),
                _conv3x3(w2, stem_out))
            # The IFA release pools with ceil_mode (deep stem); mmseg's V1c does not.
            self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=(stem == "deep"))
        else:
            raise ValueError(f"unknown stem {stem!r}; expected standard, deep or v1c")
        self.bn1 = make_norm(norm, stem_out)
        self.relu = nn.ReLU(inplace=True)

        layout = stage_dilations(output_stride)
        if multi_grid is not None and len(multi_grid) != blocks[3]:
            raise ValueError(f"multi_grid needs {blocks[3]} values (one per layer4 block), got {len(multi_grid)}")
        if multi_grid_rule not in ("absolute", "relative"):
            raise ValueError(f"multi_grid_rule must be absolute or relative, got {multi_grid_rule!r}")
        cin, prev_dilation, strides = stem_out, 1, []
        for i, ((stride, dilation), n) in enumerate(zip(layout, blocks)):
            planes = scale(64 * 2 ** i)
            grid = multi_grid if (i == 3 and multi_grid is not None) else None
            if grid and multi_grid_rule == "relative":  # DeepLabV3 paper: unit rates times the stage's dilation
                grid = [g * dilation for g in grid]
            layer, cin = self._make_layer(block, cin, planes, n, stride, dilation, prev_dilation, grid, norm)
            self.add_module(f"layer{i + 1}", layer)
            prev_dilation = dilation
            strides.append(stride)
        total = 4
        self._shapes = {}
        for i, stride in enumerate(strides):
            total *= stride
            out_ch = scale(64 * 2 ** i) * block.expansion
            self._shapes[f"c{i + 2}"] = ShapeSpec(out_ch, total)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool = False) -> None:
        """torchvision's initialisation (Kaiming-normal fan_out convs, unit BN): what a from-scratch run starts
        from; pretrained weights overwrite it. zero_init_residual: each residual branch's last BN starts at 0,
        so every block starts as the identity (Goyal et al. 2017; the IFA release sets it)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if zero_init_residual and isinstance(m, (Bottleneck, BasicBlock)):
                nn.init.zeros_((m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight)

    @staticmethod
    def _make_layer(block, cin, planes, n, stride, dilation, prev_dilation, grid, norm):
        downsample = None
        if stride != 1 or cin != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(cin, planes * block.expansion, 1, stride, bias=False),
                                       make_norm(norm, planes * block.expansion))
        # torchvision convention: the first block of a dilated stage keeps the previous dilation.
        # multi_grid (mmseg's rule): the values are the dilations themselves.
        dilations = list(grid) if grid else [prev_dilation] + [dilation] * (n - 1)
        layers = [block(cin, planes, stride, dilations[0], downsample, norm)]
        cin = planes * block.expansion
        layers += [block(cin, planes, 1, dilations[i], None, norm) for i in range(1, n)]
        return nn.Sequential(*layers), cin

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"c2": c2, "c3": c3, "c4": c4, "c5": c5}
