"""Gather-sum: out[q] = relu?(bias + sum_s weight[q, s] * table[index[q, s]]), and its deterministic backward.

The fused head's first layer is one such sum over a table of per-level projected cells and PE tiles
(`F.embedding_bag(mode="sum")` on the torch path). Forward: one program per (block of queries, block of
columns), the slots summed in order in registers. Backward w.r.t. the table: a segment sum over the inverse
index (the (query, slot) pairs sorted by table row, built once per plan), no atomics, so two runs are bit-equal.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._launch import Launch


# From sm_90 ahead-of-time builds (no spills, about 100 registers: several blocks per SM for a memory-bound
# gather); not timed on a GPU.
BLOCK_Q = 32  # queries per forward program
BLOCK_W = 128  # columns per program (forward and backward)
BLOCK_C = 32  # contributions loaded at once in backward
# Most contributions one backward program sums. A PE-tile row is read by about Q / s^2 pairs: one program per row
# would serialise it, so longer rows are cut into pieces, summed in parallel, then joined in a fixed order.
SEGMENT = 2048
NUM_WARPS = 4
NUM_STAGES = 3


@triton.jit
def _gather_sum_fwd(table, index, weight, bias, out, Q, S, width,
                    stride_t, stride_iq, stride_is, stride_wq, stride_ws, stride_o,
                    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, RELU: tl.constexpr, ACC: tl.constexpr,
                    BLOCK_Q: tl.constexpr, BLOCK_W: tl.constexpr):
    rq = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    rw = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    mq = rq < Q
    mw = rw < width
    m2 = mq[:, None] & mw[None, :]
    acc = tl.zeros((BLOCK_Q, BLOCK_W), ACC)
    for s in range(S):
        row = tl.load(index + rq * stride_iq + s * stride_is, mask=mq, other=0).to(tl.int64)
        vals = tl.load(table + row[:, None] * stride_t + rw[None, :], mask=m2, other=0.0).to(ACC)
        if HAS_WEIGHT:
            wt = tl.load(weight + rq * stride_wq + s * stride_ws, mask=mq, other=0.0).to(ACC)
            vals = vals * wt[:, None]
        acc += vals
    if HAS_BIAS:
        acc += tl.load(bias + rw, mask=mw, other=0.0).to(ACC)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0, propagate_nan=tl.PropagateNan.ALL)
    dst = out + rq.to(tl.int64)[:, None] * stride_o + rw[None, :]
    tl.store(dst, acc.to(out.dtype.element_ty), mask=m2)


@triton.jit
def _gather_sum_bwd_pieces(grad, positions, weight, item_start, item_end, item_dest, grad_table, partial,
                           S, width, stride_g, stride_t, stride_p,
                           HAS_WEIGHT: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr,
                           BLOCK_W: tl.constexpr):
    """One work item: contributions [start, end) of the sorted positions, all for one table row. dest >= 0: the
    row itself (its only piece); dest < 0: partial row -1 - dest, summed by `_gather_sum_bwd_join`."""
    item = tl.program_id(0)
    rw = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    mw = rw < width
    start = tl.load(item_start + item)
    end = tl.load(item_end + item)
    dest = tl.load(item_dest + item)
    acc = tl.zeros((BLOCK_C, BLOCK_W), ACC)
    for c0 in range(start, end, BLOCK_C):
        rc = c0 + tl.arange(0, BLOCK_C)
        mc = rc < end
        p = tl.load(positions + rc, mask=mc, other=0).to(tl.int64)
        g = tl.load(grad + (p // S)[:, None] * stride_g + rw[None, :], mask=mc[:, None] & mw[None, :], other=0.0)
        g = g.to(ACC)
        if HAS_WEIGHT:
            g = g * tl.load(weight + p, mask=mc, other=0.0).to(ACC)[:, None]
        acc += g
    total = tl.sum(acc, axis=0)
    d = dest.to(tl.int64)
    if d >= 0:
        tl.store(grad_table + d * stride_t + rw, total.to(grad_table.dtype.element_ty), mask=mw)
    else:
        tl.store(partial + (-1 - d) * stride_p + rw, total.to(partial.dtype.element_ty), mask=mw)


@triton.jit
def _gather_sum_bwd_join(partial, split_rows, split_offsets, grad_table, width, stride_p, stride_t,
                         ACC: tl.constexpr, BLOCK_W: tl.constexpr):
    j = tl.program_id(0)
    rw = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)
    mw = rw < width
    acc = tl.zeros((BLOCK_W,), ACC)
    for k in range(tl.load(split_offsets + j), tl.load(split_offsets + j + 1)):
        acc += tl.load(partial + k * stride_p + rw, mask=mw, other=0.0).to(ACC)
    row = tl.load(split_rows + j).to(tl.int64)
    tl.store(grad_table + row * stride_t + rw, acc.to(grad_table.dtype.element_ty), mask=mw)


def acc_type(dtype: torch.dtype):
    """Accumulator: float64 for float64 inputs (the interpreter tests), float32 otherwise."""
    return tl.float64 if dtype == torch.float64 else tl.float32


class InverseIndex(NamedTuple):
    """Which (query, slot) pairs read each table row, cut into work items for the backward. Built once per
    plan (its torch ops synchronise with the device); depends only on the index, not on the weights."""
    positions: Tensor  # (Q * S,) flat positions q * S + s, sorted (stably) by table row
    offsets: Tensor  # (R + 1,) CSR: row r's contributions are positions[offsets[r]:offsets[r + 1]]
    item_start: Tensor  # (items,) pieces of at most `segment` contributions of one row, in row order
    item_end: Tensor
    item_dest: Tensor  # the row (a row with one piece) or -1 - its partial row (rows cut into pieces)
    split_rows: Tensor  # (n_split,) rows cut into pieces
    split_offsets: Tensor  # (n_split + 1,) their pieces' partial rows
    num_rows: int
    queries: int
    slots: int
    num_partials: int


def build_inverse_index(index: Tensor, num_rows: int, segment: int = SEGMENT) -> InverseIndex:
    """The inverse of `index` (Q, S) over a table of `num_rows` rows, on index's device."""
    q, s = index.shape
    dev = index.device
    pos_dtype = torch.int32 if q * s < 2 ** 31 else torch.int64
    flat = index.reshape(-1).long()
    positions = torch.argsort(flat, stable=True).to(pos_dtype)
    counts = torch.bincount(flat, minlength=num_rows)
    if counts.numel() > num_rows:
        raise ValueError(f"index refers to row {counts.numel() - 1} of a {num_rows}-row table")
    offsets = torch.zeros(num_rows + 1, dtype=torch.long, device=dev)
    offsets[1:] = counts.cumsum(0)
    pieces = ((counts + segment - 1) // segment).clamp_(min=1)  # an unread row still gets an item: it writes zeros
    item_row = torch.repeat_interleave(torch.arange(num_rows, device=dev), pieces)
    first_item = pieces.cumsum(0) - pieces
    item_start = offsets[item_row] + (torch.arange(item_row.numel(), device=dev) - first_item[item_row]) * segment
    item_end = torch.minimum(item_start + segment, offsets[item_row + 1])
    split = pieces > 1
    cut = split[item_row]
    item_dest = torch.where(cut, -1 - (cut.cumsum(0) - 1), item_row)
    split_offsets = torch.zeros(int(split.sum()) + 1, dtype=torch.long, device=dev)
    split_offsets[1:] = pieces[split].cumsum(0)
    return InverseIndex(positions, offsets, item_start, item_end, item_dest, split.nonzero().squeeze(1),
                        split_offsets, num_rows, q, s, int(split_offsets[-1]))


def _check_2d(name: str, t: Tensor, q: int, s: int) -> None:
    if t.shape != (q, s):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected ({q}, {s})")


def gather_sum_triton(table: Tensor, index: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
                      relu: bool = False) -> Tensor:
    """(Q, width) in table's dtype; accumulates in float32 (float64 for float64 tables)."""
    if table.stride(-1) != 1:
        table = table.contiguous()
    q, s = index.shape
    width = table.shape[1]
    if weight is not None:
        _check_2d("weight", weight, q, s)
    out = table.new_empty(q, width)
    if q == 0 or width == 0:
        return out
    if s == 0:
        out.copy_((bias if bias is not None else out.new_zeros(width)).expand(q, width))
        return out.relu_() if relu else out
    _forward_launch(table, index, weight, bias.contiguous() if bias is not None else None, relu, out).run()
    return out


def _forward_launch(table, index, weight, bias, relu, out) -> Launch:
    (q, s), width = index.shape, table.shape[1]
    wt = weight if weight is not None else index
    return Launch(_gather_sum_fwd, (triton.cdiv(q, BLOCK_Q), triton.cdiv(width, BLOCK_W)), (
        table, index, wt, bias if bias is not None else table, out, q, s, width,
        table.stride(0), index.stride(0), index.stride(1), wt.stride(0), wt.stride(1), out.stride(0)),
        dict(HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, RELU=relu, ACC=acc_type(table.dtype),
             BLOCK_Q=BLOCK_Q, BLOCK_W=BLOCK_W), dict(num_warps=NUM_WARPS, num_stages=NUM_STAGES))


def gather_sum_backward_triton(grad_out: Tensor, inverse: InverseIndex, weight: Optional[Tensor] = None,
                               dtype: Optional[torch.dtype] = None) -> Tensor:
    """d(sum)/d(table) for the gradient `grad_out` (Q, width) at the sum (after any ReLU mask is applied):
    grad_table[r] = sum over the pairs (q, s) that read row r of weight[q, s] * grad_out[q]. (R, width) in
    `dtype` (default grad_out's), accumulated in float32 (float64 for float64)."""
    q, width = grad_out.shape
    if q != inverse.queries:
        raise ValueError(f"grad_out has {q} rows, the inverse index {inverse.queries} queries")
    if grad_out.stride(-1) != 1:
        grad_out = grad_out.contiguous()
    if weight is not None:
        _check_2d("weight", weight, inverse.queries, inverse.slots)
        weight = weight.contiguous()
    acc = torch.float64 if grad_out.dtype == torch.float64 else torch.float32
    grad_table = grad_out.new_empty(inverse.num_rows, width, dtype=dtype or grad_out.dtype)
    if inverse.num_rows == 0 or width == 0:
        return grad_table
    partial = grad_out.new_empty(max(inverse.num_partials, 1), width, dtype=acc)
    for launch in _backward_launches(grad_out, inverse, weight, grad_table, partial):
        launch.run()
    return grad_table


def _backward_launches(grad_out, inverse, weight, grad_table, partial) -> list[Launch]:
    width = grad_out.shape[1]
    wblocks = triton.cdiv(width, BLOCK_W)
    acc, opts = acc_type(grad_out.dtype), dict(num_warps=NUM_WARPS, num_stages=NUM_STAGES)
    out = [Launch(_gather_sum_bwd_pieces, (inverse.item_start.numel(), wblocks), (
        grad_out, inverse.positions, weight if weight is not None else grad_out, inverse.item_start,
        inverse.item_end, inverse.item_dest, grad_table, partial, inverse.slots, width,
        grad_out.stride(0), grad_table.stride(0), partial.stride(0)),
        dict(HAS_WEIGHT=weight is not None, ACC=acc, BLOCK_C=BLOCK_C, BLOCK_W=BLOCK_W), opts)]
    if inverse.split_rows.numel():
        out.append(Launch(_gather_sum_bwd_join, (inverse.split_rows.numel(), wblocks), (
            partial, inverse.split_rows, inverse.split_offsets, grad_table, width, partial.stride(0),
            grad_table.stride(0)), dict(ACC=acc, BLOCK_W=BLOCK_W), opts))
    return out


class GatherSum(torch.autograd.Function):
    """`gather_sum_triton` with gradients for table (the Triton segment sum), weight and bias (torch).
    Pass the plan's cached `InverseIndex` to avoid building it in every backward."""

    @staticmethod
    def forward(ctx, table, index, weight, bias, relu, inverse):
        expected = (*index.shape, table.shape[0])
        if inverse is not None and (inverse.queries, inverse.slots, inverse.num_rows) != expected:
            raise ValueError(f"the inverse index is for {inverse.queries} x {inverse.slots} pairs over "
                             f"{inverse.num_rows} rows, not {tuple(index.shape)} over {table.shape[0]}")
        out = gather_sum_triton(table, index, weight, bias, relu)
        ctx.relu, ctx.inverse, ctx.num_rows = relu, inverse, table.shape[0]
        ctx.save_for_backward(index, weight, out if relu else None, table if ctx.needs_input_grad[2] else None)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        index, weight, out, table = ctx.saved_tensors
        g = torch.where(out > 0, grad_out, 0) if ctx.relu else grad_out
        grad_table = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            inverse = ctx.inverse if ctx.inverse is not None else build_inverse_index(index, ctx.num_rows)
            grad_table = gather_sum_backward_triton(g, inverse, weight)
        if ctx.needs_input_grad[2]:
            # materialises (Q, S, width): the head's weights are constants, this serves other callers
            grad_weight = (g.unsqueeze(1) * table[index.long()]).sum(-1)
        if ctx.needs_input_grad[3]:
            grad_bias = g.sum(0)
        return grad_table, None, grad_weight, grad_bias, None, None


def gather_sum(table: Tensor, index: Tensor, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               relu: bool = False, inverse: Optional[InverseIndex] = None) -> Tensor:
    return GatherSum.apply(table, index, weight, bias, relu, inverse)
