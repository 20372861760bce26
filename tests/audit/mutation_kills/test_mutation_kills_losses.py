"""bench/engine/losses.py: what `make mutation MUTATE=losses` found unasserted."""
import pytest
import torch
import torch.nn.functional as F

from bench.engine.losses import cross_entropy, ohem_cross_entropy, resize_to, segmentation_loss


def test_ohem_defaults_are_thresh_07_and_min_kept_100000():
    # One image of 317x317 = 100489 pixels, every true-class probability distinct and above 0.7: OHEM keeps exactly
    # the min_kept least confident ones, so min_kept 100000 vs 100001 (or a threshold above 1) changes the loss.
    n = 317 * 317
    margin = torch.linspace(1.0, 6.0, n).reshape(1, 317, 317)  # p(true) = sigmoid(margin) in (0.73, 0.998)
    logits = torch.stack([margin, torch.zeros_like(margin)], dim=1)
    label = torch.zeros(1, 317, 317, dtype=torch.long)
    default = float(ohem_cross_entropy(logits, label))
    assert default == float(ohem_cross_entropy(logits, label, 0.7, 100_000, 255))
    assert default != float(ohem_cross_entropy(logits, label, 0.7, 100_001, 255))
    assert default != float(ohem_cross_entropy(logits, label, 1.0, 100_000, 255))


def test_resize_to_default_is_align_corners_false():
    x = torch.randn(1, 2, 3, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(resize_to(x, (7, 9)), F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False))
    assert torch.equal(resize_to(x, (7, 9), True), F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True))


def test_segmentation_loss_messages():
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4)
    with pytest.raises(KeyError, match=r"no loss weight for output\(s\) \['aux'\]; segmentor.loss_weights has \['main'\]"):
        segmentation_loss({"main": logits, "aux": logits}, label, {"main": 1.0}, cross_entropy)
    with pytest.raises(ValueError, match=r"^every output has loss weight 0: nothing to train$"):
        segmentation_loss({"main": logits}, label, {"main": 0.0}, cross_entropy)
