"""Per-shape plans of the fused formulation: every index, weight and PE coordinate that depends only on shapes.

A plan is built once per key (query size, level sizes, batch, sampling, ensemble flags, PE kind, mode, band rows,
device, dtype) on the host, copied to the features' device once, and kept in a bounded LRU (`PlanCache`, owned
by the head). After the first call at a shape the fused forward does no host work: no host-to-device copy, no
`unique`, no `.item()`.

Layout of the table that the gather reads (`ifa.fused_ops.gather_sum`), rows of the first layer's width:
    [PE rows of every band | level rows of the band being evaluated]
- PE rows: per band and PE group, `W_pe PE(rel) (+ bias)` once per distinct (row type, column type). A row type
  is what the PE terms of the group's levels depend on along y (per level: coordinates and ensemble weights of
  its slots); the same along x. An integer scale s gives an s x s tile; a non-integer scale about one row per
  query. Eval: one group with all levels (the table is cached, so one gather column is best). Training (the
  table is recomputed per call and differentiated): each level whose types are few gets its own tile, the others
  share one group.
- level rows: per level, `N x (hi - lo) x W_l` projected cells (the level rows the band needs), in that order.
Index (N * b * w, S) and weights (same shape, or None without an ensemble): per query, one column per level and
neighbour pair, then one per PE group.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Optional

import torch
from torch import Tensor

from .coords import axis_sampling, neighbour_slots, pair_weight

# A level whose PE takes more than 1/8 as many distinct values as there are queries is "dense" (per query).
DENSE_PE_FRACTION = 8


@dataclass
class PEGroup:
    """PE table of some levels over the band's distinct (row type, column type) pairs: (rows * cols, width)."""

    levels: tuple[int, ...]
    rows: int
    cols: int
    offset: int  # first row in the table's PE block
    bias: bool  # the first layer's bias is added to this group's table
    # per level of `levels`: (coord_y (K, rows), weight_y (K, rows), coord_x (K, cols), weight_x (K, cols))
    coords: list[tuple[Tensor, Tensor, Tensor, Tensor]]

    @property
    def size(self) -> int:
        return self.rows * self.cols


@dataclass
class BandPlan:
    i0: int
    i1: int
    level_rows: list[tuple[int, int]]  # per level: [lo, hi) of the level rows this band reads
    level_offsets: list[int]  # per level: first row in the level block
    level_block: int  # rows of the level block (all levels, all images)
    groups: list[PEGroup]
    index: Tensor  # (N * b * w, S), int32 or int64, on the device
    weight: Optional[Tensor]  # (N * b * w, S) in the plan's dtype, or None


@dataclass
class FusedPlan:
    key: Hashable
    size: tuple[int, int]
    batch: int
    bands: list[BandPlan]
    pe_rows: int  # rows of the PE block (all bands)
    state: dict = field(default_factory=dict)  # eval caches that hang off the plan (see ifa.eval_cache)


@dataclass(frozen=True)
class _Axis:
    index: Tensor  # (K, q) long
    weight: Tensor  # (K, q) float64
    coord: Tensor  # (K, q) float64: the PE coordinate (relative, or absolute query position)
    factor: Optional[int]


def _axis(q: int, n: int, ensemble: bool, absolute: bool, sampling: str) -> _Axis:
    with torch.inference_mode(False):
        s = axis_sampling(q, n, ensemble=ensemble, dtype=torch.float64, sampling=sampling)
        coord = s.query.expand(s.k, q) if absolute else s.rel
        return _Axis(s.index, s.weight, coord, s.factor)


def _types(axes: list[_Axis], lo: int, hi: int) -> tuple[Tensor, list[Tensor]]:
    """Distinct joint types of positions [lo, hi) over the given levels' axes.
    Returns (inverse (hi - lo,) long, per level the (2K, U) [coord; weight] description of each type)."""
    desc = torch.cat([torch.cat([a.coord[:, lo:hi], a.weight[:, lo:hi]]) for a in axes]).t().contiguous()
    types, inverse = torch.unique(desc, dim=0, return_inverse=True)
    out, c = [], 0
    for a in axes:
        k = a.coord.shape[0]
        out.append(types[:, c:c + 2 * k].t().contiguous())
        c += 2 * k
    return inverse, out


def rows_needed(index_y: Tensor, i0: int, i1: int) -> tuple[int, int]:
    rows = index_y[:, i0:i1]
    return int(rows.min()), int(rows.max()) + 1


