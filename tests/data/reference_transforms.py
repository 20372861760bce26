"""A frozen copy of bench/data/transforms.py as of commit 837c4b9 (before the faster photometric distortion,
normalise+pad and resizes), code verbatim: tests/data/test_transforms_identical.py checks that the current
transforms give bit-identical outputs for the same inputs and rng state, so seeds, resumes and published numbers
stay valid. Never edit the code below; it is the definition the current code must reproduce."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.labels import IGNORE_INDEX

BRIGHTNESS_DELTA = 32
CONTRAST_RANGE = (0.5, 1.5)
SATURATION_RANGE = (0.5, 1.5)
HUE_DELTA = 18  # in OpenCV hue units (2 degrees)
CAT_MAX_RATIO_TRIES = 10


def rescale_factor(size: tuple[int, int], ratio: float, base_size: tuple[int, int] | None) -> float:
    """mmseg RandomResize(scale=base_size, ratio_range, keep_ratio=True): fit the image into base_size*ratio
    (long edge to long edge, short to short); without base_size, scale the image itself by ratio."""
    if base_size is None:
        return ratio
    h, w = size
    long_edge, short_edge = max(base_size) * ratio, min(base_size) * ratio
    return min(long_edge / max(h, w), short_edge / min(h, w))


def resize(image: np.ndarray, label: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image bilinear (uint8 out), label pixel-centre nearest (no new values)."""
    if tuple(label.shape) == tuple(size):
        return image, label
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    img = F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=False)
    image = img[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    lab = torch.from_numpy(np.ascontiguousarray(label))[None, None]
    label = F.interpolate(lab, size=size, mode="nearest-exact")[0, 0].numpy()
    return image, label


def random_size(shape: tuple[int, int], rng: np.random.Generator, scale_range, base_size=None) -> tuple[int, int]:
    """The size random_rescale resizes an image of `shape` to (one draw from rng when the range is not a point)."""
    lo, hi = scale_range
    ratio = rng.uniform(lo, hi) if hi > lo else lo
    factor = rescale_factor(shape, ratio, base_size)
    h, w = shape
    return max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))


def random_rescale(image, label, rng: np.random.Generator, scale_range, base_size=None):
    return resize(image, label, random_size(label.shape, rng, scale_range, base_size))


def _dominant_share(label: np.ndarray, ignore_index: int) -> tuple[int, float]:
    counts = np.bincount(label.ravel(), minlength=256)
    counts[ignore_index] = 0
    counts = counts[counts > 0]
    return len(counts), (counts.max() / counts.sum() if len(counts) else 1.0)


def crop_offset(shape: tuple[int, int], rng: np.random.Generator, crop_size, cat_max_ratio, label_window,
                ignore_index=IGNORE_INDEX) -> tuple[int, int]:
    """(top, left) of a crop of at most crop_size at a uniform offset in an image of `shape`. With cat_max_ratio < 1,
    up to 10 offsets are tried and the first whose crop (label_window(top, left)) has >1 category and no category
    (ignore not counted) holding a share >= cat_max_ratio is kept (mmseg's rule); else the last one tried."""
    ch, cw = crop_size
    h, w = shape

    def offset():
        return int(rng.integers(0, max(h - ch, 0) + 1)), int(rng.integers(0, max(w - cw, 0) + 1))

    top, left = offset()
    if cat_max_ratio < 1.0:
        for attempt in range(CAT_MAX_RATIO_TRIES):
            n, share = _dominant_share(label_window(top, left), ignore_index)
            if n > 1 and share < cat_max_ratio:
                break
            if attempt < CAT_MAX_RATIO_TRIES - 1:
                top, left = offset()
    return top, left


def random_crop(image, label, rng: np.random.Generator, crop_size, cat_max_ratio=1.0,
                ignore_index=IGNORE_INDEX):
    """A crop of at most crop_size (crop_offset's rule)."""
    ch, cw = crop_size
    top, left = crop_offset(label.shape, rng, crop_size, cat_max_ratio,
                            lambda t, le: label[t:t + ch, le:le + cw], ignore_index)
    return image[top:top + ch, left:left + cw], label[top:top + ch, left:left + cw]


