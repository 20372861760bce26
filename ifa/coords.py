"""Where each query lands on a feature level: cell indices, relative coordinates, ensemble weights.

Conventions (align_corners=False, as LIIF and hzhupku/IFA):
- An axis of n cells covers [-1, 1]; cell i has centre -1 + (2i + 1) / n.
- A query grid of q cells on that axis is treated the same way, so its centres are the query coordinates.
- The nearest level cell to a query is the one grid_sample(mode="nearest", align_corners=False) picks:
  the unnormalised source coordinate u = ((2i + 1) L - q) / (2 q) rounded half to even (std::nearbyint),
  clamped to [0, L - 1]. We evaluate that rule in exact integer arithmetic, so ties (a query centre on
  a cell border, e.g. q=1, L=2) are decided by the rule, not by float noise.
- The relative coordinate is (query - centre of the chosen cell) * L: in units of half a cell, in [-1, 1]
  for the nearest cell and in [-2, 2] for the ensemble neighbours.

Two sampling rules (`sampling=`):
- "exact": the rule above in exact arithmetic (ties decided by the rule, relative coordinates from integers).
- "release": what hzhupku/IFA computes: float32 cell centres built as its `make_coord` builds them
  (-1 + r + 2r * i with r = 1 / n, the query centres passed through its (c + 1) / 2 * 2 - 1 round trip), the
  cell picked by float32 grid_sample's nearest rule (u = (c + 1) * n / 2 - 0.5, rounded half to even), and
  float32 relative coordinates. At some sizes (228 side lengths between 16 and 2100, e.g. 185x300) a float32
  query centre lands on the other side of a half-cell boundary, and the release reads a different cell.

Everything is separable: the y and x axes are computed independently (1-D tensors), and the 2-D
neighbours of a query are the products of its per-axis neighbours.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


SAMPLINGS = ("exact", "release")
# hzhupku/IFA's local ensemble: eps_shift added to every shifted neighbour query, the clamp bound, the area epsilon
RELEASE_EPS_SHIFT = 1e-6
RELEASE_CLAMP = 1 - 1e-6
RELEASE_AREA_EPS = 1e-9


def release_centers(n: int, device=None) -> Tensor:
    """float32 centres of n cells as the release's make_coord builds them: (-1 + r) + (2 r) * i, r = 1 / n."""
    r = 2 / (2 * n)
    return (-1 + r) + (2 * r) * torch.arange(n, device=device, dtype=torch.float32)


def release_queries(q: int, device=None) -> Tensor:
    """float32 query centres as the release's ifa_feat ends up with them (make_coord, then (c + 1) / 2 * 2 - 1)."""
    return ((release_centers(q, device) + 1) / 2) * 2 - 1


def release_nearest(coord: Tensor, n: int) -> Tensor:
    """Cell index that float32 grid_sample(mode="nearest", align_corners=False) reads at float32 coordinates."""
    u = (coord + 1) * (n / 2) - 0.5
    return torch.round(u).long().clamp_(0, n - 1)  # torch.round: half to even, as nearbyint


def release_relative(query: Tensor, n: int, index: Tensor) -> Tensor:
    """(query - centre of cell `index`) * n in float32, as the release computes rel_coord."""
    return (query - release_centers(n, query.device)[index]) * n


def cell_centers(n: int, device=None, dtype=torch.float32) -> Tensor:
    """Centres of n cells covering [-1, 1] (align_corners=False)."""
    i = torch.arange(n, device=device, dtype=torch.float64)
    return ((2 * i + 1) / n - 1).to(dtype)


def nearest_cells(q: int, n: int, device=None) -> Tensor:
    """Index (long, shape (q,)) of the level cell nearest to each of q query centres on an axis of n cells."""
    i = torch.arange(q, device=device, dtype=torch.long)
    num = (2 * i + 1) * n - q
    den = 2 * q
    fl = torch.div(num, den, rounding_mode="floor")
    twice_rem = 2 * (num - fl * den)
    up = (twice_rem > den) | ((twice_rem == den) & (fl % 2 == 1))  # round half to even
    return (fl + up.long()).clamp_(0, n - 1)


def lower_cells(q: int, n: int, device=None) -> Tensor:
    """floor(u): the lower of the two level cells whose centres bracket each query (may be -1 or n-1)."""
    i = torch.arange(q, device=device, dtype=torch.long)
    return torch.div((2 * i + 1) * n - q, 2 * q, rounding_mode="floor")


def relative_coords(q: int, n: int, index: Tensor, dtype=torch.float32) -> Tensor:
    """(query centre - centre of cell `index`) * n, computed from an exact integer numerator."""
    i = torch.arange(q, device=index.device, dtype=torch.long)
    num = (2 * i + 1) * n - (2 * index + 1) * q
    return (num.to(torch.float64) / q).to(dtype)


