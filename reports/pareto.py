"""The Pareto frontier of an accuracy-cost trade-off: maximise the metric, minimise the cost."""
from __future__ import annotations

import numpy as np


def pareto_mask(cost, value, tied=None) -> np.ndarray:
    """True for the points no other point dominates.

    q dominates p when q's cost is no worse (lower, equal, or tied with p's) and value_q >= value_p, with at least
    one strict: value_q > value_p, or cost_q lower and not tied. `tied` (n x n bool, reports/ranking.py) says which
    costs lie within their resolution of each other; None: only equal costs tie. Points with a NaN cost or value
    are never on the frontier (and dominate nothing); identical points, and tied costs with equal values, are all
    kept.
    """
    cost = np.asarray(cost, dtype=float)
    value = np.asarray(value, dtype=float)
    n = len(cost)
    tied = np.zeros((n, n), dtype=bool) if tied is None else np.asarray(tied, dtype=bool)
    finite = np.isfinite(cost) & np.isfinite(value)
    mask = finite.copy()
    for i in np.flatnonzero(finite):
        others = finite.copy()
        others[i] = False
        cost_no_worse = (cost <= cost[i]) | tied[i]
        cost_better = (cost < cost[i]) & ~tied[i]
        dominating = others & cost_no_worse & (value >= value[i]) & (cost_better | (value > value[i]))
        if np.any(dominating):
            mask[i] = False
    return mask


def frontier_steps(cost, value, tied=None) -> tuple[np.ndarray, np.ndarray]:
    """Frontier points sorted by cost, for drawing as a staircase (best value attainable at each cost)."""
    cost = np.asarray(cost, dtype=float)
    value = np.asarray(value, dtype=float)
    mask = pareto_mask(cost, value, tied)
    order = np.argsort(cost[mask], kind="stable")
    return cost[mask][order], value[mask][order]
