"""The contract every segmentation head meets (segmentation_models_pytorch style).

Subclass `HeadContract` in a `Test*` class and provide:
- `make_head(self, input_shape, num_classes) -> nn.Module`;
- `expected_params` (int): parameters at `INPUT_SHAPE`, `NUM_CLASSES`;
- `expected_macs` (int): MACs (bench.measure.count_macs) in eval mode at `MAC_IMAGE` (batch 1);
- `reference` (tuple of floats): (sum, abs-sum) of the eval logits for the fixed-seed features at `IMAGE`;
- optionally `output_stride` (default 4) and `reference_tol`.
Every check runs on random features shaped as a ResNet would produce them for an odd-sized image.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.measure import count_macs
from ifa.shape_spec import ShapeSpec

INPUT_SHAPE = {"c2": ShapeSpec(16, 4), "c3": ShapeSpec(24, 8), "c4": ShapeSpec(32, 16), "c5": ShapeSpec(40, 32)}
NUM_CLASSES = 5
IMAGE = (97, 131)  # odd on purpose
MAC_IMAGE = (128, 256)


def make_features(input_shape, image, batch=1, seed=0) -> dict[str, torch.Tensor]:
    """Random features with the sizes a ResNet gives an image of size `image` (ceil division per stride)."""
    gen = torch.Generator().manual_seed(seed)
    h, w = image
    return {name: torch.randn(batch, spec.channels, math.ceil(h / spec.stride), math.ceil(w / spec.stride),
                              generator=gen) for name, spec in input_shape.items()}


class _FromTensors(nn.Module):
    """fvcore traces positional tensors; heads take a dict."""

    def __init__(self, head, names):
        super().__init__()
        self.head, self.names = head, list(names)

    def forward(self, *tensors):
        return self.head(dict(zip(self.names, tensors)))


def logits_of(out):
    return out["main"] if isinstance(out, dict) else out


class HeadContract:
    output_stride = 4
    reference_tol = 1e-3
    expected_params: int
    expected_macs: int
    reference: tuple[float, float]

    def make_head(self, input_shape, num_classes) -> nn.Module:
        raise NotImplementedError

    @pytest.fixture
    def head(self):
        torch.manual_seed(0)
        return self.make_head(INPUT_SHAPE, NUM_CLASSES)

    def _expected_size(self, image):
        return tuple(math.ceil(s / self.output_stride) for s in image)

    @pytest.mark.parametrize("image", [IMAGE, (64, 64), (33, 250)])
    def test_train_forward_backward_at_odd_sizes(self, head, image):
        head.train()
        out = head(make_features(INPUT_SHAPE, image, batch=2))
        logits = logits_of(out)
        assert logits.shape == (2, NUM_CLASSES, *self._expected_size(image))
        loss = sum(v.float().square().mean() for v in (out.values() if isinstance(out, dict) else [out]))
        loss.backward()
        for name, p in head.named_parameters():
            if p.requires_grad:
                assert p.grad is not None, f"{name} got no gradient"
                assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert any(p.grad.abs().sum() > 0 for p in head.parameters() if p.grad is not None)

    def test_eval_returns_a_tensor_at_the_output_stride(self, head):
        head.eval()
        with torch.no_grad():
            out = head(make_features(INPUT_SHAPE, IMAGE))
        assert isinstance(out, torch.Tensor)
        assert out.shape == (1, NUM_CLASSES, *self._expected_size(IMAGE))
        assert torch.isfinite(out).all()

    def test_declares_its_contract_attributes(self, head):
        assert head.output_stride == self.output_stride
        assert isinstance(head.supports_query_size, bool)
        assert isinstance(head.extra_loss_weights, dict)

    def test_save_and_reload_give_identical_outputs(self, head, tmp_path):
        head.train()
        head(make_features(INPUT_SHAPE, IMAGE, batch=2, seed=3))  # move BN running statistics off their init
        head.eval()
        torch.save(head.state_dict(), tmp_path / "head.pt")
        torch.manual_seed(123)
        fresh = self.make_head(INPUT_SHAPE, NUM_CLASSES).eval()
        fresh.load_state_dict(torch.load(tmp_path / "head.pt", weights_only=True))
        feats = make_features(INPUT_SHAPE, IMAGE, seed=1)
        with torch.no_grad():
            assert torch.equal(head(feats), fresh(feats))

    def test_reference_output(self, head):
        head.eval()
        with torch.no_grad():
            out = head(make_features(INPUT_SHAPE, IMAGE, seed=7))
        got = (out.sum().item(), out.abs().sum().item())
        assert got == pytest.approx(self.reference, rel=self.reference_tol, abs=self.reference_tol), got

    def test_parameter_count_is_pinned(self, head):
        assert sum(p.numel() for p in head.parameters()) == self.expected_params

    def test_mac_count_is_pinned(self, head):
        head.eval()
        feats = make_features(INPUT_SHAPE, MAC_IMAGE)
        macs = count_macs(_FromTensors(head, feats), tuple(feats.values()))
        assert macs.total == self.expected_macs