@dataclass(frozen=True)
class AxisSampling:
    """How one query axis of `q` cells reads one level axis of `n` cells.

    index, rel, weight have shape (K, q): K = 1 (nearest cell) or 2 (lower/upper ensemble neighbour).
    weight sums to 1 over K. `factor` is s when q == s * n and K == 1 (query i reads cell i // s), else None.
    """

    q: int
    n: int
    index: Tensor
    rel: Tensor
    weight: Tensor
    query: Tensor
    factor: Optional[int]

    @property
    def k(self) -> int:
        return self.index.shape[0]


def _release_axis(q: int, n: int, ensemble: bool, device, dtype) -> AxisSampling:
    """The release's float32 sampling of one axis; ensemble=True: its local ensemble (see axis_sampling)."""
    query = release_queries(q, device)
    if not ensemble:
        index = release_nearest(query, n)
        rel = release_relative(query, n, index)
        s = q // n
        factor = s if q % n == 0 and torch.equal(index, torch.arange(q, device=device) // s) else None
        return AxisSampling(q, n, index[None], rel[None].to(dtype), torch.ones(1, q, device=device, dtype=dtype),
                            query.to(dtype), factor)
    indices = []
    for v in (-1, 1):  # half a *query* cell either way, plus eps_shift, clamped
        shifted = (query + (v / q + RELEASE_EPS_SHIFT)).clamp_(-RELEASE_CLAMP, RELEASE_CLAMP)
        indices.append(release_nearest(shifted, n))
    index = torch.stack(indices)
    rel = torch.stack([release_relative(query, n, i) for i in indices])  # from the unshifted query
    return AxisSampling(q, n, index, rel.to(dtype), rel.abs().to(dtype), query.to(dtype), None)


def axis_sampling(q: int, n: int, ensemble: bool = False, device=None, dtype=torch.float32,
                  sampling: str = "exact") -> AxisSampling:
    """Nearest-cell (ensemble=False) or two-neighbour (ensemble=True) sampling of one axis.

    sampling="exact", ensemble: LIIF's local ensemble. The neighbours are the cells whose centres bracket the
    query (clamped at the borders, where both become the border cell), weighted by the distance to the *other*
    neighbour, normalised: the 1-D factor of LIIF's opposite-rectangle area weights, so the 2-D weights are
    products of per-axis ones.

    sampling="release", ensemble: hzhupku/IFA's local ensemble. The neighbours are the cells nearest to the
    query shifted by -/+ half a query cell (+ eps_shift, clamped), so often the query's own cell and the next
    one; `weight` holds |rel| per slot, and `pair_weight(..., released_defect=True)` turns them into the
    release's area ratio.
    """
    if q < 1 or n < 1:
        raise ValueError(f"axis sizes must be positive, got query {q} and level {n}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if sampling == "release":
        return _release_axis(q, n, ensemble, device, dtype)
    query = cell_centers(q, device, dtype)
    if not ensemble:
        index = nearest_cells(q, n, device)[None]
        rel = relative_coords(q, n, index[0], dtype)[None]
        weight = torch.ones_like(rel)
        factor = q // n if q % n == 0 else None
        return AxisSampling(q, n, index, rel, weight, query, factor)
    lo = lower_cells(q, n, device)
    index = torch.stack([lo.clamp(0, n - 1), (lo + 1).clamp(0, n - 1)])
    rel = torch.stack([relative_coords(q, n, index[0], torch.float64), relative_coords(q, n, index[1], torch.float64)])
    dist = rel.abs()
    total = dist.sum(0)
    w_lo = torch.where(total > 0, dist[1] / total.clamp_min(1e-12), torch.ones_like(total))
    weight = torch.stack([w_lo, 1 - w_lo])
    return AxisSampling(q, n, index, rel.to(dtype), weight.to(dtype), query, None)


def neighbour_slots(k: int, released_defect: bool = False) -> list[tuple[int, int]]:
    """The (y slot, x slot) pairs that contribute to a query.

    With released_defect=True, only the last pair (upper, upper) counts: hzhupku/IFA's ensemble loop
    (`x = ret + ...` with ret left at 0) overwrites x each time, so the last neighbour is all that is left.
    """
    pairs = [(a, b) for a in range(k) for b in range(k)]
    return pairs[-1:] if released_defect else pairs


def pair_weight(wy: Tensor, wx: Tensor, ky: int, kx: int, released_defect: bool = False) -> Tensor:
    """Weight (a, b) of neighbour pair (ky, kx) from per-axis slot weights wy (K, a) and wx (K, b).

    Correct ensemble: the product of the per-axis weights. The release's (released_defect=True, slot weights
    = |rel|): areas A_ij = |rel_y_i rel_x_j| + 1e-9; the pair it keeps, (upper, upper), is weighted by the
    opposite area A_00 over the sum of all four. That is not separable: where one axis has both |rel| = 0 (a
    query on a cell centre whose half-query-cell shifts stay in that cell), every area is 1e-9 and the weight
    is 1/4 whatever the other axis says."""
    if not released_defect:
        return wy[ky][:, None] * wx[kx][None, :]
    areas = torch.stack([wy[i][:, None] * wx[j][None, :] + RELEASE_AREA_EPS for i in range(2) for j in range(2)])
    return areas[0] / areas.sum(0)