def build_plan(key: Hashable, size: tuple[int, int], level_sizes: list[tuple[int, int]], batch: int, *,
               ensemble: bool, defect: bool, absolute: bool, sampling: str, training: bool, whole_levels: bool,
               bands: list[tuple[int, int]], device, dtype, weight_dtype=None) -> FusedPlan:
    """All shape-only data of the fused forward, built on the host (float64, exact) and moved to `device` once.
    PE coordinates in `dtype` (the features'), ensemble weights in `weight_dtype` (the table's; default `dtype`).
    training: PE grouping of the training path (a tile per sparse level), else one group. whole_levels: the level
    block holds whole levels (training projects whole maps) instead of the rows each band needs."""
    h, w = size
    with torch.inference_mode(False), torch.no_grad():
        ys = [_axis(h, hl, ensemble, absolute, sampling) for hl, _ in level_sizes]
        xs = [_axis(w, wl, ensemble, absolute, sampling) for _, wl in level_sizes]
        pairs = [neighbour_slots(a.index.shape[0], defect) for a in ys]
        band_plans, pe_rows = [], 0
        for i0, i1 in bands:
            b = i1 - i0
            level_rows = [(0, hl) if whole_levels else rows_needed(a.index, i0, i1)
                          for a, (hl, _) in zip(ys, level_sizes)]
            # PE groups: eval one group of all levels; training a tile per sparse level, one group for the rest
            if training:
                sparse, dense = [], []
                for l, (ay, ax) in enumerate(zip(ys, xs)):
                    uy = _types([ay], i0, i1)[1][0].shape[1]
                    ux = _types([ax], 0, w)[1][0].shape[1]
                    (dense if DENSE_PE_FRACTION * uy * ux > b * w else sparse).append((l,))
                members = sparse + ([tuple(l for (l,) in dense)] if dense else [])
            else:
                members = [tuple(range(len(level_sizes)))]
            groups, g_index, offset = [], [], pe_rows
            for gi, levels in enumerate(members):
                inv_y, ty = _types([ys[l] for l in levels], i0, i1)
                inv_x, tx = _types([xs[l] for l in levels], 0, w)
                coords = []
                for l, dy, dx in zip(levels, ty, tx):
                    k = ys[l].coord.shape[0]
                    coords.append(tuple(t.to(device=device, dtype=dtype) for t in (dy[:k], dy[k:], dx[:k], dx[k:])))
                g = PEGroup(levels, dy.shape[1], dx.shape[1], offset, gi == 0, coords)
                groups.append(g)
                g_index.append(offset + inv_y[:, None] * g.cols + inv_x[None, :])
                offset += g.size
            pe_rows = offset
            band_plans.append((i0, i1, level_rows, groups, g_index))
        total_rows = pe_rows + max(batch * sum((hi - lo) * wl for (lo, hi), (_, wl) in zip(lr, level_sizes))
                                   for _, _, lr, _, _ in band_plans)
        index_dtype = torch.int32 if total_rows < 2**31 else torch.int64
        out = []
        for i0, i1, level_rows, groups, g_index in band_plans:
            b = i1 - i0
            image = torch.arange(batch)[:, None, None]
            cols, weights, offsets, off = [], [], [], pe_rows
            for l, ((lo, hi), (_, wl)) in enumerate(zip(level_rows, level_sizes)):
                offsets.append(off - pe_rows)
                per_image = (hi - lo) * wl
                for ky, kx in pairs[l]:
                    cell = (ys[l].index[ky, i0:i1] - lo)[:, None] * wl + xs[l].index[kx][None, :]
                    cols.append(off + image * per_image + cell)
                    weights.append(pair_weight(ys[l].weight[:, i0:i1], xs[l].weight, ky, kx, defect))
                off += batch * per_image
            cols += g_index
            weights += [None] * len(g_index)
            index = torch.stack([c.expand(batch, b, w) for c in cols], -1).reshape(-1, len(cols))
            weight = None
            if ensemble:
                ones = torch.ones(b, w, dtype=torch.float64)
                weight = torch.stack([(x if x is not None else ones).expand(batch, b, w) for x in weights], -1)
                weight = weight.reshape(-1, len(cols)).to(device=device, dtype=weight_dtype or dtype)
            out.append(BandPlan(i0, i1, level_rows, offsets, off - pe_rows, groups,
                                index.to(device=device, dtype=index_dtype), weight))
    return FusedPlan(key, size, batch, out, pe_rows)


class PlanCache:
    """A bounded LRU of plans (and whatever hangs off them). `maxsize` may be changed at any time."""

    def __init__(self, maxsize: int = 8):
        self.maxsize = maxsize
        self._plans: OrderedDict[Hashable, FusedPlan] = OrderedDict()
        self.builds = 0  # plans built so far (a miss builds one)

    def get(self, key: Hashable, build: Callable[[], FusedPlan]) -> FusedPlan:
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        plan = build()
        self.builds += 1
        self._plans[key] = plan
        while len(self._plans) > max(1, self.maxsize):
            self._plans.popitem(last=False)
        return plan

    def clear(self) -> None:
        self._plans.clear()

    def __len__(self) -> int:
        return len(self._plans)

    def keys(self) -> list[Any]:
        return list(self._plans)
