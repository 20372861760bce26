"""Boundary IoU (Cheng et al., CVPR 2021) for semantic segmentation, all classes at once.

For a binary mask M, the reference (bowenc0221/boundary-iou-api, `mask_to_boundary`) pads M with one ring of
zeros, erodes it `d` times with a 3x3 kernel (cv2) and returns M minus the erosion: the pixels of M within
Chebyshev distance d of a pixel outside M, where pixels beyond the image border count as outside (so a mask
truncated by the border has a boundary there). d = max(1, round(dilation_ratio * image diagonal)).

Here every class's mask comes from one label map: a pixel of class c is on c's boundary iff its
(2d+1) x (2d+1) window reaches past the image border or holds a pixel of another class. Ignore pixels are
don't-care: they never make a boundary (as if they belonged to every class's mask) and are excluded from the
counts; the prediction is read as ignore wherever the GT is. That is one sliding min and one sliding max of
the label map per image, computed with a doubling (sparse-table) scheme in O(log d) passes, whatever the
number of classes.

Per class c, with G_c and P_c the GT and prediction boundary pixels of class c, the dataset sums
|G_c & P_c| and |G_c | P_c| are accumulated; boundary IoU of c = intersection / union (NaN when the union is
0), and the reported number is the nanmean over classes, in percent, as for mIoU.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_FAR = 32000  # larger than any class index; int32 label maps


def boundary_width(height: int, width: int, dilation_ratio: float = 0.02) -> int:
    """d of the reference: round(ratio * diagonal), at least 1 (Python's round, as the reference)."""
    return max(1, int(round(dilation_ratio * math.sqrt(height ** 2 + width ** 2))))


def _sliding_max_1d(x: torch.Tensor, radius: int, dim: int, pad_value: int) -> torch.Tensor:
    """max over [i - radius, i + radius] along `dim`, positions outside the tensor read as `pad_value`."""
    n = x.shape[dim]
    pad = [0, 0] * (x.dim() - 1 - dim) + [radius, radius]
    padded = F.pad(x, pad, value=pad_value)
    k = 2 * radius + 1
    span, m = 1, padded
    while span * 2 <= k:  # m[j] = max(padded[j : j + span])
        length = m.shape[dim] - span
        m = torch.maximum(m.narrow(dim, 0, length), m.narrow(dim, span, length))
        span *= 2
    # two windows of width `span` cover [i, i + k) exactly
    return torch.maximum(m.narrow(dim, 0, n), m.narrow(dim, k - span, n))


def _sliding_max_2d(x: torch.Tensor, radius: int, pad_value: int) -> torch.Tensor:
    x = _sliding_max_1d(x, radius, x.dim() - 1, pad_value)
    return _sliding_max_1d(x, radius, x.dim() - 2, pad_value)


def boundary_map(label: torch.Tensor, radius: int, ignore_index: int = 255) -> torch.Tensor:
    """Bool map (..., H, W): pixel is not ignore and lies on its own class's boundary band of width `radius`."""
    lab = label.to(torch.int32)
    ignore = lab == ignore_index
    # window min over non-ignore labels (outside the image: -1), window max likewise (outside: _FAR)
    neg_for_min = torch.where(ignore, torch.full_like(lab, -_FAR), -lab)
    window_min = -_sliding_max_2d(neg_for_min, radius, pad_value=1)
    for_max = torch.where(ignore, torch.full_like(lab, -1), lab)
    window_max = _sliding_max_2d(for_max, radius, pad_value=_FAR)
    interior = (window_min == lab) & (window_max == lab)
    return ~ignore & ~interior


def boundary_stats(pred: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int = 255,
                   dilation_ratio: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class boundary intersection and union pixel counts (int64, shape (num_classes,)) for one image."""
    if pred.shape != label.shape or label.dim() != 2:
        raise ValueError(f"expected two (H, W) maps, got {tuple(pred.shape)} and {tuple(label.shape)}")
    h, w = label.shape
    d = boundary_width(h, w, dilation_ratio)
    label = label.long()
    pred = torch.where(label == ignore_index, torch.full_like(label, ignore_index), pred.long().to(label.device))
    gt_b = boundary_map(label, d, ignore_index)
    pred_b = boundary_map(pred, d, ignore_index)
    gt_cls = label[gt_b]
    pred_cls = pred[pred_b]
    both = gt_b & pred_b & (label == pred)
    area_gt = torch.bincount(gt_cls, minlength=num_classes)[:num_classes]
    area_pred = torch.bincount(pred_cls, minlength=num_classes)[:num_classes]
    inter = torch.bincount(label[both], minlength=num_classes)[:num_classes]
    return inter.to(torch.int64), (area_gt + area_pred - inter).to(torch.int64)
