"""reports/pareto.py: what `make mutation MUTATE=pareto` found unasserted."""
import numpy as np

from reports.pareto import frontier_steps


def test_frontier_steps_returns_floats_for_integer_and_missing_inputs():
    xs, ys = frontier_steps([2, 1, 3], [20, 10, 5])
    assert xs.dtype == ys.dtype == np.float64
    assert xs.tolist() == [1.0, 2.0] and ys.tolist() == [10.0, 20.0]
    xs, ys = frontier_steps([None, 1, 2], [9, 10, None])
    assert xs.dtype == ys.dtype == np.float64 and xs.tolist() == [1.0] and ys.tolist() == [10.0]
