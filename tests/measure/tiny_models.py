"""Small importable modules for measurement tests (the CPU memory measurement unpickles them in a fresh process)."""
import torch
import torch.nn.functional as F
from torch import nn

ALLOC_ELEMENTS = 100_000_000  # float32: 400 MB = 381.47 MiB


class Allocates400MB(nn.Module):
    def forward(self, x):
        big = torch.ones(ALLOC_ELEMENTS, dtype=torch.float32)
        return big.sum() + x


class TinySegmentor(nn.Module):
    """Backbone (stride 4) + head + aux head, with the Segmentor's eval behaviour: aux head off, logits upsampled."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1, bias=False), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1, bias=False)
        self.aux_head = nn.Conv2d(8, num_classes, 3, padding=1)

    def forward(self, images, size=None):
        feats = self.backbone(images)
        out = {"main": self.head(feats)}
        if self.training:
            out["aux"] = self.aux_head(feats)
            return out
        return F.interpolate(out["main"], size=size or images.shape[-2:], mode="bilinear", align_corners=False)


class ExitsOnSecondCall:
    """A serving handler (bench.measure.processes.isolated.FreshProcess) whose process dies with exit code 3 on its 2nd call."""

    def __init__(self):
        self.calls = 0

    def __call__(self, value):
        self.calls += 1
        if self.calls == 2:
            import os

            os._exit(3)
        return value * 2
