"""Test-time inference: whole image or sliding window, multi-scale and horizontal flip.

Conventions (mmsegmentation's, see docs/evaluation.md):
- sliding window: windows of `crop` start every `stride`, the last row/column of windows is moved back to end at
  the image border; overlapping *logits* are summed and divided by a count map. An image smaller than the
  window is padded at the bottom/right with zeros (the mean colour after normalisation) and the padded region
  is cropped away from the logits.
- several augmentations (scales x flips): each one's logits are brought to the output size, turned into
  softmax probabilities, and the probabilities are averaged (mmseg `SegTTAModel.merge_preds`).
- the output size is the label's size: the model is asked for logits at that size (`model(x, size=...)`), so a
  head that can be queried at any resolution (IFA with `query_at_output`) is queried there directly (or, with a
  `query_stride`, on the 1/stride grid of it, the rest upsampled), and the others upsample their logits once. In
  slide mode each window is inferred at its own size, and the stitched logits are resized to the output size when
  the (scaled) image differs from it.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence

import torch
import torch.nn.functional as F

Size = tuple[int, int]


def model_device(model: torch.nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel/DataParallel (their forward would sync across ranks)."""
    return getattr(model, "module", model)


@contextlib.contextmanager
def ifa_query_mode(model: torch.nn.Module, ifa_query: str, query_stride: Optional[int] = None) -> Iterator[None]:
    """Set the segmentor's `query_at_output` and `query_stride` for the duration: "label" queries at the output
    size, "upsample" on the head's own grid; `query_stride` s (bench/config/query_stride.py) on the 1/s grid of the
    output size, the rest upsampled bilinearly. Heads that cannot be queried ignore both and upsample."""
    if ifa_query not in ("label", "upsample"):
        raise ValueError(f"ifa_query must be 'label' or 'upsample', got {ifa_query!r}")
    if query_stride is not None and (query_stride < 1 or (ifa_query == "label") != (query_stride == 1)):
        raise ValueError(f"query_stride {query_stride} contradicts ifa_query {ifa_query!r}")
    model = unwrap(model)
    saved = {name: getattr(model, name) for name in ("query_at_output", "query_stride") if hasattr(model, name)}
    model.query_at_output = ifa_query == "label" or query_stride is not None
    model.query_stride = query_stride
    try:
        yield
    finally:
        for name in ("query_at_output", "query_stride"):
            if name in saved:
                setattr(model, name, saved[name])
            else:
                delattr(model, name)


@contextlib.contextmanager
def planned_segmentor(planned) -> Iterator[torch.nn.Module]:
    """The segmentor of a bench.measure.plan.PlannedModel, in the IFA query mode it is evaluated in for the
    duration. Seeded 0: weights do not change a cost, and a fixed init keeps the work identical across runs."""
    from bench.models import build_segmentor

    from bench.host.compiled import maybe_compile

    torch.manual_seed(0)
    model = maybe_compile(build_segmentor(planned.model), planned.model)
    with ifa_query_mode(model, *planned.query) if planned.query else contextlib.nullcontext():
        yield model


def query_stride_of(model: torch.nn.Module) -> Optional[int]:
    """The stride a queryable head is queried at under the current mode (1 = output size), None if it cannot be."""
    model = unwrap(model)
    head = getattr(model, "head", None)
    if not getattr(head, "supports_query_size", False):
        return None
    if not getattr(model, "query_at_output", False):
        return head.output_stride
    return getattr(model, "query_stride", None) or 1


def _forward(model: torch.nn.Module, images: torch.Tensor, size: Optional[Size]) -> torch.Tensor:
    out = model(images, size=size) if size is not None else model(images)
    if isinstance(out, dict):  # a model left in training mode; evaluation reads the main output
        out = out["main"]
    if size is not None and tuple(out.shape[-2:]) != tuple(size):
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
    return out


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets covering [0, length) with windows of `crop` (the last one ends at the border)."""
    if length <= crop:
        return [0]
    n = (length - crop + stride - 1) // stride + 1
    return sorted({min(i * stride, length - crop) for i in range(n)})


def slide_logits(model: torch.nn.Module, image: torch.Tensor, crop: Size, stride: Size,
                 window_batch: int = 1) -> torch.Tensor:
    """Logits (N, C, H, W) at the image's size from overlapping windows of size `crop`."""
    n, _, h, w = image.shape
    ch, cw = crop
    sh, sw = stride
    if min(ch, cw, sh, sw) < 1:
        raise ValueError(f"crop {crop} and stride {stride} must be positive")
    if sh > ch or sw > cw:
        raise ValueError(f"stride {stride} larger than the window {crop} would leave pixels uncovered")
    ph, pw = max(h, ch), max(w, cw)
    if (ph, pw) != (h, w):
        image = F.pad(image, (0, pw - w, 0, ph - h))
    boxes = [(y, x) for y in window_starts(ph, ch, sh) for x in window_starts(pw, cw, sw)]
    logits = None
    count = torch.zeros((1, 1, ph, pw), device=image.device, dtype=image.dtype)
    for i in range(0, len(boxes), max(1, window_batch)):
        chunk = boxes[i:i + window_batch]
        crops = torch.cat([image[:, :, y:y + ch, x:x + cw] for y, x in chunk])
        out = _forward(model, crops, (ch, cw))
        if logits is None:
            logits = image.new_zeros((n, out.shape[1], ph, pw))
        for j, (y, x) in enumerate(chunk):
            logits[:, :, y:y + ch, x:x + cw] += out[j * n:(j + 1) * n]
            count[:, :, y:y + ch, x:x + cw] += 1
    assert bool((count > 0).all()), "sliding windows left pixels uncovered"
    return (logits / count)[:, :, :h, :w]


