"""Training and evaluation: `train_experiment` (docs/training.md) and `evaluate` (docs/evaluation.md)."""
from __future__ import annotations

__all__ = ["evaluate", "train_experiment"]


def __getattr__(name):  # lazy: importing bench.engine must not pull in the data/model stacks
    if name == "train_experiment":
        from bench.engine.trainer import train_experiment

        return train_experiment
    if name == "evaluate":
        from bench.engine.evaluation.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'bench.engine' has no attribute {name!r}")
