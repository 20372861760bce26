"""FCN head: the auxiliary head on C4 (and OCR's soft-object-region head)."""
from __future__ import annotations

from torch import nn

from baselines.blocks import classifier, conv_bn_relu, require_features


class FCNHead(nn.Module):
    supports_query_size = False

    def __init__(self, input_shape, num_classes: int, in_feature: str = "c4", channels: int = 256,
                 dropout: float = 0.1, align_corners: bool = False):
        super().__init__()
        require_features(input_shape, [in_feature], "FCNHead")
        self.in_feature = in_feature
        self.align_corners = align_corners  # how a trainer resizes these logits to the label for the loss
        self.extra_loss_weights: dict[str, float] = {}
        self.output_stride = input_shape[in_feature].stride
        self.conv = conv_bn_relu(input_shape[in_feature].channels, channels, 3)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, features, size=None):
        return self.cls(self.conv(features[self.in_feature]))
