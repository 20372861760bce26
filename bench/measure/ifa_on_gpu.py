"""What IFA ran as (formulation and kernels, for every result and `measure` row), and a note for GPU latencies of
IFA's fused formulation when it was asked for explicitly (torch-free: the sweep's driver prints the note too).

On an NVIDIA H200 (`make gpu-check`, round 10, docs/performance.md) the fused formulation, the faster one on CPU, was
slower than the reference: 2.2x (fp32) and 5.2x (bf16) for the head alone at 1024x2048, 1.3x for the whole
segmentor (rounds 2 and 8, before its host-to-GPU copies stopped blocking: 3-4.5x and 1.5x). Both compute the same
function from one state_dict, so a GPU latency taken with the fused one understates IFA. `formulation: auto` (the
default, bench/config/formulation.py) runs the reference one on a GPU, so the note is only for `fused` set by hand."""
from __future__ import annotations

from typing import Any

from bench.config.formulation import head_ran_as

FUSED_ON_GPU = ("IFA's fused formulation, set explicitly here, ran 1.3x slower than its reference formulation (whole "
                "R-50 model at 1024x2048; the head alone 2.2x in fp32, 5x in bf16) on an NVIDIA H200 in round 10 "
                "(docs/performance.md); for IFA's GPU latency set model.head.formulation: auto or reference (same "
                "weights, same outputs)")
RAN_KEYS = ("formulation", "ifa_kernels")
DEFAULT_KERNELS = "torch"  # what a head that does not say which kernels it ran (no `last_kernels`) ran


def fused_on_gpu_note(head: dict | None, device_type: str) -> str | None:
    """FUSED_ON_GPU when `head` (a model.head config as a dict) runs IFA's fused formulation on a GPU."""
    if device_type != "cuda" or head_ran_as(head, device_type) != "fused":
        return None
    return FUSED_ON_GPU


def what_ran(model: Any) -> dict[str, str]:
    """{"formulation", "ifa_kernels"} of a segmentor (or a DDP-wrapped one) after it ran: its IFA head's formulation
    and kernels ("torch" unless the head's `last_kernels` says otherwise); both "" for other heads."""
    model = getattr(model, "module", model)
    head = getattr(model, "head", None)
    formulation = getattr(head, "formulation", None)
    if not isinstance(formulation, str):
        return {"formulation": "", "ifa_kernels": ""}
    return {"formulation": formulation, "ifa_kernels": str(getattr(head, "last_kernels", None) or DEFAULT_KERNELS)}
