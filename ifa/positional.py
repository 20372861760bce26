"""Positional encodings of a query's coordinate, one module per feature level.

All take a coordinate tensor (..., 2) ordered (y, x) and return (..., out_dim):
- SinusoidalPE ("ultra_pe" of hzhupku/IFA): [c, sin(c @ M), cos(c @ M)], c = relative coordinate.
- LearnedPE: absolute query position, learned row/column tables (the release's PositionEmbeddingLearned).
- RawCoordPE ("none"): the relative coordinate itself, as LIIF feeds it; no expansion.
`uses_absolute_position` says which coordinate the head must pass.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def sinusoidal_frequencies(pe_dim: int) -> Tensor:
    """The 2 x (pe_dim/2) matrix M: n = pe_dim/4 log-spaced frequencies 2^(6k/(n-1)) (1 ... 64);
    columns 0..n-1 read y, columns n..2n-1 read x."""
    if pe_dim % 4 != 0:
        raise ValueError(f"pe_dim must be a multiple of 4 for the sinusoidal encoding, got {pe_dim}")
    n = pe_dim // 4
    f = 2.0 ** torch.linspace(0.0, 6.0, n, dtype=torch.float64)
    m = torch.zeros(2, 2 * n, dtype=torch.float64)
    m[0, :n] = f
    m[1, n:] = f
    return m.float()


class SinusoidalPE(nn.Module):
    uses_absolute_position = False

    def __init__(self, pe_dim: int = 24, learnable_freq: bool = True):
        super().__init__()
        m = sinusoidal_frequencies(pe_dim)
        if learnable_freq:
            self.freq = nn.Parameter(m)
        else:
            self.register_buffer("freq", m)
        self.out_dim = 2 + pe_dim

    def forward(self, coord: Tensor) -> Tensor:
        y = coord @ self.freq.to(coord.dtype)
        return torch.cat([coord, torch.sin(y), torch.cos(y)], dim=-1)


class LearnedPE(nn.Module):
    """Learned absolute embedding of the query position: [col(x), row(y)], each pe_dim/2 wide.

    The release indexes 100-entry tables by the query's integer row/column (which breaks beyond 100 rows
    and at any other resolution); here the tables span [-1, 1] and are linearly interpolated at the
    query's coordinate, so the encoding is defined at every query size.
    """

    uses_absolute_position = True

    def __init__(self, pe_dim: int = 24, table_size: int = 100):
        super().__init__()
        if pe_dim % 2 != 0:
            raise ValueError(f"pe_dim must be even for the learned encoding, got {pe_dim}")
        self.row_embed = nn.Parameter(torch.rand(table_size, pe_dim // 2))
        self.col_embed = nn.Parameter(torch.rand(table_size, pe_dim // 2))
        self.out_dim = pe_dim

    @staticmethod
    def _lerp(table: Tensor, t: Tensor) -> Tensor:
        pos = (t.clamp(-1, 1) + 1) * 0.5 * (table.shape[0] - 1)
        lo = pos.floor().long().clamp_(0, table.shape[0] - 2)
        frac = (pos - lo.to(pos.dtype)).unsqueeze(-1)
        tab = table.to(t.dtype)
        return tab[lo] * (1 - frac) + tab[lo + 1] * frac

    def forward(self, coord: Tensor) -> Tensor:
        return torch.cat([self._lerp(self.col_embed, coord[..., 1]), self._lerp(self.row_embed, coord[..., 0])], dim=-1)


class RawCoordPE(nn.Module):
    uses_absolute_position = False
    out_dim = 2

    def forward(self, coord: Tensor) -> Tensor:
        return coord


def build_positional(kind: str, pe_dim: int, learnable_freq: bool) -> nn.Module:
    if kind == "sinusoidal":
        return SinusoidalPE(pe_dim, learnable_freq)
    if kind == "learned":
        return LearnedPE(pe_dim)
    if kind == "none":
        return RawCoordPE()
    raise ValueError(f"pe must be 'sinusoidal', 'learned' or 'none', got {kind!r}")
