"""The training transforms give bit-identical outputs to the frozen reference (tests/data/reference_transforms.py,
the code before the faster photometric distortion, normalisation and resizes) for the same inputs and rng state:
the same uint8 image, label and normalised tensors, and the same number of draws, so seeds, resumes and published
numbers stay valid. Every branch of the photometric distortion is covered (found by replaying its draws), on
colours that hit its edge cases: greys, black, white, ties between channels and hues next to the wrap-around at
0/360."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bench.config.experiment import DataConfig
from bench.data import transforms as fast
from tests.data import reference_transforms as ref

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _branches(seed: int) -> tuple:
    """(brightness, contrast first, contrast, saturation, hue): which steps photometric_distortion applies for this
    seed and whether contrast comes before the colour steps, by replaying the reference's draws."""
    rng = np.random.default_rng(seed)
    brightness = bool(rng.integers(2)) and rng.uniform(-32, 32) is not None
    first = bool(rng.integers(2))
    before = first and bool(rng.integers(2)) and rng.uniform(0.5, 1.5) is not None
    saturation = bool(rng.integers(2)) and rng.uniform(0.5, 1.5) is not None
    hue = bool(rng.integers(2)) and rng.integers(-18, 19) is not None
    after = not first and bool(rng.integers(2))
    return brightness, first, before or after, saturation, hue


def _seeds_per_branch(count: int) -> list[int]:
    """`count` seeds for each of the 32 combinations of steps."""
    found: dict[tuple, list[int]] = {}
    for seed in itertools.count():
        seeds = found.setdefault(_branches(seed), [])
        if len(seeds) < count:
            seeds.append(seed)
        if len(found) == 32 and all(len(s) == count for s in found.values()):
            return sorted(s for seeds in found.values() for s in seeds)


