"""Train/eval transforms: determinism from the rng, crop/pad with ignore, nearest labels, cat_max_ratio, flip."""
import colorsys

import numpy as np
import pytest
import torch

from bench.config.experiment import DataConfig
from bench.data.transforms import (EvalTransform, TrainTransform, hsv_to_rgb, photometric_distortion,
                                   random_crop, rescale_factor, rgb_to_hsv)

MEAN, STD = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])


def _cfg(**kw):
    base = dict(dataset="synthetic", root="unused", crop_size=(48, 80), scale_range=(0.5, 2.0))
    base.update(kw)
    return DataConfig(**base)


def _pair(h=64, w=96, seed=0, values=(3, 7, 11, 255)):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    tiles = rng.choice(np.asarray(values, np.uint8), size=(h // 8, w // 8))
    return image, np.kron(tiles, np.ones((8, 8), np.uint8))


def _normalise(image):
    return torch.from_numpy(((image - MEAN) / STD).astype(np.float32).transpose(2, 0, 1))


def test_output_types_and_determinism_from_the_rng():
    image, label = _pair()
    tf = TrainTransform(_cfg())
    x1, y1 = tf(image, label, np.random.default_rng(123))
    x2, y2 = tf(image, label, np.random.default_rng(123))
    assert x1.dtype == torch.float32 and x1.shape == (3, 48, 80)
    assert y1.dtype == torch.int64 and y1.shape == (48, 80)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    outs = {tf(image, label, np.random.default_rng(s))[0].sum().item() for s in range(8)}
    assert len(outs) == 8  # different rng states, different samples


def test_labels_use_nearest_values_only():
    image, label = _pair(values=(3, 7, 11))
    tf = TrainTransform(_cfg(scale_range=(0.37, 2.9)))
    for seed in range(20):
        _, y = tf(image, label, np.random.default_rng(seed))
        assert set(torch.unique(y).tolist()) <= {3, 7, 11, 255}


def test_small_image_is_padded_with_zero_and_ignore():
    image, label = _pair(h=32, w=40, values=(1, 2))
    tf = TrainTransform(_cfg(scale_range=(1.0, 1.0), flip=False, photometric=False, crop_size=(48, 80)))
    x, y = tf(image, label, np.random.default_rng(0))
    assert torch.allclose(x[:, :32, :40], _normalise(image), atol=1e-5)
    assert (x[:, 32:] == 0).all() and (x[:, :, 40:] == 0).all()
    assert (y[32:] == 255).all() and (y[:, 40:] == 255).all()
    assert torch.equal(y[:32, :40], torch.from_numpy(label.astype(np.int64)))


def test_rescale_ratio_and_base_size():
    image, label = _pair(h=32, w=48, values=(1, 2))
    tf = TrainTransform(_cfg(scale_range=(0.5, 0.5), flip=False, photometric=False, crop_size=(64, 96)))
    _, y = tf(image, label, np.random.default_rng(0))
    assert (y[:16, :24] != 255).all() and (y[16:] == 255).all() and (y[:, 24:] == 255).all()
    # base_size: fit into base*ratio keeping the aspect ratio (mmseg keep_ratio): 32x48 into 64x128 -> x2
    assert rescale_factor((32, 48), 1.0, (64, 128)) == pytest.approx(2.0)
    assert rescale_factor((1024, 2048), 0.5, (1024, 2048)) == pytest.approx(0.5)
    tf = TrainTransform(_cfg(scale_range=(1.0, 1.0), base_size=(64, 128), flip=False, photometric=False,
                             crop_size=(80, 128)))
    _, y = tf(image, label, np.random.default_rng(0))
    assert (y[:64, :96] != 255).all() and (y[64:] == 255).all() and (y[:, 96:] == 255).all()


def test_flip_flips_image_and_label_together():
    image, label = _pair(h=48, w=80, values=(1, 2, 3, 4, 5))
    tf = TrainTransform(_cfg(scale_range=(1.0, 1.0), photometric=False, crop_size=(48, 80)))
    plain, flipped = _normalise(image), _normalise(image[:, ::-1].copy())
    lab = torch.from_numpy(label.astype(np.int64))
    outcomes = set()
    for seed in range(16):
        x, y = tf(image, label, np.random.default_rng(seed))
        if torch.allclose(x, plain, atol=1e-5):
            assert torch.equal(y, lab)
            outcomes.add("plain")
        else:
            assert torch.allclose(x, flipped, atol=1e-5) and torch.equal(y, lab.flip(-1))
            outcomes.add("flipped")
    assert outcomes == {"plain", "flipped"}


def _stripes(h=64, w=48):
    """Top half ignore; bottom half class 0 on the left, class 1 on the right. A 32-wide crop has a class
    above 75% of the labelled pixels at 2 of its 17 offsets (the edges)."""
    label = np.full((h, w), 255, np.uint8)
    label[h // 2:, : w // 2] = 0
    label[h // 2:, w // 2:] = 1
    return np.zeros((h, w, 3), np.uint8), label


def _max_share(crop):
    counts = np.bincount(crop[crop != 255].ravel())
    counts = counts[counts > 0]
    return counts.max() / counts.sum()


def test_cat_max_ratio_is_respected_and_ignore_is_not_counted():
    image, label = _stripes()
    shares = [_max_share(random_crop(image, label, np.random.default_rng(s), (64, 32), 0.75)[1]) for s in range(60)]
    assert max(shares) < 0.75
    unconstrained = [_max_share(random_crop(image, label, np.random.default_rng(s), (64, 32), 1.0)[1])
                     for s in range(60)]
    assert sum(s >= 0.75 for s in unconstrained) >= 3  # the rule, not luck, keeps the shares down
    # at those edge offsets a class holds 100% / 75% of the labelled pixels but only 50% / 37.5% of the crop
    # once ignore is counted, so counting ignore would accept them


def test_cat_max_ratio_gives_up_after_ten_tries():
    image, label = np.zeros((40, 40, 3), np.uint8), np.full((40, 40), 4, np.uint8)  # one class: never satisfiable
    rng = np.random.default_rng(0)
    img, lab = random_crop(image, label, rng, (16, 16), 0.5)
    assert img.shape == (16, 16, 3) and lab.shape == (16, 16)
    reference = np.random.default_rng(0)
    reference.integers(0, 25, size=2 * 10)  # exactly 10 offsets (2 draws each) were drawn
    assert rng.integers(1 << 30) == reference.integers(1 << 30)


def test_cat_max_ratio_through_the_train_transform():
    image, label = _stripes()
    tf = TrainTransform(_cfg(scale_range=(1.0, 1.0), crop_size=(64, 32), cat_max_ratio=0.75, photometric=False))
    for seed in range(30):
        _, y = tf(image, label, np.random.default_rng(seed))
        assert _max_share(y.numpy().astype(np.uint8)) < 0.75


def test_hsv_conversion_matches_colorsys():
    rgb = np.random.default_rng(0).uniform(0, 255, (500, 3)).astype(np.float64)
    rgb[:5] = [[0, 0, 0], [255, 255, 255], [10, 10, 10], [255, 0, 0], [0, 0, 255]]
    hsv = rgb_to_hsv(rgb)
    ref = np.array([colorsys.rgb_to_hsv(*(c / 255)) for c in rgb])
    assert np.allclose(hsv[:, 0] / 360, ref[:, 0], atol=1e-9)
    assert np.allclose(hsv[:, 1], ref[:, 1]) and np.allclose(hsv[:, 2] / 255, ref[:, 2])
    assert np.allclose(hsv_to_rgb(hsv), rgb, atol=1e-6)


def test_photometric_distortion_changes_colours_within_bounds_not_geometry():
    image, _ = _pair()
    changed = 0
    for seed in range(10):
        out = photometric_distortion(image, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.array_equal(out, photometric_distortion(image, np.random.default_rng(seed)))
        changed += not np.array_equal(out, image)
    assert changed >= 8  # all four steps skipped has probability 1/16
    grey = np.full((8, 8, 3), 100, np.uint8)  # no saturation: hue/saturation leave grey alone
    outs = [photometric_distortion(grey, np.random.default_rng(s)) for s in range(30)]
    assert all((o == o[..., :1]).all() for o in outs)
    assert min(o.min() for o in outs) >= 100 * 0.5 - 32 - 1 and max(o.max() for o in outs) <= 100 * 1.5 + 32 + 1


def test_eval_transform_normalises_only():
    image, label = _pair(h=37, w=53)
    x, y = EvalTransform(_cfg())(image, label)
    assert x.shape == (3, 37, 53) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x, _normalise(image), atol=1e-5)
    assert torch.equal(y, torch.from_numpy(label.astype(np.int64)))
