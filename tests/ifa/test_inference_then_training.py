"""Sampling plans are cached across calls: one first built under torch.inference_mode() must not break training."""
import pytest
import torch

from ifa import IFAHead
from ifa.head import _axis_plan
from tests.models.head_contract import INPUT_SHAPE, make_features


@pytest.mark.parametrize("formulation", ["reference", "fused"])
def test_training_after_inference_mode_at_the_same_size(formulation):
    _axis_plan.cache_clear()
    head = IFAHead(INPUT_SHAPE, 5, channels=16, mlp=(32, 16), formulation=formulation)
    feats = make_features(INPUT_SHAPE, (61, 83), batch=2)  # a size no other test uses, so the cache is cold
    with torch.inference_mode():
        head.eval()(feats)
    out = head.train()(feats)
    out.square().mean().backward()
    assert all(p.grad is not None for n, p in head.named_parameters() if n != "pe.0.freq")
