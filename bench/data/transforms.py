"""Training and evaluation transforms (mmsegmentation's standard pipeline), numpy/torch only.

TrainTransform: random rescale -> random crop (cat_max_ratio) -> horizontal flip -> photometric distortion ->
normalise -> pad to the crop size (image 0, label 255). Every random draw comes from the Generator passed in,
so a sample is a pure function of (image, label, rng state): the engine derives the rng from
(seed, iteration, slot) and resumes exactly.

Deliberate choices (see docs/data.md): images are resized bilinearly without antialiasing (as cv2/mmcv do);
labels use pixel-centre nearest ("nearest-exact"), which stays aligned with the bilinear image (cv2's nearest
is shifted by half a pixel). The photometric distortion keeps float precision between its steps.
"""
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


def _resized_image(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The bilinear resize in float, 1x3xHxW, before rounding."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=False)


def _rounded(img: torch.Tensor) -> np.ndarray:
    """1x3xHxW float (a view; rounded in place) -> HxWx3 uint8 (a view of channel planes)."""
    return img[0].round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _resized_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    lab = torch.from_numpy(np.ascontiguousarray(label))[None, None]
    return F.interpolate(lab, size=size, mode="nearest-exact")[0, 0].numpy()


def resize(image: np.ndarray, label: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image bilinear (uint8 out), label pixel-centre nearest (no new values)."""
    if tuple(label.shape) == tuple(size):
        return image, label
    return _rounded(_resized_image(image, size)), _resized_label(label, size)


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


def random_rescale_then_crop(image, label, rng: np.random.Generator, scale_range, base_size, crop_size,
                             cat_max_ratio=1.0, ignore_index=IGNORE_INDEX):
    """random_rescale then random_crop: the same draws and values, but only the crop's window of the resized image
    is rounded to uint8 (at scale 2 the whole 2048x4096 image is 14x the 769x769 crop)."""
    size = random_size(label.shape, rng, scale_range, base_size)
    if tuple(label.shape) == tuple(size):
        return random_crop(image, label, rng, crop_size, cat_max_ratio, ignore_index)
    label = _resized_label(label, size)
    ch, cw = crop_size
    top, left = crop_offset(size, rng, crop_size, cat_max_ratio, lambda t, le: label[t:t + ch, le:le + cw],
                            ignore_index)
    return (_rounded(_resized_image(image, size)[..., top:top + ch, left:left + cw]),
            label[top:top + ch, left:left + cw])


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
    # the horizontal pass once per source row and on the window's columns only (upscaling, a source row serves
    # several output rows): the same products and sums as per output row
    src = image[y0[0]:y1[-1] + 1]
    wx0, wx1 = wx0[None, :, None], wx1[None, :, None]
    rows = (wx0 * np.take(src, x0, axis=1).astype(np.float32) + wx1 * np.take(src, x1, axis=1).astype(np.float32))
    out = (hy0[:, None, None] * np.take(rows, y0 - y0[0], axis=0)
           + hy1[:, None, None] * np.take(rows, y1 - y0[0], axis=0))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), label_window(top, left)


def _mod(y: np.ndarray, period) -> np.ndarray:
    """np.mod(y, period) for y in [-period, 2 * period), bit for bit and ~15x faster (np.mod is a scalar loop): there
    np.mod adds period to a negative y (the same rounded addition), and y - period is exact for y in
    [period, 2 * period)."""
    one = y.dtype.type
    return y + ((y < 0) * one(period) - (y >= period) * one(period))


def _hsv_planes(r: np.ndarray, g: np.ndarray, b: np.ndarray):
    """rgb_to_hsv on channel planes (non-negative floats): (H in [0, 360], S, V), branch-free (np.where and
    np.select are slow on mixed masks). Each value goes through the float operations of the textbook formula --
    H = 60 * ((g - b) / C mod 6, (b - r) / C + 2 or (r - g) / C + 4 as V is r, else g, else b; 0 where C = 0),
    S = C / V (0 where V = 0) -- with the others multiplied by 0, which adds nothing; (g - b) / C is in [-1, 1], so
    its mod 6 is _mod's."""
    one = r.dtype.type
    v = np.maximum(np.maximum(r, g), b)
    c = v - np.minimum(np.minimum(r, g), b)
    is_r = v == r
    is_g = (v == g) & ~is_r
    is_b = ~(is_r | is_g)
    num = (g - b) * is_r + (b - r) * is_g + (r - g) * is_b  # where C = 0 all channels are equal: num = 0
    h = _mod(num / (c + (c == 0)) + (is_g * one(2) + is_b * one(4)), 6) * 60
    s = c / (v + (v == 0))  # V = 0: all channels are 0, C too
    return h, s, v


def _sector_planes(h: np.ndarray, s: np.ndarray, v: np.ndarray):
    """hsv_to_rgb up to its sector table, for H in [0, 360]: (sector 0-5, C + m, X + m, m) with C = V * S,
    X = C * (1 - |H / 60 mod 2 - 1|), m = V - C; the channels take these three values in the order the sector says
    (_by_sector)."""
    c = v * s
    hp = _mod(h, 360) / 60
    whole = hp.astype(np.uint8)  # hp in [0, 6]: its integer part
    x = c * (1 - np.abs(hp - (whole & 254) - 1))  # hp - its even part is np.mod(hp, 2), exactly
    m = v - c  # >= +0, so the table's 0 + m is m
    return np.minimum(whole, 5), c + m, x + m, m


_SECTOR_ROLES = (((0, 5), (1, 4)), ((1, 2), (0, 3)), ((3, 4), (2, 5)))  # per channel: sectors taking C + m, X + m


def _by_sector(sector: np.ndarray, cm: np.ndarray, xm: np.ndarray, m: np.ndarray):
    """The (R, G, B) planes: per sector (c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x), plus m.
    Selected with bit masks, so any dtype passes through unchanged."""
    unsigned = np.dtype(f"u{m.dtype.itemsize}")
    base = m.view(unsigned)
    d_c, d_x = cm.view(unsigned) ^ base, xm.view(unsigned) ^ base
    planes = []
    for (c1, c2), (x1, x2) in _SECTOR_ROLES:
        take_c = -((sector == c1) | (sector == c2)).astype(unsigned)  # all bits set where the channel takes C + m
        take_x = -((sector == x1) | (sector == x2)).astype(unsigned)
        planes.append((base ^ (d_c & take_c) ^ (d_x & take_x)).view(m.dtype))
    return planes


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """float RGB in [0, 255] -> H in degrees [0, 360], S in [0, 1], V in [0, 255]."""
    return np.stack(_hsv_planes(rgb[..., 0], rgb[..., 1], rgb[..., 2]), axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """H in degrees [0, 360], S in [0, 1], V >= 0 -> float RGB."""
    return np.stack(_by_sector(*_sector_planes(hsv[..., 0], hsv[..., 1], hsv[..., 2])), axis=-1)


def _levels(img: np.ndarray, brightness: float | None, contrast: float | None) -> np.ndarray:
    if brightness is not None:
        img = np.clip(img + brightness, 0, 255)
    if contrast is not None:
        img = np.clip(img * contrast, 0, 255)
    return img


def _to_uint8(img: np.ndarray, contrast: float | None) -> np.ndarray:
    if contrast is not None:
        img = np.clip(img * contrast, 0, 255)
    return np.rint(img).astype(np.uint8)


PHOTOMETRIC_BLOCK_PIXELS = 1 << 16  # rows of about this many pixels at a time: the temporaries stay in cache (2x)


def photometric_distortion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mmseg PhotoMetricDistortion: each of brightness (+-32), contrast (x0.5-1.5, before or after the colour
    steps), saturation (x0.5-1.5) and hue (+-18 OpenCV units) applied with probability 1/2, in float32.

    Without saturation and hue every step maps each of the 256 levels to one value, so the distortion is a table
    of the 256 levels. The colour steps work on channel planes, a block of rows at a time, and round to uint8
    before the per-sector channel order is applied (rounding is per value). Every output value is the one the
    step-by-step float32 computation gives (tests/data/test_transforms_identical.py)."""
    brightness = rng.uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA) if rng.integers(2) else None
    contrast_first = bool(rng.integers(2))
    contrast_before = rng.uniform(*CONTRAST_RANGE) if contrast_first and rng.integers(2) else None
    saturation = rng.uniform(*SATURATION_RANGE) if rng.integers(2) else None
    hue = int(rng.integers(-HUE_DELTA, HUE_DELTA + 1)) if rng.integers(2) else None
    contrast_after = rng.uniform(*CONTRAST_RANGE) if not contrast_first and rng.integers(2) else None
    if saturation is None and hue is None:
        levels = _levels(np.arange(256, dtype=np.float32), brightness, contrast_before)
        return _to_uint8(levels, contrast_after)[image]
    out = np.empty(image.shape, np.uint8)
    rows = max(1, PHOTOMETRIC_BLOCK_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], rows):
        block = image[top:top + rows]
        h, s, v = _hsv_planes(*(_levels(block[..., k].astype(np.float32), brightness, contrast_before)
                                for k in range(3)))
        if saturation is not None:
            s = np.clip(s * saturation, 0, 1)
        if hue is not None:
            h = _mod(h + 2 * hue, 360)
        sector, *values = _sector_planes(h, s, v)
        values = (_to_uint8(np.clip(x, 0, 255), contrast_after) for x in values)
        for k, plane in enumerate(_by_sector(sector, *values)):
            out[top:top + rows, :, k] = plane
    return out


def to_tensors(image: np.ndarray, label: np.ndarray, mean, std, pad_to=None,
               ignore_index=IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise a uint8 image to float32 3xHxW and the label to int64 HxW; pad both bottom/right by what the label
    lacks of pad_to (image 0 after normalising, label ignore_index). Normalising is a table of the 256 levels."""
    if image.dtype != np.uint8:
        raise TypeError(f"to_tensors: expected a uint8 image, got {image.dtype}")
    ph, pw = (max(pad_to[0] - label.shape[0], 0), max(pad_to[1] - label.shape[1], 0)) if pad_to is not None else (0, 0)
    levels = (np.arange(256, dtype=np.float32)[:, None] - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    h, w = image.shape[:2]
    img = np.zeros((3, h + ph, w + pw), np.float32)
    for k in range(3):
        np.take(levels[:, k], image[..., k], out=img[k, :h, :w], mode="clip")  # uint8 indices: clip never applies
    h, w = label.shape
    lab = np.full((h + ph, w + pw), ignore_index, np.int64)
    lab[:h, :w] = label
    return torch.from_numpy(img), torch.from_numpy(lab)


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
            image, label = random_rescale_then_crop(image, label, rng, self.scale_range, self.base_size,
                                                    self.crop_size, self.cat_max_ratio, self.ignore_index)
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
