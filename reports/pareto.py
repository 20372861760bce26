"""The Pareto frontier of an accuracy-cost trade-off: maximise the metric, minimise the cost."""
from __future__ import annotations

import numpy as np


def pareto_mask(cost, value) -> np.ndarray:
    """True for the points no other point dominates.

    q dominates p when cost_q <= cost_p and value_q >= value_p with at least one strict. Points with a NaN cost or
    value are never on the frontier (and dominate nothing); identical points are both kept.
    """
    cost = np.asarray(cost, dtype=float)
    value = np.asarray(value, dtype=float)
    finite = np.isfinite(cost) & np.isfinite(value)
    mask = finite.copy()
    for i in np.flatnonzero(finite):
        others = finite.copy()
        others[i] = False
        no_worse = (cost <= cost[i]) & (value >= value[i])
        better = (cost < cost[i]) | (value > value[i])
        if np.any(others & no_worse & better):
            mask[i] = False
    return mask


def frontier_steps(cost, value) -> tuple[np.ndarray, np.ndarray]:
    """Frontier points sorted by cost, for drawing as a staircase (best value attainable at each cost)."""
    cost = np.asarray(cost, dtype=float)
    value = np.asarray(value, dtype=float)
    mask = pareto_mask(cost, value)
    order = np.argsort(cost[mask], kind="stable")
    return cost[mask][order], value[mask][order]
