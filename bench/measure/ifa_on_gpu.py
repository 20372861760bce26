"""A note for GPU latencies of IFA's fused formulation (torch-free: the sweep's driver prints it too).

On an NVIDIA H200 (`make gpu-check`, round 10, docs/performance.md) the fused formulation, the config default
and the faster one on CPU, was slower than the reference: 2.2x (fp32) and 5.2x (bf16) for the head alone at
1024x2048, 1.3x for the whole segmentor (rounds 2 and 8, before its host-to-GPU copies stopped blocking: 3-4.5x and
1.5x). Both compute the same function from one state_dict, so a GPU latency taken with the fused one
understates IFA."""
from __future__ import annotations

FUSED_ON_GPU = ("IFA's fused formulation ran 1.3x slower than its reference formulation (whole R-50 model at "
                "1024x2048; the head alone 2.2x in fp32, 5x in bf16) on an NVIDIA H200 (docs/performance.md); "
                "for IFA's GPU latency set model.head.formulation: reference (same weights, same outputs)")


def fused_on_gpu_note(head: dict | None, device_type: str) -> str | None:
    """FUSED_ON_GPU when `head` (a model.head config as a dict) is IFA's fused formulation timed on a GPU."""
    if device_type != "cuda" or not head or head.get("name") != "ifa":
        return None
    return FUSED_ON_GPU if head.get("formulation", "fused") == "fused" else None