def infer_logits(model: torch.nn.Module, image: torch.Tensor, out_size: Size, *, mode: str = "whole",
                 crop: Optional[Size] = None, stride: Optional[Size] = None, window_batch: int = 1) -> torch.Tensor:
    """Logits (N, C, *out_size) of one view of the image."""
    if mode == "whole":
        return _forward(model, image, out_size)
    if mode != "slide":
        raise ValueError(f"mode must be 'whole' or 'slide', got {mode!r}")
    if crop is None:
        raise ValueError("slide mode needs a crop size")
    stride = stride or default_stride(crop)
    logits = slide_logits(model, image, crop, stride, window_batch)
    if tuple(logits.shape[-2:]) != tuple(out_size):
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
    return logits


def default_stride(crop: Size) -> Size:
    """2/3 of the window, rounded (mmseg: 512x1024 -> 341x683; IFA release: 769 -> 513)."""
    return tuple(max(1, int(round(2 * c / 3))) for c in crop)


def scaled_size(size: Size, scale: float) -> Size:
    return (max(1, int(round(size[0] * scale))), max(1, int(round(size[1] * scale))))


def _view_logits(model, image, out_size, mode, scales, flip, crop, stride, window_batch):
    """Logits (N, C, *out_size) of every view (scale x flip), flips undone."""
    if not scales:
        raise ValueError("scales must not be empty")
    for scale in scales:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        size = scaled_size(tuple(image.shape[-2:]), scale)
        scaled = image if size == tuple(image.shape[-2:]) else F.interpolate(
            image, size=size, mode="bilinear", align_corners=False)
        for flipped in ((False, True) if flip else (False,)):
            view = scaled.flip(-1) if flipped else scaled
            logits = infer_logits(model, view, out_size, mode=mode, crop=crop, stride=stride,
                                  window_batch=window_batch)
            yield logits.flip(-1) if flipped else logits


def _prepare(model, image, out_size):
    if image.dim() == 3:
        image = image.unsqueeze(0)
    image = image.to(model_device(model))
    return image, tuple(out_size or image.shape[-2:])


@torch.inference_mode()
def predict_probs(model: torch.nn.Module, image: torch.Tensor, out_size: Optional[Size] = None, *,
                  mode: str = "whole", scales: Sequence[float] = (1.0,), flip: bool = False,
                  crop: Optional[Size] = None, stride: Optional[Size] = None,
                  window_batch: int = 1) -> torch.Tensor:
    """Class probabilities (N, C, *out_size): softmax of each view's logits, averaged over scales x flips.

    `image` is a normalised (N, 3, H, W) tensor (moved to the model's device); `out_size` defaults to (H, W).
    The model must be in eval mode; its `query_at_output` is left as it is (see `ifa_query_mode`).
    """
    image, out_size = _prepare(model, image, out_size)
    probs, views = None, 0
    for logits in _view_logits(model, image, out_size, mode, scales, flip, crop, stride, window_batch):
        p = logits.float().softmax(dim=1)
        probs = p if probs is None else probs.add_(p)
        views += 1
    return probs / views


@torch.inference_mode()
def predict_labels(model: torch.nn.Module, image: torch.Tensor, out_size: Optional[Size] = None, *,
                   mode: str = "whole", scales: Sequence[float] = (1.0,), flip: bool = False,
                   crop: Optional[Size] = None, stride: Optional[Size] = None,
                   window_batch: int = 1) -> torch.Tensor:
    """Predicted class map (N, *out_size), int64: the argmax of `predict_probs` (of the logits for one view)."""
    if len(scales) == 1 and not flip:
        image, out_size = _prepare(model, image, out_size)
        (logits,) = _view_logits(model, image, out_size, mode, scales, flip, crop, stride, window_batch)
        return logits.argmax(dim=1)
    return predict_probs(model, image, out_size, mode=mode, scales=scales, flip=flip, crop=crop, stride=stride,
                         window_batch=window_batch).argmax(dim=1)
