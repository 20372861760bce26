"""The IFA head (Hu et al., ECCV 2022): implicit feature alignment by querying every level at each output point.

One set of parameters, two formulations (switch `head.formulation` at run time; both load the same state_dict):
- "reference": per query, gather the nearest cell of every reduced level, concatenate [PE_l, feat_l] over
  levels (4 x (26 + 256) = 1128 channels in the release), run the MLP. What hzhupku/IFA computes.
- "fused": the first MLP layer is linear, so W x = sum_l gather_l(W_f_l F_l) + sum_l W_pe_l PE_l. The feature
  term is a 1x1 projection at each level's own resolution followed by an integer-index gather (all levels and
  PE tiles in one embedding_bag sum); the PE term is a table over the distinct relative coordinates (an s x s
  tile for an integer scale s, per query otherwise, then once for the whole batch). The 1128-channel tensor is
  never built. Training uses an autograd function per BatchNorm-ReLU-linear triple that stores only the
  BatchNorm input. See docs/ifa.md for the arithmetic.

Memory: in eval mode both formulations run over bands of query rows; the fused one also reduces and projects
each level only for the rows a band needs. In training mode both run unchunked: BatchNorm needs statistics
over all queries, and autograd keeps every band's activations until backward anyway.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .coords import SAMPLINGS, axis_sampling, neighbour_slots, pair_weight
from .mlp import QueryMLP, bn_relu_linear, fold_batchnorm
from .positional import build_positional
from .shape_spec import ShapeSpec

FORMULATIONS = ("reference", "fused")
# The fused path's GEMMs reach full speed at a few thousand rows; bigger bands only cost memory.
FUSED_MAX_BAND_QUERIES = 16384


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
    queued before it, and the fused path makes several such copies per band, so the host and the GPU took turns
    instead of overlapping. That is only part of the fused head's slowdown on a GPU: on an H200 (round 8) it took
    27.5 ms a call, of which 21.7 ms host time and 14.1 ms GPU kernels, against 9.0 ms for the whole reference head
    (docs/performance.md). tests/ifa/test_no_gpu_sync.py checks that no copy blocks."""
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
        strides = [input_shape[f].stride for f in self.in_features]
        self.query_feature = self.in_features[strides.index(min(strides))]
        self.output_stride = min(strides)
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
        plans = [
            _LevelPlan(size, tuple(f.shape[-2:]), self.local_ensemble, self.absolute_pe,
                       self.released_ensemble_defect, self.sampling, f.device, f.dtype)
            for f in feats
        ]
        if self.formulation == "reference":
            return self._forward_reference(feats, plans, size)
        return self._forward_fused(feats, plans, size)

    def bytes_per_query(self, formulation: Optional[str] = None, element_size: int = 4) -> int:
        """Rough peak bytes per query and image of the working set of one eval band."""
        widths = [lin.out_features for lin in self.mlp.linears]
        k2 = 4 if self.local_ensemble else 1
        if (formulation or self.formulation) == "reference":
            per = 2 * self.in_dim + (k2 - 1) * (self.in_dim // len(self.in_features)) + 2 * widths[0] + widths[-1]
        else:
            per = 3 * widths[0] + self.channels + 2 * max(widths[1:] or [0]) + widths[-1]
        return element_size * per

    def band_rows(self, size: tuple[int, int], batch: int, element_size: int = 4) -> int:
        """Query rows per eval band: from chunk_queries if set, else from memory_budget_mb."""
        h, w = size
        if self.chunk_queries is not None:
            queries = self.chunk_queries
        else:
            queries = self.memory_budget_mb * 2**20 // (batch * self.bytes_per_query(element_size=element_size))
            if self.formulation == "fused":
                queries = min(queries, FUSED_MAX_BAND_QUERIES)
        return max(1, min(h, queries // w))

    # -- reference ------------------------------------------------------------------------------------
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

    def _forward_fused(self, feats: list[Tensor], plans: list[_LevelPlan], size) -> Tensor:
        h, w = size
        n = feats[0].shape[0]
        if self.training:
            w1, b1 = self.mlp.linears[0].weight, self.mlp.linears[0].bias

            def level_rows(l: int, lo: int, hi: int, wf: Tensor) -> Tensor:
                rows = self._reduce_project_train(l, feats[l], wf)
                # (slice only when needed: a slice's backward allocates a zero-filled full-size gradient)
                return rows if (lo, hi) == (0, rows.shape[1]) else rows[:, lo:hi]

            z = self._fused_preactivation(plans, level_rows, w1, b1, 0, h, n)
            logits = self.mlp.from_preactivation_lean(z.view(-1, w1.shape[0]))
            return logits.view(n, h, w, self.num_classes).permute(0, 3, 1, 2).contiguous()

        layers = self.mlp.folded()
        (w1, b1), tail = layers[0], layers[1:]
        red = []
        for seq in self.reduce:
            conv, bn = seq[0], seq[1]
            red.append(fold_batchnorm(conv.weight.flatten(1), conv.bias, bn))

        def level_rows(l: int, lo: int, hi: int, wf: Tensor) -> Tensor:
            x = feats[l][:, :, lo:hi].permute(0, 2, 3, 1)
            r = F.linear(x, *red[l]).relu_()
            return F.linear(r, wf)

        align = math.lcm(*[p.factor_y for p in plans if p.factor_y is not None] or [1])
        out = feats[0].new_empty(n, h, w, self.num_classes)
        for i0, i1 in _bands(h, self.band_rows(size, n, feats[0].element_size()), align):
            z = self._fused_preactivation(plans, level_rows, w1, b1, i0, i1, n).relu_()
            x = z.view(-1, z.shape[-1])
            for wt, bs in tail[:-1]:
                x = F.linear(x, wt, bs).relu_()
            out[:, i0:i1] = F.linear(x, *tail[-1]).view(n, i1 - i0, w, self.num_classes)
        return out.permute(0, 3, 1, 2).contiguous()

    def _reduce_project_train(self, l: int, f: Tensor, wf: Tensor) -> Tensor:
        """Training: W_f_l relu(BN(conv(f))) for a whole level, in rows (N, H_l, W_l, width).

        The 1x1 reduction is a batched GEMM on the (N, HW, C_in) view of f (no copy), and BN -> ReLU ->
        projection runs as one autograd function that stores only the BatchNorm input: same parameters
        and running statistics as the `reduce` modules the reference path calls."""
        conv, bn = self.reduce[l][0], self.reduce[l][1]
        n, cin, hl, wl = f.shape
        c = torch.bmm(f.flatten(2).transpose(1, 2), conv.weight.flatten(1).t().expand(n, cin, -1))
        return bn_relu_linear(c.reshape(n * hl * wl, -1), bn, wf).view(n, hl, wl, -1)

    def _fused_preactivation(self, plans, level_rows, w1: Tensor, b1: Tensor, i0: int, i1: int, n: int) -> Tensor:
        """First-layer output (before its BatchNorm) for query rows [i0, i1): (N, b, w, width).

        A level whose cells are the queries (same grid) is added as is. Every other level's projected cells
        and the small PE tables (integer scales: an s x s tile; bias folded into the first) go into one
        table; a single `embedding_bag(mode="sum")` sums, per query, its rows of that table (ensemble
        weights as per-sample weights), so no per-level gathered tensor is materialised. Levels whose PE
        takes about one value per query (non-integer scales) are encoded per query instead, all such levels
        through one linear map, once for all images of the batch."""
        b, w = i1 - i0, plans[0].w
        identity, blocks, entries, per_query = None, [], [], []
        offset = 0
        for l, ((wpe, wf), p) in enumerate(zip(self._first_layer_slices(w1), plans)):
            bias = b1 if l == 0 else None
            lo, hi = p.rows_needed(i0, i1)
            proj = level_rows(l, lo, hi, wf)  # (N, hi - lo, W_l, width)
            if identity is None and p.k == 1 and p.factor_y == 1 and p.factor_x == 1:
                identity = proj
            else:
                per_image = (hi - lo) * p.wl
                blocks.append(proj.reshape(n * per_image, -1))
                image = torch.arange(n)[:, None, None] * per_image
                for ky, kx in p.pairs:
                    cell = (p.sy_cpu.index[ky, i0:i1] - lo)[:, None] * p.wl + p.sx_cpu.index[kx][None, :]
                    weight = pair_weight(p.sy_cpu.weight[:, i0:i1], p.sx_cpu.weight, ky, kx, p.defect) if p.k > 1 else None
                    entries.append((offset + image + cell, weight))
                offset += n * per_image
            band_types, inv_b = torch.unique(p.inv_y[i0:i1], return_inverse=True)
            if 8 * band_types.numel() * p.types_x.shape[0] > b * w:
                per_query.append((self._pe_per_query(l, p, i0, i1), wpe, bias))
                continue
            table = self._pe_table(l, p, wpe, bias, band_types)
            blocks.append(table.reshape(-1, table.shape[-1]))
            entries.append((offset + inv_b[:, None] * table.shape[1] + p.inv_x_cpu[None, :], None))
            offset += table.shape[0] * table.shape[1]
        z = None
        if entries:
            index = torch.stack([e.expand(n, b, w) for e, _ in entries], -1).reshape(-1, len(entries))
            weights = None
            if any(wt is not None for _, wt in entries):
                ones = torch.ones(b, w, dtype=torch.float64)
                weights = torch.stack([(wt if wt is not None else ones).expand(n, b, w) for _, wt in entries], -1)
                weights = to_device(weights.reshape(-1, len(entries)), w1.device, w1.dtype)
            z = F.embedding_bag(to_device(index, w1.device), torch.cat(blocks), mode="sum", per_sample_weights=weights)
            z = z.view(n, b, w, -1)
        if identity is not None:
            z = identity.clone() if z is None else z.add_(identity)
        if per_query:
            biases = [bias for _, _, bias in per_query if bias is not None]
            pe = F.linear(torch.cat([x for x, _, _ in per_query], -1), torch.cat([wt for _, wt, _ in per_query], 1),
                          biases[0] if biases else None)
            z = z.add_(pe)
        return z

    def _pe_per_query(self, l: int, p: _LevelPlan, i0: int, i1: int) -> Tensor:
        """PE_l of every query of rows [i0, i1) (ensemble-weighted over neighbours): (b, w, pe_out)."""
        b = i1 - i0
        total = None
        for ky, kx in p.pairs:
            coord = torch.stack([p.cy[ky, i0:i1][:, None].expand(b, p.w), p.cx[kx][None, :].expand(b, p.w)], -1)
            pe = self.pe[l](coord)
            if p.k > 1:
                pe = pe * pair_weight(p.wy[:, i0:i1], p.wx, ky, kx, p.defect)[..., None]
            total = pe if total is None else total + pe
        return total

    def _pe_table(self, l: int, p: _LevelPlan, wpe: Tensor, bias: Optional[Tensor], band_types: Tensor) -> Tensor:
        """W_pe_l PE_l (+ bias) once per distinct (row type, column type): (Ub, Ux, width).
        For an integer scale s that is an s x s tile."""
        ty = to_device(p.types_y[band_types], p.device, p.dtype)
        tx = p.types_x_dev
        k = p.k
        table = None
        for ky, kx in p.pairs:
            coord = torch.stack([ty[:, ky][:, None].expand(-1, tx.shape[0]), tx[:, kx][None, :].expand(ty.shape[0], -1)], -1)
            term = F.linear(self.pe[l](coord), wpe)
            if k > 1:
                term = term * pair_weight(ty[:, k:].t(), tx[:, k:].t(), ky, kx, p.defect)[..., None]
            table = term if table is None else table + term
        if bias is not None:
            table = table + bias
        return table
