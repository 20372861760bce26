"""Optional CUDA-graph replay of the fused eval forward (`head.cuda_graph = True`).

Per plan (one shape, batch, dtype) the forward is captured once into a `torch.cuda.CUDAGraph` and replayed: the
inputs are copied into the graph's static input tensors, the graph replays every kernel of the forward with one
launch, and a clone of its static output is returned (the next replay overwrites the static output). What the
graph reads besides its inputs (plan indices, folded weights, the PE rows) lives in tensors that are refreshed in
place when parameters change (`ifa.eval_cache`), so a captured graph stays valid after an optimizer step.

Capture follows the torch.cuda.graphs recipe: warm-up calls on a side stream (lazy initialisation, cuBLAS
workspaces, Triton compilation), then capture under `torch.cuda.graph`, which uses its own memory pool.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor


def unavailable_reason(training: bool, grad: bool, feats: list[Tensor]) -> Optional[str]:
    """Why a forward cannot be graphed (None when it can)."""
    if training:
        return "training mode (BatchNorm statistics, autograd): not graphed"
    if grad:
        return "gradients enabled: not graphed"
    if feats[0].device.type != "cuda":
        return f"features on {feats[0].device.type}, CUDA graphs need CUDA tensors"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    if torch.cuda.is_current_stream_capturing():
        return "already inside a CUDA graph capture"
    return None


class GraphedForward:
    """One captured forward: static inputs, the graph, its static output."""

    def __init__(self, run: Callable[[list[Tensor]], Tensor], feats: list[Tensor], warmup: int = 2):
        self.static_inputs = [f.clone() for f in feats]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                run(self.static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_output = run(self.static_inputs)

    def matches(self, feats: list[Tensor]) -> bool:
        return all(a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
                   for a, b in zip(self.static_inputs, feats))

    def __call__(self, feats: list[Tensor]) -> Tensor:
        for dst, src in zip(self.static_inputs, feats):
            dst.copy_(src)
        self.graph.replay()
        return self.static_output.clone()