def _bilinear_taps(n_in: int, n_out: int, start: int, stop: int):
    """Source rows and weights of output rows start..stop-1 of an n_in -> n_out bilinear resize, by PyTorch's rule
    (align_corners=False, no antialias; float32 as its CPU kernel): src = max((dst + 0.5) * n_in / n_out - 0.5, 0)."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum((np.arange(start, stop, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5),
                     np.float32(0))
    i0 = src.astype(np.int64)
    lam = (src - i0.astype(np.float32)).astype(np.float32)
    return i0, np.minimum(i0 + 1, n_in - 1), np.float32(1) - lam, lam


def _nearest_exact_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of every output index of an n_in -> n_out "nearest-exact" resize (PyTorch's float32 rule)."""
    scale = np.float32(n_in) / np.float32(n_out)
    idx = np.floor((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale).astype(np.int64)
    return np.minimum(idx, n_in - 1)


def random_rescale_crop(image, label, rng: np.random.Generator, scale_range, base_size, crop_size,
                        cat_max_ratio=1.0, ignore_index=IGNORE_INDEX):
    """random_rescale then random_crop with the same draws, resizing only the crop's window (data.crop_first): the
    label is identical; image values can differ from the whole-image resize by 1 where a float rounding differs
    from PyTorch's vectorised kernel (tests/data/test_crop_first.py). At scale 2 on a 1024x2048 image, the
    whole-image resize writes 8.4M pixels for a 769x769 crop (0.6M)."""
    ch, cw = crop_size
    h, w = label.shape
    size = random_size((h, w), rng, scale_range, base_size)
    ny, nx = _nearest_exact_index(h, size[0]), _nearest_exact_index(w, size[1])

    def label_window(top, left):
        return label[np.ix_(ny[top:top + ch], nx[left:left + cw])]

    top, left = crop_offset(size, rng, crop_size, cat_max_ratio, label_window, ignore_index)
    if size == (h, w):
        return image[top:top + ch, left:left + cw], label[top:top + ch, left:left + cw]
    y0, y1, hy0, hy1 = _bilinear_taps(h, size[0], top, min(top + ch, size[0]))
    x0, x1, wx0, wx1 = _bilinear_taps(w, size[1], left, min(left + cw, size[1]))
    rows0, rows1 = image[y0].astype(np.float32), image[y1].astype(np.float32)
    wx0, wx1 = wx0[None, :, None], wx1[None, :, None]
    out = (hy0[:, None, None] * (wx0 * rows0[:, x0] + wx1 * rows0[:, x1])
           + hy1[:, None, None] * (wx0 * rows1[:, x0] + wx1 * rows1[:, x1]))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), label_window(top, left)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """float RGB in [0, 255] -> H in degrees [0, 360), S in [0, 1], V in [0, 255]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    c = v - rgb.min(axis=-1)
    safe_c = np.where(c > 0, c, 1)
    h = np.select([c == 0, v == r, v == g], [0, np.mod((g - b) / safe_c, 6), (b - r) / safe_c + 2],
                  (r - g) / safe_c + 4) * 60
    s = np.where(v > 0, c / np.where(v > 0, v, 1), 0)
    return np.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    c = v * s
    hp = np.mod(h, 360) / 60
    x = c * (1 - np.abs(np.mod(hp, 2) - 1))
    z = np.zeros_like(c)
    sector = np.minimum(hp.astype(np.int64), 5)
    table = [(c, x, z), (x, c, z), (z, c, x), (z, x, c), (x, z, c), (c, z, x)]
    rgb = np.stack([np.choose(sector, [t[k] for t in table]) for k in range(3)], axis=-1)
    return rgb + (v - c)[..., None]


def photometric_distortion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mmseg PhotoMetricDistortion: each of brightness (+-32), contrast (x0.5-1.5, before or after the colour
    steps), saturation (x0.5-1.5) and hue (+-18 OpenCV units) applied with probability 1/2."""
    img = image.astype(np.float32)
    if rng.integers(2):
        img = np.clip(img + rng.uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA), 0, 255)
    contrast_first = bool(rng.integers(2))
    if contrast_first and rng.integers(2):
        img = np.clip(img * rng.uniform(*CONTRAST_RANGE), 0, 255)
    saturation = rng.uniform(*SATURATION_RANGE) if rng.integers(2) else None
    hue = int(rng.integers(-HUE_DELTA, HUE_DELTA + 1)) if rng.integers(2) else None
    if saturation is not None or hue is not None:
        hsv = rgb_to_hsv(img)
        if saturation is not None:
            hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 1)
        if hue is not None:
            hsv[..., 0] = np.mod(hsv[..., 0] + 2 * hue, 360)
        img = np.clip(hsv_to_rgb(hsv), 0, 255)
    if not contrast_first and rng.integers(2):
        img = np.clip(img * rng.uniform(*CONTRAST_RANGE), 0, 255)
    return np.rint(img).astype(np.uint8)


def to_tensors(image: np.ndarray, label: np.ndarray, mean, std, pad_to=None,
               ignore_index=IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise to float32 3xHxW and int64 HxW; pad bottom/right to pad_to (image 0 after normalising,
    label ignore_index)."""
    img = (image.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    lab = torch.from_numpy(label.astype(np.int64))
    if pad_to is not None:
        h, w = lab.shape
        ph, pw = max(pad_to[0] - h, 0), max(pad_to[1] - w, 0)
        if ph or pw:
            img = F.pad(img, (0, pw, 0, ph), value=0.0)
            lab = F.pad(lab, (0, pw, 0, ph), value=ignore_index)
    return img, lab


class TrainTransform:
    """Random rescale, crop, flip, photometric distortion, normalise, pad; all randomness from `rng`."""

    def __init__(self, cfg):
        self.crop_size = tuple(cfg.crop_size)
        self.scale_range = tuple(cfg.scale_range)
        self.base_size = tuple(cfg.base_size) if cfg.base_size is not None else None
        self.cat_max_ratio = float(cfg.cat_max_ratio)
        self.flip = bool(cfg.flip)
        self.crop_first = bool(getattr(cfg, "crop_first", False))
        self.photometric = bool(cfg.photometric)
        self.mean, self.std = tuple(cfg.mean), tuple(cfg.std)
        self.ignore_index = IGNORE_INDEX

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        if self.crop_first:
            image, label = random_rescale_crop(image, label, rng, self.scale_range, self.base_size, self.crop_size,
                                               self.cat_max_ratio, self.ignore_index)
        else:
            image, label = random_rescale(image, label, rng, self.scale_range, self.base_size)
            image, label = random_crop(image, label, rng, self.crop_size, self.cat_max_ratio, self.ignore_index)
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.photometric:
            image = photometric_distortion(image, rng)
        return to_tensors(image, label, self.mean, self.std, self.crop_size, self.ignore_index)


class EvalTransform:
    """Normalise only (the evaluator resizes/slides itself); the label keeps its full resolution."""

    def __init__(self, cfg):
        self.mean, self.std = tuple(cfg.mean), tuple(cfg.std)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator | None = None):
        return to_tensors(image, label, self.mean, self.std)
