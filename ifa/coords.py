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

Everything is separable: the y and x axes are computed independently (1-D tensors), and the 2-D
neighbours of a query are the products of its per-axis neighbours.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


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


def axis_sampling(q: int, n: int, ensemble: bool = False, device=None, dtype=torch.float32) -> AxisSampling:
    """Nearest-cell (ensemble=False) or two-neighbour (ensemble=True, LIIF local ensemble) sampling of one axis.

    Ensemble: the neighbours are the cells whose centres bracket the query (clamped at the borders, where
    both become the border cell), weighted by the distance to the *other* neighbour, normalised: the 1-D
    factor of LIIF's opposite-rectangle area weights, so the 2-D weights are products of per-axis ones.
    """
    if q < 1 or n < 1:
        raise ValueError(f"axis sizes must be positive, got query {q} and level {n}")
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

    With released_defect=True, only the last pair (upper, upper) counts, with its own weight: this is what
    hzhupku/IFA's ensemble loop computes (`x = ret + ...` with ret left at 0 overwrites x each time).
    """
    pairs = [(a, b) for a in range(k) for b in range(k)]
    return pairs[-1:] if released_defect else pairs
