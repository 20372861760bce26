"""PPM head (PSPNet): pyramid pooling over one feature, 3x3 bottleneck, classifier."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.blocks import classifier, conv_bn_relu, require_features


class PPMHead(nn.Module):
    supports_query_size = False

    def __init__(self, input_shape, num_classes: int, in_feature: str = "c5", channels: int = 512,
                 pool_scales=(1, 2, 3, 6), dropout: float = 0.1):
        super().__init__()
        require_features(input_shape, [in_feature], "PPMHead")
        self.in_feature = in_feature
        self.extra_loss_weights: dict[str, float] = {}
        spec = input_shape[in_feature]
        self.output_stride = spec.stride
        self.pools = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), conv_bn_relu(spec.channels, channels, 1)) for s in pool_scales)
        self.bottleneck = conv_bn_relu(spec.channels + len(pool_scales) * channels, channels, 3)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, features, size=None):
        x = features[self.in_feature]
        pooled = [F.interpolate(p(x), size=x.shape[-2:], mode="bilinear", align_corners=False) for p in self.pools]
        return self.cls(self.bottleneck(torch.cat([x, *pooled], dim=1)))
