"""The IFA head (Hu et al., ECCV 2022): implicit feature alignment by querying every level at each output point.

One set of parameters, two formulations (switch `head.formulation` at run time; both load the same state_dict):
- "reference": per query, gather the nearest cell of every reduced level, concatenate [PE_l, feat_l] over
  levels (4 x (26 + 256) = 1128 channels in the release), run the MLP. What hzhupku/IFA computes.
- "fused": the first MLP layer is linear, so W x = sum_l gather_l(W_f_l F_l) + sum_l W_pe_l PE_l. The feature
  term is a 1x1 projection at each level's own resolution followed by an integer-index gather; the PE term is a
  table over the distinct relative coordinates (an s x s tile for an integer scale s, about one row per query
  otherwise). Projected cells and PE rows form one table, and one gather-sum (ifa.fused_ops.gather_sum) adds, per
  query, its rows. The 1128-channel tensor is never built. Everything that depends only on shapes is a cached
  plan (ifa.plan); in eval mode folded weights and PE rows are cached too (ifa.eval_cache), so a call after the
  first at a shape does no host work. Training uses an autograd function per BatchNorm-ReLU-linear triple that
  stores only the BatchNorm input. See docs/ifa.md for the arithmetic.

Memory: in eval mode the fused formulation runs on whole maps unless `memory_budget_mb` / `chunk_queries` ask for
bands of query rows (it then projects each level only for the rows a band needs); the reference always runs in
bands. In training mode both run unchunked: BatchNorm needs statistics over all queries.
"""
from __future__ import annotations

import contextlib
import math
from functools import lru_cache
from typing import Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .coords import SAMPLINGS, axis_sampling, neighbour_slots, pair_weight
from .cuda_graph import GraphedForward, unavailable_reason
from .eval_cache import FoldedWeights, WeightCache, fold_weights, param_signature
from .fused_ops import KERNELS, addmm_relu, select_kernels
from .mlp import QueryMLP, bn_relu_linear
from .plan import FusedPlan, PEGroup, PlanCache, build_plan
from .positional import build_positional
from .shape_spec import ShapeSpec

FORMULATIONS = ("reference", "fused")


@lru_cache(maxsize=128)
def _axis_plan(q: int, n: int, ensemble: bool, absolute: bool, sampling: str):
    """Sampling of one axis plus its distinct 'row types' for the PE table (CPU, float64, cached).

    A type is what the PE term of a query depends on along this axis: its per-slot coordinate and weight.
    Returns (sampling, types (U, 2K), inverse (q,)).
    """
    # The cache outlives the call: tensors made under torch.inference_mode() could never be used by a later
    # training forward, so the plan is always built outside it.
    with torch.inference_mode(False):
        s = axis_sampling(q, n, ensemble=ensemble, dtype=torch.float64, sampling=sampling)
        coord = s.query.expand(s.k, q) if absolute else s.rel
        desc = torch.cat([coord, s.weight], dim=0).t().contiguous()
        types, inverse = torch.unique(desc, dim=0, return_inverse=True)
    return s, types, inverse


class _LevelPlan:
    """Per-forward view of one level: sampling on both axes, moved to the features' device and dtype."""

    def __init__(self, size: tuple[int, int], level_hw: tuple[int, int], ensemble: bool, absolute: bool,
                 defect: bool, sampling: str, device, dtype):
        self.h, self.w = size
        self.hl, self.wl = level_hw
        sy, self.types_y, self.inv_y = _axis_plan(self.h, self.hl, ensemble, absolute, sampling)
        sx, self.types_x, self.inv_x_cpu = _axis_plan(self.w, self.wl, ensemble, absolute, sampling)
        self.defect = defect
        self.sy_cpu, self.sx_cpu = sy, sx
        self.k = sy.k
        self.pairs = neighbour_slots(self.k, defect)
        self.factor_y, self.factor_x = sy.factor, sx.factor
        self.iy = to_device(sy.index, device)
        self.ix = to_device(sx.index, device)
        self.wy = to_device(sy.weight, device, dtype)
        self.wx = to_device(sx.weight, device, dtype)
        self.cy = to_device(sy.query.expand(sy.k, self.h) if absolute else sy.rel, device, dtype)
        self.cx = to_device(sx.query.expand(sx.k, self.w) if absolute else sx.rel, device, dtype)
        self.types_x_dev = to_device(self.types_x, device, dtype)
        self.device, self.dtype = device, dtype

    def rows_needed(self, i0: int, i1: int) -> tuple[int, int]:
        rows = self.sy_cpu.index[:, i0:i1]
        return int(rows.min()), int(rows.max()) + 1


