"""FCN head: the auxiliary head on C4, OCR's soft-object-region head, and FCN-HRNet's head (mmseg's FCNHead with
one conv, no input concat). Several input features are resized to the finest and concatenated (HRNet style)."""
from __future__ import annotations

from typing import Sequence, Union

from torch import nn

from baselines.blocks import as_names, classifier, conv_bn_relu, require_features, resize_concat


class FCNHead(nn.Module):
    supports_query_size = False

    def __init__(self, input_shape, num_classes: int, in_feature: Union[str, Sequence[str]] = "c4",
                 channels: int = 256, dropout: float = 0.1, kernel_size: int = 3, align_corners: bool = False):
        super().__init__()
        self.in_features = as_names(in_feature)
        require_features(input_shape, list(self.in_features), "FCNHead")
        if kernel_size not in (1, 3):
            raise ValueError(f"FCNHead: kernel_size must be 1 or 3, got {kernel_size}")
        self.in_feature = in_feature
        self.align_corners = align_corners  # how a trainer resizes these logits to the label for the loss
        self.extra_loss_weights: dict[str, float] = {}
        self.output_stride = min(input_shape[n].stride for n in self.in_features)
        cin = sum(input_shape[n].channels for n in self.in_features)
        channels = cin if channels is None else channels  # None: as wide as the input (mmseg's HRNet heads)
        self.conv = conv_bn_relu(cin, channels, kernel_size)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, features, size=None):
        return self.cls(self.conv(resize_concat(features, self.in_features)))
