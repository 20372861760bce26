"""A tiny real experiment for the training tests: a synthetic dataset of 32x64 scenes and a narrow model."""
from __future__ import annotations

import copy

TINY = {
    "name": "tiny",
    "seed": 3,
    "data": {
        "dataset": "synthetic", "root": None, "generate": True, "synthetic_size": [32, 64],
        "synthetic_train": 8, "synthetic_val": 2, "crop_size": [32, 32], "scale_range": [0.75, 1.25],
        "num_workers": 0,
    },
    "model": {
        "num_classes": 10,
        "backbone": {"name": "resnet18", "width": 0.125},
        "head": {"name": "ifa", "channels": 16, "mlp": [32, 16]},
        "aux_head": {"channels": 16},
    },
    "train": {
        "iterations": 40, "batch_size": 2, "lr": 0.01, "head_lr_mult": 10, "warmup_iters": 3, "threads": 1,
        "log_every": 1, "checkpoint_every": 10, "keep_checkpoints": 2, "loss": "ohem", "ohem_min_kept": 200,
    },
    "eval": {"mode": "whole"},
    "measure": {"enabled": False},
}


def tiny_dict(data_root, **sections) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["data"]["root"] = str(data_root)
    for section, values in sections.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    return cfg


def tiny_config(data_root, **sections):
    from bench.config import ExperimentConfig

    return ExperimentConfig.model_validate(tiny_dict(data_root, **sections))
