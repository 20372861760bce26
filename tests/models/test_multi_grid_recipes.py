"""The released IFA recipe keeps layer4 dilations (2, 2, 4) under either multi_grid rule."""
from pathlib import Path

import pytest

from bench.config.experiment_file import load_experiment
from bench.models.build import build_backbone

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


@pytest.mark.parametrize("rule", ["absolute", "relative"])
def test_released_ifa_recipe_has_layer4_dilations_2_2_4(rule):
    cfg = load_experiment(EXPERIMENTS / "cityscapes_r50.yaml", [f"model.backbone.multi_grid_rule={rule}"])
    assert cfg.model.backbone.multi_grid_rule == rule
    backbone = build_backbone(cfg.model.backbone)
    assert [b.conv2.dilation[0] for b in backbone.layer4] == [2, 2, 4]
    assert [b.conv2.stride[0] for b in backbone.layer4] == [2, 1, 1]
