"""The contract every segmentation head meets (segmentation_models_pytorch style).

Subclass `HeadContract` in a `Test*` class and provide:
- `make_head(self, input_shape, num_classes) -> nn.Module` (seeded by the fixture; must not hard-code channels);
- `expected_params` (int): parameters at `INPUT_SHAPE`, `NUM_CLASSES`;
- `expected_macs` (int): MACs (`bench.measure.macs.count_macs`, one multiply-add = 1) in eval mode, batch 1, on the
  features of a `MAC_IMAGE` image;
- `reference` (tuple of floats): (sum, abs-sum) of the eval logits of a freshly seeded head
  (`torch.manual_seed(0)` before `make_head`) on `make_features(INPUT_SHAPE, IMAGE, seed=7)`;
- `output_stride`: the head's output stride at `INPUT_SHAPE` (default 4); the output must have that feature level's
  size, `ceil(H / stride)`, also at the dilated `DILATED_SHAPE` (output stride 8);
- optionally `reference_tol` (relative and absolute, default 1e-3) and `zero_grad_ok` (names of parameters whose
  gradient may be all zero on random features, e.g. a parameter that only acts at a boundary).
Heads that accept `size` (`supports_query_size = True`, IFA) are checked to answer at that size; the others must
ignore it. Every check runs on random features shaped as a ResNet gives them for odd-sized images.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.measure.macs import count_macs
from ifa.shape_spec import ShapeSpec

INPUT_SHAPE = {"c2": ShapeSpec(16, 4), "c3": ShapeSpec(24, 8), "c4": ShapeSpec(32, 16), "c5": ShapeSpec(40, 32)}
DILATED_SHAPE = {"c2": ShapeSpec(16, 4), "c3": ShapeSpec(24, 8), "c4": ShapeSpec(32, 8), "c5": ShapeSpec(40, 8)}
# Other channel counts (odd ones included): a head that hard-codes a channel number fails here.
OTHER_CHANNELS = {"c2": ShapeSpec(8, 4), "c3": ShapeSpec(13, 8), "c4": ShapeSpec(21, 16), "c5": ShapeSpec(35, 32)}
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


def head_macs(head: nn.Module, input_shape, image) -> int:
    feats = make_features(input_shape, image)
    return count_macs(_FromTensors(head, feats), tuple(feats.values())).total


class HeadContract:
    output_stride = 4
    reference_tol = 1e-3
    zero_grad_ok: tuple[str, ...] = ()
    expected_params: int
    expected_macs: int
    reference: tuple[float, float]

    def make_head(self, input_shape, num_classes) -> nn.Module:
        raise NotImplementedError

    @pytest.fixture
    def head(self):
        torch.manual_seed(0)
        return self.make_head(INPUT_SHAPE, NUM_CLASSES)

    def _level(self) -> str:
        """The feature level whose grid the output has (the one with the head's output stride)."""
        levels = [n for n, s in INPUT_SHAPE.items() if s.stride == self.output_stride]
        assert levels, f"output_stride {self.output_stride} is not a stride of INPUT_SHAPE"
        return levels[0]

    def _expected_size(self, image, input_shape=INPUT_SHAPE):
        stride = input_shape[self._level()].stride
        return tuple(math.ceil(s / stride) for s in image)

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
                if name not in self.zero_grad_ok:
                    assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient (a dead branch?)"

    def test_eval_returns_a_tensor_at_the_output_stride(self, head):
        head.eval()
        with torch.no_grad():
            out = head(make_features(INPUT_SHAPE, IMAGE))
        assert isinstance(out, torch.Tensor)
        assert out.shape == (1, NUM_CLASSES, *self._expected_size(IMAGE))
        assert torch.isfinite(out).all()

    def test_eval_is_deterministic_and_per_sample(self, head):
        """Eval output of a batch = outputs of its samples one by one (no mixing across the batch)."""
        head.eval()
        feats = make_features(INPUT_SHAPE, IMAGE, batch=2, seed=5)
        with torch.no_grad():
            both = head(feats)
            again = head(feats)
            first = head({k: v[:1] for k, v in feats.items()})
            second = head({k: v[1:] for k, v in feats.items()})
        assert torch.equal(both, again)
        torch.testing.assert_close(both, torch.cat([first, second]), rtol=1e-4, atol=1e-5)

    def test_size_argument(self, head):
        head.eval()
        feats = make_features(INPUT_SHAPE, IMAGE)
        with torch.no_grad():
            plain = head(feats)
            sized = head(feats, size=(41, 23))
        if head.supports_query_size:
            assert sized.shape == (1, NUM_CLASSES, 41, 23)
        else:
            assert torch.equal(plain, sized), "a fixed-stride head must ignore `size`"

    def test_declares_its_contract_attributes(self, head):
        assert head.output_stride == self.output_stride
        assert isinstance(head.supports_query_size, bool)
        assert isinstance(head.extra_loss_weights, dict)
        assert all(isinstance(w, float) for w in head.extra_loss_weights.values())

    def test_dilated_backbone_features(self):
        """Output stride 8 backbones give c3..c5 at stride 8; the head adapts from the shape specs alone."""
        torch.manual_seed(0)
        head = self.make_head(DILATED_SHAPE, NUM_CLASSES).eval()
        assert head.output_stride == DILATED_SHAPE[self._level()].stride
        with torch.no_grad():
            out = head(make_features(DILATED_SHAPE, IMAGE))
        assert out.shape == (1, NUM_CLASSES, *self._expected_size(IMAGE, DILATED_SHAPE))

    def test_channels_come_from_the_input_shape(self):
        torch.manual_seed(0)
        head = self.make_head(OTHER_CHANNELS, 3).train()
        out = logits_of(head(make_features(OTHER_CHANNELS, (64, 96), batch=2)))
        assert out.shape == (2, 3, *self._expected_size((64, 96), OTHER_CHANNELS))

    def test_unknown_feature_names_are_rejected(self):
        with pytest.raises(ValueError):
            self.make_head({"p2": ShapeSpec(16, 4)}, NUM_CLASSES)

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
        assert head_macs(head, INPUT_SHAPE, MAC_IMAGE) == self.expected_macs
