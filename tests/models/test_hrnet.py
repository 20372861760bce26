"""HRNetV2 backbones: mmseg's parameter counts, branch outputs as c2..c5, strict weight loading, heads on HRNet."""
import pytest
import torch
from torch import nn

from bench.config.model import ModelConfig
from bench.errors import UserError
from bench.models.build import build_segmentor
from bench.models.hrnet import HRNet
from bench.models.pretrained import load_pretrained

LEVELS = ["c2", "c3", "c4", "c5"]
OCR_HR = {"name": "ocr", "in_features": LEVELS, "in_feature_region": LEVELS, "region_kernel": 1,
          "region_channels": 270, "region_dropout": 0, "dropout": 0}


def _params(module):
    return sum(p.numel() for p in module.parameters())


def test_w18_backbone_has_mmseg_parameter_count():
    assert _params(HRNet("hrnetv2_w18")) == 9_562_260  # mmseg HRNet(extra=hr18) backbone


def test_branches_are_c2_to_c5_with_their_strides_at_odd_sizes():
    net = HRNet("hrnetv2_w18_small").eval()
    spec = net.output_shape()
    assert [(spec[k].channels, spec[k].stride) for k in LEVELS] == [(18, 4), (36, 8), (72, 16), (144, 32)]
    with torch.no_grad():
        out = net(torch.randn(1, 3, 67, 93))
    assert [tuple(out[k].shape[1:]) for k in LEVELS] == [(18, 17, 24), (36, 9, 12), (72, 5, 6), (144, 3, 3)]
    assert HRNet("hrnetv2_w48").output_shape()["c5"].channels == 384


def test_unknown_variant_is_a_value_error():
    with pytest.raises(ValueError, match="unknown HRNet variant"):
        HRNet("hrnetv2_w32")


def _mmseg_segmentor_file(tmp_path, net):
    """A whole mmseg segmentor checkpoint: backbone.* keys plus a decode head the backbone loader ignores."""
    state = {f"backbone.{k}": torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    state["decode_head.conv_seg.weight"] = torch.zeros(19, 270, 1, 1)
    path = tmp_path / "mmseg.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    return path, state


def test_strict_load_of_mmseg_layout(tmp_path):
    path, state = _mmseg_segmentor_file(tmp_path, HRNet("hrnetv2_w18_small"))
    net = HRNet("hrnetv2_w18_small")
    report = load_pretrained(net, path, strict=True)
    assert report.ok and report.ignored == ["decode_head.conv_seg.weight"]
    fused = net.stage4[1].fuse_layers[3][0][2][0].weight
    assert torch.equal(fused, state["backbone.stage4.1.fuse_layers.3.0.2.0.weight"])


def test_strict_load_of_official_imagenet_layout_drops_the_classification_head(tmp_path):
    net = HRNet("hrnetv2_w18_small")
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    extra = {"incre_modules.0.0.conv1.weight": torch.zeros(32, 18, 1, 1),
             "downsamp_modules.0.0.weight": torch.zeros(256, 128, 3, 3),
             "final_layer.0.weight": torch.zeros(2048, 1024, 1, 1), "classifier.weight": torch.zeros(1000, 2048),
             "classifier.bias": torch.zeros(1000)}
    torch.save({**state, **extra}, tmp_path / "hrnet_w18_small_imagenet.pth")
    report = load_pretrained(net, tmp_path / "hrnet_w18_small_imagenet.pth", strict=True)
    assert report.ok and sorted(report.ignored) == sorted(extra)
    assert torch.equal(net.transition3[3][0][0].weight, state["transition3.3.0.0.weight"])


def test_strict_load_names_a_missing_key(tmp_path):
    state = HRNet("hrnetv2_w18_small").state_dict()
    del state["stage3.2.branches.1.0.conv2.weight"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(UserError, match=r"missing key\(s\): stage3\.2\.branches\.1\.0\.conv2\.weight"):
        load_pretrained(HRNet("hrnetv2_w18_small"), tmp_path / "cut.pth", strict=True)


def test_ocr_on_hrnet_is_mmseg_s_hr18_ocrnet():
    model = build_segmentor(ModelConfig(num_classes=19, backbone={"name": "hrnetv2_w18"}, head=OCR_HR,
                                        aux_head={"enabled": False}))
    region = model.head.region_head
    assert _params(region) == 78_589  # mmseg ocrnet_hr18: 1x1 conv 270->270 + BN + classifier
    assert region.conv[0].kernel_size == (1, 1) and region.conv[0].in_channels == 270
    assert not any(isinstance(m, nn.Dropout2d) for m in model.head.modules())
    assert model.head.bottleneck[0].in_channels == 270


@pytest.mark.parametrize("head", [{"name": "ifa"}, {"name": "fpn"}, {"name": "ppm"}, OCR_HR,
                                  {"name": "fcn", "in_feature": LEVELS, "kernel_size": 1, "channels": 270,
                                   "dropout": 0}])
def test_every_head_runs_on_hrnet(head):
    model = build_segmentor(ModelConfig(num_classes=5, backbone={"name": "hrnetv2_w18_small"}, head=head)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 5, 64, 96)
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    assert out["main"].shape[1] == 5 and "aux" in out
