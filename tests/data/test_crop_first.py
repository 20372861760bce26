"""data.crop_first: resizing only the crop's window gives the whole-image pipeline's draws and labels exactly, and
its image within 1 grey level; the same seed gives the same samples."""
from __future__ import annotations

import numpy as np
import pytest

from bench.data.transforms import random_crop, random_rescale, random_rescale_crop


def _scene(rng, h, w):
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    label = rng.integers(0, 6, (h, w), dtype=np.uint8)
    label[: h // 3] = 255  # an ignored band, so cat_max_ratio retries happen
    return image, label


@pytest.mark.parametrize("shape,scale_range,base,crop,cat", [
    ((64, 128), (0.5, 2.0), (64, 128), (48, 48), 1.0),
    ((61, 97), (0.5, 2.0), None, (40, 50), 0.75),
    ((100, 40), (0.7, 1.3), None, (120, 30), 0.5),  # crop larger than the image on one axis
    ((32, 32), (1.0, 1.0), None, (16, 16), 1.0),  # no resize at all
])
def test_crop_first_matches_the_whole_image_pipeline(shape, scale_range, base, crop, cat):
    worst = 0
    for seed in range(25):
        image, label = _scene(np.random.default_rng(1000 + seed), *shape)
        a = np.random.default_rng(seed)
        ref_img, ref_lab = random_rescale(image, label, a, scale_range, base)
        ref_img, ref_lab = random_crop(ref_img, ref_lab, a, crop, cat)
        b = np.random.default_rng(seed)
        img, lab = random_rescale_crop(image, label, b, scale_range, base, crop, cat)
        assert a.random() == b.random()  # the same number of draws: later augmentations stay aligned
        np.testing.assert_array_equal(lab, ref_lab)
        assert img.shape == ref_img.shape and img.dtype == np.uint8
        worst = max(worst, int(np.abs(img.astype(int) - ref_img.astype(int)).max()))
    assert worst <= 1


def test_crop_first_is_a_function_of_the_seed(tmp_path):
    from bench.data.transforms import TrainTransform
    from tests.engine.train_helpers import tiny_config

    cfg = tiny_config(tmp_path, data={"crop_first": True, "cat_max_ratio": 0.75}).data
    image, label = _scene(np.random.default_rng(0), 32, 64)
    t = TrainTransform(cfg)
    x1, y1 = t(image, label, np.random.default_rng([0, 5, 1]))
    x2, y2 = t(image, label, np.random.default_rng([0, 5, 1]))
    x3, _ = t(image, label, np.random.default_rng([0, 6, 1]))
    assert (x1 == x2).all() and (y1 == y2).all() and not (x1 == x3).all()
    assert tiny_config(tmp_path, data={"crop_first": False}).config_hash() == tiny_config(tmp_path).config_hash()
    assert tiny_config(tmp_path, data={"crop_first": True}).config_hash() != tiny_config(tmp_path).config_hash()
