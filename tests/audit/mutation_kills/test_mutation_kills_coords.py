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
    uneven = pair_weight(wy[:, :1], torch.tensor([[0.2], [0.8]], dtype=torch.float64), 1, 1, released_defect=True)
    # A_00 = 0.25 * 0.2 against A_01 = 0.25 * 0.8, A_10 = 0.75 * 0.2, A_11 = 0.75 * 0.8
    assert uneven.item() == pytest.approx((0.05 + 1e-9) / (1 + 4e-9), rel=1e-12)
    # row 0: 0.125 / (0.125 + 0.125 + 0.375 + 0.375); row 1: 0.5 / (0.5 + 0.5 + 0 + 0); row 2: every area 1e-9 -> 1/4
    expected = [(0.125 + 1e-9) / (1 + 4e-9), (0.5 + 1e-9) / (1 + 4e-9), 0.25]
    assert got.flatten().tolist() == pytest.approx(expected, rel=1e-12)


# --- sampling="release": the local ensemble and the outputs around the cell index ------------------------------
import numpy as np  # noqa: E402

from ifa.coords import axis_sampling  # noqa: E402
from tests.ifa.test_release_sampling import _centres, _grid_sample_nearest, _queries, f32  # noqa: E402

SIZES = [(47, 12), (47, 24), (76, 19), (16, 4), (9, 3), (8, 8), (5, 7)]


@pytest.mark.parametrize("q,n", SIZES)
def test_release_ensemble_reads_the_cells_of_the_half_query_cell_shifts(q, n):
    # independent float32 formulas: query shifted by -/+ half a query cell plus eps_shift 1e-6, clamped to
    # +-(1 - 1e-6), read with grid_sample's nearest rule; rel from the unshifted query; weight = |rel|
    s = axis_sampling(q, n, ensemble=True, sampling="release")
    coord = _queries(q)
    assert s.k == 2 and s.factor is None and (s.q, s.n) == (q, n)
    np.testing.assert_array_equal(s.query.numpy(), coord)
    for slot, v in enumerate((-1, 1)):
        shifted = np.clip(coord + f32(v / q + 1e-6), f32(-(1 - 1e-6)), f32(1 - 1e-6))
        index = _grid_sample_nearest(shifted, n)
        np.testing.assert_array_equal(s.index[slot].numpy(), index, err_msg=f"slot {slot}")
        rel = (coord - _centres(n)[index]) * f32(n)
        np.testing.assert_array_equal(s.rel[slot].numpy(), rel)
        np.testing.assert_array_equal(s.weight[slot].numpy(), np.abs(rel))


@pytest.mark.parametrize("q,n", SIZES)
def test_release_nearest_outputs(q, n):
    s = axis_sampling(q, n, sampling="release", dtype=torch.float64)
    coord = _queries(q)
    index = _grid_sample_nearest(coord, n)
    assert (s.q, s.n) == (q, n) and (s.factor is None or type(s.factor) is int)
    assert s.k == 1 and s.index.shape == (1, q) and s.rel.dtype == s.weight.dtype == s.query.dtype == torch.float64
    np.testing.assert_array_equal(s.index[0].numpy(), index)
    np.testing.assert_array_equal(s.rel[0].numpy(), ((coord - _centres(n)[index]) * f32(n)).astype(np.float64))
    assert torch.equal(s.weight, torch.ones(1, q, dtype=torch.float64))
    np.testing.assert_array_equal(s.query.numpy(), coord.astype(np.float64))
    assert s.factor == {(16, 4): 4, (8, 8): 1, (9, 3): 3, (76, 19): 4}.get((q, n))  # q = s * n, cell i // s


def test_exact_sampling_returns_the_requested_dtype():
    for ensemble in (False, True):
        s = axis_sampling(33, 10, ensemble=ensemble)
        assert s.rel.dtype == s.weight.dtype == s.query.dtype == torch.float32


