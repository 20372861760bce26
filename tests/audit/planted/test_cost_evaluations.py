"""The cost estimate's evaluation count (issue 32, row "cost estimate"), at values where eval_every divides the
iterations: the trainer (bench/engine/trainer.py) evaluates every eval_every iterations except at the last one,
and once at the end, so 10 iterations with eval_every 5 evaluate twice (at 5 and at 10), not three times."""
from pathlib import Path

import pytest

from bench.config import ExperimentConfig
from bench.sweep.cost import estimate
from bench.sweep.spec.trials import Resources
from tests.sweep.conftest import tiny_experiment


def _cfg(iterations: int, eval_every, checkpoint_every: int = 1000):
    raw = tiny_experiment(Path("/nonexistent"), iterations=iterations, checkpoint_every=checkpoint_every)
    raw["train"]["eval_every"] = eval_every
    return ExperimentConfig.model_validate(raw)


@pytest.mark.parametrize("iterations, eval_every, evaluations", [
    (10, 5, 2),  # 5, final 10: the final one is not also a periodic one
    (10, 10, 1),  # only the final one
    (12, 4, 3),  # 4, 8, final 12
    (10, 3, 4),  # 3, 6, 9, final 10
    (10, None, 1),  # no periodic evaluation
    (10, 20, 1),
])
def test_evaluations_counted_as_the_trainer_runs_them(iterations, eval_every, evaluations):
    """Catches: the final evaluation counted twice when eval_every divides the iterations (a `range` up to and
    including `iterations`), which makes every such estimate too high."""
    cfg = _cfg(iterations, eval_every)
    assert estimate._count_evals(cfg.train) == evaluations
    cost = estimate.ModelCost(s_per_iter=0.0, eval_s_per_image=0.5, val_images=4)
    wall = estimate.trial_wall_s(cfg, Resources(cpus=1), cost, estimate.Overheads(0.0))
    assert wall == pytest.approx(evaluations * 4 * 0.5)


@pytest.mark.parametrize("iterations, every, checkpoints", [(8, 4, 2), (10, 4, 3), (4, 4, 1), (3, 4, 1)])
def test_checkpoints_counted_at_divisible_values(iterations, every, checkpoints):
    """The same edge for checkpoints: every `checkpoint_every` iterations plus the last one when it is not one."""
    cfg = _cfg(iterations, None, checkpoint_every=every)
    cost = estimate.ModelCost(s_per_iter=0.0, checkpoint_s=1.0)
    assert estimate.trial_wall_s(cfg, Resources(cpus=1), cost, estimate.Overheads(0.0)) == checkpoints
