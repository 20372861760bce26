"""The Pareto frontier on hand-made points (maximise mIoU, minimise cost)."""
import numpy as np

from reports.pareto import frontier_steps, pareto_mask


def test_pareto_set_of_hand_made_points():
    #            A     B     C     D     E     F(tie with B)  G(nan)
    cost = [1.0, 2.0, 3.0, 2.5, 4.0, 2.0, np.nan]
    miou = [50.0, 60.0, 65.0, 59.0, 64.0, 60.0, 99.0]
    mask = pareto_mask(cost, miou)
    # D is dominated by B (cheaper, better); E by C; G has no cost; B and F are identical and both kept.
    assert mask.tolist() == [True, True, True, False, False, True, False]


def test_equal_cost_keeps_only_the_better_point():
    assert pareto_mask([1, 1], [10, 20]).tolist() == [False, True]
    assert pareto_mask([1, 2], [20, 20]).tolist() == [True, False]


def test_frontier_steps_are_sorted_by_cost():
    x, y = frontier_steps([3.0, 1.0, 2.0, 2.5], [65.0, 50.0, 60.0, 59.0])
    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == [50.0, 60.0, 65.0]


def test_empty_and_all_nan():
    assert pareto_mask([], []).tolist() == []
    assert pareto_mask([np.nan], [1.0]).tolist() == [False]
