"""reports/pareto.py: what `make mutation MUTATE=pareto` found unasserted."""
import numpy as np

from reports.pareto import frontier_steps


def test_frontier_steps_returns_floats_for_integer_and_missing_inputs():
    xs, ys = frontier_steps([2, 1, 3], [20, 10, 5])
    assert xs.dtype == ys.dtype == np.float64
    assert xs.tolist() == [1.0, 2.0] and ys.tolist() == [10.0, 20.0]
    xs, ys = frontier_steps([None, 1, 2], [9, 10, None])
    assert xs.dtype == ys.dtype == np.float64 and xs.tolist() == [1.0] and ys.tolist() == [10.0]


def test_frontier_steps_keep_the_input_order_of_tied_points():
    # kind="stable": points tied on cost (and so on value) stay in input order; only the sign of a zero cost tells
    # them apart. 30 points: more than numpy's insertion-sort cutoff (16), so an unstable quicksort reorders them.
    cost = np.array([[1.0, 0.0, -0.0][i % 3] for i in range(30)])
    value = np.where(cost == 0, 1.0, 2.0)
    xs, ys = frontier_steps(cost, value)
    assert np.signbit(xs).tolist() == np.signbit(cost[cost == 0]).tolist() + [False] * 10
    assert ys.tolist() == [1.0] * 20 + [2.0] * 10
