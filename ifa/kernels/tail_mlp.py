"""The IFA head's tail MLP in one kernel per block of queries: Linear + ReLU for every layer but the last, then
the last Linear, with the intermediate activations kept on chip.

Released widths: x (Q, 512) -> 256 -> 256 -> 19 classes. `_tail3` computes the first hidden layer for a block of
queries in full (BLOCK_M x 256, in registers), then walks the second hidden layer's output channels in chunks
of BLOCK_N: each chunk goes through bias + ReLU and straight into the last layer's accumulator, so the second
hidden activation is never whole anywhere. `_tail2` is the same walk for a tail of two layers, reading x in
chunks of BLOCK_K; it also runs the last two layers of a float32 tail without TF32, whose first layer stays a
cuBLAS linear (see `blocks`). Matmuls are `tl.dot` accumulating in float32 (float64 for float64 inputs: the
interpreter tests); each hidden activation is rounded to x's dtype before the next layer, as torch's linear
layers do.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from ._launch import Launch


@triton.jit
def _tail3(x, wa, ba, wb, bb, wc, bc, out, M, K, NA, NB, NC,
           stride_xm, stride_wa, stride_wb, stride_wc, stride_om,
           PREC: tl.constexpr, ACC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
           NA_PAD: tl.constexpr, BLOCK_N: tl.constexpr, NC_PAD: tl.constexpr):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mm = rm < M
    ra = tl.arange(0, NA_PAD)
    ma = ra < NA
    rc = tl.arange(0, NC_PAD)
    mc = rc < NC
    xrow = x + rm.to(tl.int64)[:, None] * stride_xm
    h = tl.zeros((BLOCK_M, NA_PAD), ACC)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        mk = rk < K
        a = tl.load(xrow + rk[None, :], mask=mm[:, None] & mk[None, :], other=0.0)
        w = tl.load(wa + ra[None, :] * stride_wa + rk[:, None], mask=mk[:, None] & ma[None, :], other=0.0)
        h = tl.dot(a, w.to(a.dtype), h, input_precision=PREC, out_dtype=ACC)
    h = tl.maximum(h + tl.load(ba + ra, mask=ma, other=0.0).to(ACC)[None, :], 0.0)
    h = h.to(x.dtype.element_ty)
    o = tl.zeros((BLOCK_M, NC_PAD), ACC)
    for n0 in range(0, NB, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        mn = rn < NB
        w = tl.load(wb + rn[None, :] * stride_wb + ra[:, None], mask=ma[:, None] & mn[None, :], other=0.0)
        g = tl.dot(h, w.to(h.dtype), input_precision=PREC, out_dtype=ACC)
        g = tl.maximum(g + tl.load(bb + rn, mask=mn, other=0.0).to(ACC)[None, :], 0.0).to(h.dtype)
        w = tl.load(wc + rc[None, :] * stride_wc + rn[:, None], mask=mn[:, None] & mc[None, :], other=0.0)
        o = tl.dot(g, w.to(h.dtype), o, input_precision=PREC, out_dtype=ACC)
    o += tl.load(bc + rc, mask=mc, other=0.0).to(ACC)[None, :]
    dst = out + rm.to(tl.int64)[:, None] * stride_om + rc[None, :]
    tl.store(dst, o.to(out.dtype.element_ty), mask=mm[:, None] & mc[None, :])


@triton.jit
def _tail2(x, wb, bb, wc, bc, out, M, K, NB, NC,
           stride_xm, stride_wb, stride_wc, stride_om,
           PREC: tl.constexpr, ACC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
           BLOCK_N: tl.constexpr, NC_PAD: tl.constexpr):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    mm = rm < M
    rc = tl.arange(0, NC_PAD)
    mc = rc < NC
    xrow = x + rm.to(tl.int64)[:, None] * stride_xm
    o = tl.zeros((BLOCK_M, NC_PAD), ACC)
    for n0 in range(0, NB, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        mn = rn < NB
        g = tl.zeros((BLOCK_M, BLOCK_N), ACC)
        for k0 in range(0, K, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            mk = rk < K
            a = tl.load(xrow + rk[None, :], mask=mm[:, None] & mk[None, :], other=0.0)
            w = tl.load(wb + rn[None, :] * stride_wb + rk[:, None], mask=mk[:, None] & mn[None, :], other=0.0)
            g = tl.dot(a, w.to(a.dtype), g, input_precision=PREC, out_dtype=ACC)
        g = tl.maximum(g + tl.load(bb + rn, mask=mn, other=0.0).to(ACC)[None, :], 0.0).to(x.dtype.element_ty)
        w = tl.load(wc + rc[None, :] * stride_wc + rn[:, None], mask=mn[:, None] & mc[None, :], other=0.0)
        o = tl.dot(g, w.to(g.dtype), o, input_precision=PREC, out_dtype=ACC)
    o += tl.load(bc + rc, mask=mc, other=0.0).to(ACC)[None, :]
    dst = out + rm.to(tl.int64)[:, None] * stride_om + rc[None, :]
    tl.store(dst, o.to(out.dtype.element_ty), mask=mm[:, None] & mc[None, :])


class Blocks(NamedTuple):
    kernel: str  # "tail3": all three layers in one kernel; "tail2": the last two ("split": the first in torch)
    block_m: int
    block_k: int
    block_n: int
    na_pad: int  # _tail3's first hidden width, padded to a power of two (held whole per block of queries)
    nc_pad: int
    num_warps: int
    num_stages: int


def _pad(n: int) -> int:
    return max(16, triton.next_power_of_2(n))  # tl.dot needs every dimension >= 16


def _fit(block_m: int, width: int, budget: int) -> int:
    """block_m halved until block_m x width accumulator elements fit the budget (0: not even 16 rows fit)."""
    while block_m >= 16 and block_m * width > budget:
        block_m //= 2
    return block_m if block_m >= 16 else 0


def blocks(dims: Sequence[int], dtype: torch.dtype, precision: str) -> Blocks:
    """Tiles for a tail with layer widths dims = [in, hidden..., classes] (2 or 3 layers).

    Chosen from sm_90 ahead-of-time builds (tests/ifa/kernels/test_sm90_compile.py: registers, spills, shared
    memory at the released widths), not timed on a GPU. The budgets bound the accumulators one block holds in
    registers (8 warps): 128 x (256 + 32) bf16-fed or 64 x (256 + 32) tf32-fed fit without spilling. A float32
    tail without TF32 uses FMA `tl.dot`s: in one kernel they spill 2.6-4.7 KB at 64 rows per block and fit only
    at 16-32 rows, which would re-read all the tail's weights every 16-32 queries. There the first layer (the
    widest GEMM) stays a cuBLAS linear and the kernel fuses the other two."""
    nc = _pad(dims[-1])
    small = dtype.itemsize <= 2
    if len(dims) == 4 and not (dtype == torch.float32 and precision == "ieee"):
        na = _pad(dims[1])
        bm = _fit(128 if small else 64, na + nc, 40960 if small else 20480)
        if bm:
            bk = bn = 64 if small else 32
            return Blocks("tail3", bm, min(bk, _pad(dims[0])), min(bn, _pad(dims[2])), na, nc, 8, 2)
    split = len(dims) == 4
    bk = bn = 64 if small else 32
    bm = _fit(64, bn + nc, 8192) or 16
    return Blocks("split" if split else "tail2", bm, min(bk, _pad(dims[-3])), min(bn, _pad(dims[-2])), 0, nc, 4, 2)


def _precision(dtype: torch.dtype, allow_tf32: Optional[bool]) -> str:
    if dtype != torch.float32:
        return "ieee"  # bf16/fp16 multiply exactly into the float32 accumulator; float64 is float64
    if allow_tf32 is None:
        allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    return "tf32" if allow_tf32 else "ieee"


def tail_mlp_triton(x: Tensor, layers: list[tuple[Tensor, Tensor]], allow_tf32: Optional[bool] = None) -> Tensor:
    """relu(... relu(x W1^T + b1) ...) W_last^T + b_last for x (Q, in); layers [(W (out, in), b (out,)), ...].
    Output (Q, classes) in x's dtype; weights and biases are cast to x's dtype inside the kernel. TF32 follows
    torch.backends.cuda.matmul.allow_tf32 unless `allow_tf32` says otherwise. The fused kernels take the last
    three (or two) layers; a longer tail runs its leading layers as torch linears, a one-layer tail is one."""
    if not layers:
        raise ValueError("tail_mlp_triton needs at least one layer")
    for wt, bs in layers[:-3]:
        x = F.relu(F.linear(x, wt.to(x.dtype), bs.to(x.dtype)))
    layers = layers[-3:]
    if len(layers) == 1:
        return F.linear(x, layers[0][0].to(x.dtype), layers[0][1].to(x.dtype))
    if x.stride(-1) != 1:
        x = x.contiguous()
    ws = [w if w.stride(-1) == 1 else w.contiguous() for w, _ in layers]
    bs = [b.contiguous() for _, b in layers]
    dims = [x.shape[1], *[w.shape[0] for w in ws]]
    for w, k in zip(ws, dims[:-1]):
        if w.shape[1] != k:
            raise ValueError(f"layer widths do not chain: {[tuple(w.shape) for w in ws]} after x {tuple(x.shape)}")
    m = x.shape[0]
    out = x.new_empty(m, dims[-1])
    if m == 0:
        return out
    prec = _precision(x.dtype, allow_tf32)
    cfg = blocks(dims, x.dtype, prec)
    if cfg.kernel == "split":
        # cuBLAS, so TF32 here follows torch.backends.cuda.matmul.allow_tf32 (the default allow_tf32=None agrees)
        x = F.relu(F.linear(x, ws[0].to(x.dtype), bs[0].to(x.dtype)))
        ws, bs = ws[1:], bs[1:]
    _launch(cfg, x, ws, bs, prec, out).run()
    return out


def _launch(cfg: Blocks, x: Tensor, ws: list[Tensor], bs: list[Tensor], prec: str, out: Tensor) -> Launch:
    m = x.shape[0]
    dims = (x.shape[1], *[w.shape[0] for w in ws])
    common = dict(PREC=prec, ACC=tl.float64 if x.dtype == torch.float64 else tl.float32, BLOCK_M=cfg.block_m,
                  BLOCK_K=cfg.block_k, BLOCK_N=cfg.block_n, NC_PAD=cfg.nc_pad)
    options = dict(num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    grid = (triton.cdiv(m, cfg.block_m),)
    if cfg.kernel == "tail3":
        return Launch(_tail3, grid, (x, ws[0], bs[0], ws[1], bs[1], ws[2], bs[2], out, m, *dims, x.stride(0),
                                     ws[0].stride(0), ws[1].stride(0), ws[2].stride(0), out.stride(0)),
                      dict(common, NA_PAD=cfg.na_pad), options)
    return Launch(_tail2, grid, (x, ws[0], bs[0], ws[1], bs[1], out, m, *dims, x.stride(0), ws[0].stride(0),
                                 ws[1].stride(0), out.stride(0)), common, options)
