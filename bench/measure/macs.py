"""Multiply-accumulate counts on fvcore's FlopCountAnalysis, with op handles for what IFA and the baselines run.

Convention (docs/measurement.md): one multiply-add = 1 MAC (fvcore's "flop"). On top of fvcore's defaults:
- gathers (`index`, `gather`, `index_select`, `take_along_dim`, `embedding`) and nearest sampling
  (`grid_sampler` mode nearest, `upsample_nearest2d`) are 0 MACs: they only move memory;
- `embedding_bag` with per-sample weights is 1 MAC per gathered value, without weights 0 (gather + adds);
- bilinear `grid_sampler` is 4 MACs per output element per channel (fvcore's assumption, now only for bilinear),
  bicubic `grid_sampler` / `upsample_bicubic2d` 16;
- `matmul`, `mm`, `bmm`, `baddbmm`, `addmm`, `linear`, `einsum`, `scaled_dot_product_attention` are counted as
  (output elements) x (contracted length), which stays right under broadcasting;
- elementwise ops, softmax and reductions count nothing (as in fvcore) but are *listed* in `unsupported_ops`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from math import prod
from typing import Any, Union

import torch
from torch import nn

# grid_sampler's interpolation_mode argument (ATen enum GridSamplerInterpolation).
_GRID_BILINEAR, _GRID_NEAREST, _GRID_BICUBIC = 0, 1, 2
_MACS_PER_OUTPUT = {_GRID_BILINEAR: 4, _GRID_NEAREST: 0, _GRID_BICUBIC: 16}


@dataclass
class MacCount:
    """MACs of one forward pass. `by_module` holds every submodule up to the requested depth
    ("backbone", "head", "head.mlp", ...); `unsupported_ops` is {aten op: number of calls} that count 0."""

    total: int
    by_module: dict[str, int]
    by_operator: dict[str, int]
    unsupported_ops: dict[str, int]
    uncalled_modules: list[str] = field(default_factory=list)

    @property
    def gmacs(self) -> float:
        return self.total / 1e9

    def gmacs_of(self, module_name: str) -> float:
        """GMACs of a submodule (0 if it is not listed, e.g. it never ran)."""
        if module_name == "":
            return self.gmacs
        return self.by_module.get(module_name, 0) / 1e9

    def unsupported_summary(self) -> str:
        """Compact, sorted "op*calls" string for tables and CSV cells."""
        return ",".join(f"{op.removeprefix('aten::')}*{n}" for op, n in sorted(self.unsupported_ops.items()))


def _shape(value) -> list[int] | None:
    return value.type().sizes() if value.isCompleteTensor() else None


def _const(value):
    return value.toIValue()


def _zero(inputs, outputs) -> int:
    return 0


def _embedding_bag(inputs, outputs) -> int:
    """Weighted bags (per_sample_weights): one multiply-add per gathered value. Unweighted bags gather and
    add, and adds are not MACs (as for aten::add), so they count 0."""
    weights = _shape(inputs[6]) if len(inputs) > 6 else None
    if weights is None:
        return 0
    return prod(_shape(inputs[1])) * _shape(inputs[0])[-1]


def _grid_sampler(inputs, outputs) -> int:
    mode = _const(inputs[2])
    per_output = _MACS_PER_OUTPUT.get(mode)
    if per_output is None:
        raise ValueError(f"grid_sampler: unknown interpolation mode {mode!r}")
    return per_output * prod(_shape(outputs[0]))


# The parameterised handles are plain functions bound with partial (not closures built at import), so their bodies
# run, and are mutation-tested, at count time.
def _per_output(n: int, inputs, outputs) -> int:
    return n * prod(_shape(outputs[0]))


def _contraction(first_operand: int, inputs, outputs) -> int:
    """out.numel() * K for matmul-like ops whose first contracted operand is inputs[first_operand]."""
    a = _shape(inputs[first_operand])
    return prod(_shape(outputs[0])) * a[-1]


def _linear(inputs, outputs) -> int:
    return prod(_shape(outputs[0])) * _shape(inputs[0])[-1]


def _sdpa(inputs, outputs) -> int:
    q, k, v = (_shape(x) for x in inputs[:3])
    batch = prod(q[:-2])
    length_q, dim_qk = q[-2], q[-1]
    length_kv, dim_v = k[-2], v[-1]
    return batch * length_q * length_kv * (dim_qk + dim_v)


def _einsum(inputs, outputs) -> int:
    equation = _const(inputs[0]).replace(" ", "")
    shapes = [_shape(v) for v in inputs[1].node().inputs()]
    lhs = equation.split("->")[0].split(",")
    if len(shapes) == 1:
        return 0  # permutation / trace / sum: no products
    if len(shapes) == 2:
        # Naive pairwise contraction: one multiply-add per point of the joint index space.
        sizes: dict[str, int] = {}
        for term, shape in zip(lhs, shapes):
            if "..." in term:
                n_ellipsis = len(shape) - (len(term) - 3)
                # numbered from the right: broadcasting aligns the ellipsis dims of operands of different rank there
                term = term.replace("...", "".join(chr(0x100 + n_ellipsis - 1 - i) for i in range(n_ellipsis)))
            for letter, size in zip(term, shape):
                sizes[letter] = max(sizes.get(letter, 1), size)
        return prod(sizes.values())
    # Three or more operands: numpy's optimal path on zero-stride views (no memory); numpy counts
    # a multiply and an add separately, so halve it as fvcore does.
    import numpy as np

    views = [np.broadcast_to(np.zeros((), dtype=np.float32), s) for s in shapes]
    report = np.einsum_path(equation, *views, optimize="optimal")[1]
    for line in report.splitlines():
        if "optimized flop" in line.lower():
            return int(float(line.split(":")[-1]) / 2)
    raise NotImplementedError(f"einsum: cannot count {equation!r}")


# Overrides/extensions of fvcore's _DEFAULT_SUPPORTED_OPS (read for fvcore 0.1.5.post20221221).
OP_HANDLES = {
    "aten::grid_sampler": _grid_sampler,
    "aten::upsample_nearest2d": _zero,
    "aten::upsample_bicubic2d": partial(_per_output, 16),
    "aten::index": _zero,
    "aten::gather": _zero,
    "aten::index_select": _zero,
    "aten::take_along_dim": _zero,
    "aten::embedding": _zero,
    "aten::embedding_bag": _embedding_bag,
    # Shape queries and constant fills, like fvcore's ignored aten::size / zeros_like / full_like.
    "aten::numel": _zero,
    "aten::ones_like": _zero,
    "aten::empty_like": _zero,
    "aten::new_ones": _zero,
    "aten::matmul": partial(_contraction, 0),
    "aten::mm": partial(_contraction, 0),
    "aten::bmm": partial(_contraction, 0),
    "aten::addmm": partial(_contraction, 1),
    "aten::baddbmm": partial(_contraction, 1),
    "aten::linear": _linear,
    "aten::einsum": _einsum,
    "aten::scaled_dot_product_attention": _sdpa,
}


def _called_able(model: nn.Module, names) -> list[str]:
    """Uncalled modules minus containers that have no forward of their own (ModuleList, ModuleDict, ...)."""
    modules = dict(model.named_modules())
    no_forward = {nn.Module.forward, nn.ModuleList.forward, nn.ModuleDict.forward, nn.Identity.forward}
    return sorted(n for n in names if n in modules and type(modules[n]).forward not in no_forward)


def _depth(name: str) -> int:
    return 0 if name == "" else name.count(".") + 1


def count_macs(
    model: nn.Module,
    inputs: Union[torch.Tensor, tuple[Any, ...]],
    *,
    by_module_depth: int = 2,
) -> MacCount:
    """Trace `model(*inputs)` once and count MACs. The model is used in its current mode (call .eval() first
    for inference numbers); gradients are off during the trace."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fvcore imports torch.jit.script users
        from fvcore.nn import FlopCountAnalysis

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    analysis = FlopCountAnalysis(model, inputs)
    analysis.set_op_handle(**OP_HANDLES)
    # Warnings off: the data is returned instead (unsupported_ops, uncalled_modules).
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    fvcore_logger = logging.getLogger("fvcore.nn.jit_analysis")
    previous_level = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            total = int(analysis.total())
    finally:
        fvcore_logger.setLevel(previous_level)
    by_module = {
        name: int(n) for name, n in analysis.by_module().items() if 0 < _depth(name) <= by_module_depth
    }
    return MacCount(
        total=total,
        by_module=dict(sorted(by_module.items())),
        by_operator={op: int(n) for op, n in sorted(analysis.by_operator().items())},
        unsupported_ops=dict(sorted(analysis.unsupported_ops().items())),
        uncalled_modules=_called_able(model, analysis.uncalled_modules()),
    )
