"""Will it fit? Memory estimates checked before anything is allocated, so an impossible size is one line and
exit 2 instead of an allocation traceback or the kernel's OOM killer.

The model estimate is deliberately low, per input pixel in float32: the 3-channel input plus the backbone stem's
activations at stride 2 (C stem channels = 64 x width, 32 x width for the v1c stem; C/4 values per input pixel),
counted 3 times in inference (a convolution's output, its norm's output, the max-pool input) and 6 times in
training (kept for backward, plus gradients), plus the int64 labels. For ResNet-50 at 1024x2048 that is
204 bytes per pixel in inference; docs/measurement.md measures 324 (649 MiB). Real training takes several
times the estimate, so a refusal is right by a wide margin, and passing the check is no promise that a run fits.
Evaluation adds the per-class score map accumulated at the image's size, and in slide mode the stitched logits at
the scaled size. The synthetic generator's figure is its measured peak (about 190 bytes per pixel at 256x512).

Available memory: psutil's `available` for the host; torch.cuda.mem_get_info for a CUDA device.
Iteration counts are bounded separately by MAX_ITERATIONS (the config refuses more).
"""
from __future__ import annotations

import psutil

from bench.errors import UserError

MAX_ITERATIONS = 10**9  # a billion optimiser steps: far beyond any schedule, small enough to stay an int64
FLOAT32 = 4
NARROWEST_STEM = 8  # channels: a v1c stem at width 0.25
SYNTH_BYTES_PER_PIXEL = 160


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


def available_bytes(device=None) -> int:
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def stem_channels(backbone) -> int:
    """Channels of the first stem convolution of a BackboneConfig (or anything with .stem and .width)."""
    base = 32 if getattr(backbone, "stem", "standard") == "v1c" else 64
    return max(NARROWEST_STEM, round(base * float(getattr(backbone, "width", 1.0))))


def forward_bytes(batch: int, height: int, width: int, training: bool = False,
                  stem: int = NARROWEST_STEM) -> int:
    """Low estimate of one forward (and backward, if training) pass at batch x height x width."""
    per_pixel = 3 + (6 if training else 3) * stem / 4 + (2 if training else 0)
    return int(int(batch) * int(height) * int(width) * per_pixel * FLOAT32)


def eval_bytes(height: int, width: int, scales, num_classes: int, window=None, stem: int = NARROWEST_STEM) -> int:
    """Low estimate of evaluating one height x width image: the per-class score map at the image's size plus the
    largest view: the whole rescaled image, or one slide window and the logits stitched at the scaled size."""
    views = []
    for s in scales:
        h, w = max(1, round(height * s)), max(1, round(width * s))
        if window is None:
            views.append(forward_bytes(1, h, w, stem=stem))
        else:
            views.append(forward_bytes(1, *window, stem=stem) + int(num_classes) * h * w * FLOAT32)
    return int(num_classes) * int(height) * int(width) * FLOAT32 + max(views)


def synth_bytes(height: int, width: int) -> int:
    return int(height) * int(width) * SYNTH_BYTES_PER_PIXEL


def require_fits(needed: int, what: str, device=None) -> None:
    """UserError `what: needs about X, Y available` when the estimate exceeds the free memory (of `device`, or
    the host's); `what` names the flag or key and the value."""
    available = available_bytes(device)
    if needed > available:
        where = "on " + str(device) if device is not None and getattr(device, "type", "") == "cuda" else "in RAM"
        raise UserError(f"{what}: needs at least {gib(needed)} of memory, {gib(available)} available {where}")
