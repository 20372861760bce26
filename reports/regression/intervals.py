"""Bootstrap intervals for models of a results table, from the per-image statistics their trials saved
(<sweep>/<trial_dir>/per_image.npz; bench/engine/evaluation/bootstrap.py has the method)."""
from __future__ import annotations

from pathlib import Path
from typing import Union

from bench.engine.evaluation.bootstrap import PER_IMAGE_FILE, Interval, load_per_image, miou_interval, paired_difference
from bench.errors import UserError
from reports.load import Results


def _stats_of(results: Results, trial_ids: list[str]) -> Union[list, str]:
    """Per-image (inter, union) of each completed trial, or the reason they cannot be had."""
    df = results.trials.set_index("trial_id")
    stats = []
    for tid in trial_ids:
        if tid not in df.index or df.at[tid, "status"] != "completed":
            continue
        path = Path(results.sweep_dir) / str(df.at[tid, "trial_dir"]) / PER_IMAGE_FILE
        if not path.is_file():
            return f"no per-image statistics for trial {tid} ({path}); rerun its evaluation to get an interval"
        stats.append(load_per_image(path))
    if not stats:
        return "no completed trial"
    shapes = {s[0].shape for s in stats}
    if len(shapes) > 1:
        return f"the seeds were evaluated on different image sets ({sorted(shapes)})"
    return stats


def model_interval(results: Results, trial_ids: list[str], level: float) -> Union[Interval, str]:
    """The `level`% interval of the model's mIoU (mean over its completed seeds), or why there is none."""
    stats = _stats_of(results, trial_ids)
    return stats if isinstance(stats, str) else miou_interval(stats, level=level)


def _trials_matching(results: Results, key: str) -> list[str]:
    df = results.trials
    hits = df[(df["trial_id"] == key) | (df["config_hash"].astype(str) == key)]
    if hits.empty:
        raise UserError(f"--paired: {key!r} is neither a trial_id nor a config_hash of {results.sweep_dir}")
    return list(hits["trial_id"])


def paired(results: Results, a: str, b: str, level: float) -> Interval:
    """mIoU(a) - mIoU(b) on the same images, a and b each a trial_id or a config_hash of the results."""
    stats = []
    for key in (a, b):
        s = _stats_of(results, _trials_matching(results, key))
        if isinstance(s, str):
            raise UserError(f"--paired {key}: {s}")
        stats.append(s)
    if stats[0][0][0].shape != stats[1][0][0].shape:
        raise UserError(f"--paired: {a} and {b} were evaluated on different image sets")
    return paired_difference(stats[0], stats[1], level=level)
