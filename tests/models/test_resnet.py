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
    os8 = ResNet(50, output_stride=8, multi_grid=(1, 2, 4))  # mmseg: absolute dilations by default
    assert [b.conv2.dilation[0] for b in os8.layer4] == [1, 2, 4]
    os8_paper = ResNet(50, output_stride=8, multi_grid=(1, 2, 4), multi_grid_rule="relative")
    assert [b.conv2.dilation[0] for b in os8_paper.layer4] == [4, 8, 16]
    os16 = ResNet(50, output_stride=16, multi_grid=(1, 2, 4))
    assert [b.conv2.dilation[0] for b in os16.layer4] == [1, 2, 4]
    os16_paper = ResNet(50, output_stride=16, multi_grid=(1, 2, 4), multi_grid_rule="relative")
    assert [b.conv2.dilation[0] for b in os16_paper.layer4] == [2, 4, 8]
    release_paper = ResNet(50, stem="deep", output_stride=32, multi_grid=(2, 2, 4), multi_grid_rule="relative")
    assert [b.conv2.dilation[0] for b in release_paper.layer4] == [2, 2, 4]
    with pytest.raises(ValueError, match="multi_grid_rule"):
        ResNet(50, multi_grid=(1, 2, 4), multi_grid_rule="paper")
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


@pytest.mark.parametrize("depth, params", [(34, 21_284_672), (101, 42_500_160)])
def test_deeper_resnets_match_torchvision_without_fc(depth, params):
    assert _params(ResNet(depth)) == params  # torchvision resnet34 21,797,672 / resnet101 44,549,160 minus fc


def test_stem_parameter_counts():
    # deep: +103,296 in the stem (3x3 64-64-128 vs 7x7 64) and +20,480 in layer1.0 (conv1 and shortcut read 128)
    assert _params(ResNet(50, stem="deep")) == 23_631_808
    v1c = ResNet(50, stem="v1c")
    assert _params(v1c) == 23_527_264
    assert [v1c.conv1[i].out_channels for i in (0, 3, 6)] == [32, 32, 64] and v1c.layer1[0].conv1.in_channels == 64


def test_dilated_stages_keep_the_previous_dilation_in_their_first_block():
    os8 = ResNet(50, output_stride=8)
    assert [b.conv2.dilation[0] for b in os8.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in os8.layer4] == [2, 4, 4]
    assert all(b.conv2.stride == (1, 1) for b in [*os8.layer3, *os8.layer4])
    assert os8.layer3[0].downsample[0].stride == (1, 1)
    os16 = ResNet(18, output_stride=16, multi_grid=(1, 2), multi_grid_rule="relative")  # times stage dilation 2
    assert [b.conv1.dilation[0] for b in os16.layer4] == [2, 4]


def test_deep_stem_ceil_mode_pool_adds_a_cell_at_some_sizes():
    """The release's ceil-mode max-pool: 512 -> 129 cells at stride 4 (not 128); 769 (the release's crop) -> 193."""
    net = ResNet(18, stem="deep", width=0.125).eval()
    with torch.no_grad():
        even = net(torch.randn(1, 3, 64, 96))
        crop = net(torch.randn(1, 3, 97, 97))
    assert [tuple(f.shape[-2:]) for f in even.values()] == [(17, 25), (9, 13), (5, 7), (3, 4)]
    assert [tuple(f.shape[-2:]) for f in crop.values()] == [(25, 25), (13, 13), (7, 7), (4, 4)]


def test_norm_kinds():
    from bench.models.norm import FrozenBatchNorm2d

    assert isinstance(ResNet(18, norm="syncbn", width=0.125).bn1, torch.nn.SyncBatchNorm)
    frozen = ResNet(18, norm="frozen_bn", width=0.125)
    assert isinstance(frozen.layer1[0].bn2, FrozenBatchNorm2d)
    x = torch.randn(2, 3, 40, 40)
    frozen.train()
    assert torch.equal(frozen(x)["c5"], frozen.eval()(x)["c5"])  # statistics never move
    with pytest.raises(ValueError, match="unknown norm 'gn'"):
        ResNet(18, norm="gn")


def test_backbone_trains_at_odd_sizes():
    net = ResNet(50, stem="deep", width=0.125, output_stride=8, multi_grid=(1, 2, 4)).train()
    feats = net(torch.randn(2, 3, 49, 67))
    sum(f.square().mean() for f in feats.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_frozen_bn_computes_and_counts_like_eval_batchnorm():
    from bench.measure.macs import count_macs
    bn, frozen = ResNet(18, width=0.125).eval(), ResNet(18, width=0.125, norm="frozen_bn")
    state = {k: torch.rand_like(v) + 0.5 if v.is_floating_point() else v for k, v in bn.state_dict().items()}
    bn.load_state_dict(state)
    frozen.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(frozen(x)["c5"], bn(x)["c5"])
    assert count_macs(frozen, x).total == count_macs(bn, x).total


def test_reference_features():
    """Pinned output of a seeded backbone: catches silent changes of architecture, initialisation or padding."""
    torch.manual_seed(0)
    net = ResNet(18, stem="deep", width=0.125, output_stride=16).eval()
    with torch.no_grad():
        feats = net(torch.randn(1, 3, 61, 83, generator=torch.Generator().manual_seed(1)))
    sums = {k: v.sum().item() for k, v in feats.items()}  # post-ReLU: sum == abs-sum
    assert sums == pytest.approx({"c2": 1379.586, "c3": 516.968, "c4": 265.191, "c5": 533.845}, rel=1e-4)
