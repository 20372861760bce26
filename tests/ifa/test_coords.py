"""Query-to-cell sampling vs brute force (exact fractions) and vs grid_sample / bilinear interpolation."""
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from ifa.coords import axis_sampling, cell_centers, nearest_cells, neighbour_slots, relative_coords

SIZES = list(range(1, 18)) + [24, 37, 64]


def _centre(i: int, n: int) -> Fraction:
    return Fraction(2 * i + 1, n) - 1


def _brute_nearest(q: int, n: int) -> tuple[list[int], list[bool]]:
    """Nearest centre by exhaustive search; ties broken half-to-even on the unnormalised coordinate."""
    out, tie = [], []
    for i in range(q):
        d = [abs(_centre(i, q) - _centre(j, n)) for j in range(n)]
        best = [j for j in range(n) if d[j] == min(d)]
        u = Fraction((2 * i + 1) * n - q, 2 * q)
        out.append(best[0] if len(best) == 1 else round(u))  # Fraction.__round__ is half-to-even
        tie.append(len(best) > 1)
    return out, tie


def test_cell_centers_align_corners_false():
    assert torch.allclose(cell_centers(4, dtype=torch.float64), torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64))


@pytest.mark.parametrize("q", SIZES)
def test_nearest_cells_brute_force(q):
    for n in SIZES:
        expected, _ = _brute_nearest(q, n)
        assert nearest_cells(q, n).tolist() == expected, (q, n)


def test_nearest_cells_match_grid_sample_nearest():
    """grid_sample(nearest, align_corners=False) agrees everywhere except exact ties, where its float
    arithmetic decides; there it must pick one of the two tied cells and we pick the half-to-even one."""
    ties = 0
    for q in SIZES:
        for n in SIZES:
            values = torch.arange(n, dtype=torch.float64).view(1, 1, 1, n)
            x = cell_centers(q, dtype=torch.float64)
            grid = torch.stack([x, torch.zeros_like(x)], -1).view(1, 1, q, 2)
            gs = F.grid_sample(values, grid, mode="nearest", align_corners=False).view(q).long().tolist()
            mine = nearest_cells(q, n).tolist()
            expected, tie = _brute_nearest(q, n)
            for i in range(q):
                if tie[i]:
                    ties += 1
                    assert mine[i] == expected[i] and abs(gs[i] - mine[i]) <= 1
                else:
                    assert gs[i] == mine[i], (q, n, i)
    assert ties > 0  # the sizes above do contain ties (e.g. q=1, n=2)


def test_integer_factor_is_floor_division():
    for n in (1, 5, 8):
        for s in (1, 2, 4, 8):
            assert nearest_cells(s * n, n).tolist() == [i // s for i in range(s * n)]
            assert axis_sampling(s * n, n).factor == s
    assert axis_sampling(10, 4).factor is None
    assert axis_sampling(8, 4, ensemble=True).factor is None


@pytest.mark.parametrize("q,n", [(7, 3), (3, 7), (33, 10), (17, 10), (1, 2), (2, 9)])
def test_relative_coords_brute_force(q, n):
    s = axis_sampling(q, n, dtype=torch.float64)
    for i in range(q):
        j = int(s.index[0, i])
        assert s.rel[0, i].item() == pytest.approx(float((_centre(i, q) - _centre(j, n)) * n), abs=1e-12)
    assert s.rel.abs().max() <= 1 + 1e-12  # nearest cell: within half a cell
    assert torch.equal(relative_coords(q, n, s.index[0], torch.float64), s.rel[0])


@pytest.mark.parametrize("q,n", [(33, 10), (17, 10), (10, 10), (40, 10), (4, 10), (1, 3), (9, 1)])
def test_ensemble_weights_are_bilinear_interpolation(q, n):
    """Opposite-area weights over the two bracketing cells (clamped at borders) = bilinear, align_corners=False."""
    s = axis_sampling(q, n, ensemble=True, dtype=torch.float64)
    assert torch.allclose(s.weight.sum(0), torch.ones(q, dtype=torch.float64))
    assert (s.weight >= 0).all() and s.rel.abs().max() <= 2 + 1e-12
    values = torch.randn(n, dtype=torch.float64)
    mine = (values[s.index] * s.weight).sum(0)
    ref = F.interpolate(values.view(1, 1, n), size=q, mode="linear", align_corners=False).view(q)
    assert torch.allclose(mine, ref, atol=1e-12)
    # LIIF's definition: weight of a neighbour = |rel| of the other neighbour, normalised
    other = s.rel.flip(0).abs()
    interior = other.sum(0) > 0
    assert torch.allclose(s.weight[:, interior], (other / other.sum(0))[:, interior])


def test_neighbour_slots_and_released_defect():
    assert neighbour_slots(1) == [(0, 0)]
    assert neighbour_slots(2) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert neighbour_slots(2, released_defect=True) == [(1, 1)]
