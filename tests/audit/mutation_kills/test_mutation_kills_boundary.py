"""bench/engine/evaluation/boundary.py: what `make mutation MUTATE=boundary` found unasserted (the brute-force tests in
tests/engine/evaluation/test_metrics.py use maps where nearly every pixel is on a boundary)."""
import numpy as np
import pytest
import torch

from bench.engine.evaluation.boundary import boundary_map, boundary_stats
from tests.engine.evaluation.test_metrics import brute_force_boundary


def _expected(label: np.ndarray, radius: int, ignore: int = 255) -> np.ndarray:
    dont_care = label == ignore
    out = np.zeros(label.shape, bool)
    for c in set(np.unique(label).tolist()) - {ignore}:
        out |= brute_force_boundary(label == c, dont_care, radius)
    return out


@pytest.mark.parametrize("radius", [1, 2, 3, 4])
def test_a_lone_pixel_on_the_same_row_or_column_is_seen_at_every_radius(radius):
    label = np.zeros((11, 11), dtype=np.int64)
    label[5, 5 + radius] = 1  # on the centre row of (5, 5), `radius` away
    label[5 - radius, 2] = 2  # on the centre column of (5, 2)
    got = boundary_map(torch.from_numpy(label), radius).numpy()
    np.testing.assert_array_equal(got, _expected(label, radius))
    assert got[5, 5] and got[5, 2]


def test_ignore_pixels_never_make_a_boundary():
    label = np.zeros((12, 12), dtype=np.int64)
    label[5:7, 5:7] = 255  # a hole of ignore pixels inside class 0
    border = np.ones((12, 12), bool)
    border[1:-1, 1:-1] = False
    got = boundary_map(torch.from_numpy(label), 1).numpy()  # the default ignore_index, 255
    np.testing.assert_array_equal(got, border)
    np.testing.assert_array_equal(boundary_map(torch.from_numpy(label), 1, 255).numpy(), border)


def test_boundary_stats_honours_its_ignore_index():
    label = np.zeros((50, 50), dtype=np.int64)  # diagonal 70.7 -> d = 1
    label[20:24, 20:24] = 9
    inter, union = boundary_stats(torch.from_numpy(label), torch.from_numpy(label), 2, ignore_index=9)
    assert inter.tolist() == union.tolist() == [4 * 50 - 4, 0]


def test_a_class_missing_from_the_prediction_still_counts_its_gt_band():
    label = np.zeros((50, 50), dtype=np.int64)
    label[:, 25:] = 1
    pred = np.zeros_like(label)  # class 1 never predicted
    inter, union = boundary_stats(torch.from_numpy(pred), torch.from_numpy(label), 3)
    g0, g1 = (brute_force_boundary(label == c, label == 255, 1) for c in (0, 1))
    p0 = brute_force_boundary(pred == 0, label == 255, 1)
    assert inter.tolist() == [int(np.sum(g0 & p0)), 0, 0]
    assert union.tolist() == [int(np.sum(g0 | p0)), int(g1.sum()), 0]


def test_boundary_stats_refuses_mismatched_or_batched_maps():
    with pytest.raises(ValueError, match=r"^expected two \(H, W\) maps, got \(4, 5\) and \(4, 6\)$"):
        boundary_stats(torch.zeros(4, 5, dtype=torch.long), torch.zeros(4, 6, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"^expected two \(H, W\) maps, got \(1, 4, 5\) and \(1, 4, 5\)$"):
        boundary_stats(torch.zeros(1, 4, 5, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long), 2)
