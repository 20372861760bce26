"""Segmentation losses: cross-entropy with an ignore label, OHEM cross-entropy, and the weighted sum over a
segmentor's outputs (each resized to the label first)."""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, label: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Mean cross-entropy over the pixels whose label is not `ignore_index` (0, with a gradient, if none is).
    Sum over count, with no branch on the data: nothing here waits for the device (a step queues ahead on a GPU)."""
    total = F.cross_entropy(logits.float(), label, ignore_index=ignore_index, reduction="sum")
    return total / (label != ignore_index).sum().clamp_min(1)


@torch.no_grad()
def ohem_mask(logits: torch.Tensor, label: torch.Tensor, thresh: float, min_kept: int,
              ignore_index: int = 255) -> torch.Tensor:
    """The pixels OHEM trains on (mmsegmentation's OHEMPixelSampler): among the labelled pixels, those whose
    predicted probability of the true class is below max(thresh, p_k), where p_k is the (min_kept * N)-th
    smallest such probability (0-based), so at least min_kept pixels per image are kept (fewer only if there
    are fewer labelled pixels; ties at p_k can keep fewer, as in mmseg).
    Computed on the device without reading anything back: unlabelled pixels sort after every probability (2 > 1), so
    the first n_valid sorted values are the labelled ones, and p_k is picked with a tensor index."""
    valid = label != ignore_index
    prob = torch.softmax(logits.float(), dim=1)
    target = label.masked_fill(~valid, 0).unsqueeze(1)
    true_prob = prob.gather(1, target).squeeze(1)
    sorted_prob, _ = true_prob.masked_fill(~valid, 2.0).flatten().sort()
    batch_kept = min_kept * label.shape[0]
    k = (valid.sum() - 1).clamp(min=0, max=batch_kept)
    threshold = sorted_prob.gather(0, k.view(1)).clamp_min(thresh)  # (1,): broadcasts, no read-back
    return valid & (true_prob < threshold)


def ohem_cross_entropy(logits: torch.Tensor, label: torch.Tensor, thresh: float = 0.7, min_kept: int = 100_000,
                       ignore_index: int = 255) -> torch.Tensor:
    """Cross-entropy averaged over the pixels `ohem_mask` keeps.

    The mean is over the kept pixels (as the released IFA code's ProbOhemCrossEntropy2d); mmseg instead divides
    the weighted sum by every pixel of the batch, which only rescales the loss by the kept fraction."""
    kept = ohem_mask(logits, label, thresh, min_kept, ignore_index)
    return cross_entropy(logits, label.masked_fill(~kept, ignore_index), ignore_index)


def build_loss(train_cfg) -> LossFn:
    """The per-output loss a TrainConfig asks for (`loss: ce | ohem`)."""
    ignore = train_cfg.ignore_index
    if train_cfg.loss == "ohem":
        thresh, min_kept = train_cfg.ohem_thresh, train_cfg.ohem_min_kept
        return lambda logits, label: ohem_cross_entropy(logits, label, thresh, min_kept, ignore)
    if train_cfg.loss == "ce":
        return lambda logits, label: cross_entropy(logits, label, ignore)
    raise ValueError(f"train.loss: unknown loss {train_cfg.loss!r}")


def resize_to(logits: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=align_corners)


def segmentation_loss(outputs, label: torch.Tensor, weights: Mapping[str, float], loss_fn: LossFn,
                      align_corners: Mapping[str, bool] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """sum_k weights[k] * loss_fn(resize(outputs[k]), label) over the segmentor's outputs.

    outputs: a dict of logits (training forward) or a single Tensor (treated as "main"). Every output must
    have a weight; a weight of 0 skips that output.
    Returns (total, {"loss_<key>": the unweighted value as a detached tensor}).
    """
    if isinstance(outputs, torch.Tensor):
        outputs = {"main": outputs}
    missing = [k for k in outputs if k not in weights]
    if missing:
        raise KeyError(f"no loss weight for output(s) {missing}; segmentor.loss_weights has {sorted(weights)}")
    align_corners = align_corners or {}
    size = tuple(label.shape[-2:])
    total, parts = None, {}
    for key, logits in outputs.items():
        w = float(weights[key])
        if w == 0.0:
            continue
        value = loss_fn(resize_to(logits, size, align_corners.get(key, False)), label)
        parts[f"loss_{key}"] = value.detach()  # a tensor: no device sync per step
        total = value * w if total is None else total + value * w
    if total is None:
        raise ValueError("every output has loss weight 0: nothing to train")
    return total, parts
