"""sampling="release": hzhupku/IFA's choice of cell at every side length, checked against an independent float32
computation written from the formulas (numpy, not the project's code), and against float32 grid_sample itself."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ifa.coords import axis_sampling, nearest_cells

f32 = np.float32


def _centres(n):
    """make_coord's cell centres in float32: (-1 + r) + (2r) * i, r = (1 - (-1)) / (2n) in double."""
    r = 2 / (2 * n)
    return f32(-1 + r) + f32(2 * r) * np.arange(n, dtype=f32)


def _queries(q):
    """The release's query coordinates: make_coord, then (c + 1) / 2 and back with * 2 - 1, all float32."""
    return ((_centres(q) + f32(1)) / f32(2)) * f32(2) - f32(1)


def _grid_sample_nearest(coord, n):
    """grid_sample's nearest rule (align_corners=False) in float32: u = ((c + 1) * n - 1) / 2, round half even."""
    u = ((coord + f32(1)) * f32(n) - f32(1)) / f32(2)
    return np.clip(np.rint(u), 0, n - 1).astype(np.int64)


def _level_sizes(side):
    """c2..c5 sizes of one image side on the deep stem (stride-2 conv, 3x3/2 ceil-mode pool, three stride-2 stages)."""
    a = (side - 1) // 2 + 1
    b = math.ceil((a - 1) / 2) + 1
    if (b - 1) * 2 >= a + 1:  # a ceil-mode window may not start in the padding
        b -= 1
    sizes = [b]
    for _ in range(3):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def test_level_sizes_match_the_real_pool():
    for side in (185, 300, 769, 1024, 2048):
        a = (side - 1) // 2 + 1
        assert F.max_pool2d(torch.zeros(1, 1, a, 1), (3, 1), (2, 1), (1, 0), ceil_mode=True).shape[2] == _level_sizes(side)[0]


@pytest.mark.slow
def test_release_sampling_every_side_length_16_to_2100():
    differs = 0
    for side in range(16, 2101):
        sizes = _level_sizes(side)
        q = sizes[0]
        coord = _queries(q)
        changed = False
        for n in sizes:
            s = axis_sampling(q, n, sampling="release")
            expected = _grid_sample_nearest(coord, n)
            np.testing.assert_array_equal(s.index[0].numpy(), expected, err_msg=f"side {side}, {q} queries on {n} cells")
            rel = (coord - _centres(n)[expected]) * f32(n)
            np.testing.assert_array_equal(s.rel[0].numpy(), rel)
            changed |= bool((nearest_cells(q, n).numpy() != expected).any())
        differs += changed
    # the outside check's count: 228 side lengths where the release reads another cell than exact rounding
    assert differs == 228


def test_185x300_row_23_reads_the_release_cells():
    sizes = _level_sizes(185)  # 47, 24, 12, 6
    assert sizes == [47, 24, 12, 6]
    # row 23 of 47 query rows sits exactly on 0, a c3 / c4 cell border: exact rounding (half to even) reads c3
    # (24 rows) cell 12 and c4 (12 rows) cell 6; the release's float32 coordinate is a hair below 0: 11 and 5
    assert _queries(47)[23] < 0
    assert int(nearest_cells(47, 24)[23]) == 12 and int(axis_sampling(47, 24, sampling="release").index[0, 23]) == 11
    assert int(nearest_cells(47, 12)[23]) == 6 and int(axis_sampling(47, 12, sampling="release").index[0, 23]) == 5
    for side in (256, 512, 769, 1024, 2048):  # unaffected sizes
        sizes = _level_sizes(side)
        for n in sizes:
            assert torch.equal(nearest_cells(sizes[0], n), axis_sampling(sizes[0], n, sampling="release").index[0])


def test_release_sampling_equals_float32_grid_sample():
    for q, n in [(47, 12), (47, 6), (76, 19), (257, 129), (257, 9), (513, 65)]:
        src = torch.arange(n, dtype=torch.float32).view(1, 1, 1, n)
        grid = torch.zeros(1, 1, q, 2)
        grid[0, 0, :, 0] = torch.from_numpy(_queries(q))
        read = F.grid_sample(src, grid, mode="nearest", align_corners=False)[0, 0, 0].long()
        assert torch.equal(read, axis_sampling(q, n, sampling="release").index[0]), (q, n)
