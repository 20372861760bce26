"""ifa/coords.py: what `make mutation MUTATE=coords` found unasserted (pair_weight had no test in the selection)."""
import pytest
import torch

from ifa.coords import pair_weight


def test_pair_weight_is_the_product_of_the_axis_weights():
    wy = torch.tensor([[0.25, 1.0, 0.0], [0.75, 0.0, 1.0]])  # (K=2 slots, 3 query rows)
    wx = torch.tensor([[0.5, 0.2], [0.5, 0.8]])  # (K=2 slots, 2 query columns)
    got = pair_weight(wy, wx, 1, 0)
    assert got.shape == (3, 2)
    assert got.flatten().tolist() == pytest.approx([0.375, 0.15, 0.0, 0.0, 0.5, 0.2])
    assert pair_weight(wy, wx, 0, 1).flatten().tolist() == pytest.approx([0.125, 0.2, 0.5, 0.8, 0.0, 0.0])


def test_released_defect_weighs_the_kept_pair_by_the_opposite_area():
    # slot weights = |rel|; areas A_ij = |rel_y_i rel_x_j| + 1e-9; the kept (upper, upper) pair gets A_00 / sum A
    wy = torch.tensor([[0.25, 1.0, 0.0], [0.75, 0.0, 0.0]], dtype=torch.float64)
    wx = torch.tensor([[0.5], [0.5]], dtype=torch.float64)
    got = pair_weight(wy, wx, 1, 1, released_defect=True)
    # row 0: 0.125 / (0.125 + 0.125 + 0.375 + 0.375); row 1: 0.5 / (0.5 + 0.5 + 0 + 0); row 2: every area 1e-9 -> 1/4
    expected = [(0.125 + 1e-9) / (1 + 4e-9), (0.5 + 1e-9) / (1 + 4e-9), 0.25]
    assert got.flatten().tolist() == pytest.approx(expected, rel=1e-12)
