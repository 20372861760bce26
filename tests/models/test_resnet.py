"""Backbones: shapes and strides, stems, dilation, width multiplier, parameter counts."""
import math

import pytest
import torch

from bench.models.resnet import ResNet


def _params(m):
    return sum(p.numel() for p in m.parameters())


def test_resnet50_has_the_torchvision_parameter_count():
    assert _params(ResNet(50)) == 23_508_032  # torchvision resnet50 (25,557,032) minus fc (2,049,000)


def test_resnet18_and_deep_stem_counts():
    assert _params(ResNet(18)) == 11_176_512  # torchvision resnet18 (11,689,512) minus fc (513,000)
    # Deep stem: 3x3 convs 3->64, 64->64, 64->128 (+ BN), layer1 reads 128 channels.
    deep = ResNet(50, stem="deep")
    assert deep.conv1[0].out_channels == 64 and deep.conv1[6].out_channels == 128
    assert deep.layer1[0].conv1.in_channels == 128
    assert deep.maxpool.ceil_mode and not ResNet(50, stem="v1c").maxpool.ceil_mode


@pytest.mark.parametrize("output_stride, strides", [(32, (4, 8, 16, 32)), (16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride_by_dilation(output_stride, strides):
    net = ResNet(18, output_stride=output_stride, width=0.25).eval()
    shapes = net.output_shape()
    assert tuple(s.stride for s in shapes.values()) == strides
    image = (97, 131)
    with torch.no_grad():
        feats = net(torch.randn(1, 3, *image))
    for name, spec in shapes.items():
        assert feats[name].shape[1] == spec.channels
        assert feats[name].shape[-2:] == tuple(math.ceil(s / spec.stride) for s in image), name


def test_multi_grid_sets_layer4_dilations_like_the_ifa_release():
    net = ResNet(50, stem="deep", output_stride=32, multi_grid=(2, 2, 4))
    assert [b.conv2.dilation for b in net.layer4] == [(2, 2), (2, 2), (4, 4)]
    assert [b.conv2.stride for b in net.layer4] == [(2, 2), (1, 1), (1, 1)]
    os8 = ResNet(50, output_stride=8, multi_grid=(1, 2, 4))
    assert [b.conv2.dilation[0] for b in os8.layer4] == [4, 8, 16]
    with pytest.raises(ValueError, match="multi_grid needs 3 values"):
        ResNet(50, multi_grid=(1, 2))


def test_width_multiplier_scales_channels():
    net = ResNet(50, width=0.5)
    assert [s.channels for s in net.output_shape().values()] == [128, 256, 512, 1024]
    assert _params(net) < _params(ResNet(50)) / 3


def test_frozen_bn_has_no_trainable_norm_parameters():
    net = ResNet(18, norm="frozen_bn", width=0.25)
    assert all("bn" not in n and "downsample.1" not in n for n, _ in net.named_parameters())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unsupported ResNet depth 42"):
        ResNet(42)
    with pytest.raises(ValueError, match="unknown stem 'tiny'"):
        ResNet(18, stem="tiny")
    with pytest.raises(ValueError, match="output_stride must be 32, 16 or 8"):
        ResNet(18, output_stride=4)
