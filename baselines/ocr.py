"""OCR head (OCRNet, Yuan et al. 2020): soft object regions from an FCN, object-contextual representations."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.blocks import as_names, classifier, conv_bn_relu, require_features, resize_concat
from baselines.fcn import FCNHead


class ObjectAttention(nn.Module):
    """Pixels attend to the K object-region representations (mmseg's ObjectAttentionBlock, scale 1)."""

    def __init__(self, channels: int, key_channels: int):
        super().__init__()
        self.key_channels = key_channels
        self.query = nn.Sequential(conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.key = nn.Sequential(conv_bn_relu(channels, key_channels), conv_bn_relu(key_channels, key_channels))
        self.value = conv_bn_relu(channels, key_channels)
        self.out = conv_bn_relu(key_channels, channels)
        self.fuse = conv_bn_relu(2 * channels, channels)

    def forward(self, pixels, regions):
        n, _, h, w = pixels.shape
        q = self.query(pixels).flatten(2).transpose(1, 2)  # N, HW, Ck
        k = self.key(regions).flatten(2)  # N, Ck, K
        v = self.value(regions).flatten(2).transpose(1, 2)  # N, K, Ck
        attn = torch.softmax(torch.bmm(q, k) * self.key_channels ** -0.5, dim=-1)
        context = torch.bmm(attn, v).transpose(1, 2).reshape(n, self.key_channels, h, w)
        return self.fuse(torch.cat([self.out(context), pixels], dim=1))


class OCRHead(nn.Module):
    supports_query_size = False

    def __init__(self, input_shape, num_classes: int, in_features=("c5",),
                 in_feature_region="c4", channels: int = 512, key_channels: int = 256,
                 region_channels: int = 256, region_loss_weight: float = 0.4, dropout: float = 0.1,
                 region_kernel: int = 3, region_dropout: float = 0.1):
        super().__init__()
        require_features(input_shape, list(in_features) + list(as_names(in_feature_region)), "OCRHead")
        self.in_features = tuple(in_features)
        self.output_stride = min(input_shape[n].stride for n in self.in_features)
        self.extra_loss_weights = {"regions": region_loss_weight}
        # mmseg's HRNet OCRNet: the region FCN reads the same concatenated levels with one 1x1 conv, no dropout.
        self.region_head = FCNHead(input_shape, num_classes, in_feature_region, region_channels, region_dropout,
                                   kernel_size=region_kernel)
        self.bottleneck = conv_bn_relu(sum(input_shape[n].channels for n in self.in_features), channels, 3)
        self.attention = ObjectAttention(channels, key_channels)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, features, size=None):
        x = resize_concat(features, self.in_features)
        target = x.shape[-2:]
        pixels = self.bottleneck(x)
        region_logits = self.region_head(features)
        probs = F.interpolate(region_logits, size=target, mode="bilinear", align_corners=False)
        probs = torch.softmax(probs.flatten(2), dim=2)  # N, K, HW: soft object regions
        regions = torch.bmm(probs, pixels.flatten(2).transpose(1, 2))  # N, K, C
        regions = regions.transpose(1, 2).unsqueeze(-1)  # N, C, K, 1
        logits = self.cls(self.attention(pixels, regions))
        if self.training:
            return {"main": logits, "regions": region_logits}
        return logits
