"""Bootstrap confidence intervals for mIoU from per-image class intersections and unions (docs/evaluation.md).

An evaluation stores, per image i and class c, the pixels of c in both prediction and label (intersection I[i, c])
and in either (union U[i, c]); the dataset's mIoU is the mean over classes of sum_i I / sum_i U (classes with no
union are left out, as in the metric itself). A bootstrap replicate draws N image indices with replacement and
recomputes that mIoU from the drawn rows, so no model is run again. The interval is the percentile interval of the
replicates. All replicates of one call use one generator seeded by `seed`: the same call gives the same interval.

Several seeds of one model (same images) share the drawn indices of a replicate and average their mIoUs, so the
interval is that of the mean over seeds under resampling of images. Two models compared on the same images share
them too (a paired bootstrap): the interval of their difference says whether it could be noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

PER_IMAGE_FILE = "per_image.npz"  # beside final.json: arrays `inter` and `union`, shape (images, classes), int64
DEFAULT_REPLICATES = 2000


def miou_from_sums(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """mIoU in percent over the last axis (classes), ignoring classes whose union is 0. Works on batches."""
    inter, union = np.asarray(inter, dtype=np.float64), np.asarray(union, dtype=np.float64)
    present = union > 0
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=present)
    counted = present.sum(-1)
    return np.where(counted > 0, iou.sum(-1) / np.maximum(counted, 1) * 100.0, np.nan)


def _draws(n_images: int, replicates: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_images, size=(replicates, n_images))


def _replicate_mious(stats: Sequence[tuple[np.ndarray, np.ndarray]], draws: np.ndarray) -> np.ndarray:
    """(replicates,) mean over `stats` (seeds) of each replicate's mIoU; one replicate's image counts apply to all."""
    n_images = stats[0][0].shape[0]
    counts = np.stack([np.bincount(d, minlength=n_images) for d in draws]).astype(np.float64)  # (R, N)
    out = np.zeros(len(draws))
    for inter, union in stats:
        out += miou_from_sums(counts @ inter, counts @ union)
    return out / len(stats)


def _check(stats: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    if not stats:
        raise ValueError("no per-image statistics")
    shape = stats[0][0].shape
    for inter, union in stats:
        if inter.shape != shape or union.shape != shape:
            raise ValueError(f"per-image statistics of different shapes: {inter.shape} vs {shape}; "
                             "a bootstrap needs the same images and classes")


@dataclass(frozen=True)
class Interval:
    estimate: float  # on the full set (mean over seeds)
    low: float
    high: float
    level: float  # percent, e.g. 95
    replicates: int
    seed: int

    def contains(self, value: float, widen: float = 0.0) -> bool:
        return self.low - widen <= value <= self.high + widen


def _interval(estimate: float, reps: np.ndarray, level: float, seed: int) -> Interval:
    if not 0 < level < 100:
        raise ValueError(f"confidence level must be between 0 and 100, got {level}")
    alpha = (100.0 - level) / 2.0
    low, high = np.nanpercentile(reps, [alpha, 100.0 - alpha])
    return Interval(float(estimate), float(low), float(high), float(level), len(reps), seed)


def miou_interval(stats: Sequence[tuple[np.ndarray, np.ndarray]], level: float = 95.0,
                  replicates: int = DEFAULT_REPLICATES, seed: int = 0) -> Interval:
    """Percentile interval of the mIoU (mean over the given seeds' (inter, union) arrays) under image resampling."""
    _check(stats)
    estimate = float(np.mean([miou_from_sums(i.sum(0), u.sum(0)) for i, u in stats]))
    draws = _draws(stats[0][0].shape[0], replicates, seed)
    return _interval(estimate, _replicate_mious(stats, draws), level, seed)


def paired_difference(a: Sequence[tuple[np.ndarray, np.ndarray]], b: Sequence[tuple[np.ndarray, np.ndarray]],
                      level: float = 95.0, replicates: int = DEFAULT_REPLICATES, seed: int = 0) -> Interval:
    """Interval of mIoU(a) - mIoU(b), both resampled with the same images in every replicate. The difference is
    significant at `level` when the interval excludes 0."""
    _check(list(a) + list(b))
    estimate = float(np.mean([miou_from_sums(i.sum(0), u.sum(0)) for i, u in a])
                     - np.mean([miou_from_sums(i.sum(0), u.sum(0)) for i, u in b]))
    draws = _draws(a[0][0].shape[0], replicates, seed)
    return _interval(estimate, _replicate_mious(a, draws) - _replicate_mious(b, draws), level, seed)


def save_per_image(path: Path, inter: np.ndarray, union: np.ndarray) -> None:
    import io

    from bench.files.atomic import write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, inter=inter.astype(np.int64), union=union.astype(np.int64))
    write_bytes(Path(path), buf.getvalue())


def load_per_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(Path(path), allow_pickle=False) as f:
        return f["inter"], f["union"]


def interval_fields(inter: np.ndarray, union: np.ndarray, level: float = 95.0) -> dict:
    """The final.json / results fields of one evaluation's interval."""
    ci = miou_interval([(inter, union)], level=level)
    return {"miou_ci_low": ci.low, "miou_ci_high": ci.high, "ci_level": ci.level, "ci_replicates": ci.replicates}
