"""Dataset-level segmentation metrics from a confusion matrix: mIoU, mAcc, aAcc, per-class IoU and Acc.

Convention (mmsegmentation's `IoUMetric.total_area_to_metrics`, see docs/evaluation.md):
- intersection, union, GT and prediction areas are summed over the whole dataset first, then divided;
- a class whose union is 0 (absent from both GT and prediction everywhere) gets IoU NaN, a class absent from
  the GT gets Acc NaN; NaNs are left out of the means (nanmean);
- a class absent from the GT but predicted somewhere gets IoU 0 (its union is the false positives);
- pixels labelled `ignore_index` count nowhere (neither as GT nor as prediction).
All reported numbers are percent.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


def confusion_matrix(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts, rows = ground truth, columns = prediction.

    `pred` and `label` are integer tensors of the same shape; pixels whose label is `ignore_index` are skipped.
    A label outside [0, num_classes) that is not `ignore_index`, or a prediction outside it, is an error
    (silently dropping such pixels, as a histogram would, hides a wrong class mapping).
    """
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(label.shape)}")
    label = label.reshape(-1).long()
    pred = pred.reshape(-1).long().to(label.device)
    valid = label != ignore_index
    label, pred = label[valid], pred[valid]
    if label.numel():
        if int(label.min()) < 0 or int(label.max()) >= num_classes:
            bad = label[(label < 0) | (label >= num_classes)][0].item()
            raise ValueError(f"label value {bad} is outside [0, {num_classes}) and is not ignore_index "
                             f"{ignore_index}")
        if int(pred.min()) < 0 or int(pred.max()) >= num_classes:
            raise ValueError(f"prediction outside [0, {num_classes})")
    counts = torch.bincount(label * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).to(torch.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def metrics_from_confusion(conf: torch.Tensor | np.ndarray) -> dict:
    """miou, macc, aacc (percent floats) and iou, acc (per-class float64 arrays in percent, NaN = undefined)."""
    conf = np.asarray(conf.cpu() if isinstance(conf, torch.Tensor) else conf, dtype=np.int64)
    intersect = np.diag(conf).astype(np.float64)
    area_label = conf.sum(axis=1).astype(np.float64)
    area_pred = conf.sum(axis=0).astype(np.float64)
    union = area_label + area_pred - intersect
    iou = _ratio(intersect, union) * 100.0
    acc = _ratio(intersect, area_label) * 100.0
    total = area_label.sum()
    aacc = float(intersect.sum() / total * 100.0) if total > 0 else math.nan
    return {"miou": _nanmean(iou), "macc": _nanmean(acc), "aacc": aacc, "iou": iou, "acc": acc}


def per_class_dict(values: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    if len(class_names) != len(values):
        raise ValueError(f"{len(class_names)} class names for {len(values)} classes")
    return {str(name): float(v) for name, v in zip(class_names, values)}
