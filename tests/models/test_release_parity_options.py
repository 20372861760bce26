"""Training-parity options of the IFA release: zero_init_residual, the aux loss's align_corners, and the released
recipe (experiments/cityscapes_r50.yaml) setting them together with sampling='release'."""
from pathlib import Path

import torch

from bench.config.experiment_file import load_experiment
from bench.config.model import ModelConfig
from bench.engine.losses import segmentation_loss
from bench.engine.trainer import _output_align_corners
from bench.models import build_segmentor
from bench.models.resnet import BasicBlock, Bottleneck


def test_zero_init_residual_zeroes_each_residual_branchs_last_bn():
    for depth in ("resnet18", "resnet50"):
        cfg = dict(name=depth, stem="deep", width=0.25)
        on = build_segmentor(ModelConfig(num_classes=3, backbone={**cfg, "zero_init_residual": True})).backbone
        off = build_segmentor(ModelConfig(num_classes=3, backbone=cfg)).backbone
        blocks = [m for m in on.modules() if isinstance(m, (BasicBlock, Bottleneck))]
        assert blocks
        for m in blocks:
            last = m.bn3 if isinstance(m, Bottleneck) else m.bn2
            assert torch.count_nonzero(last.weight) == 0
            assert torch.count_nonzero(m.bn1.weight) == m.bn1.weight.numel()
        assert all(torch.count_nonzero(m.weight) == m.weight.numel() for m in off.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))


def test_aux_align_corners_reaches_the_loss():
    base = dict(num_classes=3, backbone=dict(name="resnet18", stem="deep", width=0.25),
                head=dict(name="ifa", channels=8, mlp=(16,)))
    assert _output_align_corners(build_segmentor(ModelConfig(**base, aux_head=dict(channels=8)))) == \
        {"main": True, "aux": False}
    seg = build_segmentor(ModelConfig(**base, aux_head=dict(channels=8, align_corners=True)))
    align = _output_align_corners(seg)
    assert align == {"main": True, "aux": True}
    g = torch.Generator().manual_seed(0)
    outputs = {"main": torch.randn(1, 3, 8, 8, generator=g), "aux": torch.randn(1, 3, 4, 4, generator=g)}
    label = torch.randint(0, 3, (1, 16, 16), generator=g)
    loss = torch.nn.functional.cross_entropy
    _, true_parts = segmentation_loss(outputs, label, {"main": 1.0, "aux": 0.4}, loss, align)
    _, false_parts = segmentation_loss(outputs, label, {"main": 1.0, "aux": 0.4}, loss, {"main": True, "aux": False})
    assert true_parts["loss_main"] == false_parts["loss_main"]
    assert true_parts["loss_aux"] != false_parts["loss_aux"]


def test_released_recipe_matches_the_release():
    cfg = load_experiment(Path("experiments/cityscapes_r50.yaml"), [])
    assert cfg.model.head.sampling == "release"
    assert cfg.model.backbone.zero_init_residual is True
    assert cfg.model.aux_head.align_corners is True and cfg.model.head.align_corners is True