def _edge_colours() -> np.ndarray:
    """Colours at the edges of the HSV conversion, as an Nx3 uint8 array."""
    levels = np.r_[0:6, 30:34, 120:136, 250:256]  # black, white and the levels that brightness clips or shifts
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    k = np.arange(256)
    grey = np.stack([k, k, k], -1)
    ties = np.concatenate([np.stack([k, k, k // 2], -1), np.stack([k // 2, k, k], -1), np.stack([k, k // 3, k], -1)])
    # red the maximum, blue just above green: (g - b) / C just below 0, the hue wraps round to just below 360
    wrap = np.concatenate([np.stack([k * 0 + 255, k // 2, k // 2 + 1], -1), np.stack([k, k * 0, k * 0 + 1], -1)])
    return np.concatenate([cube, grey, ties, wrap]).astype(np.uint8)


def _image(seed: int, h: int = 23, w: int = 57) -> np.ndarray:
    rng = np.random.default_rng(10_000 + seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    edges = _edge_colours()
    pick = rng.choice(len(edges), h * w // 2)
    image.reshape(-1, 3)[: len(pick)] = edges[pick]
    return image


def _same_draws(a: np.random.Generator, b: np.random.Generator) -> bool:
    return a.bit_generator.state == b.bit_generator.state


def _photometric_identical(image: np.ndarray, seed: int) -> None:
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    expected, got = ref.photometric_distortion(image, a), fast.photometric_distortion(image, b)
    assert got.dtype == np.uint8 and got.shape == expected.shape
    mismatch = np.argwhere(got != expected)
    assert not len(mismatch), (f"seed {seed} {_branches(seed)}: {len(mismatch)} values differ, first at "
                               f"{mismatch[0]}: input {image[tuple(mismatch[0][:-1])]}")
    assert _same_draws(a, b)


@pytest.mark.parametrize("seed", _seeds_per_branch(4))
def test_photometric_distortion_is_bit_identical_in_every_branch(seed):
    _photometric_identical(_image(seed), seed)


def test_photometric_distortion_is_bit_identical_on_every_edge_colour():
    edges = _edge_colours()
    for seed in _seeds_per_branch(2):
        _photometric_identical(edges.reshape(1, -1, 3), seed)


def test_photometric_distortion_is_bit_identical_on_strided_and_odd_shaped_images():
    image = _image(0, 48, 70)
    for seed in _seeds_per_branch(1):
        _photometric_identical(image[3:40:2, ::-1], seed)  # a flipped, strided crop as the pipeline passes it
        _photometric_identical(image[:1, :1], seed)
        _photometric_identical(np.ascontiguousarray(image.transpose(2, 0, 1)).transpose(1, 2, 0), seed)  # planar


@pytest.mark.slow
def test_photometric_distortion_is_bit_identical_on_all_16m_colours():
    cube = np.arange(1 << 24, dtype=np.uint32)
    every = np.stack([cube >> 16, (cube >> 8) & 255, cube & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    seeds = [s for s in _seeds_per_branch(1) if _branches(s)[3] or _branches(s)[4]][::3]  # with colour steps
    assert len(seeds) >= 8
    for seed in seeds:
        for rows in range(0, 4096, 512):  # the distortion is per pixel: blocks keep the reference's memory small
            _photometric_identical(every[rows:rows + 512], seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hsv_conversions_are_bit_identical(dtype):
    rng = np.random.default_rng(0)
    near_grey = 100 + rng.integers(-2, 3, (500, 3)) * dtype(2.0 ** -12)  # a chroma far below 1
    rgb = np.concatenate([_edge_colours().astype(dtype), rng.uniform(0, 255, (5000, 3)).astype(dtype),
                          near_grey.astype(dtype)])
    hsv = ref.rgb_to_hsv(rgb)
    assert fast.rgb_to_hsv(rgb).dtype == dtype
    np.testing.assert_array_equal(fast.rgb_to_hsv(rgb).view(f"u{rgb.itemsize}"), hsv.view(f"u{rgb.itemsize}"))
    hsv[:, 1] *= np.random.default_rng(1).uniform(0, 1, len(hsv)).astype(dtype)
    for shift in (0, -36, 36, -2, 2):
        hsv_shifted = hsv.copy()
        hsv_shifted[:, 0] = np.mod(hsv[:, 0] + shift, 360)
        np.testing.assert_array_equal(fast.hsv_to_rgb(hsv_shifted).view(f"u{rgb.itemsize}"),
                                      ref.hsv_to_rgb(hsv_shifted).view(f"u{rgb.itemsize}"))


@pytest.mark.parametrize("period", [6, 360])
def test_range_limited_mod_is_numpys_mod(period):
    """_mod claims np.mod's result on [-period, 2 * period): every float32 next to the boundaries, and a dense
    sample between."""
    p = np.float32(period)
    edges = np.array([-p, -1, 0, 1, 2, p - 1, p, p + 1, 2 * p], np.float32)
    near = [edges]
    for direction in (-np.inf, np.inf):
        x = edges
        for _ in range(64):
            x = np.nextafter(x, np.float32(direction))
            near.append(x)
    y = np.concatenate([*near, np.random.default_rng(0).uniform(-period, 2 * period, 200_000).astype(np.float32),
                        np.float32(1e-7) * np.arange(-1000, 1000, dtype=np.float32)])
    y = y[(y >= -p) & (y < 2 * p)]
    np.testing.assert_array_equal(fast._mod(y, period).view(np.uint32), np.mod(y, p).view(np.uint32))


@pytest.mark.parametrize("shape,label_shape,pad_to", [
    ((23, 57), (23, 57), (32, 64)), ((23, 57), (23, 57), (16, 80)), ((23, 57), (23, 57), None),
    ((40, 40), (40, 40), (40, 40)),
    ((37, 53), (32, 48), (40, 50)),  # a label smaller than the image: both are padded by what the label lacks
])
def test_to_tensors_is_bit_identical(shape, label_shape, pad_to):
    image, label = _image(1, *shape), np.random.default_rng(2).integers(0, 256, label_shape, dtype=np.uint8)
    for img in (image, image[:, ::-1]):
        x_ref, y_ref = ref.to_tensors(img, label, MEAN, STD, pad_to, 255)
        x, y = fast.to_tensors(img, label, MEAN, STD, pad_to, 255)
        assert x.dtype == x_ref.dtype and x.shape == x_ref.shape and x.is_contiguous()
        assert torch.equal(x.view(torch.int32), x_ref.view(torch.int32))  # bits: -0.0 and 0.0 differ
        assert y.dtype == y_ref.dtype and y.shape == y_ref.shape and torch.equal(y, y_ref)


def _reference_rescale_then_crop(image, label, rng, scale_range, base_size, crop, cat_max_ratio):
    image, label = ref.random_rescale(image, label, rng, scale_range, base_size)
    return ref.random_crop(image, label, rng, crop, cat_max_ratio)


@pytest.mark.parametrize("functions", [(fast.random_rescale_crop, ref.random_rescale_crop),
                                       (fast.random_rescale_then_crop, _reference_rescale_then_crop)],
                         ids=["crop_first", "whole_image"])
@pytest.mark.parametrize("shape,base_size,crop,cat_max_ratio,seeds", [
    ((1024, 2048), (1024, 2048), (769, 769), 1.0, 6),  # the released recipe at Cityscapes size
    ((61, 97), None, (40, 50), 0.75, 30),
    ((100, 40), None, (120, 30), 0.5, 30),  # the crop larger than the image on one axis
])
def test_rescale_and_crop_are_bit_identical(functions, shape, base_size, crop, cat_max_ratio, seeds):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    label = rng.choice(np.array([1, 2, 3, 255], np.uint8), shape)
    function, reference = functions
    for seed in range(seeds):
        scale_range = (1.0, 1.0) if seed == 0 else (0.5, 2.0)  # scale 1: no resize at all
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        expected = reference(image, label, a, scale_range, base_size, crop, cat_max_ratio)
        got = function(image, label, b, scale_range, base_size, crop, cat_max_ratio)
        for x, y in zip(got, expected):
            assert x.dtype == y.dtype and np.array_equal(x, y), seed
        assert _same_draws(a, b)


@pytest.mark.parametrize("crop_first", [False, True])
def test_train_transform_is_bit_identical(crop_first):
    cfg = DataConfig(dataset="synthetic", root="unused", crop_size=(48, 80), scale_range=(0.5, 2.0),
                     base_size=(64, 128), cat_max_ratio=0.75, crop_first=crop_first)
    expected_tf, tf = ref.TrainTransform(cfg), fast.TrainTransform(cfg)
    for seed in _seeds_per_branch(1):
        image = _image(seed, 61, 97)
        label = np.random.default_rng(seed).choice(np.array([1, 2, 3, 255], np.uint8), (61, 97))
        a, b = np.random.default_rng([seed, 7]), np.random.default_rng([seed, 7])
        x_ref, y_ref = expected_tf(image, label, a)
        x, y = tf(image, label, b)
        assert torch.equal(x.view(torch.int32), x_ref.view(torch.int32)) and torch.equal(y, y_ref), seed
        assert _same_draws(a, b)
