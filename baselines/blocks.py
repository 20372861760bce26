"""Conv + BN + ReLU, the classifier, and their initialisation: the units every baseline head is built from.

Initialisation follows mmsegmentation, so heads trained here start where mmseg's do: ConvModule convs are
Kaiming-normal (fan_out, ReLU) with BN at weight 1 / bias 0, the classifier is N(0, 0.01) with bias 0, and the
FPN neck's plain convs are Xavier-uniform (`xavier_conv`).
"""
import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def xavier_conv(cin: int, cout: int, kernel: int = 1) -> nn.Conv2d:
    """A plain conv with bias (mmseg's FPN neck has no norm on its laterals and 3x3 convs)."""
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def classifier(cin: int, num_classes: int, dropout: float) -> nn.Sequential:
    conv = nn.Conv2d(cin, num_classes, 1)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(), conv)


def require_features(input_shape, names, head: str):
    if not names:
        raise ValueError(f"{head}: no input feature named")
    missing = [n for n in names if n not in input_shape]
    if missing:
        raise ValueError(f"{head}: the backbone has no feature(s) {missing}; it offers {sorted(input_shape)}")


def as_names(features) -> tuple[str, ...]:
    """One feature name or several, as a tuple."""
    return (features,) if isinstance(features, str) else tuple(features)


def resize_concat(features, names):
    """mmseg's `resize_concat` input transform: the named features resized (bilinear) to the largest, concatenated."""
    maps = [features[n] for n in names]
    if len(maps) == 1:
        return maps[0]
    target = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
    return torch.cat([m if m.shape[-2:] == target else F.interpolate(m, size=target, mode="bilinear",
                                                                      align_corners=False) for m in maps], dim=1)
