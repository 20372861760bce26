"""When two measured numbers count as different: the resolution of each quantity, the ties it makes, and ranks that
respect them. The frontier (reports/pareto.py), the highlights, the plots and the tables all take their ties here.

The rules (RULES states them in every report):
- GMACs and parameters: tied when they differ by at most 0.5% of the smaller value (REL_TIE).
- Latency: each model's interval is its median ± half the interquartile range (IQR) of its timing runs
  (`latency_ms_iqr`); two latencies are tied when their intervals overlap (touching counts). A latency without an
  IQR has a zero-width interval. Noisy latencies (`latency_noisy`) are not ranked at all.
- mIoU: compared as computed (tied only when equal).
"""
from __future__ import annotations

import numpy as np

REL_TIE = 0.005  # GMACs and params: 0.5% of the smaller value

RULES = ("Ties: GMACs and parameters within 0.5% of the smaller value are tied; latencies are tied when their "
         "intervals (median ± half the IQR of the timing runs, drawn as horizontal bars) overlap; tied models share "
         "a rank, and a cost tie never puts one of them off the Pareto frontier by cost alone. Noisy latencies (†) "
         "enter no latency ranking, frontier or highlight; they are drawn hollow and listed apart.")


def _floats(values) -> np.ndarray:
    return np.asarray(values, dtype=float).ravel()


def relative_ties(values, rel: float = REL_TIE) -> np.ndarray:
    """n x n: True where |a - b| <= rel * min(|a|, |b|) (both finite). Equal values are always tied."""
    v = _floats(values)
    a, b = v[:, None], v[None, :]
    with np.errstate(invalid="ignore"):
        tied = np.abs(a - b) <= rel * np.minimum(np.abs(a), np.abs(b))
    return (tied | (a == b)) & np.isfinite(a) & np.isfinite(b)


def interval_ties(centres, half_widths) -> np.ndarray:
    """n x n: True where [c - h, c + h] intervals overlap; a missing half-width counts as 0."""
    c = _floats(centres)
    h = np.nan_to_num(np.abs(_floats(half_widths)), nan=0.0)
    with np.errstate(invalid="ignore"):
        tied = np.abs(c[:, None] - c[None, :]) <= h[:, None] + h[None, :]
    return tied & np.isfinite(c)[:, None] & np.isfinite(c)[None, :]


def latency_half_width(iqr) -> np.ndarray:
    """Half the IQR of the timing runs: the latency interval's half-width (and the plot's horizontal bar)."""
    return _floats(iqr) / 2


def ranks(values, tied: np.ndarray | None = None, lower_is_better: bool = True) -> np.ndarray:
    """1 + the number of models strictly better and not tied; tied models share a rank. 0 where the value is
    missing (unranked)."""
    v = _floats(values)
    n = len(v)
    tied = np.zeros((n, n), dtype=bool) if tied is None else np.asarray(tied, dtype=bool)
    with np.errstate(invalid="ignore"):
        better = (v[None, :] < v[:, None]) if lower_is_better else (v[None, :] > v[:, None])
    better &= ~tied & np.isfinite(v)[None, :]
    out = 1 + better.sum(axis=1)
    return np.where(np.isfinite(v), out, 0)


def tied_with(labels, tied: np.ndarray, among=None) -> list[list[str]]:
    """Per model, the other models (of `among`, a mask; default all) it is tied with."""
    labels = list(labels)
    among = np.ones(len(labels), dtype=bool) if among is None else np.asarray(among, dtype=bool)
    return [[labels[j] for j in np.flatnonzero(tied[i] & among) if j != i] for i in range(len(labels))]



def cost_ties(cost: str, values, half_widths=None) -> np.ndarray:
    """The ties of a cost column by its rule: latency columns by interval overlap (half_widths: half the IQR), every
    other cost (GMACs, params) by REL_TIE."""
    if cost.startswith("latency"):
        return interval_ties(values, np.full(len(_floats(values)), np.nan) if half_widths is None else half_widths)
    return relative_ties(values)