def to_device(t: Tensor, device, dtype=None) -> Tensor:
    """A tensor built on the host (sampling indices, weights, PE coordinates) onto the features' device. To a GPU it
    goes through pinned memory without blocking: a plain copy from pageable memory first waits for all the GPU work
    queued before it. With the plan cache (ifa/plan.py) these copies happen only on the first call at a shape.
    tests/ifa/test_no_gpu_sync.py checks that no copy blocks."""
    if dtype is not None:
        t = t.to(dtype)
    if torch.device(device).type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def _bands(h: int, rows: int, align: int) -> list[tuple[int, int]]:
    if rows >= align:
        rows -= rows % align
    rows = max(1, min(rows, h))
    return [(i, min(i + rows, h)) for i in range(0, h, rows)]


class IFAHead(nn.Module):
    supports_query_size = True

    def __init__(
        self,
        input_shape: Mapping[str, ShapeSpec],
        num_classes: int,
        channels: int = 256,
        in_features: Sequence[str] = ("c2", "c3", "c4", "c5"),
        pe: str = "sinusoidal",
        pe_dim: int = 24,
        pe_learnable_freq: bool = True,
        mlp: Sequence[int] = (512, 256, 256),
        local_ensemble: bool = False,
        released_ensemble_defect: bool = False,
        sampling: str = "exact",
        formulation: str = "fused",
        chunk_queries: Optional[int] = None,
        memory_budget_mb: int = 1024,
        align_corners: bool = True,
        kernels: str = "auto",
        cuda_graph: bool = False,
        plan_cache_size: int = 8,
    ):
        super().__init__()
        missing = [f for f in in_features if f not in input_shape]
        if missing or not in_features:
            raise ValueError(f"in_features {list(in_features)}: not in the backbone's outputs {sorted(input_shape)}")
        if released_ensemble_defect and not local_ensemble:
            raise ValueError("released_ensemble_defect=True reproduces a bug of the local ensemble; "
                             "it needs local_ensemble=True")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if released_ensemble_defect and sampling != "release":
            raise ValueError("released_ensemble_defect=True reproduces the release's float32 ensemble; "
                             "it needs sampling='release'")
        if local_ensemble and not released_ensemble_defect and sampling == "release":
            raise ValueError("the correct local ensemble has no release counterpart: use sampling='exact', "
                             "or released_ensemble_defect=True for the release's ensemble")
        if chunk_queries is not None and chunk_queries < 1:
            raise ValueError(f"chunk_queries must be positive, got {chunk_queries}")
        self.in_features = tuple(in_features)
        self.num_classes = num_classes
        self.channels = channels
        self.local_ensemble = local_ensemble
        self.released_ensemble_defect = released_ensemble_defect
        self.sampling = sampling
        self.formulation = formulation
        self.chunk_queries = chunk_queries
        self.memory_budget_mb = memory_budget_mb
        self.align_corners = align_corners
        if kernels not in KERNELS:
            raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
        self.kernels = kernels  # fused eval: "auto" (Triton on CUDA when it imports), "torch", "triton"
        self.last_kernels: Optional[str] = None  # which kernels the last fused forward ran ("torch" / "triton")
        self.cuda_graph = cuda_graph  # fused eval on CUDA: capture per shape and replay (ifa.cuda_graph)
        self.cuda_graph_status = "off" if not cuda_graph else "not run yet"
        self.plans = PlanCache(plan_cache_size)  # fused: per-shape plans, LRU, `self.plans.maxsize` bounds it
        self._weights = WeightCache()  # fused eval: folded weights per dtype
        self._reference_plans = PlanCache(plan_cache_size)  # reference: per-shape level plans, LRU
        strides = [input_shape[f].stride for f in self.in_features]
        self.query_feature = self.in_features[strides.index(min(strides))]
        self.output_stride = min(strides)
        # level cells per query at the default query grid (1 + 1/4 + 1/16 + 1/64 for strides 4..32)
        self._cells_per_query = sum((min(strides) / st) ** 2 for st in strides)
        self.extra_loss_weights: dict[str, float] = {}

        self.reduce = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(input_shape[f].channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
            )
            for f in self.in_features
        )
        self.pe = nn.ModuleList(build_positional(pe, pe_dim, pe_learnable_freq) for _ in self.in_features)
        self.pe_out = self.pe[0].out_dim
        self.absolute_pe = bool(self.pe[0].uses_absolute_position)
        self.in_dim = len(self.in_features) * (self.pe_out + channels)
        self.mlp = QueryMLP(self.in_dim, mlp, num_classes)

    # -- public ---------------------------------------------------------------------------------------
    @property
    def formulation(self) -> str:
        return self._formulation

    @formulation.setter
    def formulation(self, value: str) -> None:
        if value not in FORMULATIONS:
            raise ValueError(f"formulation must be one of {FORMULATIONS}, got {value!r}")
        self._formulation = value

    def forward(self, features: Mapping[str, Tensor], size: Optional[Sequence[int]] = None) -> Tensor:
        feats = [features[f] for f in self.in_features]
        if size is None:
            size = tuple(features[self.query_feature].shape[-2:])
        size = (int(size[0]), int(size[1]))
        if size[0] < 1 or size[1] < 1:
            raise ValueError(f"query size must be positive, got {size}")
        if self.formulation == "fused":
            return self._forward_fused(feats, size)
        return self._forward_reference(feats, self._reference_plans_for(feats, size), size)

    def bytes_per_query(self, formulation: Optional[str] = None, element_size: int = 4) -> int:
        """Rough peak bytes per query and image of the working set of one eval band."""
        widths = [lin.out_features for lin in self.mlp.linears]
        k2 = 4 if self.local_ensemble else 1
        if (formulation or self.formulation) == "reference":
            per = 2 * self.in_dim + (k2 - 1) * (self.in_dim // len(self.in_features)) + 2 * widths[0] + widths[-1]
        else:
            # table rows (level cells + at most one PE row per query), the gather's output, one hidden layer, logits
            per = int(math.ceil((self._cells_per_query + 1) * widths[0])) + widths[0] + max(widths[1:-1] or [0]) + widths[-1]
        return element_size * per

    def band_rows(self, size: tuple[int, int], batch: int, element_size: int = 4) -> int:
        """Query rows per eval band: from chunk_queries if set, else from memory_budget_mb."""
        h, w = size
        if self.chunk_queries is not None:
            queries = self.chunk_queries
        else:
            queries = self.memory_budget_mb * 2**20 // (batch * self.bytes_per_query(element_size=element_size))
        return max(1, min(h, queries // w))

    # -- reference ------------------------------------------------------------------------------------
    def _reference_plans_for(self, feats: list[Tensor], size: tuple[int, int]) -> list[_LevelPlan]:
        """The levels' sampling plans at this shape, built once (torch.unique: a data-dependent shape that
        torch.compile cannot trace, so building them per call broke every compiled forward's graph)."""
        f = feats[0]
        key = (size, tuple(tuple(x.shape[-2:]) for x in feats), self.local_ensemble, self.absolute_pe,
               self.released_ensemble_defect, self.sampling, f.device, f.dtype)

        def build() -> list[_LevelPlan]:
            # cached across calls: tensors made under inference_mode could never serve a later training forward
            with torch.inference_mode(False), torch.no_grad():
                return [_LevelPlan(size, tuple(x.shape[-2:]), self.local_ensemble, self.absolute_pe,
                                   self.released_ensemble_defect, self.sampling, x.device, x.dtype) for x in feats]

        return self._reference_plans.get(key, build)

    def _forward_reference(self, feats: list[Tensor], plans: list[_LevelPlan], size) -> Tensor:
        h, w = size
        reduced = [red(f) for red, f in zip(self.reduce, feats)]
        n = feats[0].shape[0]
        rows = h if self.training else self.band_rows(size, n, feats[0].element_size())
        out = []
        for i0, i1 in _bands(h, rows, 1):
            ctx = torch.cat([self._reference_context(l, r, p, i0, i1) for l, (r, p) in enumerate(zip(reduced, plans))], -1)
            logits = self.mlp(ctx.reshape(-1, self.in_dim))
            out.append(logits.view(n, i1 - i0, w, self.num_classes))
        return torch.cat(out, dim=1).permute(0, 3, 1, 2).contiguous()

    def _reference_context(self, level: int, r: Tensor, p: _LevelPlan, i0: int, i1: int) -> Tensor:
        """[PE(coord), feature] of the level per query of rows [i0, i1), (N, b, w, P + C); ensemble-weighted."""
        n, b = r.shape[0], i1 - i0
        total = None
        for ky, kx in p.pairs:
            iy, ix = p.iy[ky, i0:i1], p.ix[kx]
            feat = r[:, :, iy[:, None], ix[None, :]].permute(0, 2, 3, 1)
            coord = torch.stack([p.cy[ky, i0:i1][:, None].expand(b, p.w), p.cx[kx][None, :].expand(b, p.w)], -1)
            pe = self.pe[level](coord).expand(n, b, p.w, self.pe_out)
            ctx = torch.cat([pe, feat], dim=-1)
            if self.local_ensemble:
                ctx = ctx * pair_weight(p.wy[:, i0:i1], p.wx, ky, kx, p.defect)[None, :, :, None]
            total = ctx if total is None else total + ctx
        return total

    # -- fused ----------------------------------------------------------------------------------------
    def _first_layer_slices(self, weight: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(W_pe_l, W_f_l) column blocks of the first layer's weight, per level ([PE_l, feat_l] order)."""
        step = self.pe_out + self.channels
        return [
            (weight[:, l * step: l * step + self.pe_out], weight[:, l * step + self.pe_out: (l + 1) * step])
            for l in range(len(self.in_features))
        ]

    def clear_caches(self) -> None:
        """Drop every plan, folded weight, PE table and CUDA graph (rebuilt on the next call)."""
        self.plans.clear()
        self._reference_plans.clear()
        self._weights.clear()

    def _plan(self, feats: list[Tensor], size: tuple[int, int], grouping: str, weight_dtype) -> FusedPlan:
        n = feats[0].shape[0]
        level_sizes = [tuple(f.shape[-2:]) for f in feats]
        rows = size[0] if grouping == "train" else self.band_rows(size, n, torch.finfo(weight_dtype).bits // 8)
        f = feats[0]
        key = (size, tuple(level_sizes), n, self.sampling, self.local_ensemble, self.released_ensemble_defect,
               self.absolute_pe, grouping, rows, f.device, f.dtype, weight_dtype)

        def build() -> FusedPlan:
            factors = [axis_sampling(size[0], hl, self.local_ensemble, sampling=self.sampling).factor
                       for hl, _ in level_sizes]
            align = math.lcm(*[s for s in factors if s is not None] or [1])
            return build_plan(key, size, level_sizes, n, ensemble=self.local_ensemble,
                              defect=self.released_ensemble_defect, absolute=self.absolute_pe, sampling=self.sampling,
                              training=grouping != "joint", whole_levels=grouping == "train", bands=_bands(size[0], rows, align), device=f.device,
                              dtype=f.dtype, weight_dtype=weight_dtype)

        return self.plans.get(key, build)

    def _forward_fused(self, feats: list[Tensor], size) -> Tensor:
        if self.training:
            self._weights.signature = None  # BatchNorm buffers change in training mode: refold at the next eval
            return self._forward_fused_train(feats, size)
        device = feats[0].device
        autocast = _autocast_enabled(device.type)
        dtype = torch.get_autocast_dtype(device.type) if autocast else feats[0].dtype
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        # compiled: nothing cached either (the caches' checks of data pointers break the graph; folding is in it)
        cached = not grad and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
        # kernels other than torch's have no backward: a differentiable call runs torch's
        gather, tail, self.last_kernels = select_kernels("torch" if grad else self.kernels, device)
        with torch.autocast(device.type, enabled=False) if autocast else contextlib.nullcontext():
            if not cached:  # differentiable, or traced (fvcore counts every MAC of a call): nothing cached
                plan = self._plan(feats, size, "tiles", dtype)
                feats = [x if x.dtype == dtype else x.to(dtype) for x in feats]
                return self._fused_eval_bands(feats, plan, fold_weights(self, dtype), None, gather, tail)
            plan = self._plan(feats, size, "joint", dtype)
            weights = self._weights.get(self, dtype, device, param_signature(self))
            table, slots = self._eval_table(plan, weights, dtype)

            def run(xs: list[Tensor]) -> Tensor:
                xs = [x if x.dtype == dtype else x.to(dtype) for x in xs]
                return self._fused_eval_bands(xs, plan, weights, (table, slots), gather, tail)

            if not self.cuda_graph:
                return run(feats)
            reason = unavailable_reason(self.training, grad, feats)
            if reason is not None:
                self.cuda_graph_status = f"off: {reason}"
                return run(feats)
            graphed = plan.state.get(("graph", self.last_kernels))
            if graphed is None or not graphed.matches(feats):
                graphed = plan.state[("graph", self.last_kernels)] = GraphedForward(run, feats)
                self.cuda_graph_status = "captured"
            else:
                self.cuda_graph_status = "replayed"
            return graphed(feats)

    def _eval_table(self, plan: FusedPlan, weights: FoldedWeights, dtype) -> tuple[Tensor, list[list[Tensor]]]:
        """The plan's eval table: PE rows of every band (refreshed when the weights were), then scratch rows for
        one band's projected level cells; and per band and level the row slice its projections are written to."""
        entry = plan.state.get(("table", dtype))
        if entry is None:
            width = weights.bias.shape[0]
            scratch = max(b.level_block for b in plan.bands)
            table = weights.bias.new_empty(plan.pe_rows + scratch, width, dtype=dtype)
            slots = []
            for band in plan.bands:
                o = plan.pe_rows
                starts = band.level_offsets + [band.level_block]
                slots.append([table[o + a: o + b] for a, b in zip(starts[:-1], starts[1:])])
            entry = plan.state[("table", dtype)] = [None, table, slots]
        if entry[0] != self._weights.generation:
            with torch.no_grad():
                for band in plan.bands:
                    for g in band.groups:
                        entry[1][g.offset: g.offset + g.size].copy_(self._pe_group_table(g, weights.pe_w, weights.bias))
            entry[0] = self._weights.generation
        return entry[1], entry[2]

    def _fused_eval_bands(self, feats: list[Tensor], plan: FusedPlan, weights: FoldedWeights, cached, gather, tail):
        """Eval forward over the plan's bands (usually one: the whole map). `cached`: (table, slots) from
        `_eval_table`, or None to build each band's table by concatenation (differentiable, traceable)."""
        h, w = plan.size
        n = plan.batch
        out = None
        for bi, band in enumerate(plan.bands):
            if cached is not None:
                table, slots = cached
                for l, f in enumerate(feats):
                    _project_level(f, band.level_rows[l], weights.red_t[l], weights.red_b[l], weights.proj_t[l],
                                   slots[bi][l])
            else:
                blocks = [self._pe_group_table(g, weights.pe_w, weights.bias).to(weights.proj_t[0].dtype)
                          for g in band.groups]
                blocks += [_project_level(f, band.level_rows[l], weights.red_t[l], weights.red_b[l],
                                          weights.proj_t[l]) for l, f in enumerate(feats)]
                table = torch.cat(blocks)
            y = tail(gather(table, band.index, band.weight, None, True), weights.tail)
            if len(plan.bands) == 1:
                return y.view(n, h, w, -1).permute(0, 3, 1, 2).contiguous()
            if out is None:
                out = y.new_empty(n, h, w, y.shape[-1])
            out[:, band.i0:band.i1] = y.view(n, band.i1 - band.i0, w, -1)
        return out.permute(0, 3, 1, 2).contiguous()

    def _forward_fused_train(self, feats: list[Tensor], size) -> Tensor:
        """Training: one band (BatchNorm statistics over every query), PE tables recomputed (differentiable)."""
        h, w = size
        n = feats[0].shape[0]
        self.last_kernels = "torch"
        plan = self._plan(feats, size, "train", feats[0].dtype)
        band = plan.bands[0]
        w1, b1 = self.mlp.linears[0].weight, self.mlp.linears[0].bias
        slices = self._first_layer_slices(w1)
        blocks = [self._pe_group_table(g, [wpe for wpe, _ in slices], b1) for g in band.groups]
        for l, f in enumerate(feats):
            blocks.append(self._reduce_project_train(l, f, slices[l][1]).reshape(-1, w1.shape[0]))
        table = torch.cat(blocks)
        weight = band.weight
        if weight is not None and weight.dtype != table.dtype:
            weight = weight.to(table.dtype)
        z = F.embedding_bag(band.index, table, mode="sum", per_sample_weights=weight)
        logits = self.mlp.from_preactivation_lean(z)
        return logits.view(n, h, w, self.num_classes).permute(0, 3, 1, 2).contiguous()

    def _reduce_project_train(self, l: int, f: Tensor, wf: Tensor) -> Tensor:
        """Training: W_f_l relu(BN(conv(f))) for a whole level, in rows (N, H_l, W_l, width).

        The 1x1 reduction is a batched GEMM on the (N, HW, C_in) view of f (no copy), and BN -> ReLU ->
        projection runs as one autograd function that stores only the BatchNorm input: same parameters
        and running statistics as the `reduce` modules the reference path calls."""
        conv, bn = self.reduce[l][0], self.reduce[l][1]
        n, cin, hl, wl = f.shape
        c = torch.bmm(f.flatten(2).transpose(1, 2), conv.weight.flatten(1).t().expand(n, cin, -1))
        return bn_relu_linear(c.reshape(n * hl * wl, -1), bn, wf).view(n, hl, wl, -1)

    def _pe_group_table(self, g: PEGroup, pe_w: Sequence[Tensor], bias: Optional[Tensor]) -> Tensor:
        """sum over the group's levels of W_pe_l PE_l (+ bias) at every (row type, column type): (rows * cols, width).
        For one level at an integer scale s that is an s x s tile."""
        table = None
        for l, (cy, wy, cx, wx) in zip(g.levels, g.coords):
            k = cy.shape[0]
            for ky, kx in neighbour_slots(k, self.released_ensemble_defect):
                coord = torch.stack([cy[ky][:, None].expand(-1, g.cols), cx[kx][None, :].expand(g.rows, -1)], -1)
                term = F.linear(self.pe[l](coord), pe_w[l].to(coord.dtype))
                if k > 1:
                    term = term * pair_weight(wy, wx, ky, kx, self.released_ensemble_defect)[..., None]
                table = term if table is None else table + term
        if g.bias and bias is not None:
            table = table + bias.to(table.dtype)
        return table.view(-1, table.shape[-1])


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device type autocast does not know (meta)
        return False


def _project_level(f: Tensor, rows: tuple[int, int], red_t: Tensor, red_b: Tensor, proj_t: Tensor,
                   out: Optional[Tensor] = None) -> Tensor:
    """Eval: rows (N * (hi - lo) * W_l, width) of W_f relu(W_r f + b_r) over level rows [lo, hi) (folded weights),
    written into `out` when given. Batch 1 reads the NCHW map as a transposed (HW, C_in) matrix, no copy."""
    n, cin, hl, _ = f.shape
    lo, hi = rows
    whole = (lo, hi) == (0, hl)
    if n == 1:
        x = (f.view(cin, -1) if whole else f[0, :, lo:hi].flatten(1)).t()
        r = addmm_relu(red_b, x, red_t)
    else:
        x = (f if whole else f[:, :, lo:hi]).flatten(2).transpose(1, 2)
        r = torch.baddbmm(red_b, x, red_t.expand(n, -1, -1)).relu_().view(-1, red_t.shape[1])
    return torch.mm(r, proj_t) if out is None else torch.mm(r, proj_t, out=out)
