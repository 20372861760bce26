"""Conv + BN + ReLU, the unit every baseline head is built from."""
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def classifier(cin: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(), nn.Conv2d(cin, num_classes, 1))


def require_features(input_shape, names, head: str):
    missing = [n for n in names if n not in input_shape]
    if missing:
        raise ValueError(f"{head}: the backbone has no feature(s) {missing}; it offers {sorted(input_shape)}")