@pytest.mark.parametrize("ensemble", [False, True])
def test_exact_sampling_outputs_and_errors(ensemble):
    from ifa.coords import cell_centers

    s = axis_sampling(8, 4, ensemble=ensemble, dtype=torch.float64)
    assert (s.q, s.n) == (8, 4) and s.rel.dtype == s.weight.dtype == s.query.dtype == torch.float64
    assert torch.equal(s.query, cell_centers(8, dtype=torch.float64))
    assert torch.allclose(s.weight.sum(0), torch.ones(8, dtype=torch.float64))
    if ensemble:
        assert s.factor is None and int(s.index.max()) == 3 and int(s.index.min()) == 0
    else:
        assert s.factor == 2 and type(s.factor) is int and torch.equal(s.weight, torch.ones(1, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^axis sizes must be positive, got query 0 and level 5$"):
        axis_sampling(0, 5, ensemble=ensemble)
    with pytest.raises(ValueError, match=r"^axis sizes must be positive, got query 5 and level 0$"):
        axis_sampling(5, 0, ensemble=ensemble)
    with pytest.raises(ValueError, match=r"^sampling must be one of \('exact', 'release'\), got 'nearest'$"):
        axis_sampling(5, 5, ensemble=ensemble, sampling="nearest")


# --- the `device` argument and the float64 requests the head makes (ifa/head.py asks for float64) -------------
from fractions import Fraction  # noqa: E402

from ifa.coords import cell_centers, release_centers  # noqa: E402


@pytest.mark.parametrize("sampling", ["exact", "release"])
@pytest.mark.parametrize("ensemble", [False, True])
def test_every_output_is_on_the_requested_device(sampling, ensemble):
    # "meta": a device other than the CPU default that CPU-only torch has (shapes and dtypes, no data); a helper
    # that drops `device` makes a CPU tensor, which either is returned or fails when mixed with a meta one.
    # q % n != 0: the release's factor check (torch.equal) has no meta kernel.
    s = axis_sampling(7, 3, ensemble=ensemble, device="meta", sampling=sampling)
    assert [t.device.type for t in (s.index, s.rel, s.weight, s.query)] == ["meta"] * 4
    assert s.index.shape == s.rel.shape == s.weight.shape == (s.k, 7)


def test_release_ensemble_returns_the_requested_dtype():
    s32 = axis_sampling(47, 12, ensemble=True, sampling="release")
    s64 = axis_sampling(47, 12, ensemble=True, sampling="release", dtype=torch.float64)
    assert s64.rel.dtype == s64.weight.dtype == s64.query.dtype == torch.float64
    assert torch.equal(s64.index, s32.index)  # the float32 release values, widened
    for a, b in ((s64.rel, s32.rel), (s64.weight, s32.weight), (s64.query, s32.query)):
        assert torch.equal(a, b.double())


def test_exact_coordinates_in_float64_are_exact():
    # cell centres and the ensemble's relative coordinates from exact fractions, not rounded through float32
    assert cell_centers(3, dtype=torch.float64).tolist() == pytest.approx([-2 / 3, 0.0, 2 / 3], abs=1e-15)
    q, n = 33, 10
    s = axis_sampling(q, n, ensemble=True, dtype=torch.float64)
    for k in range(2):
        expected = [float((Fraction(2 * i + 1, q) - Fraction(2 * int(j) + 1, n)) * n) for i, j in enumerate(s.index[k])]
        assert s.rel[k].tolist() == pytest.approx(expected, abs=1e-14), f"slot {k}"


def test_release_centres_stay_float32_under_a_float64_default_dtype():
    # the release emulation must not follow torch's default dtype: in float64, row 23 of 47 would land on 0 exactly
    # and read c3 cell 12 instead of the release's 11 (see test_185x300_row_23_reads_the_release_cells)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert release_centers(47).dtype == torch.float32
        assert int(axis_sampling(47, 24, sampling="release").index[0, 23]) == 11
    finally:
        torch.set_default_dtype(before)
