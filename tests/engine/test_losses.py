"""Cross-entropy with ignore, OHEM (mmseg OHEMPixelSampler selection) and the weighted multi-output loss."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.engine.losses import cross_entropy, ohem_cross_entropy, ohem_mask, segmentation_loss


def _manual_ce(logits: np.ndarray, label: np.ndarray, ignore=255) -> float:
    n, c, h, w = logits.shape
    total, count = 0.0, 0
    for b in range(n):
        for y in range(h):
            for x in range(w):
                t = label[b, y, x]
                if t == ignore:
                    continue
                z = logits[b, :, y, x].astype(np.float64)
                total += math.log(np.exp(z - z.max()).sum()) + z.max() - z[t]
                count += 1
    return total / count


def test_cross_entropy_ignores_255_and_matches_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, generator=g)
    label = torch.randint(0, 4, (2, 3, 5), generator=g)
    label[0, 0, :] = 255
    label[1, 2, 1:4] = 255
    got = float(cross_entropy(logits, label))
    assert got == pytest.approx(_manual_ce(logits.numpy(), label.numpy()), rel=1e-6)
    # changing the logits of ignored pixels changes nothing
    logits2 = logits.clone()
    logits2[0, :, 0, :] += 100.0
    assert float(cross_entropy(logits2, label)) == pytest.approx(got, rel=1e-7)


def test_all_ignored_gives_zero_with_a_gradient():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = cross_entropy(logits, torch.full((1, 2, 2), 255))
    loss.backward()
    assert float(loss.detach()) == 0.0 and logits.grad is not None and float(logits.grad.abs().sum()) == 0.0


def _manual_ohem_mask(logits: np.ndarray, label: np.ndarray, thresh, min_kept, ignore=255) -> np.ndarray:
    """mmseg OHEMPixelSampler.sample, written out with numpy."""
    z = logits.astype(np.float64)
    prob = np.exp(z - z.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    valid = label != ignore
    safe = np.where(valid, label, 0)
    true_p = np.take_along_axis(prob, safe[:, None], 1)[:, 0]
    vals = np.sort(true_p[valid])
    k = min(min_kept * label.shape[0], vals.size - 1)
    threshold = max(vals[k], thresh)
    return valid & (true_p < threshold)


@pytest.mark.parametrize("thresh,min_kept", [(0.7, 3), (0.3, 20), (0.05, 1), (0.99, 1000)])
def test_ohem_keeps_the_same_pixels_as_mmseg(thresh, min_kept):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 6, 7, generator=g) * 2
    label = torch.randint(0, 5, (2, 6, 7), generator=g)
    label[:, :2, :2] = 255
    got = ohem_mask(logits, label, thresh, min_kept).numpy()
    want = _manual_ohem_mask(logits.numpy(), label.numpy(), thresh, min_kept)
    np.testing.assert_array_equal(got, want)
    assert not got[:, :2, :2].any()  # ignored pixels are never kept
    n_valid = int((label != 255).sum())
    assert got.sum() >= min(min_kept * 2, n_valid - 1)  # at least min_kept per image (no ties here)


def test_ohem_min_kept_overrides_the_threshold():
    # A confident model: every true-class probability is ~1 (above thresh), so only min_kept decides.
    label = torch.arange(12).reshape(1, 3, 4) % 3
    logits = F.one_hot(label, 3).permute(0, 3, 1, 2).float() * 10
    logits[0, :, 0, 0] = torch.tensor([0.0, 0.0, 0.0])  # the hardest pixel: p = 1/3
    logits[0, :, 1, 1] = torch.tensor([0.0, 4.0, 0.0])  # label 2 at (1, 1): p small
    kept = ohem_mask(logits, label, thresh=0.1, min_kept=2)
    # the 2 hardest pixels (probabilities strictly below the 3rd smallest) are kept
    assert kept.sum() == 2 and kept[0, 0, 0] and kept[0, 1, 1]


def test_ohem_loss_is_ce_over_the_kept_pixels():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 5, 5, generator=g)
    label = torch.randint(0, 4, (2, 5, 5), generator=g)
    kept = _manual_ohem_mask(logits.numpy(), label.numpy(), 0.5, 4)
    masked = np.where(kept, label.numpy(), 255)
    want = _manual_ce(logits.numpy(), masked)
    assert float(ohem_cross_entropy(logits, label, 0.5, 4)) == pytest.approx(want, rel=1e-6)


def test_segmentation_loss_resizes_each_output_and_weights_it():
    g = torch.Generator().manual_seed(3)
    label = torch.randint(0, 3, (2, 16, 16), generator=g)
    main = torch.randn(2, 3, 4, 4, generator=g)
    aux = torch.randn(2, 3, 2, 2, generator=g)
    total, parts = segmentation_loss({"main": main, "aux": aux}, label, {"main": 1.0, "aux": 0.4},
                                     lambda lo, la: cross_entropy(lo, la), {"main": True})
    up_main = F.interpolate(main, size=(16, 16), mode="bilinear", align_corners=True)
    up_aux = F.interpolate(aux, size=(16, 16), mode="bilinear", align_corners=False)
    want_main = _manual_ce(up_main.numpy(), label.numpy())
    want_aux = _manual_ce(up_aux.numpy(), label.numpy())
    assert float(parts["loss_main"]) == pytest.approx(want_main, rel=1e-5)
    assert float(parts["loss_aux"]) == pytest.approx(want_aux, rel=1e-5)
    assert float(total) == pytest.approx(want_main + 0.4 * want_aux, rel=1e-5)


def test_segmentation_loss_needs_a_weight_for_every_output():
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(KeyError, match="regions"):
        segmentation_loss({"main": torch.randn(1, 2, 4, 4), "regions": torch.randn(1, 2, 4, 4)}, label,
                          {"main": 1.0}, lambda lo, la: cross_entropy(lo, la))


def test_losses_read_nothing_back_from_the_device():
    """A step's loss must not wait for the device (a GPU then queues the next step's work ahead): on meta tensors any
    read-back (bool(), .item(), float(), a data-dependent shape) raises, so these run only if there is none."""
    from bench.engine.losses import cross_entropy, ohem_cross_entropy

    logits = torch.empty(2, 5, 9, 11, device="meta", requires_grad=True)
    label = torch.empty(2, 9, 11, dtype=torch.long, device="meta")
    for loss in (cross_entropy(logits, label), ohem_cross_entropy(logits, label, 0.7, 10)):
        assert loss.shape == () and loss.device.type == "meta"
        loss.backward()
