"""Poly schedule with linear warm-up (mmseg values) and the backbone/head parameter groups."""
import pytest
import torch

from bench.config import ModelConfig
from bench.config.experiment import TrainConfig
from bench.engine.optim import PolyWarmupSchedule, build_optimizer, param_groups, poly_lr, warmup_factor
from bench.models import build_segmentor


def test_poly_values():
    assert poly_lr(0.01, 0, 100, 0.9) == pytest.approx(0.01)
    assert poly_lr(0.01, 50, 100, 0.9) == pytest.approx(0.01 * 0.5 ** 0.9)
    assert poly_lr(0.01, 100, 100, 0.9) == pytest.approx(0.0)
    # min_lr is the floor: (base - min) * (1 - t/T)^p + min
    assert poly_lr(0.01, 25, 100, 0.9, 1e-4) == pytest.approx((0.01 - 1e-4) * 0.75 ** 0.9 + 1e-4)
    assert poly_lr(0.01, 100, 100, 0.9, 1e-4) == pytest.approx(1e-4)
    assert poly_lr(0.01, 150, 100, 1.0) == pytest.approx(0.0)  # clamped past the end


def test_linear_warmup_values():
    assert warmup_factor(0, 10, 0.1) == pytest.approx(0.1)
    assert warmup_factor(5, 10, 0.1) == pytest.approx(1 - 0.5 * 0.9)
    assert warmup_factor(10, 10, 0.1) == 1.0
    assert warmup_factor(3, 0, 0.1) == 1.0


def test_schedule_sets_each_group_from_its_own_base_lr():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.01}, {"params": [b], "lr": 0.1}], lr=0.01)
    sched = PolyWarmupSchedule(opt, max_iters=100, power=0.9, min_lr=1e-4, warmup_iters=10, warmup_ratio=0.1)
    lrs = sched.step(5)
    f = 1 - 0.5 * 0.9
    assert lrs[0] == pytest.approx(((0.01 - 1e-4) * 0.95 ** 0.9 + 1e-4) * f)
    assert lrs[1] == pytest.approx(((0.1 - 1e-4) * 0.95 ** 0.9 + 1e-4) * f)
    assert [g["lr"] for g in opt.param_groups] == lrs
    assert sched.step(40) == pytest.approx([(0.01 - 1e-4) * 0.6 ** 0.9 + 1e-4, (0.1 - 1e-4) * 0.6 ** 0.9 + 1e-4])


def test_head_and_aux_params_get_the_multiplied_lr():
    seg = build_segmentor(ModelConfig(num_classes=5, backbone={"name": "resnet18", "width": 0.125},
                                      head={"name": "ocr", "channels": 16, "key_channels": 8, "region_channels": 8},
                                      aux_head={"channels": 8}))
    cfg = TrainConfig(lr=0.01, head_lr_mult=10, momentum=0.9, weight_decay=5e-4)
    opt = build_optimizer(seg, cfg)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["backbone"]["lr"] == pytest.approx(0.01) and groups["heads"]["lr"] == pytest.approx(0.1)
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    assert ids["backbone"] == {id(p) for p in seg.backbone.parameters()}
    assert ids["heads"] == {id(p) for p in seg.head.parameters()} | {id(p) for p in seg.aux_head.parameters()}
    assert len(ids["backbone"]) + len(ids["heads"]) == len(list(seg.parameters()))
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 for g in opt.param_groups)
    assert len(param_groups(seg, 0.02, 1.0)) == 2
