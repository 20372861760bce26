"""Training under autocast (the engine's `train.amp` on CUDA): the fused head's custom BN-ReLU-Linear backward must
accept low-precision gradients (a GPU run of `make gpu-check` found it raising a dtype mismatch). CPU autocast with
bf16 exercises the same code path here."""
import pytest
import torch

from ifa import IFAHead, ShapeSpec
from ifa.mlp import bn_relu_linear

SHAPES = {"c2": ShapeSpec(16, 4), "c3": ShapeSpec(24, 8), "c4": ShapeSpec(32, 16), "c5": ShapeSpec(40, 32)}


def _features(n=2, image=(64, 96), seed=1):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(n, s.channels, -(-image[0] // s.stride), -(-image[1] // s.stride), generator=g)
            for k, s in SHAPES.items()}


def _grads(formulation: str, autocast: bool) -> dict:
    torch.manual_seed(0)
    head = IFAHead(SHAPES, 5, channels=8, mlp=(32, 16, 16), formulation=formulation).train()
    feats = _features()
    target = torch.randint(0, 5, (2, 16, 24), generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = head(feats)
        loss = torch.nn.functional.cross_entropy(logits.float(), target)
    loss.backward()
    return {n: p.grad for n, p in head.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
def test_bn_relu_linear_backward_under_autocast(x_dtype):
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(16)
    w = torch.randn(8, 16, requires_grad=True)
    x = torch.randn(64, 16).to(x_dtype).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = bn_relu_linear(x, bn, w)
    y.float().square().sum().backward()
    assert x.grad.dtype == x_dtype and w.grad.dtype == torch.float32
    assert torch.isfinite(x.grad).all() and torch.isfinite(w.grad).all()


def _cos(a, b) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def test_fused_head_trains_under_bf16_autocast_like_reference():
    fused, ref = _grads("fused", True), _grads("reference", True)
    exact = _grads("fused", False)
    assert fused.keys() == ref.keys() == exact.keys()
    checked = 0
    for name, g in fused.items():
        assert torch.isfinite(g).all(), name
        if exact[name].norm() < 1e-5:
            continue  # biases right before a BatchNorm (gradient 0 up to rounding) and the PE level without cells
        checked += 1
        # bf16 keeps 8 mantissa bits: directions agree closely, as the reference's own bf16 gradients do
        assert _cos(g, exact[name]) > 0.97, name
        assert _cos(g, ref[name]) > 0.97, name
    assert checked >= 20
